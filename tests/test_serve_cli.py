"""The clients of rtest serve: `rtest sandbox run --server`, `rtest runs ...` and the factory's server=,
against a real service process (steps played by FakeBackend)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import rtest_here
from rtest.testing import write_python_pipeline
from serve_helpers import free_port, running_service, wait_for

OUT, IN = "/opt/ml/processing/output/out", "/opt/ml/processing/input/out"


def _pipeline(root: Path) -> dict[str, Path]:
    steps = {"First": {"script": "# first\n", "outputs": {"out": OUT}},
             "Second": {"script": "# second\n", "inputs": {"out": IN}, "outputs": {"out": OUT}}}
    return write_python_pipeline(root, steps, [("First", "Second")])


def _rtest(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return rtest_here(*args, cwd=cwd, env={"RTEST_SERVER": "", **(env or {})})


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-cli")
    with running_service(root / "wd", env={"RTEST_FAKE_STEP_S": "0.1", "RTEST_FAKE_FAIL": "Broken"}) as svc:
        svc.root = root
        yield svc


@pytest.mark.parametrize("upload", ["--no-upload", "--upload"])
def test_sandbox_run_on_a_server_reports_locally_and_exits_0(service, tmp_path, upload):
    paths = _pipeline(tmp_path / "p")
    done = _rtest("sandbox", "run", "--server", service.url, upload, "--dag", str(paths["dag"]), "--config",
                  str(paths["config"]), "--workdir", "local", "--junit", "junit.xml", "--no-cache", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "succeeded First" in done.stdout and "succeeded Second" in done.stdout
    (run_dir,) = (tmp_path / "local" / "runs").iterdir()
    report = json.loads((run_dir / "report.json").read_text())
    assert report["pipeline_success"] and set(report["steps"]) == {"First", "Second"}
    assert "<testsuite" in (tmp_path / "junit.xml").read_text() and (run_dir / "report.html").is_file()
    from rtest.serve.registry import Registry

    uploaded = Registry(service.workdir / "serve" / "registry.sqlite").request_of(run_dir.name)["bundle"]
    assert uploaded == (upload == "--upload")
    wait_for(lambda: not (service.workdir / "serve" / "submissions" / run_dir.name / "bundle").exists())


def test_a_failing_step_exits_1_and_shows_the_log_tail(service, tmp_path):
    steps = {"Broken": {"script": "# broken\n", "outputs": {"out": OUT}}}
    paths = write_python_pipeline(tmp_path / "p", steps, [])
    done = _rtest("sandbox", "run", "--dag", str(paths["dag"]), "--config", str(paths["config"]), "--workdir", "w",
                  cwd=tmp_path, env={"RTEST_SERVER": service.url})
    assert done.returncode == 1 and "failed Broken" in done.stdout.replace("  ", " ").replace("  ", " ")
    assert "fake step Broken" in done.stdout  # the tail of the step's log, fetched from the service


def test_a_pipeline_the_service_cannot_plan_exits_2_with_its_reason(service, tmp_path):
    done = _rtest("sandbox", "run", "--server", service.url, "--no-upload", "--dag", str(tmp_path / "none.json"),
                  "--config", str(tmp_path / "none-config.json"), cwd=tmp_path)
    assert done.returncode == 2 and "none" in done.stderr and "Traceback" not in done.stderr


def test_no_service_at_the_url_exits_3(tmp_path):
    done = _rtest("sandbox", "run", "--server", f"http://127.0.0.1:{free_port()}", "--example", cwd=tmp_path)
    assert done.returncode == 3 and "No rtest service answers" in done.stderr


@pytest.mark.process
def test_ctrl_c_cancels_the_remote_run_and_exits_130(tmp_path):
    paths = _pipeline(tmp_path / "p")
    with running_service(tmp_path / "wd", env={"RTEST_FAKE_STEP_S": "120"}) as svc, svc.client() as client:
        cli = subprocess.Popen([sys.executable, "-m", "rtest.cli.main", "sandbox", "run", "--server", svc.url,
                                "--dag", str(paths["dag"]), "--config", str(paths["config"]), "--workdir", "w"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        run_id = wait_for(lambda: [r["id"] for r in client.runs(status="running")["runs"]])[0]
        wait_for(lambda: client.run(run_id)["steps"][0]["status"] == "running")
        cli.send_signal(signal.SIGINT)
        stdout, stderr = cli.communicate(timeout=120)
        run = client.run(run_id)
    assert cli.returncode == 130, stderr
    assert run["status"] == "cancelled" and [s["status"] for s in run["steps"]] == ["cancelled", "upstream_failed"]
    assert (tmp_path / "w" / "runs" / run_id / "report.json").is_file()


def test_runs_list_show_logs_and_cancel(service, tmp_path):
    paths = _pipeline(tmp_path / "p")
    with service.client() as client:
        run_id = client.submit({"spec": {"pipeline": {"dag": str(paths["dag"]), "config": str(paths["config"])}},
                                "submitter": "bob@ci"})
        list(client.events(run_id))
    env = {"RTEST_SERVER": service.url}
    listed = _rtest("runs", "list", "--status", "succeeded", cwd=tmp_path, env=env)
    shown = _rtest("runs", "show", run_id, cwd=tmp_path, env=env)
    logs = _rtest("runs", "logs", run_id, "Second", "--follow", cwd=tmp_path, env=env)
    cancel = _rtest("runs", "cancel", run_id, cwd=tmp_path, env=env)
    missing = _rtest("runs", "show", "no-such-run", cwd=tmp_path, env=env)
    assert listed.returncode == 0 and run_id in listed.stdout and "bob@ci" in listed.stdout
    assert shown.returncode == 0 and "succeeded" in shown.stdout and "Second" in shown.stdout
    assert logs.returncode == 0 and logs.stdout == "fake step Second\n"
    assert cancel.returncode == 0 and "already finished" in cancel.stdout
    assert missing.returncode == 2 and "No run no-such-run" in missing.stderr


def test_the_factory_runs_on_a_server(service, tmp_path):
    from rtest.factory import InteractiveRuntimeTestingFactory

    paths = _pipeline(tmp_path / "p")
    factory = InteractiveRuntimeTestingFactory(str(paths["dag"]), paths["config"], workspace_dir=tmp_path / "ws")
    result = factory.execute_dag_guided_testing(server=service.url, upload=True, use_cache=False)
    assert result["pipeline_success"] and result["execution_order"] == ["First", "Second"]
    assert (tmp_path / "ws" / "runs" / result["run_id"] / "report.json").is_file()
