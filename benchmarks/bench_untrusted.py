"""What the untrusted-output rules cost: checking and copying an output, against shutil.copytree.

Writes an output of many small files and a few large ones, then times scan_tree
(the check every collected output gets), stage_output (check + copy, what a
consumer's staging does), shutil.copytree (the old staging copy), pack_model, and the sweep of a
step's folder after it (run/ownership: setuid/setgid bits, device files; as root, the handover).
Prints the figures; it asserts nothing.

    python benchmarks/bench_untrusted.py [--files 20000] [--big-mib 256]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from rtest.run import ownership
from rtest.run.staging import pack_model, stage_output
from rtest.run.untrusted import OutputLimits, scan_tree


def _make_output(root: Path, files: int, big_mib: int) -> None:
    for i in range(files):
        folder = root / f"part-{i // 1000:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i}.csv").write_text(f"{i},{i * 2}\n")
    with open(root / "big.bin", "wb") as handle:
        for _ in range(big_mib):
            handle.write(os.urandom(2**20))


def _timed(label: str, call) -> float:
    started = time.perf_counter()
    call()
    took = time.perf_counter() - started
    print(f"{label:<34} {took * 1000:9.0f} ms")
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--big-mib", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        out = root / "out"
        _make_output(out, args.files, args.big_mib)
        limits = OutputLimits(max_files=args.files * 2)
        print(f"output: {args.files:,} small files + {args.big_mib} MiB file")
        _timed("scan_tree (check only)", lambda: scan_tree(out, "output out", limits))
        _timed("stage_output (check + copy)", lambda: stage_output(out, root / "staged", label="output out", limits=limits))
        _timed("shutil.copytree (old copy)", lambda: shutil.copytree(out, root / "copied"))
        _timed("pack_model (check + tar.gz)", lambda: pack_model(out, root / "art", limits=limits))
        # issue 14: the sweep every step's folder gets after it (setuid/setgid, devices), and as root the handover
        _timed("sweep after a step", lambda: ownership.take_back(out, f"{os.getuid()}:{os.getgid()}"))
        if os.getuid() == 0:
            _timed("hand over to 65534 and back (root)", lambda: (ownership.hand_over(out, "65534:65534"),
                                                               ownership.take_back(out, "65534:65534")))


if __name__ == "__main__":
    main()
