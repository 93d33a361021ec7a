"""The run engine's promises (issue 4), each checked with real containers."""

from __future__ import annotations

import json
import multiprocessing
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pipelines import write_python_pipeline
from rtest.plan.builder import build_plan, load_pipeline_inputs
from rtest.plan.settings import CommandLine
from rtest.plan.userspec import parse_input_flags
from rtest.run.backends.base import LABEL_MANAGED, LABEL_NODE
from rtest.run.engine import RunOptions, run_pipeline
from rtest.session import run_and_report

pytestmark = pytest.mark.docker

OUT = "/opt/ml/processing/output/out"


def _plan(p: dict[str, Path], inputs: list[str] | None = None):
    return build_plan(load_pipeline_inputs(p["dag"], p["config"], [p["interfaces"]]), parse_input_flags(inputs))


def _single(root: Path, script: str, **extra) -> dict[str, Path]:
    return write_python_pipeline(root, {"S": {"script": script, "outputs": {"out": OUT}, **extra}}, [])


def _left_behind(docker_client, run_id: str) -> list:
    return docker_client.containers.list(all=True, filters={"label": f"rtest.run-id={run_id}"})


@pytest.mark.timeout(120)  # a broken timeout must fail, not wait out the script's 600 s
def test_hung_step_is_killed_at_its_timeout(tmp_path, docker_client):
    p = _single(tmp_path / "p", "import time\nprint('working', flush=True)\ntime.sleep(600)\n", config={"max_runtime_in_seconds": 2})
    started = time.monotonic()
    report = run_pipeline(_plan(p), RunOptions(workdir=tmp_path / "wd", stop_grace_s=1))
    took = time.monotonic() - started
    step = report.steps["S"]
    assert step.status.value == "failed" and "timed out after 2 s" in step.failure_reason
    assert took < 30 and _left_behind(docker_client, report.run_id) == []
    assert "working" in Path(step.log_path).read_text()


def test_sigterm_reaches_the_script_before_the_kill(tmp_path, docker_client):
    script = (
        "import signal, sys, time, pathlib\n"
        f"def bye(*a):\n    (pathlib.Path('{OUT}') / 'term.txt').write_text('got SIGTERM')\n    sys.exit(143)\n"
        "signal.signal(signal.SIGTERM, bye)\ntime.sleep(600)\n"
    )
    p = _single(tmp_path / "p", script)
    report = run_pipeline(_plan(p), RunOptions(workdir=tmp_path / "wd", stop_grace_s=5), settings=CommandLine(timeout_s=2))
    run_dir = Path(report.run_dir)
    assert report.steps["S"].status.value == "failed"
    assert (run_dir / "S" / "output" / "out" / "term.txt").read_text() == "got SIGTERM"


def test_oom_is_reported_with_the_limit(tmp_path, docker_client):
    script = "blocks = []\nwhile True:\n    blocks.append(bytearray(64 * 1024 * 1024))\n"
    p = _single(tmp_path / "p", script)
    report = run_pipeline(_plan(p), RunOptions(workdir=tmp_path / "wd"), settings=CommandLine(memory_bytes=256 * 2**20))
    reason = report.steps["S"].failure_reason
    assert report.steps["S"].status.value == "failed"
    assert "out of memory" in reason and "256 MiB" in reason, reason


def test_step_sees_only_loopback_by_default(tmp_path, docker_client):
    script = f"import os, pathlib\n(pathlib.Path('{OUT}') / 'nics.txt').write_text(','.join(sorted(os.listdir('/sys/class/net'))))\n"
    p = _single(tmp_path / "p", script)
    closed = run_pipeline(_plan(p), RunOptions(workdir=tmp_path / "wd"), settings=CommandLine(cache=False))
    assert (Path(closed.steps["S"].outputs["out"]) / "nics.txt").read_text() == "lo"
    opened = run_pipeline(_plan(p), RunOptions(workdir=tmp_path / "wd"), settings=CommandLine(cache=False, network="bridge"))
    assert "eth0" in (Path(opened.steps["S"].outputs["out"]) / "nics.txt").read_text()


