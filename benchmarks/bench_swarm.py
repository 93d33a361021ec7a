"""Swarm backend benchmarks (issue 17), side by side in one run. Nothing here asserts.

    sudo python benchmarks/bench_swarm.py [fanout|overhead|all] [--rounds 10]

Needs root: it brings up the two-node lab swarm (scripts/swarm_lab.sh), and takes it down again
if it was not up before.

(a) fanout:   eight independent 3-second steps, each reserving ONE CPU, on the two-node swarm (Swarm places
              them by reservation: 2 nodes x 2 CPUs = 4 at once) vs the docker backend on one node running as
              many at once as its CPUs hold (2). Driven at the backend seam (prepare, run, remove per step, as
              the runner does), because no SageMaker instance type has one vCPU, so the CLI cannot ask for it.
(b) overhead: one trivial step, median of N, swarm vs docker: at the backend seam (what each STEP costs) and
              as whole CLI runs (what a one-step RUN costs: start-up, the swarm's per-run probe, the report).

Both lab "nodes" share this machine's CPUs: the worker is a second dockerd, not a second computer. A ratio
near 0.5 in (a) shows Swarm spreading reservations over two nodes; it does not show two machines' worth
of compute (the 3-second steps sleep, they do not compete for CPU).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rtest.run.backends.base import StepLaunch
from rtest.run.backends.docker import DockerBackend
from rtest.run.backends.swarm import SwarmBackend
from rtest.testing import write_python_pipeline

REPO = Path(__file__).resolve().parents[1]
LAB = REPO / "scripts" / "swarm_lab.sh"
OUT = "/opt/ml/processing/output/out"
IMAGE = "rtest/sagemaker-base:py3"
RUN_ID = f"bench{int(time.time())}"


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


def _launch(name: str, seconds: float, cpus: float) -> StepLaunch:
    return StepLaunch(run_id=RUN_ID, node=name, name=f"rtest-{RUN_ID}-{name}", image=IMAGE, cpus=cpus,
                      command=["python3", "-c", f"import time; time.sleep({seconds})"], memory_bytes=256 << 20)


def _one_step(backend, launch: StepLaunch, log_dir: Path) -> tuple[float, str | None]:
    """One step as the runner drives it: prepare, run, remove; its wall time and the node it ran on."""
    started = time.perf_counter()
    handle = backend.prepare(launch)
    try:
        exit_info = backend.run(handle, log_dir / f"{launch.node}.log", threading.Event())
    finally:
        backend.remove(handle)
    if exit_info.exit_code != 0:
        raise SystemExit(f"{launch.node} failed on {backend.name}: {exit_info}")
    return time.perf_counter() - started, exit_info.host


def _fan(backend, at_once: int, log_dir: Path) -> tuple[float, list[str | None]]:
    launches = [_launch(f"Sleep{i}", 3, cpus=1.0) for i in range(8)]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=at_once) as pool:
        done = list(pool.map(lambda launch: _one_step(backend, launch, log_dir), launches))
    return time.perf_counter() - started, [host for _, host in done]


def bench_fanout(tmp: Path, swarm, docker_backend) -> None:
    _fan(swarm, 4, tmp)  # warm: every node has the pinned image, the run's network exists
    swarm_wall, hosts = _fan(swarm, 8, tmp)  # all eight submitted; Swarm holds back what does not fit
    docker_wall, _ = _fan(docker_backend, 2, tmp)  # one node: its 2 CPUs hold two 1-CPU steps at once
    per_host = {h: hosts.count(h) for h in sorted(set(hosts), key=str)}
    print("(a) eight independent 3-second steps, each reserving ONE CPU (backend seam)")
    print(f"    swarm, 2 nodes x 2 CPUs {per_host}: {swarm_wall:6.2f} s")
    print(f"    docker, 1 node x 2 CPUs (2 at once):      {docker_wall:6.2f} s")
    print(f"    ratio swarm/docker {swarm_wall / docker_wall:.2f}   (ideal: 2 waves of 3 s vs 4 waves of 3 s = 0.50)")


def bench_overhead(tmp: Path, registry: str, rounds: int, swarm, docker_backend) -> None:
    seam_swarm, seam_docker = [], []
    for i in range(rounds):  # interleaved, so drift hits both alike
        seam_swarm.append(_one_step(swarm, _launch(f"Trivial{i}", 0, cpus=1.0), tmp)[0])
        seam_docker.append(_one_step(docker_backend, _launch(f"Trivial{i}", 0, cpus=1.0), tmp)[0])
    s, d = statistics.median(seam_swarm), statistics.median(seam_docker)
    print(f"(b) one trivial step, median of {rounds}")
    print(f"    per step (backend seam): {_side_by_side(s, d)}")
    args = _pipeline(tmp / "solo", {"Solo": {"script": "pass\n", "outputs": {"out": OUT}}})
    _run([*args, "--backend", "swarm", "--registry", registry], tmp / "warm-solo")
    cli_swarm, cli_docker = [], []
    for i in range(rounds):
        cli_swarm.append(_run([*args, "--backend", "swarm", "--registry", registry], tmp / f"s{i}")[0])
        cli_docker.append(_run(args, tmp / f"d{i}")[0])
    s, d = statistics.median(cli_swarm), statistics.median(cli_docker)
    print(f"    per run (whole CLI):     {_side_by_side(s, d)}")


def _side_by_side(swarm_s: float, docker_s: float) -> str:
    return (f"swarm {swarm_s:.2f} s   docker {docker_s:.2f} s   overhead {swarm_s - docker_s:+.2f} s   "
            f"ratio {swarm_s / docker_s:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("which", nargs="?", default="all", choices=["fanout", "overhead", "all"])
    parser.add_argument("--rounds", type=int, default=10)
    options = parser.parse_args()
    was_up = subprocess.run(["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"], capture_output=True,
                            text=True).stdout.strip() == "active"
    up = subprocess.run(["bash", str(LAB), "up"], capture_output=True, text=True, check=True)
    registry = dict(line.split("=", 1) for line in up.stdout.split())["RTEST_LAB_REGISTRY"]
    swarm = SwarmBackend(registry=registry, pending_grace_s=30)
    docker_backend = DockerBackend()
    try:
        with tempfile.TemporaryDirectory(prefix="rtest-bench-swarm-") as tmp:
            if options.which in ("fanout", "all"):
                bench_fanout(Path(tmp), swarm, docker_backend)
            if options.which in ("overhead", "all"):
                bench_overhead(Path(tmp), registry, options.rounds, swarm, docker_backend)
    finally:
        swarm.remove_run(RUN_ID)
        if not was_up:
            subprocess.run(["bash", str(LAB), "down"], capture_output=True)


if __name__ == "__main__":
    main()
