"""rtest's own overhead (issue 18): every goal line, rtest's figure beside its floor, from one command.

    python benchmarks/bench_overhead.py [--rounds 5] [--skip-atoz]

Whole processes, interleaved rounds (one of each per round), medians. Nothing here asserts.
  1-step     one trivial step, `rtest sandbox run`        vs one bare `docker run --rm --network none`
  chain CLI  a 3-step chain through the whole CLI         vs three bare runs
  chain svc  the chain, CLI client -> warm `rtest serve`  vs three bare runs
  plan       `rtest plan` of the 3 steps                  vs `python -c pass`
  version    `rtest --version`                            vs `python -c pass`
  1000 nodes discover+plan of 1,000 nodes (in-process)    vs 10 nodes
  atoz deps  atoz's four dependency images from a warm wheelhouse; then finding them all cached
             (needs /work/cursus; built under tags of this run only, removed at the end)
  example    a cached rerun of `rtest sandbox run --example`, whole process
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from rtest.catalog import BASE_IMAGE  # noqa: E402
from rtest.testing import write_python_pipeline  # noqa: E402

OUT, IN = "/opt/ml/processing/output/out", "/opt/ml/processing/input/out"
_script = Path(sys.executable).with_name("rtest")
RTEST = [str(_script)] if _script.exists() else [sys.executable, "-m", "rtest.cli.main"]
if os.environ.get("RTEST_BENCH_CLI"):  # e.g. "python -m rtest.cli.main" with PYTHONPATH at an older tree
    RTEST = os.environ["RTEST_BENCH_CLI"].split()
ENV = {**os.environ, "NO_PROXY": "127.0.0.1", "RTEST_SERVER": ""}
CURSUS = Path("/work/cursus")


def compile_bytecode() -> None:
    """An installed rtest has its bytecode compiled (pip does it); an edited tree under PYTHONDONTWRITEBYTECODE would
    compile every changed module at each start, a cost no user pays. Compile it once, as an install would."""
    import compileall

    import rtest

    compileall.compile_dir(str(Path(rtest.__file__).parent), quiet=1)


def timed(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, env=ENV)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr.decode(errors='replace')[-2000:]}")
    return took


def bare(n: int, cwd: Path) -> float:
    return sum(timed(["docker", "run", "--rm", "--network", "none", BASE_IMAGE, "python3", "-c", "pass"], cwd)
               for _ in range(n))


def pipeline_args(p: dict[str, Path]) -> list[str]:
    return ["--dag", str(p["dag"]), "--config", str(p["config"]), "--interfaces", str(p["interfaces"])]


def chain(root: Path, n: int) -> dict[str, Path]:
    steps = {f"s{i}": {"script": "pass\n", "outputs": {"out": OUT}, **({"inputs": {"out": IN}} if i else {})}
             for i in range(n)}
    return write_python_pipeline(root, steps, [(f"s{i}", f"s{i + 1}") for i in range(n - 1)])


def process_rounds(root: Path, rounds: int) -> dict[str, list[float]]:
    """Every whole-process measurement, one of each per round, so load hits them alike."""
    from serve_helpers import Service

    one, three = chain(root / "one", 1), chain(root / "three", 3)
    run = [*RTEST, "sandbox", "run", "--no-cache"]
    cmds: dict[str, Callable[[], float]] = {
        "bare1": lambda: bare(1, root),
        "rtest1": lambda: timed([*run, *pipeline_args(one), "--workdir", str(root / "wd1")], root),
        "bare3": lambda: bare(3, root),
        "cli3": lambda: timed([*run, *pipeline_args(three), "--workdir", str(root / "wd3")], root),
        "plan": lambda: timed([*RTEST, "plan", *pipeline_args(three), "--workdir", str(root / "wdp")], root),
        "version": lambda: timed([*RTEST, "--version"], root),
        "python": lambda: timed([sys.executable, "-c", "pass"], root),
        "example": lambda: timed([*RTEST, "sandbox", "run", "--example", "--workdir", str(root / "wdx")], root),
    }
    service = Service(root / "wd-serve", slots=2, fake=False).start()
    try:
        cmds["svc3"] = lambda: timed([*run, "--server", service.url, "--no-upload", *pipeline_args(three),
                                      "--workdir", str(root / "wds")], root)
        for fn in cmds.values():  # warm: image layers, page cache, the example's copy, data and cache
            fn()
        times: dict[str, list[float]] = {name: [] for name in cmds}
        for _ in range(rounds):
            for name, fn in cmds.items():
                times[name].append(fn())
    finally:
        service.stop()
    return times


def plan_scaling() -> tuple[float, float]:
    from bench_plan import time_plan

    return time_plan(10, 3)[0], time_plan(1000, 3)[0]


def atoz_deps(scratch: Path) -> tuple[float, float, int, int] | None:
    """Build atoz's dependency images (--install-declared: four sets) from a wheelhouse filled beforehand,
    under tags unique to this run (others' images stay untouched), then find them all cached."""
    import docker

    import rtest.deps.image as image_mod
    from rtest.deps.runtime import DepsOptions, prepare_dependencies
    from rtest.logs import configure_logging
    from rtest.plan.builder import draft_plan, load_pipeline_inputs
    from rtest.plan.userspec import UserSpec

    configure_logging()
    project = CURSUS / "projects" / "atoz_xgboost"
    inputs = load_pipeline_inputs(
        CURSUS / "src/cursus/pipeline_catalog/shared_dags/xgboost/complete_e2e.dag.json",
        project / "pipeline_config" / "config.json", [CURSUS / "src/cursus/steps/interfaces"], project,
        source_map={"dockers/xgboost_atoz": str(project / "dockers")})
    plan = draft_plan(inputs, UserSpec())  # its inputs need not be complete: deps read scripts only
    workdir = Path(os.environ.get("RTEST_BENCH_WHEELHOUSE_DIR", Path.home() / ".cache" / "rtest-bench-atoz"))
    client = docker.from_env()
    from rtest.run.backends.docker_images import DockerImageStore

    store = DockerImageStore(client)  # what `backend.images` is for the Docker backend
    options = lambda: DepsOptions(install_declared=True)  # noqa: E731
    original = image_mod.dependency_tag
    salt = f"bench-{os.getpid()}-{time.time_ns()}"
    image_mod.dependency_tag = lambda base, specs, wheels: original(base + salt, specs, wheels)
    built: list[str] = []
    try:
        from rtest.deps.resolve import analyse, resolve_images

        resolve_images(analyse(plan, store, workdir, install_declared=True))  # warm wheelhouse (downloads once)
        started = time.perf_counter()
        prepared = prepare_dependencies(plan, workdir, store, options())
        build_s = time.perf_counter() - started
        built = list(prepared.built)
        started = time.perf_counter()
        again = prepare_dependencies(plan, workdir, store, options())
        cached_s = time.perf_counter() - started
        rebuilt = len(again.built)  # not 0 when someone else removed one meanwhile (the engine is shared)
        built += [tag for tag in again.built if tag not in built]
    finally:
        image_mod.dependency_tag = original
        for tag in built:
            try:
                client.images.remove(tag, noprune=False)
            except docker.errors.ImageNotFound:  # removed by someone else's clean-up meanwhile
                pass
    return build_s, cached_s, len(prepared.built), rebuilt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-atoz", action="store_true")
    args = parser.parse_args()
    compile_bytecode()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="rtest-bench-overhead-") as scratch:
        root = Path(scratch)
        times = process_rounds(root, args.rounds)
        small, large = plan_scaling()
        atoz = None if args.skip_atoz or not CURSUS.is_dir() else atoz_deps(root / "atoz")
    m = {name: statistics.median(values) for name, values in times.items()}
    print(f"rtest overhead, median of {args.rounds} interleaved rounds; load average before: "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'goal line':<46} {'rtest':>8} {'floor':>8} {'ratio':>6}  goal")
    row = lambda what, ours, floor, goal: print(  # noqa: E731
        f"{what:<46} {ours:>7.3f}s {floor:>7.3f}s {ours / floor:>6.2f}  {goal}")
    row("one trivial step, whole CLI vs 1 bare run", m["rtest1"], m["bare1"], "ratio <= 1.3")
    row("3-step chain, whole CLI vs 3 bare runs", m["cli3"], m["bare3"], "ratio <= 1.0")
    row("3-step chain, client -> warm serve vs 3 bare", m["svc3"], m["bare3"], "ratio <= 0.9")
    row("rtest plan (3 steps) vs python -c pass", m["plan"], m["python"], "rtest <= 0.15 s")
    row("rtest --version vs python -c pass", m["version"], m["python"], "rtest <= 0.05 s")
    print(f"{'1,000-node plan vs 10-node plan (in-process)':<46} {large:>7.3f}s {small:>7.3f}s {large / small:>6.1f}"
          f"  +{large - small:.3f} s (goal: <= +1 s)")
    if atoz is None:
        print(f"atoz dependency images: skipped ({CURSUS} absent or --skip-atoz)")
    else:
        build_s, cached_s, count, rebuilt = atoz
        print(f"{f'atoz: build {count} dependency images, warm wheels':<46} {build_s:>7.3f}s {'':>8} {'':>6}  <= 20 s")
        print(f"{'atoz: find them all cached':<46} {cached_s:>7.3f}s {'':>8} {'':>6}  <= 1 s"
              + (f"  (NOT a cached figure: {rebuilt} rebuilt, removed by someone else meanwhile)" if rebuilt else ""))
    row("cached rerun of the example vs python -c pass", m["example"], m["python"], "rtest <= 1.0 s")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
