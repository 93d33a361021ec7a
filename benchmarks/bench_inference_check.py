"""What the inference check costs the bundled example (issue 21), side by side in one run. Nothing here asserts.

    python benchmarks/bench_inference_check.py [--rounds 2]

Each round runs `rtest sandbox run --example --no-cache` twice, with and without --skip-inference-check,
in one workdir (the example's data and dependency images are made once, before the first round), and
prints the wall time of each, the Registration step's own duration, and its per-sample latencies.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _run(workdir: Path, *flags: str) -> tuple[float, dict]:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rtest.cli.main", "sandbox", "run", "--example", "--no-cache",
                    "--workdir", str(workdir), *flags], check=True, capture_output=True, cwd=workdir.parent)
    wall = time.perf_counter() - started
    report = max((workdir / "runs").glob("*/report.json"), key=lambda p: p.stat().st_mtime)
    return wall, json.loads(report.read_text())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch) / "wd"
        _run(workdir)  # warm-up: example copy, data, wheelhouse, dependency images
        walls: dict[str, list[float]] = {"with the check": [], "--skip-inference-check": []}
        step, latencies = [], []
        for _ in range(rounds):
            wall, report = _run(workdir)
            walls["with the check"].append(wall)
            check = report["steps"]["Registration"]
            step.append(check["duration_s"])
            latencies += [s["latency_ms"] for s in check["samples"] if s["latency_ms"] is not None]
            walls["--skip-inference-check"].append(_run(workdir, "--skip-inference-check")[0])
    for name, values in walls.items():
        print(f"example --no-cache, {name:<24} median wall {statistics.median(values):6.2f} s  ({rounds} runs)")
    print(f"Registration (inference check) step: median {statistics.median(step):.2f} s; "
          f"per-sample latency median {statistics.median(latencies):.1f} ms, max {max(latencies):.1f} ms")


if __name__ == "__main__":
    main()
