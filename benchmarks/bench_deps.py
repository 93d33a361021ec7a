"""Dependency-layer benchmark (issue 9), side by side in one run. Nothing here asserts.

    python benchmarks/bench_deps.py [--repeat 5] [--index]

A three-step pipeline whose steps need two different extra package sets (set A from a requirements.txt
and from an import-time pip install, set B from the interface's framework_requirements):
  (a) first run: time to resolve and build the two dependency images, and the whole first run;
  (b) the run after it, every step cached, vs the same pipeline with no extra requirements
      (goal: the dependency layer adds < 0.2 s to a cached run);
  (c) image sizes: base vs dependency images.
By default the packages are small pure-Python wheels built here (no index needed); --index uses real
packages fetched from the host's package index instead (tabulate; requests and its dependencies).
The dependency images this script builds are removed at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import docker
import yaml

from rtest.catalog import BASE_IMAGE
from rtest.deps.runtime import DepsOptions, prepare_dependencies
from rtest.deps.wheelbuild import build_pure_wheel
from rtest.logs import configure_logging
from rtest.plan.builder import build_plan, load_pipeline_inputs
from rtest.plan.userspec import UserSpec
from rtest.run.backends.docker import DockerBackend
from rtest.run.backends.docker_images import DockerImageStore
from rtest.run.engine import RunOptions
from rtest.session import run_and_report
from rtest.testing import write_python_pipeline

OUT = "/opt/ml/processing/output/out"


def _wheels(folder: Path, names: list[str]) -> Path:
    """Pure-Python wheels of ~200 KB each, so the images differ by something measurable."""
    for name in names:
        module = folder / "src" / name.replace("-", "_")
        module.mkdir(parents=True)
        (module / "__init__.py").write_text(f"VERSION = '1.0.0'\nRUN = {str(folder)!r}  # new bytes: a fresh image per bench run\nTABLE = {list(range(20000))!r}\n")
        build_pure_wheel(module, name, "1.0.0", folder / "wheels")
    return folder / "wheels"


def _pipeline(root: Path, set_a: list[str], set_b: list[str], with_requirements: bool) -> dict[str, Path]:
    first = set_a[0].split("==")[0].replace("-", "_")
    install = "import subprocess, sys\nsubprocess.check_call([sys.executable, '-m', 'pip', 'install', " + \
              ", ".join(repr(s) for s in set_a) + "])\n"
    steps = {
        "FromRequirementsTxt": {"script": f"import {first}\n" if with_requirements else "pass\n", "outputs": {"out": OUT}},
        "FromInterface": {"script": "pass\n", "outputs": {"out": OUT}},
        "InstallsAtImport": {"script": install if with_requirements else "pass\n", "outputs": {"out": OUT}},
    }
    p = write_python_pipeline(root, steps, [("FromRequirementsTxt", "FromInterface")])
    if with_requirements:
        (p["src"] / "FromRequirementsTxt" / "requirements.txt").write_text("\n".join(set_a) + "\n")
        interface = p["interfaces"] / "FromInterface.step.yaml"
        doc = yaml.safe_load(interface.read_text())
        doc["contract"]["framework_requirements"] = dict(s.split("==") for s in set_b)
        interface.write_text(yaml.safe_dump(doc))
    return p


def _plan(p: dict[str, Path]):
    return build_plan(load_pipeline_inputs(str(p["dag"]), p["config"], [p["interfaces"]]), UserSpec())


def _run(plan, workdir: Path, deps):
    """What `rtest sandbox run` does: dependency images first (unless --no-deps), then the run in them."""
    engine = DockerBackend()
    prepared = prepare_dependencies(plan, workdir, engine.images, deps) if deps else None
    return run_and_report(plan, RunOptions(workdir=workdir), formats=(), backend=engine, deps=prepared)


def _timed(fn):
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--index", action="store_true", help="real packages from the host's package index")
    args = parser.parse_args()
    configure_logging()  # warnings only, on stderr: the figures stay readable
    client = docker.from_env()
    store = DockerImageStore(client)  # what `backend.images` is for the Docker backend
    with tempfile.TemporaryDirectory(prefix="rtest-bench-deps-") as scratch:
        tmp = Path(scratch)
        if args.index:
            set_a, set_b, homes = ["tabulate==0.9.0"], ["requests==2.31.0"], []
        else:
            homes = [_wheels(tmp / "pkgs", ["bench-alpha", "bench-beta", "bench-gamma"])]
            set_a, set_b = ["bench-alpha==1.0.0"], ["bench-beta==1.0.0", "bench-gamma==1.0.0"]
        options = lambda: DepsOptions(wheelhouses=homes, download=not homes)  # noqa: E731
        with_reqs = _plan(_pipeline(tmp / "with", set_a, set_b, True))
        without = _plan(_pipeline(tmp / "without", set_a, set_b, False))
        workdir = tmp / "wd"
        built: list[str] = []
        try:
            build_s, prepared = _timed(lambda: prepare_dependencies(with_reqs, workdir, store, options()))
            built = prepared.built
            first_s, first = _timed(lambda: _run(with_reqs, workdir, options()))
            for node, result in first.steps.items():
                if not result.status.ok:
                    print(f"    {node} failed: {result.failure_reason}")
            _run(without, workdir, options())  # fill the baseline's cache
            print(f"packages: set A {set_a}, set B {set_b} ({'host index' if args.index else 'local wheels'})")
            print(f"(a) first run: resolve + build {len(built)} dependency images {build_s:6.2f} s;"
                  f" then the run itself {first_s:6.2f} s (success {first.pipeline_success})")
            cached, plain, no_deps = [], [], []
            for _ in range(args.repeat):
                cached.append(_timed(lambda: _run(with_reqs, workdir, options()))[0])
                plain.append(_timed(lambda: _run(without, workdir, options()))[0])
                no_deps.append(_timed(lambda: _run(without, workdir, False))[0])
            median = statistics.median
            print(f"(b) cached run, median of {args.repeat}: with requirements {median(cached):.3f} s,"
                  f" same pipeline without requirements {median(plain):.3f} s, without the dependency layer (--no-deps) {median(no_deps):.3f} s")
            print(f"    the dependency layer adds {median(cached) - median(plain):+.3f} s over no requirements,"
                  f" {median(cached) - median(no_deps):+.3f} s over --no-deps  (goal: < 0.2 s)")
            base_size = client.images.get(BASE_IMAGE).attrs["Size"]
            print(f"(c) image sizes: base {BASE_IMAGE} {base_size / 1e6:.1f} MB")
            for tag in built:
                size = client.images.get(tag).attrs["Size"]
                print(f"    {tag} {size / 1e6:.1f} MB ({(size - base_size) / 1e6:+.2f} MB)")
        finally:
            for tag in built:
                client.images.remove(tag)


if __name__ == "__main__":
    sys.exit(main())