def test_code_is_read_only_and_container_unprivileged(tmp_path, docker_client):
    script = (
        "import os, pathlib\nout = pathlib.Path('" + OUT + "')\n"
        "try:\n    open('/opt/ml/processing/input/code/new.py', 'w')\n    ro = 'writable'\nexcept OSError:\n    ro = 'read-only'\n"
        "status = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines() if ':' in l)\n"
        "pids = [p for p in ('/sys/fs/cgroup/pids/pids.max', '/sys/fs/cgroup/pids.max') if os.path.exists(p)]\n"
        "limit = open(pids[0]).read().strip() if pids else 'none'\n"
        "(out / 'r.txt').write_text(' '.join([ro, status['CapEff'].strip(), status['NoNewPrivs'].strip(), limit, str(os.getpid())]))\n"
    )
    p = _single(tmp_path / "p", script)
    report = run_pipeline(_plan(p), RunOptions(workdir=tmp_path / "wd"))
    # no capabilities, setuid binaries cannot regain any (no-new-privileges), a pids limit, and an init
    # process as PID 1 (the bootstrap is not PID 1, so signals reach it with default handling)
    ro, caps, no_new_privs, pids_max, pid = (Path(report.steps["S"].outputs["out"]) / "r.txt").read_text().split()
    assert (ro, caps, no_new_privs, pids_max) == ("read-only", "0000000000000000", "1", "4096")
    assert int(pid) > 2


def _as_user(uid: int, gid: int, docker_gid: int, plan, workdir: str, queue) -> None:
    os.setgroups([docker_gid])
    os.setgid(gid)
    os.setuid(uid)
    report = run_pipeline(plan, RunOptions(workdir=workdir))
    queue.put(report.model_dump(mode="json"))


def test_outputs_belong_to_a_non_root_invoking_user(docker_client):
    import grp

    import rtest.report.json_report  # noqa: F401 - imported before dropping privileges
    root = Path(tempfile.mkdtemp(prefix="rtest-uid-"))
    root.chmod(0o755)
    try:
        script = f"import pathlib\nd = pathlib.Path('{OUT}') / 'nested'\nd.mkdir()\n(d / 'file.txt').write_text('mine')\n"
        p = _single(root / "p", script)
        workdir = root / "wd"
        workdir.mkdir()
        os.chown(workdir, 4242, 4242)
        plan = _plan(p)
        queue = multiprocessing.get_context("fork").Queue()
        child = multiprocessing.get_context("fork").Process(
            target=_as_user, args=(4242, 4242, grp.getgrnam("docker").gr_gid, plan, str(workdir), queue))
        child.start()
        report = queue.get(timeout=300)
        child.join(30)
        assert report["steps"]["S"]["status"] == "succeeded", report
        produced = [Path(report["run_dir"]) / "S", *Path(report["run_dir"], "S").rglob("*")]
        owners = {(f.stat().st_uid, f.stat().st_gid) for f in produced}
        assert owners == {(4242, 4242)}, owners
    finally:
        subprocess.run(["rm", "-rf", str(root)], check=False)


def _branches(root: Path, seconds: float, names: tuple[str, str] = ("Left", "Right")) -> dict[str, Path]:
    script = f"import time, pathlib\ntime.sleep({seconds})\n(pathlib.Path('{OUT}') / 'done').write_text('ok')\n"
    steps = {name: {"script": script, "outputs": {"out": OUT}} for name in names}
    return write_python_pipeline(root, steps, [])


