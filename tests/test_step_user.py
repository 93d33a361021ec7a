"""Issue 14, host side, in real containers: steps never run as root, no setuid/setgid file survives on the
host (run folder, cache, staged copies), and a loud step leaves a capped log.

The suite runs as whoever runs pytest; the promises about root hold when that is root (as here and in
the compose service), and the others hold for anyone.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import write_python_pipeline
from rtest.plan.builder import build_plan, load_pipeline_inputs
from rtest.plan.settings import UNPRIVILEGED_USER, CommandLine
from rtest.run import untrusted
from rtest.run.engine import RunOptions, run_pipeline

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

OUT = "/opt/ml/processing/output/out"
IN = "/opt/ml/processing/input/inp"
LOG = "/opt/rtest/log.txt"

# Writes its ids, then leaves setuid/setgid copies of a shell (and a setgid folder) in its output, its
# /opt/ml/output and its meta folder.
PRIVILEGED_LEFTOVERS = f"""
import os, shutil
open('{OUT}/ids.txt', 'w').write('%d:%d' % (os.getuid(), os.getgid()))
for folder in ('{OUT}', '/opt/ml/output', '/opt/rtest/meta'):
    shutil.copy('/bin/sh', folder + '/sh')
    os.chmod(folder + '/sh', 0o6755)
