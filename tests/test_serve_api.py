"""rtest serve's API against a real service process on 127.0.0.1; steps are played by FakeBackend
(containers are not the point here; tests/test_serve_docker.py runs real ones)."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

import httpx
import pytest

from rtest.testing import write_python_pipeline
from serve_helpers import Service, free_port, running_service, wait_for

OUT, IN = "/opt/ml/processing/output/out", "/opt/ml/processing/input/out"


def _pipeline(root: Path, nodes: list[str], edges: list[tuple[str, str]]) -> dict[str, Path]:
    fed = {target for _, target in edges}
    steps = {n: {"script": f"# {n}\n", "outputs": {"out": OUT}, **({"inputs": {"out": IN}} if n in fed else {})}
             for n in nodes}
    return write_python_pipeline(root, steps, edges)


def _spec(paths: dict[str, Path]) -> dict:
    return {"pipeline": {"dag": str(paths["dag"]), "config": str(paths["config"])}}


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    with running_service(root / "wd", slots=2, env={"RTEST_FAKE_STEP_S": "0.2"}) as svc:
        svc.root = root
        yield svc


def test_a_run_by_path_is_followed_to_its_end_and_recorded(service):
    paths = _pipeline(service.root / "chain", ["A", "B", "C"], [("A", "B"), ("B", "C")])
    with service.client() as client:
        run_id = client.submit({"spec": _spec(paths), "submitter": "ana"})
        events = list(client.events(run_id))
        run = client.run(run_id)
        listed = client.runs(status="succeeded", limit=1)
        report = client.download(run_id, "report.json", service.root / "dl" / "report.json")
    kinds = [e["type"] for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_ended" and events[-1]["status"] == "succeeded"
    finished = [e["node"] for e in events if e["type"] == "step_finished"]
    assert finished == ["A", "B", "C"]
    assert run["status"] == "succeeded" and run["exit_code"] == 0 and run["submitter"] == "ana"
    assert [s["status"] for s in run["steps"]] == ["succeeded"] * 3
    assert listed["runs"][0]["id"] == run_id and listed["limit"] == 1 and listed["total"] >= 1
    assert '"pipeline_success": true' in report.read_text()


def test_list_pages_and_rejects_an_unknown_status(service):
    paths = _pipeline(service.root / "one", ["A"], [])
    with service.client() as client:
        ids = [client.submit({"spec": _spec(paths)}) for _ in range(3)]
        for run_id in ids:
            list(client.events(run_id))
        first, second = client.runs(limit=2), client.runs(limit=2, offset=2)
    assert [r["id"] for r in first["runs"]] == ids[::-1][:2]
    assert second["runs"][0]["id"] == ids[0]
    answer = httpx.get(f"{service.url}/api/runs", params={"status": "happy"}, trust_env=False, headers=service.headers)
    assert answer.status_code == 400 and "No run status 'happy'" in answer.json()["detail"]


def test_a_bad_pipeline_ends_as_an_error_with_its_message(service):
    nowhere = service.root / "nowhere"
    with service.client() as client:
        run_id = client.submit({"spec": {"pipeline": {"dag": f"{nowhere}/dag.json", "config": f"{nowhere}/c.json"}}})
        end = list(client.events(run_id))[-1]
    assert end["status"] == "error" and end["exit_code"] == 2 and str(nowhere) in end["message"]
    no_jobs = httpx.post(f"{service.url}/api/runs", json={"jobs": 0}, trust_env=False, headers=service.headers)
    assert no_jobs.status_code == 400 and "jobs" in no_jobs.json()["detail"]
    relative = httpx.post(f"{service.url}/api/runs", json={"spec": {"pipeline": {"dag": "d.json"}}}, trust_env=False,
                          headers=service.headers)
    assert relative.status_code == 400 and "relative path 'd.json'" in relative.json()["detail"]
    unknown = httpx.post(f"{service.url}/api/runs", json={"spec": {"pipline": {}}}, trust_env=False,
                         headers=service.headers)
    assert unknown.status_code == 400 and "spec is invalid at pipline" in unknown.json()["detail"]


def test_cancel_stops_a_running_run(tmp_path):
    paths = _pipeline(tmp_path / "p", ["A", "B"], [("A", "B")])
    with running_service(tmp_path / "wd", env={"RTEST_FAKE_STEP_S": "60"}) as svc, svc.client() as client:
        run_id = client.submit({"spec": _spec(paths)})
        wait_for(lambda: client.run(run_id)["steps"] and client.run(run_id)["steps"][0]["status"] == "running")
        assert client.cancel(run_id)
        end = list(client.events(run_id))[-1]
        run = client.run(run_id)
        again = httpx.post(f"{svc.url}/api/runs/{run_id}/cancel", trust_env=False, headers=svc.headers)
    assert end["status"] == "cancelled" and end["exit_code"] == 130
    assert [s["status"] for s in run["steps"]] == ["cancelled", "upstream_failed"]
    assert again.status_code == 409


def test_two_runs_share_the_slots_and_never_exceed_them(tmp_path):
    """Counted from the slot events (numbered under the pool's lock), not from timing."""
    paths = _pipeline(tmp_path / "p", ["A", "B", "C", "D"], [])
    with running_service(tmp_path / "wd", slots=2, env={"RTEST_FAKE_STEP_S": "0.4"}) as svc, svc.client() as client:
        request = {"spec": _spec(paths), "jobs": 4, "settings": {"cache": False}}
        runs = [client.submit(request), client.submit(request)]
        waited = wait_for(lambda: any(client.run(r)["queue_position"] for r in runs))
        events = sorted((e for r in runs for e in client.events(r) if e["type"] == "slot"), key=lambda e: e["seq"])
        statuses = [client.run(r)["status"] for r in runs]
        slots = httpx.get(f"{svc.url}/api/slots", trust_env=False, headers=svc.headers).json()
    held, peak = 0, 0
    for event in events:
        held += 1 if event["acquired"] else -1
        peak = max(peak, held)
    assert waited and statuses == ["succeeded", "succeeded"]
    assert len(events) == 16 and peak == 2 and slots["peak"] == 2 and held == 0


def test_logs_tail_and_follow_to_the_end_of_the_step(service):
    paths = _pipeline(service.root / "logs", ["A"], [])
    with service.client() as client:
        run_id = client.submit({"spec": _spec(paths)})
        followed = b"".join(client.log(run_id, "A", follow=True))
        tail = b"".join(client.log(run_id, "A", tail=1))
    assert followed.endswith(b"fake step A\n") and tail == b"fake step A\n"
    missing = httpx.get(f"{service.url}/api/runs/{run_id}/steps/..%2F..%2Fetc/log", trust_env=False,
                        headers=service.headers)
    assert missing.status_code == 404


def test_artifacts_stay_under_the_run_folder_and_never_follow_links(service):
    paths = _pipeline(service.root / "art", ["A"], [])
    secret = service.root / "secret.txt"
    secret.write_text("not yours")
    with service.client() as client:
        run_id = client.submit({"spec": _spec(paths), "settings": {"cache": False}})
        list(client.events(run_id))
    run_dir = service.workdir / "runs" / run_id
    (run_dir / "A" / "output" / "out" / "escape").symlink_to(secret)
    base = f"{service.url}/api/runs/{run_id}/artifacts"
    ok = httpx.get(f"{base}/A/output/out/out.txt", trust_env=False, headers=service.headers)
    listing = httpx.get(f"{base}/A/output/out", trust_env=False, headers=service.headers).json()
    assert ok.status_code == 200 and ok.text == "made by a fake step\n"
    assert {"name": "escape", "type": "other", "size": None} in listing["entries"]
    for path in ("A/output/out/escape", "..%2F..%2Fsecret.txt", "A/../../../secret.txt", "%2Fetc%2Fpasswd"):
        answer = httpx.get(f"{base}/{path}", trust_env=False, headers=service.headers)
        assert answer.status_code == 404 and "not yours" not in answer.text, path


def _tar(entries: list[tarfile.TarInfo], data: bytes = b"x") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info in entries:
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buffer.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, 1 if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize("entries, says", [
    ([_member("ok.txt"), _member("../escaped.txt")], "points outside the bundle"),
    ([_member("ok.txt"), _member("/tmp/rtest-absolute-escape.txt")], "points outside the bundle"),
    ([_member("out", tarfile.SYMTYPE, "/"), _member("out/escaped.txt")], "is a link"),
    ([_member("hard", tarfile.LNKTYPE, "/etc/passwd")], "is a link"),
])
def test_an_unsafe_bundle_is_refused_and_writes_nothing(service, entries, says):
    before = set(service.root.rglob("*"))
    answer = httpx.post(f"{service.url}/api/runs", data={"request": "{}"},
                        files={"bundle": ("b.tar.gz", _tar(entries), "application/gzip")}, trust_env=False,
                        headers=service.headers)
    assert answer.status_code == 400 and says in answer.json()["detail"]
    assert not (service.root / "escaped.txt").exists() and not Path("/tmp/rtest-absolute-escape.txt").exists()
    new = {p for p in set(service.root.rglob("*")) - before if "serve-" not in p.name}
    assert not [p for p in new if "submissions" in p.parts[:-1]], new  # the half-unpacked folder is gone too


def test_a_bundle_over_the_file_count_is_refused(tmp_path, monkeypatch):
    from rtest.serve.bundle import BundleError, unpack

    archive = tmp_path / "many.tar.gz"
    archive.write_bytes(_tar([_member(f"f{i}.txt") for i in range(5)]))
    with pytest.raises(BundleError, match="more than 3 entries"):
        unpack(archive, tmp_path / "out", max_files=3)
    with pytest.raises(BundleError, match="more than 2 bytes"):
        unpack(archive, tmp_path / "out", max_bytes=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["many.tar.gz"]


def test_a_bundle_upload_runs_with_its_own_copy_of_the_files(service, tmp_path):
    from rtest.plan.userspec import UserSpec
    from rtest.serve.remote import run_remote

    paths = _pipeline(tmp_path / "mine", ["A", "B"], [("A", "B")])
    spec = UserSpec.model_validate(_spec(paths))
    with service.client() as client:
        outcome = run_remote(client, spec=spec, workdir=tmp_path / "local", upload=True)
    assert outcome.exit_code == 0 and outcome.report.pipeline_success
    bundle = service.workdir / "serve" / "submissions" / outcome.run_id / "bundle"
    wait_for(lambda: not bundle.exists())  # the upload goes when its run has ended; its spec and report stay
    with service.client() as client:
        assert client.run(outcome.run_id)["pipeline"] == "dag.json"
        assert client.download(outcome.run_id, "report.json", tmp_path / "again.json") is not None
    assert (tmp_path / "local" / "runs" / outcome.run_id / "report.json").is_file()


def test_metrics_count_runs_steps_and_slots(service):
    text = httpx.get(f"{service.url}/metrics", trust_env=False, headers=service.headers).text
    assert 'rtest_runs{status="succeeded"}' in text and "rtest_slots 2.0" in text
    assert "rtest_queue_length" in text and "rtest_step_duration_seconds_count" in text


def test_the_token_is_required_on_every_api_call(tmp_path):
    with running_service(tmp_path / "wd", token="s3cret") as svc:
        bare = httpx.get(f"{svc.url}/api/runs", trust_env=False)
        wrong = httpx.get(f"{svc.url}/api/runs", headers={"Authorization": "Bearer nope"}, trust_env=False)
        metrics = httpx.get(f"{svc.url}/metrics", trust_env=False)
        submit = httpx.post(f"{svc.url}/api/runs", json={"example": True}, trust_env=False)
        good = httpx.get(f"{svc.url}/api/runs", headers={"Authorization": "Bearer s3cret"}, trust_env=False)
        health = httpx.get(f"{svc.url}/healthz", trust_env=False)
    assert [r.status_code for r in (bare, wrong, metrics, submit)] == [401] * 4
    assert good.status_code == 200 and health.status_code == 200


@pytest.mark.process
def test_a_non_loopback_bind_without_a_token_refuses_to_start(tmp_path):
    port = free_port()
    done = subprocess.run([sys.executable, "-m", "rtest.cli.main", "serve", "--host", "0.0.0.0", "--port", str(port),
                           "--workdir", str(tmp_path / "wd"), "--no-token"], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 2 and "refuses to listen on 0.0.0.0 without a token" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "wd").exists()


@pytest.mark.process
def test_a_killed_service_marks_its_running_run_interrupted_on_restart(tmp_path):
    paths = _pipeline(tmp_path / "p", ["A", "B"], [("A", "B")])
    service = Service(tmp_path / "wd", env={"RTEST_FAKE_STEP_S": "60"}, process=True).start()
    try:
        with service.client() as client:
            run_id = client.submit({"spec": _spec(paths)})
            wait_for(lambda: client.run(run_id)["status"] == "running")
        service.kill()
        service.start()
        with service.client() as client:
            run = client.run(run_id)
            end = list(client.events(run_id))[-1]
    finally:
        service.stop()
    assert run["status"] == "interrupted" and run["exit_code"] == 130
    assert {s["status"] for s in run["steps"]} == {"cancelled"}
    assert end["type"] == "run_ended" and end["status"] == "interrupted"


def test_a_client_shares_the_file_system_only_if_the_service_sees_its_files_as_it_does(service, tmp_path):
    mine = tmp_path / "config.json"
    mine.write_text("{}")
    with service.client() as client:
        assert client.shares_file_system() and client.shares_file_system(mine)
        assert not client.shares_file_system(tmp_path / "missing.json")
    (service.workdir / "serve" / "server-id").write_text("another service")
    with service.client() as client:
        assert not client.shares_file_system(mine)
    with service.client() as client:  # put it back for the other tests of this module
        (service.workdir / "serve" / "server-id").write_text(client.service()["server_id"])


@pytest.mark.process
def test_a_run_still_queued_when_the_service_died_starts_again_on_restart(tmp_path):
    slow = _pipeline(tmp_path / "slow", ["Slow"], [])
    quick = _pipeline(tmp_path / "quick", ["Quick"], [])
    service = Service(tmp_path / "wd", slots=1, env={"RTEST_FAKE_SLOW": "Slow"}, process=True).start()
    try:
        with service.client() as client:
            holder = client.submit({"spec": _spec(slow)})
            wait_for(lambda: client.run(holder)["status"] == "running")
            waiting = client.submit({"spec": _spec(quick)})
            wait_for(lambda: client.run(waiting)["queue_position"] == 1)
            assert client.run(waiting)["status"] == "queued"
        service.kill()
        service.start()
        with service.client() as client:
            end = list(client.events(waiting))[-1]
            statuses = client.run(holder)["status"], client.run(waiting)["status"]
    finally:
        service.stop()
    assert end["status"] == "succeeded" and statuses == ("interrupted", "succeeded")