def test_independent_branches_overlap_in_time(tmp_path, docker_client):
    report = run_pipeline(_plan(_branches(tmp_path / "p", 2)), RunOptions(workdir=tmp_path / "wd", jobs=2), settings=CommandLine(cache=False))
    left, right = report.steps["Left"], report.steps["Right"]
    assert left.status.value == right.status.value == "succeeded"
    assert max(left.started_at, right.started_at) < min(left.ended_at, right.ended_at)
    one_at_a_time = run_pipeline(_plan(_branches(tmp_path / "p", 2)), RunOptions(workdir=tmp_path / "wd", jobs=1), settings=CommandLine(cache=False))
    first, second = sorted(one_at_a_time.steps.values(), key=lambda r: r.started_at)
    assert second.started_at >= first.ended_at - 0.05


def _chain(root: Path, a_text: str) -> dict[str, Path]:
    copy = "import pathlib, shutil\nshutil.copytree('/opt/ml/processing/input/x', '" + OUT + "', dirs_exist_ok=True)\n"
    write = f"import pathlib\n(pathlib.Path('{OUT}') / 'a.txt').write_text({a_text!r})\n"
    steps = {
        "A": {"script": write, "outputs": {"out": OUT}, "aliases": {"out": ["x"]}},
        "B": {"script": copy, "inputs": {"x": "/opt/ml/processing/input/x"}, "outputs": {"out": OUT}},
        "C": {"script": write.replace(repr(a_text), repr("c")), "outputs": {"out": OUT}},
    }
    return write_python_pipeline(root, steps, [("A", "B")])


def test_cache_hits_and_reruns_only_the_edited_step_and_its_consumers(tmp_path, docker_client):
    p = _chain(tmp_path / "p", "one")
    statuses = lambda report: {n: r.status.value for n, r in report.steps.items()}  # noqa: E731
    first = run_pipeline(_plan(p), RunOptions(workdir=tmp_path / "wd"))
    assert statuses(first) == {"A": "succeeded", "B": "succeeded", "C": "succeeded"}
    second = run_pipeline(_plan(p), RunOptions(workdir=tmp_path / "wd"))
    assert statuses(second) == {"A": "cached", "B": "cached", "C": "cached"}
    assert (Path(second.steps["B"].outputs["out"]) / "a.txt").read_text() == "one"
    (p["src"] / "A" / "main.py").write_text((p["src"] / "A" / "main.py").read_text().replace("'one'", "'two'"))
    third = run_pipeline(_plan(p), RunOptions(workdir=tmp_path / "wd"))
    assert statuses(third) == {"A": "succeeded", "B": "succeeded", "C": "cached"}
    assert (Path(third.steps["B"].outputs["out"]) / "a.txt").read_text() == "two"
    no_cache = run_pipeline(_plan(p), RunOptions(workdir=tmp_path / "wd"), settings=CommandLine(cache=False))
    assert set(statuses(no_cache).values()) == {"succeeded"}


def test_half_written_cache_entry_is_not_a_hit(tmp_path, docker_client):
    p = _chain(tmp_path / "p", "one")
    first = run_pipeline(_plan(p), RunOptions(workdir=tmp_path / "wd"))
    entry = tmp_path / "wd" / "cache" / first.steps["C"].cache_key
    (entry / "meta.json").unlink()  # as if the run died before the entry was complete
    again = run_pipeline(_plan(p), RunOptions(workdir=tmp_path / "wd"))
    assert again.steps["C"].status.value == "succeeded" and again.steps["A"].status.value == "cached"


