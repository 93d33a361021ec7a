"""Submissions that tried to take a real `rtest serve` process down (issue 14): code-naming DAGs, a pax bundle,
a chunked body without end, a second service on the same workdir. Steps are played by FakeBackend. Times are
printed (measured), never asserted."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import httpx
import pytest

from rtest.testing import write_python_pipeline
from serve_helpers import Service, running_service, wait_for


def _config(root: Path) -> dict:
    paths = write_python_pipeline(root, {"A": {"script": "# A\n", "outputs": {"out": "/opt/ml/processing/output/o"}}},
                                  [])
    return {"pipeline": {"dag": str(paths["dag"]), "config": str(paths["config"])}}


def _du(folder: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


@pytest.mark.process  # plan worker processes abort and overrun their 3 s
def test_code_naming_dags_fail_their_run_with_allow_code_and_the_service_keeps_answering(tmp_path):
    spec = _config(tmp_path / "p")
    with running_service(tmp_path / "wd", flags=("--allow-code", "--plan-timeout", "3")) as svc, svc.client() as client:
        aborting = client.submit({"spec": {"pipeline": {**spec["pipeline"], "dag": "os:abort"}}})
        pausing = client.submit({"spec": {"pipeline": {**spec["pipeline"], "dag": "signal:pause"}}})
        assert httpx.get(f"{svc.url}/healthz", trust_env=False, timeout=5).status_code == 200
        ends = {run_id: list(client.events(run_id))[-1] for run_id in (aborting, pausing)}
        after = client.submit({"spec": spec})  # the service, and its planning, still work
        assert list(client.events(after))[-1]["status"] == "succeeded"
    assert ends[aborting]["status"] == "failed" and "Planning crashed (killed by SIGABRT)" in ends[aborting]["message"]
    assert ends[pausing]["status"] == "failed" and "did not finish within 3 s" in ends[pausing]["message"]


@pytest.mark.process
def test_a_code_naming_run_queued_when_the_service_died_is_failed_not_retried(tmp_path):
    spec = _config(tmp_path / "p")
    service = Service(tmp_path / "wd", slots=1, flags=("--allow-code", "--plan-timeout", "600"),
                      process=True).start()
    try:
        with service.client() as client:
            run_id = client.submit({"spec": {"pipeline": {**spec["pipeline"], "dag": "signal:pause"}}})
            request = service.workdir / "serve" / "submissions" / run_id / "plan-request.json"
            wait_for(lambda: _processes_naming(request))
        service.kill()
        wait_for(lambda: not _processes_naming(request), timeout_s=10)  # its planning worker ended with it
        service.start()
        with service.client() as client:
            run = client.run(run_id)
    finally:
        service.stop()
    assert run["status"] == "failed" and "not retried" in run["message"]


def _processes_naming(path: Path) -> list[int]:
    """Live processes whose command line names ``path``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(path).encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue  # ended while we looked
    return found


