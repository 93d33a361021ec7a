"""Swarm backend benchmarks (issue 17), side by side in one run, whole CLI processes. Nothing here asserts.

    sudo python benchmarks/bench_swarm.py [fanout|overhead|all] [--rounds 10]

Needs root: it brings up the two-node lab swarm (scripts/swarm_lab.sh), and takes it down again
if it was not up before.

(a) fanout:   eight independent 3-second steps, each reserving what one node has (ml.m5.large: 2 CPUs on
              these 2-CPU nodes), on the two-node swarm vs the docker backend on one node running as many
              at once as that node's CPUs hold (-j 1); the docker backend oversubscribed (-j 2) is shown too.
(b) overhead: one trivial step, median of N whole runs, swarm vs docker backend.
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

from rtest.testing import write_python_pipeline

REPO = Path(__file__).resolve().parents[1]
LAB = REPO / "scripts" / "swarm_lab.sh"
OUT = "/opt/ml/processing/output/out"


def _pipeline(root: Path, steps: dict) -> list[str]:
    for step in steps.values():
        step.setdefault("config", {})["processing_instance_type"] = "ml.m5.large"
    p = write_python_pipeline(root, steps, [])
    return ["--dag", str(p["dag"]), "--config", str(p["config"]), "--interfaces", str(p["interfaces"]),
            "--source-root", str(root), "--no-cache"]


def _run(args: list[str], workdir: Path) -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "rtest.cli.main", "sandbox", "run", *args, "--workdir", str(workdir)],
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"run failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    runs = sorted((workdir / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
    return wall, json.loads((runs[-1] / "report.json").read_text())


def bench_fanout(tmp: Path, registry: str) -> None:
    steps = {f"Sleep{i}": {"script": "import time; time.sleep(3)\n", "outputs": {"out": OUT}} for i in range(8)}
    args = _pipeline(tmp / "fanout", steps)
    _run([*args, "--backend", "swarm", "--registry", registry], tmp / "warm")  # push and pull the image once
    swarm, report = _run([*args, "--backend", "swarm", "--registry", registry], tmp / "swarm")
    hosts = sorted({s["host"] for s in report["steps"].values()})
    one_node, _ = _run([*args, "--jobs", "1"], tmp / "docker1")
    oversubscribed, _ = _run([*args, "--jobs", "2"], tmp / "docker2")
    print("(a) eight 3-second steps, each reserving one node's 2 CPUs")
    print(f"    swarm, 2 nodes ({', '.join(hosts)}): {swarm:6.2f} s")
    print(f"    docker, 1 node, -j 1 (its CPUs):     {one_node:6.2f} s   ratio swarm/docker {swarm / one_node:.2f}")
    print(f"    docker, 1 node, -j 2 (oversubscribed): {oversubscribed:4.2f} s   ratio {swarm / oversubscribed:.2f}")


def bench_overhead(tmp: Path, registry: str, rounds: int) -> None:
    args = _pipeline(tmp / "solo", {"Solo": {"script": "pass\n", "outputs": {"out": OUT}}})
    _run([*args, "--backend", "swarm", "--registry", registry], tmp / "warm-solo")
    swarm, docker = [], []
    for i in range(rounds):  # interleaved, so drift hits both alike
        swarm.append(_run([*args, "--backend", "swarm", "--registry", registry], tmp / f"s{i}")[0])
        docker.append(_run(args, tmp / f"d{i}")[0])
    s, d = statistics.median(swarm), statistics.median(docker)
    print(f"(b) one trivial step, whole CLI, median of {rounds}")
    print(f"    swarm {s:.2f} s   docker {d:.2f} s   per-step overhead of swarm {s - d:+.2f} s   ratio {s / d:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("which", nargs="?", default="all", choices=["fanout", "overhead", "all"])
    parser.add_argument("--rounds", type=int, default=10)
    options = parser.parse_args()
    was_up = subprocess.run(["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"], capture_output=True,
                            text=True).stdout.strip() == "active"
    up = subprocess.run(["bash", str(LAB), "up"], capture_output=True, text=True, check=True)
    registry = dict(line.split("=", 1) for line in up.stdout.split())["RTEST_LAB_REGISTRY"]
    try:
        with tempfile.TemporaryDirectory(prefix="rtest-bench-swarm-") as tmp:
            if options.which in ("fanout", "all"):
                bench_fanout(Path(tmp), registry)
            if options.which in ("overhead", "all"):
                bench_overhead(Path(tmp), registry, options.rounds)
    finally:
        if not was_up:
            subprocess.run(["bash", str(LAB), "down"], capture_output=True)


if __name__ == "__main__":
    main()