def test_ctrl_c_stops_removes_containers_and_exits_130(tmp_path, docker_client):
    token = secrets.token_hex(4)
    names = (f"Left{token}", f"Right{token}")  # the engine is shared: count only this test's containers
    p = _branches(tmp_path / "p", 300, names)

    def running() -> list:
        return [c for n in names for c in docker_client.containers.list(filters={"label": f"{LABEL_NODE}={n}"})]

    proc = subprocess.Popen(
        [sys.executable, "-m", "rtest.cli.main", "sandbox", "run", "--dag", str(p["dag"]), "--config", str(p["config"]),
         "--workdir", str(tmp_path / "wd"), "--junit", str(tmp_path / "junit.xml"), "--jobs", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(running()) < 2:
        time.sleep(0.2)
    assert len(running()) == 2
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    report = json.loads(next((tmp_path / "wd" / "runs").glob("*/report.json")).read_text())
    assert _left_behind(docker_client, report["run_id"]) == []
    assert {s["status"] for s in report["steps"].values()} == {"cancelled"} and report["interrupted"] is True
    cases = list(ET.parse(tmp_path / "junit.xml").getroot().iter("testcase"))
    assert sorted(c.get("name") for c in cases) == sorted(names)
    assert all(c.find("error") is not None for c in cases)  # interrupted mid-run: an error, never a silent pass


def test_clean_removes_what_a_crashed_run_left(tmp_path, docker_client):
    # Scoped by --run-id: a bare `clean` would also remove containers of other runs on this shared engine.
    image = "rtest/sagemaker-base:py3"
    crashed, other = f"crashed-{secrets.token_hex(4)}", f"other-{secrets.token_hex(4)}"
    docker_client.containers.create(image, ["true"], name=f"rtest-{crashed}-X",
                                    labels={LABEL_MANAGED: "1", "rtest.run-id": crashed, "rtest.node": "X"})
    bystander = docker_client.containers.create(image, ["true"], labels={LABEL_MANAGED: "1", "rtest.run-id": other, "rtest.node": "X"})
    try:
        result = subprocess.run([sys.executable, "-m", "rtest.cli.main", "sandbox", "clean", "--run-id", crashed],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"Removed 1 container(s): rtest-{crashed}-X." in result.stdout, result.stdout
        assert _left_behind(docker_client, crashed) == []
        assert [c.id for c in _left_behind(docker_client, other)] == [bystander.id]  # another run's container stays
    finally:
        for container in _left_behind(docker_client, crashed) + _left_behind(docker_client, other):
            container.remove(force=True)


def test_junit_file_parses_with_one_case_per_step(tmp_path, docker_client):
    p = _chain(tmp_path / "p", "one")
    (p["src"] / "A" / "main.py").write_text("raise SystemExit('boom: bad input')\n")
    run_and_report(_plan(p), RunOptions(workdir=tmp_path / "wd"), formats={"junit": tmp_path / "junit.xml"})
    root = ET.parse(tmp_path / "junit.xml").getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(cases) == {"A", "B", "C"}
    assert cases["A"].find("failure") is not None and "boom: bad input" in ET.tostring(cases["A"], encoding="unicode")
    assert cases["B"].find("skipped") is not None and cases["C"].find("failure") is None


def test_an_unfed_optional_input_does_not_exist_in_the_container(tmp_path, docker_client):
    script = (f"import os, pathlib\n(pathlib.Path('{OUT}') / 'seen.txt').write_text("
              "str(os.path.exists('/opt/ml/processing/input/signature')))\n")
    p = write_python_pipeline(tmp_path / "p", {"S": {"script": script, "outputs": {"out": OUT}}}, [])
    iface = p["interfaces"] / "S.step.yaml"
    iface.write_text(iface.read_text().replace("inputs: {}", "inputs:\n    signature: {path: /opt/ml/processing/input/signature, required: false}"))
    plan = _plan(p)
    assert "signature" in plan.scripts["S"].inputs
    report = run_pipeline(plan, RunOptions(workdir=tmp_path / "wd"))
    assert (Path(report.steps["S"].outputs["out"]) / "seen.txt").read_text() == "False"
    given = tmp_path / "sig"
    given.mkdir()
    report = run_pipeline(_plan(p, [f"S.signature={given}"]), RunOptions(workdir=tmp_path / "wd"))
    assert (Path(report.steps["S"].outputs["out"]) / "seen.txt").read_text() == "True"
