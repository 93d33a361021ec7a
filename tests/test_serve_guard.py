"""What a browser page, a malformed request or a submission may do to `rtest serve` (issue 14), in-process:
FastAPI's TestClient against the real app and run manager (steps played by FakeBackend)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rtest.serve.app import create_app
from rtest.serve.manager import RunManager
from rtest.serve.policy import SubmitPolicy
from rtest.testing import FakeBackend, write_python_pipeline

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ORIGIN = "http://127.0.0.1:8080"


@pytest.fixture
def served(tmp_path):
    manager = RunManager(tmp_path / "wd", slots=1, backend=FakeBackend())
    app = create_app(manager, token=TOKEN, server_id="sid", metrics=None, port=8080)
    with TestClient(app, base_url=ORIGIN) as client:
        yield client, manager
    manager.shutdown()


def _pipeline(root: Path) -> dict:
    paths = write_python_pipeline(root, {"A": {"script": "# A\n", "outputs": {"out": "/opt/ml/processing/output/o"}}},
                                  [])
    return {"pipeline": {"dag": str(paths["dag"]), "config": str(paths["config"])}}


def _runs(manager: RunManager) -> int:
    return manager.registry.runs()[1]


def test_a_rebinding_host_is_refused_and_loopback_names_are_answered(served):
    client, manager = served
    app = client.app
    for host in ("evil.example:8080", "evil.example", "127.0.0.1.nip.io:8080"):
        assert TestClient(app, base_url=f"http://{host}").get("/api/runs", headers=AUTH).status_code == 421, host
    for host in ("127.0.0.1:8080", "localhost:8080", "[::1]:8080"):
        assert TestClient(app, base_url=f"http://{host}").get("/api/runs", headers=AUTH).status_code == 200, host
    extra = create_app(manager, token=TOKEN, server_id="s", metrics=None, allowed_hosts=("build.lan",))
    assert TestClient(extra, base_url="http://build.lan:8080").get("/healthz").status_code == 200


def test_state_changes_need_this_origin_and_json_bodies_need_json(served, tmp_path):
    client, manager = served
    spec = json.dumps({"spec": _pipeline(tmp_path / "p")})
    foreign = {"Origin": "http://127.0.0.1:9999"}
    assert client.post("/api/runs", content=spec, headers={**AUTH, **foreign,
                                                            "Content-Type": "application/json"}).status_code == 403
    assert client.post("/api/runs", content=spec, headers={**AUTH, "Origin": "null"}).status_code == 403
    assert client.post("/api/runs", content=spec, headers={**AUTH, "Referer": "http://127.0.0.1:9999/x",
                                                           "Content-Type": "application/json"}).status_code == 403
    assert client.post("/api/runs", content=spec, headers={**AUTH, "Content-Type": "text/plain"}).status_code == 415
    assert client.post("/api/runs", content=spec, headers=AUTH).status_code == 415  # no type at all
    assert _runs(manager) == 0
    # the service's own page (same origin, cookie) may; so may a program (no Origin, bearer token)
    client.get(f"/?token={TOKEN}", follow_redirects=False)
    same = client.post("/api/runs", content=spec, headers={"Origin": ORIGIN, "Content-Type": "application/json"})
    assert same.status_code == 403 and "allowed no folders" in same.json()["detail"]  # past the guard, at the policy


def test_an_upload_needs_the_token_header_or_the_client_header(served):
    client, manager = served
    client.get(f"/?token={TOKEN}", follow_redirects=False)  # a cookie alone is what a form would carry
    form = client.post("/api/runs", data={"request": "{}"}, files={"bundle": ("b.tar.gz", b"x", "application/gzip")})
    assert form.status_code == 403 and "x-rtest-client" in form.json()["detail"]
    assert not (manager.serve_dir / "submissions").exists() or not any((manager.serve_dir / "submissions").iterdir())


def test_the_page_trades_the_token_for_a_strict_httponly_cookie_and_sends_a_strict_csp(served):
    client, _ = served
    assert client.get("/api/runs").status_code == 401
    wrong = client.get("/?token=nope", follow_redirects=False)
    assert wrong.status_code == 303 and "set-cookie" not in wrong.headers
    right = client.get(f"/?token={TOKEN}", follow_redirects=False)
    cookie = right.headers["set-cookie"].lower()
    assert right.status_code == 303 and right.headers["location"] == "/"
    assert "httponly" in cookie and "samesite=strict" in cookie and cookie.startswith("rtest-token-8080=")
    assert client.get("/api/runs").status_code == 200  # the cookie is enough for reading (links, event streams)
    page = client.get("/")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self';" in csp and "unsafe-inline" not in csp.split(";")[1]
    assert "frame-ancestors 'none'" in csp and "<script>" not in page.text  # its script is /static/app.js
    script = client.get("/static/app.js")
    assert script.status_code == 200 and "localStorage" not in script.text and "X-Rtest-Client" in script.text


def test_artifacts_are_attachments_never_active_content(served):
    client, manager = served
    run_dir = manager.workspace.run_dir("r1")
    (run_dir / "A").mkdir(parents=True)
    (run_dir / "A" / "evil.html").write_text("<script>fetch('/api/runs')</script>")
    (run_dir / "report.html").write_text("<html>report</html>")
    manager.registry.add_run("r1", {}, submitter="t", pipeline="p", jobs=None)
    evil = client.get("/api/runs/r1/artifacts/A/evil.html", headers=AUTH)
    assert evil.headers["content-type"] == "application/octet-stream"
    assert evil.headers["content-disposition"].startswith("attachment")
    assert evil.headers["x-content-type-options"] == "nosniff"
    assert evil.headers["content-security-policy"].startswith("sandbox")
    report = client.get("/api/runs/r1/artifacts/report.html", headers=AUTH)  # rtest's own, no scripts: shown
    assert report.headers["content-type"].startswith("text/html")
    assert report.headers["content-security-policy"].startswith("sandbox")


def test_malformed_numbers_and_headers_are_4xx_and_healthz_tells_nothing(served):
    client, manager = served
    manager.registry.add_run("r1", {}, submitter="t", pipeline="p", jobs=None)
    manager.registry.set_steps("r1", ["A"])
    manager.registry.set_run("r1", status="failed", ended_at=time.time())
    (manager.workspace.run_dir("r1") / "A").mkdir(parents=True)
    (manager.workspace.run_dir("r1") / "A" / "log.txt").write_text("hello\n")
    answers = [
        client.get("/api/runs/r1/events", headers={**AUTH, "Last-Event-ID": "9" * 5000}),
        client.get("/api/runs/r1/events", headers={**AUTH, "Last-Event-ID": "-1"}),
        client.get("/api/runs/r1/events", params={"after": 2**63}, headers=AUTH),
        client.get("/api/runs", params={"offset": 2**63}, headers=AUTH),
        client.get("/api/runs", params={"offset": "9" * 5000}, headers=AUTH),
        client.get("/api/runs/r1/steps/A/log", params={"offset": 2**63}, headers=AUTH),
        client.get("/api/runs/r1/steps/A/log", params={"offset": 10**30}, headers=AUTH),
        client.post("/api/runs/prune", json={"keep_runs": 2**70}, headers=AUTH),
    ]
    assert [a.status_code // 100 for a in answers] == [4] * len(answers), [a.status_code for a in answers]
    assert client.get("/healthz").json() == {"status": "ok", "version": client.get("/healthz").json()["version"]}
    root = str(manager.workspace.root)
    assert all(root not in a.text for a in answers)
    assert root in client.get("/api/service", headers=AUTH).json()["workdir"]  # token holders may know


def test_error_bodies_and_run_messages_never_show_the_service_paths(served):
    client, manager = served
    manager.registry.add_run("r2", {}, submitter="t", pipeline="p", jobs=None)
    where = manager.workspace.root / "serve" / "submissions" / "r2" / "bundle" / "dag.json"
    manager.registry.set_run("r2", status="error", message=f"DAG file not found: {where}", ended_at=time.time())
    manager.events.append("r2", {"type": "run_ended", "status": "error", "message": f"DAG file not found: {where}"})
    shown = client.get("/api/runs/r2", headers=AUTH).json()["message"]
    streamed = client.get("/api/runs/r2/events", headers=AUTH).text
    assert str(manager.workspace.root) not in shown + streamed and "<workdir>/serve/submissions" in shown


def test_paths_and_code_are_refused_unless_the_operator_allowed_them(served, tmp_path):
    client, manager = served
    spec = _pipeline(tmp_path / "p")
    refused = client.post("/api/runs", json={"spec": spec}, headers=AUTH)
    assert refused.status_code == 403 and "--allow-path" in refused.json()["detail"]
    manager.policy = SubmitPolicy(allow_paths=(tmp_path / "elsewhere",))
    outside = client.post("/api/runs", json={"spec": spec}, headers=AUTH)
    assert outside.status_code == 403 and "outside the folders" in outside.json()["detail"]
    assert str(tmp_path / "elsewhere") not in outside.text  # the allowed folders are not told
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "link").symlink_to(tmp_path / "p")
    linked = {"pipeline": {k: v.replace(str(tmp_path / "p"), str(tmp_path / "elsewhere" / "link"))
                           for k, v in spec["pipeline"].items()}}
    assert client.post("/api/runs", json={"spec": linked}, headers=AUTH).status_code == 403  # resolved first
    manager.policy = SubmitPolicy(allow_paths=(tmp_path,))
    for code in ({"pipeline": {"dag": "os:abort", "config": spec["pipeline"]["config"]}},
                 {**spec, "pipeline": {**spec["pipeline"], "config_classes": ["os"]}}):
        answer = client.post("/api/runs", json={"spec": code}, headers=AUTH)
        assert answer.status_code == 403 and "--allow-code" in answer.json()["detail"]
    assert _runs(manager) == 0
    assert client.post("/api/runs", json={"spec": spec}, headers=AUTH).status_code == 202


def test_prune_keeps_the_newest_finished_runs_and_removes_their_files(served):
    client, manager = served
    for index in range(4):
        run_id = f"r{index}"
        manager.registry.add_run(run_id, {}, submitter="t", pipeline="p", jobs=None)
        manager.registry.set_run(run_id, status="succeeded", ended_at=time.time() - 86400 * (4 - index))
        manager.events.append(run_id, {"type": "run_ended"})
        manager.workspace.run_dir(run_id).mkdir(parents=True)
        manager.submission_dir(run_id).mkdir(parents=True)
    manager.registry.add_run("queued", {}, submitter="t", pipeline="p", jobs=None)
    removed = client.post("/api/runs/prune", json={"keep_runs": 2}, headers=AUTH).json()["removed"]
    assert sorted(removed) == ["r0", "r1"]
    assert not manager.workspace.run_dir("r0").exists() and not manager.events.path("r1").exists()
    assert not manager.submission_dir("r0").exists() and manager.workspace.run_dir("r2").exists()
    assert client.post("/api/runs/prune", json={"keep_days": 1.5}, headers=AUTH).json()["removed"] == ["r2"]
    assert {r["id"] for r in manager.registry.runs()[0]} == {"r3", "queued"}


def test_the_token_file_is_private_and_a_second_lock_names_the_first(tmp_path):
    from rtest.serve.local import WorkdirInUseError, hold_workdir, token_file, write_secret

    write_secret(token_file(tmp_path), "secret")
    assert oct(os.stat(token_file(tmp_path)).st_mode & 0o777) == "0o600"
    fd = hold_workdir(tmp_path, 8123)
    try:
        with pytest.raises(WorkdirInUseError, match=f"PID {os.getpid()}, port 8123"):
            # flock is per open file: a second open in this process conflicts as a second process would
            hold_workdir(tmp_path, 9000)
    finally:
        os.close(fd)


def test_the_configs_own_classes_run_on_the_service_only_under_allow_code(tmp_path):
    """A submitted config names its classes' module (__model_module__): importing it is code a submission names."""
    from rtest.plan.model import Source
    from rtest.plan.userspec import UserSpec, save_user_spec
    from rtest.serve.planning import plan_submission
    from rtest.workspace import Workspace
    from test_plan_values import classes_pipeline

    p = classes_pipeline(tmp_path / "p")
    config = json.loads(p["config"].read_text())
    config["configuration"]["specific"]["Eval"]["__model_module__"] = "shaped_framework"
    p["config"].write_text(json.dumps(config))
    where = {"dag": str(p["dag"]), "config": str(p["config"]), "interfaces": [str(p["interfaces"])],
             "source_root": str(p["root"])}
    spec = save_user_spec(UserSpec.model_validate({"pipeline": where}), tmp_path / "spec.json")
    workspace = Workspace(tmp_path / "wd")
    refused, _ = plan_submission(spec, example=False, workspace=workspace)
    allowed, _ = plan_submission(spec, example=False, workspace=workspace, config_classes=True)
    assert refused.scripts["Eval"].environment["ID_FIELD"].source != Source.CONFIG_CLASS
    assert allowed.scripts["Eval"].environment["ID_FIELD"].source == Source.CONFIG_CLASS
