"""Run-engine benchmarks (issue 4), each measured side by side in one run. Nothing here asserts.

    python benchmarks/bench_run.py [chain|parallel|cached|memory|all] [--steps 10]

(a) chain:    an N-step chain of trivial steps through rtest vs N `docker run --rm` of the same image.
(b) parallel: a diamond with two 3-second branches: wall time vs the critical path.
(c) cached:   a cached rerun of the bundled example, whole pipeline.
(d) memory:   a step printing 1 GB to stdout: rtest's peak RSS, and its log on disk (capped at --max-log-bytes, 64 MiB).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rtest.catalog import BASE_IMAGE
from rtest.plan.builder import build_plan, load_pipeline_inputs
from rtest.plan.settings import CommandLine
from rtest.plan.userspec import parse_input_flags
from rtest.run.engine import RunOptions, run_pipeline
from rtest.testing import write_python_pipeline

OUT = "/opt/ml/processing/output/out"
IN = "/opt/ml/processing/input/out"


def _plan(p: dict[str, Path], inputs: list[str] | None = None):
    return build_plan(load_pipeline_inputs(p["dag"], p["config"], [p["interfaces"]]), parse_input_flags(inputs))


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def bench_chain(steps: int, tmp: Path) -> None:
    nodes = [f"S{i:02d}" for i in range(steps)]
    spec = {n: {"script": "pass\n", "outputs": {"out": OUT}, **({"inputs": {"out": IN}} if i else {})} for i, n in enumerate(nodes)}
    plan = _plan(write_python_pipeline(tmp / "chain", spec, list(zip(nodes, nodes[1:]))))
    run_pipeline(plan, RunOptions(workdir=tmp / "wd"), settings=CommandLine(cache=False))  # warm: page cache, image layers
    docker = lambda extra: [subprocess.run(["docker", "run", "--rm", *extra, BASE_IMAGE, "python3", "-c", "pass"], check=True)  # noqa: E731
                            for _ in range(steps)]
    rows = []
    for _ in range(2):
        bare = _timed(lambda: docker([]))
        bare_none = _timed(lambda: docker(["--network", "none"]))
        ours = _timed(lambda: run_pipeline(plan, RunOptions(workdir=tmp / "wd"), settings=CommandLine(cache=False)))
        rows.append((bare, bare_none, ours))
    print(f"(a) chain of {steps} trivial steps, image {BASE_IMAGE}")
    print(f"    {'try':>3} {'docker run --rm':>16} {'--network none':>15} {'rtest':>8} {'ratio':>6} {'ratio(none)':>12}")
    for i, (bare, none, ours) in enumerate(rows, 1):
        print(f"    {i:>3} {bare:>14.2f} s {none:>13.2f} s {ours:>6.2f} s {ours / bare:>6.2f} {ours / none:>12.2f}")
    print("    goal: ratio <= 1.0 (SageMaker SDK local mode measured 2.55 here)")


def bench_parallel(tmp: Path) -> None:
    sleep = f"import time, pathlib\ntime.sleep(3)\n(pathlib.Path('{OUT}') / 'x').write_text('x')\n"
    steps = {
        "Start": {"script": "pass\n", "outputs": {"out": OUT}, "aliases": {"out": ["a", "b"]}},
        "Left": {"script": sleep, "inputs": {"a": "/opt/ml/processing/input/a"}, "outputs": {"out": OUT}, "aliases": {"out": ["l"]}},
        "Right": {"script": sleep, "inputs": {"b": "/opt/ml/processing/input/b"}, "outputs": {"out": OUT}, "aliases": {"out": ["r"]}},
        "End": {"script": "pass\n", "inputs": {"l": "/opt/ml/processing/input/l", "r": "/opt/ml/processing/input/r"}, "outputs": {"out": OUT}},
    }
    plan = _plan(write_python_pipeline(tmp / "diamond", steps, [("Start", "Left"), ("Start", "Right"), ("Left", "End"), ("Right", "End")]))
    started = time.perf_counter()
    report = run_pipeline(plan, RunOptions(workdir=tmp / "wd", jobs=2), settings=CommandLine(cache=False))
    wall = time.perf_counter() - started
    d = {n: r.duration_s for n, r in report.steps.items()}
    critical = d["Start"] + max(d["Left"], d["Right"]) + d["End"]
    serial = sum(d.values())
    print("(b) diamond, two 3 s branches, --jobs 2")
    print(f"    wall {wall:.2f} s; critical path (measured step durations) {critical:.2f} s; all steps back to back {serial:.2f} s")
    print(f"    wall - critical path = {wall - critical:.2f} s (goal: within 1 s)")


def bench_cached(tmp: Path) -> None:
    from rtest.example import example_paths, generate_example_inputs

    paths = example_paths()
    data = generate_example_inputs(tmp / "data")
    inputs = [f"{k}={v}" for k, v in data.items()]
    plan = build_plan(load_pipeline_inputs(paths.dag, paths.config, [paths.interfaces], paths.source_root), parse_input_flags(inputs))
    cold = _timed(lambda: run_pipeline(plan, RunOptions(workdir=tmp / "wd")))
    warm = _timed(lambda: run_pipeline(plan, RunOptions(workdir=tmp / "wd")))
    cli = _timed(lambda: subprocess.run([sys.executable, "-m", "rtest.cli.main", "sandbox", "run", "--example", "--workdir", str(tmp / "wd")],
                                         check=True, capture_output=True, cwd=tmp))
    print(f"(c) bundled example ({len(plan.scripts)} script steps)")
    print(f"    first run {cold:.2f} s; cached rerun {warm:.2f} s in-process; `rtest sandbox run --example` cached, whole CLI process: {cli:.2f} s")
    print("    goal: cached rerun under 1.5 s")


def bench_memory(tmp: Path) -> None:
    script = ("import sys\nline = ('x' * 99 + '\\n').encode()\nblock = line * 10000\nout = sys.stdout.buffer\n"
              "for _ in range(1000):\n    out.write(block)\nout.write(b'THE END\\n')\n")
    p = write_python_pipeline(tmp / "loud", {"Loud": {"script": script, "outputs": {"out": OUT}}}, [])
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "rtest.cli.main", "sandbox", "run", "--dag", str(p["dag"]), "--config", str(p["config"]),
                             "--workdir", str(tmp / "wd"), "--no-cache"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    log = next((tmp / "wd" / "runs").glob("*/Loud/log.txt"))
    size = log.stat().st_size
    with open(log, "rb") as f:
        f.seek(max(0, size - 200))
        tail_ok = b"THE END" in f.read()
    print("(d) one step printing 1,000,000,000 bytes to stdout")
    print(f"    exit {os.waitstatus_to_exitcode(status)}; wall {wall:.2f} s; rtest peak RSS {usage.ru_maxrss / 1024:.1f} MB (goal < 150 MB)")
    print(f"    log on disk {size:,} bytes; last line present: {tail_ok}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", nargs="?", default="all", choices=["chain", "parallel", "cached", "memory", "all"])
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        if args.which in ("chain", "all"):
            bench_chain(args.steps, tmp_path / "a")
        if args.which in ("parallel", "all"):
            bench_parallel(tmp_path / "b")
        if args.which in ("cached", "all"):
            bench_cached(tmp_path / "c")
        if args.which in ("memory", "all"):
            bench_memory(tmp_path / "d")


if __name__ == "__main__":
    main()