os.mkdir('{OUT}/group')
os.chmod('{OUT}/group', 0o2775)
"""
# Checks the staged copy lost the bits, then leaves a setuid file in its own (writable) input folder.
CONSUMER = f"""
import os, shutil, stat
assert not os.stat('{IN}/sh').st_mode & (stat.S_ISUID | stat.S_ISGID), oct(os.stat('{IN}/sh').st_mode)
shutil.copy('/bin/sh', '{IN}/again')
os.chmod('{IN}/again', 0o4755)
"""


def _cli(root: Path, p: dict[str, Path], *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rtest.cli.main", "sandbox", "run", "--dag", str(p["dag"]), "--config", str(p["config"]),
         "--interfaces", str(p["interfaces"]), "--workdir", str(root / "wd"), *extra],
        capture_output=True, text=True, timeout=540, cwd=root, env={**os.environ, "COLUMNS": "300"},
    )


def _privileged_files(workdir: Path) -> list[str]:
    return [rel for rel, st in untrusted.walk(workdir) if st.st_mode & (stat.S_ISUID | stat.S_ISGID)]


@pytest.fixture(scope="module")
def leftovers_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("setuid")
    steps = {"Leaver": {"script": PRIVILEGED_LEFTOVERS, "outputs": {"out": OUT}, "aliases": {"out": ["inp"]}},
             "Consumer": {"script": CONSUMER, "inputs": {"inp": IN}}}
    p = write_python_pipeline(root / "p", steps, [("Leaver", "Consumer")])
    result = _cli(root, p)
    (run,) = (root / "wd" / "runs").iterdir()
    return {"root": root, "result": result, "run": run}


def test_a_run_leaves_no_setuid_or_setgid_file_anywhere_under_the_workdir(leftovers_run):
    assert leftovers_run["result"].returncode == 0, leftovers_run["result"].stdout + leftovers_run["result"].stderr
    workdir = leftovers_run["root"] / "wd"
    assert any((workdir / "cache").iterdir()), "the step's outputs should be cached (hard links)"
    assert _privileged_files(workdir) == []
    shell = leftovers_run["run"] / "Leaver" / "output" / "out" / "sh"
    assert stat.S_IMODE(shell.stat().st_mode) == 0o755  # only the privilege bits went


def test_steps_do_not_run_as_root_and_their_files_come_back_to_the_invoking_user(leftovers_run):
    ids = (leftovers_run["run"] / "Leaver" / "output" / "out" / "ids.txt").read_text()
    expected = UNPRIVILEGED_USER if os.getuid() == 0 else f"{os.getuid()}:{os.getgid()}"
    assert ids == expected
    assert not ids.startswith("0:")
    strangers = [rel for rel, st in untrusted.walk(leftovers_run["run"]) if st.st_uid != os.getuid()]
    assert strangers == []


def test_step_user_flag_chooses_the_uid(tmp_path):
    p = write_python_pipeline(tmp_path / "p", {"Who": {"script": PRIVILEGED_LEFTOVERS, "outputs": {"out": OUT}}}, [])
    result = _cli(tmp_path, p, "--step-user", "4321:4322", "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
    (run,) = (tmp_path / "wd" / "runs").iterdir()
    assert (run / "Who" / "output" / "out" / "ids.txt").read_text() == "4321:4322"
    assert _privileged_files(tmp_path / "wd") == []


def test_step_user_zero_is_refused(tmp_path):
    p = write_python_pipeline(tmp_path / "p", {"Who": {"script": "pass\n", "outputs": {"out": OUT}}}, [])
    result = _cli(tmp_path, p, "--step-user", "0:0")
    assert result.returncode == 2
    assert "never" in result.stdout + result.stderr
    assert not (tmp_path / "wd" / "runs").exists()


# ---- logs -----------------------------------------------------------------------------------------

LOUD = ("import sys\nline = ('x' * 99 + '\\n').encode()\nblock = line * 10000\nout = sys.stdout.buffer\n"
        "for _ in range(1000):\n    out.write(block)\nout.write(b'THE END\\n')\n")
# Writes past the bootstrap, straight into the mounted log file, and to the container's own stdout.
SIDE_DOOR = (f"import os\nwith open('{LOG}', 'ab') as log:\n    for _ in range(64):\n        log.write(b'y' * (1 << 20))\n"
             "with open('/proc/1/fd/1', 'wb') as out:\n    out.write(b'z' * (8 << 20))\n"
             "print('LAST WORDS')\n")


def _run(root: Path, steps: dict, **options):
    p = write_python_pipeline(root / "p", steps, [])
    plan = build_plan(load_pipeline_inputs(p["dag"], p["config"], [p["interfaces"]]))
    return run_pipeline(plan, RunOptions(workdir=root / "wd", **options), settings=CommandLine(cache=False))


def test_a_1_gb_stdout_step_leaves_a_capped_log_with_its_head_and_tail(tmp_path):
    report = _run(tmp_path, {"Loud": {"script": LOUD, "outputs": {"out": OUT}}})
    step = report.steps["Loud"]
    assert step.status.value == "succeeded", step.failure_reason
    log = Path(step.log_path)
    size = log.stat().st_size
    assert 64 * 2**20 <= size <= 64 * 2**20 + 4096, size
    with open(log, "rb") as handle:
        head = handle.read(4096)
        handle.seek(size - 4096)
        tail = handle.read()
    assert b"processing job" in head and b"x" * 99 in head
    assert b"THE END\n" in tail and b"script exited with code 0" in tail
    assert b"bytes of output dropped here" in log.read_bytes()[32 * 2**20 - 10: 32 * 2**20 + 400]


def test_a_log_written_past_the_bootstrap_is_capped_by_the_host(tmp_path):
    report = _run(tmp_path, {"SideDoor": {"script": SIDE_DOOR, "outputs": {"out": OUT}}}, max_log_bytes=2**20)
    step = report.steps["SideDoor"]
    assert step.status.value == "succeeded", step.failure_reason
    text = Path(step.log_path).read_bytes()
    assert len(text) <= 2**20 + 512
    assert b"bytes of output dropped here" in text
    assert text.rstrip().endswith(b"z") or b"LAST WORDS" in text[-(2**19):]


def test_the_service_runs_steps_as_the_operators_step_user_with_its_log_cap(tmp_path, docker_client):
    import time

    from rtest.run.backends.docker import DockerBackend
    from rtest.serve.manager import RunManager, RunRequest

    script = PRIVILEGED_LEFTOVERS + "print('v' * 20000)\nprint('FIN')\n"
    p = write_python_pipeline(tmp_path / "p", {"Who": {"script": script, "outputs": {"out": OUT}}}, [])
    manager = RunManager(tmp_path / "wd", slots=1, backend=DockerBackend(docker_client), step_user="4321:4322",
                         max_log_bytes=4096)
    try:
        request = RunRequest(spec={"pipeline": {"dag": str(p["dag"]), "config": str(p["config"])}}, deps=False,
                             settings={"cache": False})
        run_id = manager.submit(request)
        deadline = time.monotonic() + 240
        while manager.registry.run(run_id)["status"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.2)
        run = manager.registry.run(run_id)
    finally:
        manager.shutdown()
    assert run["status"] == "succeeded", run
    step = tmp_path / "wd" / "runs" / run_id / "Who"
    assert (step / "output" / "out" / "ids.txt").read_text() == "4321:4322"
    log = (step / "log.txt").read_bytes()
    assert len(log) <= 4096 + 512 and b"bytes of output dropped here" in log and b"FIN" in log
    assert _privileged_files(tmp_path / "wd") == []


def test_a_source_folder_the_step_user_cannot_read_fails_the_step_with_a_sentence(tmp_path):
    steps = {"Private": {"script": f"open('{OUT}/x', 'w').write('1')\n", "outputs": {"out": OUT}}}
    p = write_python_pipeline(tmp_path / "p", steps, [])
    (tmp_path / "p" / "src" / "Private").chmod(0o700)
    report = run_pipeline(build_plan(load_pipeline_inputs(p["dag"], p["config"], [p["interfaces"]])),
                          RunOptions(workdir=tmp_path / "wd"), settings=CommandLine(cache=False))
    step = report.steps["Private"]
    if os.getuid() != 0:  # steps run as the invoking user, who owns the folder
        assert step.status.value == "succeeded", step.failure_reason
        return
    assert step.status.value == "failed"
    assert "cannot read" in step.failure_reason and "src/Private" in step.failure_reason and "700" in step.failure_reason