def _pax_bundle(value_bytes: int = 520_000) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("spec.json")
        info.pax_headers = {"comment": "0 " * (value_bytes // 2)}
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    return buffer.getvalue()


def test_a_pax_bundle_is_refused_while_healthz_keeps_answering(tmp_path):
    bundle = _pax_bundle()
    with running_service(tmp_path / "wd") as svc:
        latencies, stop = [], threading.Event()

        def probe() -> None:
            while not stop.is_set():
                started = time.perf_counter()
                httpx.get(f"{svc.url}/healthz", trust_env=False, timeout=30).raise_for_status()
                latencies.append(time.perf_counter() - started)
                time.sleep(0.02)

        prober = threading.Thread(target=probe)
        prober.start()
        started = time.perf_counter()
        answer = httpx.post(f"{svc.url}/api/runs", data={"request": "{}"}, headers=svc.headers, trust_env=False,
                            files={"bundle": ("b.tar.gz", bundle, "application/gzip")}, timeout=120)
        took = time.perf_counter() - started
        stop.set()
        prober.join()
        runs = svc.client().runs()["total"]
    print(f"\npax bundle of {len(bundle)} bytes refused in {took:.3f}s; /healthz during it: "
          f"{len(latencies)} answers, max {max(latencies) * 1000:.1f} ms")
    assert answer.status_code == 400 and "pax header of" in answer.json()["detail"]
    assert latencies and runs == 0
    assert not any((svc.workdir / "serve" / "submissions").glob("*"))


def test_a_chunked_body_stops_at_the_limit_and_leaves_nothing(tmp_path):
    limit = 32 << 20
    sent = [0]

    def endless():
        chunk = b"\0" * (1 << 20)
        yield b"--b\r\nContent-Disposition: form-data; name=\"bundle\"; filename=\"b.tar.gz\"\r\n\r\n"
        while sent[0] < 1 << 30:
            sent[0] += len(chunk)
            yield chunk

    with running_service(tmp_path / "wd", flags=("--max-upload-bytes", str(limit))) as svc:
        headers = {**svc.headers, "Content-Type": "multipart/form-data; boundary=b"}
        try:
            status = httpx.post(f"{svc.url}/api/runs", content=endless(), headers=headers, trust_env=False,
                                timeout=120).status_code
        except httpx.TransportError:  # the service answered and closed while we were still sending
            status = None
        used = _du(svc.workdir)
        runs = svc.client().runs()["total"]
    print(f"\nchunked body: sent {sent[0] >> 20} MiB of 1024 before the service stopped it; status {status}; "
          f"workdir holds {used >> 10} KiB (limit {limit >> 20} MiB)")
    assert status in (413, None) and sent[0] < 1 << 30
    assert used < limit and runs == 0


@pytest.mark.process
def test_a_second_service_on_the_same_workdir_exits_2_naming_the_first(tmp_path):
    with running_service(tmp_path / "wd", process=True) as first:
        second = Service(tmp_path / "wd")
        done = subprocess.run(second.argv(), capture_output=True, text=True, timeout=120,
                              env={**os.environ, "NO_PROXY": "127.0.0.1"})
        assert first.client().runs()["total"] == 0  # the first one goes on
    assert done.returncode == 2, done.stdout + done.stderr
    said = done.stdout + done.stderr
    assert f"PID {first.process.pid}, port {first.port}" in said and "Traceback" not in said


@pytest.mark.process
def test_rtest_runs_finds_the_local_service_and_its_token_by_itself_and_prunes(tmp_path):
    env = {"RTEST_RUNTIME_DIR": str(tmp_path / "runtime")}
    with running_service(tmp_path / "wd", env=env, process=True) as svc:
        with svc.client() as client:
            run_id = client.submit({"spec": _config(tmp_path / "p"), "submitter": "local"})
            list(client.events(run_id))
        done = subprocess.run([sys.executable, "-m", "rtest.cli.main", "runs", "list"], capture_output=True,
                              text=True, timeout=120, env={**os.environ, **env, "NO_PROXY": "127.0.0.1",
                                                           "RTEST_SERVER": "", "RTEST_TOKEN": ""})
        cli_env = {**os.environ, **env, "NO_PROXY": "127.0.0.1", "RTEST_SERVER": "", "RTEST_TOKEN": ""}
        pruned = subprocess.run([sys.executable, "-m", "rtest.cli.main", "runs", "prune", "--keep-runs", "0"],
                                capture_output=True, text=True, timeout=120, env=cli_env)
        left = svc.client().runs()["total"]
        note = json.loads((tmp_path / "runtime" / f"serve-{svc.port}.json").read_text())
        mode = (tmp_path / "runtime" / f"serve-{svc.port}.json").stat().st_mode & 0o777
    assert done.returncode == 0, done.stdout + done.stderr
    assert run_id in done.stdout and "local" in done.stdout
    assert pruned.returncode == 0 and "removed 1 run(s)" in pruned.stdout and left == 0
    assert note["token"] == svc.token and mode == 0o600
    assert not (tmp_path / "runtime" / f"serve-{svc.port}.json").exists()  # retracted when the service stopped
