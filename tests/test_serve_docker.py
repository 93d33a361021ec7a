"""rtest serve with real containers: a run by path and by bundle, followed to its end, cancelled, and a
service killed mid-run whose run becomes interrupted with no container left after the restart."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rtest.testing import write_python_pipeline
from serve_helpers import Service, running_service, wait_for

pytestmark = pytest.mark.docker
OUT, IN = "/opt/ml/processing/output/out", "/opt/ml/processing/input/out"


def _chain(root: Path, *, sleep_s: float = 0) -> dict[str, Path]:
    first = f"import pathlib, time\ntime.sleep({sleep_s})\nprint('first ran')\n" \
            f"pathlib.Path('{OUT}/n.txt').write_text('1')\n"
    second = f"import pathlib\nn = int(pathlib.Path('{IN}/n.txt').read_text())\nprint('second got', n)\n" \
             f"pathlib.Path('{OUT}/n.txt').write_text(str(n + 1))\n"
    steps = {"First": {"script": first, "outputs": {"out": OUT}},
             "Second": {"script": second, "inputs": {"out": IN}, "outputs": {"out": OUT}}}
    return write_python_pipeline(root, steps, [("First", "Second")])


def _spec(paths):
    return {"pipeline": {"dag": str(paths["dag"]), "config": str(paths["config"])}}


def _containers(docker_client, run_id: str) -> list:
    return docker_client.containers.list(all=True, filters={"label": f"rtest.run-id={run_id}"}, sparse=True)  # sparse: no NotFound for one removed meanwhile


def test_runs_by_path_and_by_bundle_in_real_containers(tmp_path, docker_client):
    paths = _chain(tmp_path / "p")
    with running_service(tmp_path / "wd", fake=False) as svc, svc.client() as client:
        run_id = client.submit({"spec": _spec(paths), "settings": {"cache": False}})
        events = list(client.events(run_id))
        log = b"".join(client.log(run_id, "Second", follow=True)).decode()
        output = svc.workdir / "runs" / run_id / "Second" / "output" / "out" / "n.txt"
        cli = subprocess.run([sys.executable, "-m", "rtest.cli.main", "sandbox", "run", "--server", svc.url, "--upload",
                              "--dag", str(paths["dag"]), "--config", str(paths["config"]), "--workdir", "local",
                              "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                             env={**os.environ, "NO_PROXY": "127.0.0.1"})
    assert events[-1]["status"] == "succeeded" and "second got 1" in log and output.read_text() == "2"
    assert [e["node"] for e in events if e["type"] == "step_started"] == ["First", "Second"]
    assert cli.returncode == 0, cli.stderr
    (local_run,) = (tmp_path / "local" / "runs").iterdir()
    submission = svc.workdir / "serve" / "submissions" / local_run.name
    from rtest.serve.registry import Registry

    assert Registry(svc.workdir / "serve" / "registry.sqlite").request_of(local_run.name)["bundle"]
    assert (submission / "spec.json").is_file() and (local_run / "report.json").is_file()
    wait_for(lambda: not (submission / "bundle").exists())  # which went once its run had ended
    assert _containers(docker_client, run_id) == [] and _containers(docker_client, local_run.name) == []


def test_cancel_stops_the_container(tmp_path, docker_client):
    paths = _chain(tmp_path / "p", sleep_s=300)
    with running_service(tmp_path / "wd", fake=False) as svc, svc.client() as client:
        run_id = client.submit({"spec": _spec(paths), "settings": {"cache": False}})
        wait_for(lambda: any(c.status == "running" for c in _containers(docker_client, run_id)))
        client.cancel(run_id)
        end = list(client.events(run_id))[-1]
    assert end["status"] == "cancelled" and end["exit_code"] == 130
    assert _containers(docker_client, run_id) == []


def test_a_service_killed_mid_run_interrupts_it_and_removes_its_containers_on_restart(tmp_path, docker_client):
    paths = _chain(tmp_path / "p", sleep_s=300)
    service = Service(tmp_path / "wd", fake=False).start()
    try:
        with service.client() as client:
            run_id = client.submit({"spec": _spec(paths), "settings": {"cache": False}})
            wait_for(lambda: any(c.status == "running" for c in _containers(docker_client, run_id)))
        service.kill()
        assert _containers(docker_client, run_id)  # the kill left them: the restart must remove them
        service.start()
        with service.client() as client:
            run = client.run(run_id)
            end = list(client.events(run_id))[-1]
    finally:
        service.stop()
    assert run["status"] == "interrupted" and end["status"] == "interrupted"
    assert _containers(docker_client, run_id) == []
