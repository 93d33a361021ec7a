"""rtest serve benchmarks (issue 11), each measured side by side in one run. Nothing here asserts.

    python benchmarks/bench_serve.py [chain|ten|registry|all]

(a) chain:    a 3-step chain of trivial steps, `rtest sandbox run --server` to a warm service, command start
              to exit, vs three bare `docker run --rm` of the same image (median of 5 each).
(b) ten:      ten copies of the bundled example submitted at once to a service with --slots 2 (all must
              succeed; peak concurrent steps from the slot events) vs the same ten back to back through the CLI.
(c) registry: the service's RSS with 1,000 finished runs in its registry, and GET /api/runs latency at that size.
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

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from rtest.catalog import BASE_IMAGE  # noqa: E402
from rtest.testing import write_python_pipeline  # noqa: E402
from serve_helpers import Service  # noqa: E402

OUT, IN = "/opt/ml/processing/output/out", "/opt/ml/processing/input/out"
RTEST = [sys.executable, "-m", "rtest.cli.main"]
ENV = {**os.environ, "NO_PROXY": "127.0.0.1", "RTEST_SERVER": ""}


def _timed(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True, env=ENV)
    return time.perf_counter() - started


def bench_chain(root: Path) -> None:
    steps = {f"s{i}": {"script": f"print({i})\n", "outputs": {"out": OUT}, **({"inputs": {"out": IN}} if i else {})}
             for i in range(3)}
    paths = write_python_pipeline(root / "chain", steps, [("s0", "s1"), ("s1", "s2")])
    service = Service(root / "wd-chain", slots=2, fake=False).start()
    try:
        client = [*RTEST, "sandbox", "run", "--server", service.url, "--no-upload", "--no-cache", "--dag",
                  str(paths["dag"]), "--config", str(paths["config"]), "--workdir", str(root / "local")]
        _timed(client, root)  # warm: first image lookups, first plan
        rtest_s = statistics.median(_timed(client, root) for _ in range(5))
        bare = lambda: [_timed(["docker", "run", "--rm", BASE_IMAGE, "python", "-c", f"print({i})"], root)  # noqa: E731
                        for i in range(3)]
        bare_s = statistics.median(sum(bare()) for _ in range(5))
    finally:
        service.stop()
    print(f"(a) 3-step chain, CLI client -> warm service: {rtest_s:.2f}s; 3 x bare docker run --rm: {bare_s:.2f}s; "
          f"ratio {rtest_s / bare_s:.2f}")


def _peak(events: list[dict]) -> int:
    held = peak = 0
    for event in sorted((e for e in events if e["type"] == "slot"), key=lambda e: e["seq"]):
        held += 1 if event["acquired"] else -1
        peak = max(peak, held)
    return peak


def bench_ten(root: Path, copies: int = 10) -> None:
    service = Service(root / "wd-ten", slots=2, fake=False).start()
    try:
        with service.client() as client:
            client.submit({"example": True, "settings": {"cache": False}})  # warm: example data, images
            for run in client.runs()["runs"]:
                list(client.events(run["id"]))
            started = time.perf_counter()
            ids = [client.submit({"example": True, "settings": {"cache": False}}) for _ in range(copies)]
            events = {run_id: list(client.events(run_id)) for run_id in ids}
            service_s = time.perf_counter() - started
            statuses = [client.run(run_id)["status"] for run_id in ids]
    finally:
        service.stop()
    peak = _peak([e for run_events in events.values() for e in run_events])
    workdir = root / "wd-cli"
    _timed([*RTEST, "sandbox", "run", "--example", "--no-cache", "--workdir", str(workdir)], root)  # warm
    started = time.perf_counter()
    for _ in range(copies):
        _timed([*RTEST, "sandbox", "run", "--example", "--no-cache", "--workdir", str(workdir)], root)
    cli_s = time.perf_counter() - started
    ok = sum(status == "succeeded" for status in statuses)
    print(f"(b) {copies} x example at once, --slots 2: {ok}/{copies} succeeded, peak concurrent steps {peak}, "
          f"wall {service_s:.1f}s; back to back through the CLI: {cli_s:.1f}s; ratio {service_s / cli_s:.2f}")


def _fill_registry(workdir: Path, runs: int) -> None:
    from rtest.serve.registry import Registry

    registry = Registry(workdir / "serve" / "registry.sqlite")
    now = time.time()
    for i in range(runs):
        run_id = f"bench-{i:05d}"
        registry.add_run(run_id, {"example": True}, submitter="bench@ci", pipeline="example", jobs=None)
        registry.set_run(run_id, status="succeeded" if i % 7 else "failed", started_at=now + i, ended_at=now + i + 30,
                         exit_code=0 if i % 7 else 1)
        registry.set_steps(run_id, ["a", "b", "c", "d", "e", "f"])
    registry.close()


def bench_registry(root: Path, runs: int = 1000) -> None:
    workdir = root / "wd-registry"
    _fill_registry(workdir, runs)
    service = Service(workdir, slots=2, fake=False).start()
    try:
        with httpx.Client(base_url=service.url, trust_env=False, headers=service.headers) as http:
            for _ in range(3):
                http.get("/api/runs")
            latencies = {}
            for name, params in (("first page", {}), ("status=failed", {"status": "failed"}),
                                 ("offset=950", {"offset": 950})):
                times = []
                for _ in range(20):
                    started = time.perf_counter()
                    answer = http.get("/api/runs", params=params)
                    times.append(time.perf_counter() - started)
                    assert answer.status_code == 200
                latencies[name] = statistics.median(times) * 1000
            total = http.get("/api/runs").json()["total"]
        rss_kb = next(int(line.split()[1]) for line in Path(f"/proc/{service.process.pid}/status").read_text()
                      .splitlines() if line.startswith("VmRSS"))
    finally:
        service.stop()
    listing = ", ".join(f"{name} {ms:.1f} ms" for name, ms in latencies.items())
    print(f"(c) {total} finished runs in the registry: service RSS {rss_kb / 1024:.0f} MiB; "
          f"GET /api/runs (50 a page) median: {listing}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("which", nargs="?", default="all", choices=["chain", "ten", "registry", "all"])
    which = parser.parse_args().which
    with tempfile.TemporaryDirectory(prefix="rtest-bench-serve-") as scratch:
        root = Path(scratch)
        if which in ("chain", "all"):
            bench_chain(root)
        if which in ("registry", "all"):
            bench_registry(root)
        if which in ("ten", "all"):
            bench_ten(root)


if __name__ == "__main__":
    main()
