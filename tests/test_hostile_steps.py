"""A standing suite of hostile steps (issue 7): real scripts in real containers try to read the host,
hang rtest or exhaust the machine through what they leave behind.

Every case checks the same promises: a random canary file on the host never shows up under the
workdir (files, archives, reports), nor in the terminal; rtest finishes (pytest-timeout, not a
timed assert); the hostile step fails with a reason naming the path; other steps are untouched;
no container of the run is left behind.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from pipelines import write_python_pipeline
from rtest.plan.builder import build_plan, load_pipeline_inputs
from rtest.plan.settings import CommandLine
from rtest.plan.userspec import parse_input_flags
from rtest.run import untrusted
from rtest.run.engine import RunOptions
from rtest.session import run_and_report

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

OUT = "/opt/ml/processing/output/out"
IN = "/opt/ml/processing/input/inp"
MODEL = "/opt/ml/model"
FAILURE = "/opt/ml/output/failure"
CAP_IN_SUITE = 1000  # --max-output-files for the suite: "a million files" stays quick


# ---- the hostile scripts (CANARY is replaced by the host path of the canary file) ------------------

def _cache_dir_link() -> str:
    """A folder link to the host's cache folder, found the way an attacker would: from the job config."""
    return (
        "import json, os, urllib.parse\n"
        "config = json.load(open('/opt/ml/config/processingjobconfig.json'))\n"
        "uri = config['ProcessingOutputConfig']['Outputs'][0]['S3Output']['S3Uri']\n"
        "run_out = urllib.parse.urlparse(uri).path  # <workdir>/runs/<id>/<node>/output/out\n"
        "workdir = run_out.rsplit('/runs/', 1)[0]\n"
        f"os.symlink(workdir + '/cache', '{OUT}/cache')\n"
    )


HOSTILE_PROCESSING = {
    "LeakFile": (f"import os\nos.symlink('CANARY', '{OUT}/leak')\n", "holds a symlink leak -> CANARY that points outside the output"),
    "LeakDir": (f"import os\nos.symlink(os.path.dirname('CANARY'), '{OUT}/hostdir')\n", "holds a symlink hostdir -> "),
    "CacheDir": (_cache_dir_link(), "holds a symlink cache -> "),
    "Fifo": (f"import os\nos.mkfifo('{OUT}/pipe')\n", "holds a FIFO (named pipe) at pipe"),
    "Bomb": (f"import os\nos.symlink('.', '{OUT}/a')\nos.symlink('.', '{OUT}/b')\n", "holds a symlink a -> . that loops back into its own folder"),
    "ZeroLink": (f"import os\nos.symlink('/dev/zero', '{OUT}/zero')\n", "holds a symlink zero -> /dev/zero that points outside the output"),
    "BadNameLeak": (f"import os\nos.symlink('CANARY', os.path.join(b'{OUT}', b'l\\xff\\x1b[2J'))\n", "holds a symlink l\\xff\\x1b[2J -> CANARY"),
    "ManyFiles": (f"import os\nfor i in range({CAP_IN_SUITE * 5}):\n    open(f'{OUT}/f{{i}}', 'w').close()\n",
                  f"holds more than {CAP_IN_SUITE:,} files and folders"),
    "Sparse": (f"with open('{OUT}/huge', 'wb') as f:\n    f.truncate(2 * 2**30)\n",  # 2 GiB on paper, no disk used
               "holds more than 1.0 GiB of files; rtest stops there so a runaway step cannot fill the disk"),
    # CAP_MKNOD is dropped, so no device file can be made; the link to /dev/zero above is the device case.
    "Device": ("import os, stat\ntry:\n    os.mknod('" + OUT + "/null', stat.S_IFCHR | 0o666, os.makedev(1, 3))\n"
               "except OSError as e:\n    raise SystemExit(f'mknod refused: {e.strerror}')\n", "mknod refused: Operation not permitted"),
}
HOSTILE_TRAINING = {
    "ModelLeak": (f"import os\nos.symlink('CANARY', '{MODEL}/leak')\n", "output model (/opt/ml/model) holds a symlink leak -> CANARY"),
    "ModelFifo": (f"import os\nos.mkfifo('{MODEL}/pipe')\n", "output model (/opt/ml/model) holds a FIFO (named pipe) at pipe"),
    "FailLeak": (f"import os\nos.symlink('CANARY', '{FAILURE}')\nraise SystemExit(1)\n", f"script main.py exited with code 1; {FAILURE} is a symlink -> CANARY, which rtest does not follow"),
    "FailZero": (f"import os\nos.symlink('/dev/zero', '{FAILURE}')\nraise SystemExit(1)\n", f"{FAILURE} is a symlink -> /dev/zero"),
    "FailFifo": (f"import os\nos.mkfifo('{FAILURE}')\nraise SystemExit(1)\n", f"{FAILURE} is a FIFO (named pipe), not a regular file"),
    # The log is a file bind mount in a folder the step user cannot write (steps never run as root): the script
    # cannot swap it for a link, so log tails stay the script's own text.
    "LogLeak": ("import os\nos.unlink('/opt/rtest/log.txt')\n", "Permission denied: '/opt/rtest/log.txt'"),
}
FRIENDLY = {
    "Bystander": {"script": f"open('{OUT}/ok.csv', 'w').write('a\\n1\\n')\n", "outputs": {"out": OUT}},
    "BadName": {"script": f"import os\nopen(os.path.join(b'{OUT}', b'caf\\xe9.csv'), 'wb').write(b'1\\n')\n",
                "outputs": {"out": OUT}, "aliases": {"out": ["inp"]}},
    "ReadsBadName": {"script": f"import os\nassert os.listdir(b'{IN}') == [b'caf\\xe9.csv'], os.listdir(b'{IN}')\n",
                     "inputs": {"inp": IN}},
    "AfterLeak": {"script": "print('must not run')\n", "inputs": {"inp": IN}},
    # usage.json swapped for a link to the canary: rtest ignores it (no usage figures), the step itself is fine.
    "UsageLeak": {"script": "import os\nos.symlink('CANARY', '/opt/rtest/meta/usage.json')\n", "outputs": {"out": OUT}},
}


@pytest.fixture(scope="module")
def canary(tmp_path_factory) -> tuple[Path, str]:
    secret = "CANARY-" + secrets.token_hex(16)
    path = tmp_path_factory.mktemp("host") / "canary.txt"
    path.write_text(secret + "\n")
    return path, secret


def _steps(canary_path: Path) -> dict[str, dict]:
    steps = {}
    for node, (script, _) in HOSTILE_PROCESSING.items():
        steps[node] = {"script": script.replace("CANARY", str(canary_path)), "outputs": {"out": OUT}}
    steps["LeakFile"]["aliases"] = {"out": ["inp"]}
    for node, (script, _) in HOSTILE_TRAINING.items():
        outputs = {"model": MODEL} if node.startswith("Model") else {}
        steps[node] = {"script": script.replace("CANARY", str(canary_path)), "kind": "training", "outputs": outputs}
    friendly = {node: {**step, "script": step["script"].replace("CANARY", str(canary_path))} for node, step in FRIENDLY.items()}
    return {**steps, **friendly}


def _cli(root: Path, p: dict[str, Path], *extra: str) -> tuple[subprocess.CompletedProcess, str]:
    result = subprocess.run(
        [sys.executable, "-m", "rtest.cli.main", "sandbox", "run", "--dag", str(p["dag"]), "--config", str(p["config"]),
         "--interfaces", str(p["interfaces"]), "--workdir", str(root / "wd"), "--junit", str(root / "wd" / "junit.xml"), *extra],
        capture_output=True, text=True, timeout=540, cwd=root, env={**os.environ, "COLUMNS": "300"},
    )
    return result, result.stdout + result.stderr


def _run_id(workdir: Path) -> str:
    (run,) = (workdir / "runs").iterdir()
    return run.name


@pytest.fixture(scope="module")
def gauntlet(tmp_path_factory, canary, docker_client):
    """One run of every hostile step at once, through the CLI as a user would run it."""
    root = tmp_path_factory.mktemp("gauntlet")
    edges = [("LeakFile", "AfterLeak"), ("BadName", "ReadsBadName")]
    p = write_python_pipeline(root / "p", _steps(canary[0]), edges)
    result, terminal = _cli(root, p, "--max-output-files", str(CAP_IN_SUITE), "--max-output-bytes", "1g", "--jobs", "2")
    from rtest.report.json_report import read_report_json

    report = read_report_json(root / "wd" / "runs" / _run_id(root / "wd") / "report.json")
    return {"root": root, "result": result, "terminal": terminal, "report": report}


# ---- what must hold after any hostile run ----------------------------------------------------------

def _readable_bytes(workdir: Path):
    """(path, bytes) of every regular file under workdir and of every member of every tar archive, links not followed."""
    for rel, st in untrusted.walk(workdir):
        if not stat.S_ISREG(st.st_mode):
            continue
        path = workdir / rel
        data = path.read_bytes()
        yield path, data
        if rel.endswith((".tar.gz", ".tar")):
            with tarfile.open(path) as tar:
                for member in tar.getmembers():
                    if member.isfile():
                        yield Path(f"{path}!{member.name}"), tar.extractfile(member).read()


def assert_sandbox_held(workdir: Path, secret: str, terminal: str, run_id: str, docker_client) -> None:
    leaks = [str(path) for path, data in _readable_bytes(workdir) if secret.encode() in data]
    assert leaks == [], f"the canary leaked into {leaks}"
    assert secret not in terminal
    # A script's own traceback may show in a log tail; one from rtest's code may not.
    assert "rtest internal error" not in terminal and str(Path(untrusted.__file__).parent.parent) not in terminal, terminal
    assert docker_client.containers.list(all=True, filters={"label": f"rtest.run-id={run_id}"}) == []


def test_the_gauntlet_run_finishes_with_exit_1_and_leaks_nothing(gauntlet, canary, docker_client):
    run = gauntlet["report"]
    assert gauntlet["result"].returncode == 1, gauntlet["terminal"]
    assert_sandbox_held(gauntlet["root"] / "wd", canary[1], gauntlet["terminal"], run.run_id, docker_client)
    for written in ("report.json", "report.html"):
        assert (gauntlet["root"] / "wd" / "runs" / run.run_id / written).is_file()
    assert (gauntlet["root"] / "wd" / "junit.xml").is_file()


@pytest.mark.parametrize("node", list(HOSTILE_PROCESSING) + list(HOSTILE_TRAINING))
def test_each_hostile_step_fails_with_a_reason_naming_the_path(gauntlet, canary, node):
    step = gauntlet["report"].steps[node]
    expected = {**HOSTILE_PROCESSING, **HOSTILE_TRAINING}[node][1].replace("CANARY", str(canary[0]))
    assert step.status.value == "failed", (node, step.failure_reason)
    assert expected in step.failure_reason
    assert step.outputs == {}  # nothing is passed on
    assert list(Path(step.log_path).parent.glob("artifacts/*/model.tar.gz")) == []  # nothing was packed


def test_the_terminal_names_the_refused_paths(gauntlet):
    terminal = gauntlet["terminal"]
    for needle in ("leak", "FIFO", "loops back into its own folder", "/dev/zero", "more than 1,000 files"):
        assert needle in terminal, needle
    assert "\x1b[2J" not in terminal  # the escape in a file name is shown escaped, never sent to the terminal


def test_other_steps_are_untouched(gauntlet):
    steps = gauntlet["report"].steps
    assert steps["Bystander"].status.value == "succeeded"
    assert Path(steps["Bystander"].outputs["out"], "ok.csv").read_text() == "a\n1\n"
    assert steps["BadName"].status.value == "succeeded" and steps["ReadsBadName"].status.value == "succeeded"
    assert steps["AfterLeak"].status.value == "upstream_failed"
    assert steps["UsageLeak"].status.value == "succeeded" and steps["UsageLeak"].peak_memory_bytes is None
    assert not any((gauntlet["root"] / "wd" / "runs").rglob("AfterLeak/input/inp/*"))


def test_the_cache_holds_no_hostile_output(gauntlet, canary):
    cache = gauntlet["root"] / "wd" / "cache"
    hostile = set(HOSTILE_PROCESSING) | set(HOSTILE_TRAINING)
    import json

    stored = [json.loads((entry / "meta.json").read_text())["node"] for entry in cache.iterdir() if not entry.name.startswith(".")]
    assert set(stored).isdisjoint(hostile) and "Bystander" in stored
    for rel, st in untrusted.walk(cache):
        assert not stat.S_ISLNK(st.st_mode) or not os.readlink(cache / rel).startswith("/"), rel


# ---- the done-when check: link bomb and FIFO steps beside a healthy chain ---------------------------

def test_link_bomb_and_fifo_steps_fail_and_the_rest_of_the_run_succeeds(tmp_path, docker_client, canary):
    steps = {
        "Bomb": {"script": HOSTILE_PROCESSING["Bomb"][0], "outputs": {"out": OUT}},
        "Fifo": {"script": HOSTILE_PROCESSING["Fifo"][0], "outputs": {"out": OUT}},
        "Make": {"script": f"open('{OUT}/data.csv', 'w').write('x\\n')\nimport os\nos.symlink('data.csv', '{OUT}/latest.csv')\n",
                 "outputs": {"out": OUT}, "aliases": {"out": ["inp"]}},
        "Use": {"script": f"import os\nassert os.readlink('{IN}/latest.csv') == 'data.csv'\nassert open('{IN}/latest.csv').read() == 'x\\n'\n",
                "inputs": {"inp": IN}},
    }
    p = write_python_pipeline(tmp_path / "p", steps, [("Make", "Use")])
    result, terminal = _cli(tmp_path, p)
    assert result.returncode == 1, terminal
    from rtest.report.json_report import read_report_json

    run_id = _run_id(tmp_path / "wd")
    report = read_report_json(tmp_path / "wd" / "runs" / run_id / "report.json")
    status = {n: s.status.value for n, s in report.steps.items()}
    assert status == {"Bomb": "failed", "Fifo": "failed", "Make": "succeeded", "Use": "succeeded"}
    assert "loops back into its own folder" in report.steps["Bomb"].failure_reason
    assert "holds a FIFO (named pipe) at pipe" in report.steps["Fifo"].failure_reason
    assert "loops back" in terminal and "FIFO" in terminal
    assert_sandbox_held(tmp_path / "wd", canary[1], terminal, run_id, docker_client)


# ---- resource attacks: contained by the container's limits -------------------------------------------

def _run(tmp_path: Path, steps: dict, *, html: bool = True, **flags):
    p = write_python_pipeline(tmp_path / "p", steps, [])
    plan = build_plan(load_pipeline_inputs(p["dag"], p["config"], [p["interfaces"]]), parse_input_flags(None))
    return run_and_report(plan, RunOptions(workdir=tmp_path / "wd"), settings=CommandLine(**flags),
                          formats=("html",) if html else ())


BYSTANDER = {"Bystander": FRIENDLY["Bystander"]}


def test_a_fork_bomb_hits_the_pids_limit(tmp_path, docker_client, canary):
    script = (
        "import os, time\nkids = 0\ntry:\n    while True:\n        if os.fork() == 0:\n"
        "            os.execv('/bin/sleep', ['sleep', '60'])\n        kids += 1\n"
        "except OSError as e:\n    raise SystemExit(f'fork refused after {kids} children: {e.strerror}')\n"
    )
    report = _run(tmp_path, {"ForkBomb": {"script": script, "outputs": {"out": OUT}}, **BYSTANDER})
    step = report.steps["ForkBomb"]
    assert step.status.value == "failed" and re.search(r"fork refused after \d+ children", step.failure_reason), step.failure_reason
    assert int(re.search(r"after (\d+)", step.failure_reason).group(1)) < 4096
    assert report.steps["Bystander"].status.value == "succeeded"
    assert_sandbox_held(tmp_path / "wd", canary[1], "", report.run_id, docker_client)


def test_filling_memory_hits_the_memory_limit(tmp_path, docker_client, canary):
    script = "blocks = []\nwhile True:\n    blocks.append(bytearray(16 * 2**20))\n    blocks[-1][::4096] = b'x' * len(blocks[-1][::4096])\n"
    report = _run(tmp_path, {"MemFill": {"script": script, "outputs": {"out": OUT}}, **BYSTANDER}, memory_bytes=256 * 2**20)
    step = report.steps["MemFill"]
    assert step.status.value == "failed" and step.failure_reason.startswith("out of memory"), step.failure_reason
    assert "256 MiB" in step.failure_reason
    assert report.steps["Bystander"].status.value == "succeeded"
    assert_sandbox_held(tmp_path / "wd", canary[1], "", report.run_id, docker_client)


def test_the_network_is_unreachable(tmp_path, docker_client, canary):
    script = (
        "import socket\nfailures = []\nfor host in [('1.1.1.1', 53), ('8.8.8.8', 443)]:\n    try:\n"
        "        socket.create_connection(host, timeout=3).close()\n    except OSError as e:\n        failures.append(str(e))\n"
        "try:\n    socket.getaddrinfo('example.com', 443)\nexcept OSError as e:\n    failures.append(str(e))\n"
        f"assert len(failures) == 3, failures\nopen('{OUT}/net.txt', 'w').write('\\n'.join(failures))\n"
    )
    report = _run(tmp_path, {"Net": {"script": script, "outputs": {"out": OUT}}})
    step = report.steps["Net"]
    assert step.status.value == "succeeded", step.failure_reason  # it asserts inside that every attempt failed
    assert "unreachable" in Path(step.outputs["out"], "net.txt").read_text().lower()
    assert_sandbox_held(tmp_path / "wd", canary[1], "", report.run_id, docker_client)


@pytest.mark.timeout(300)
def test_the_default_file_cap_stops_a_runaway_step(tmp_path, docker_client):
    count = untrusted.DEFAULT_MAX_FILES + 1
    script = f"import os\nfor i in range({count}):\n    os.close(os.open(f'{OUT}/f{{i}}', os.O_CREAT | os.O_WRONLY))\n"
    report = _run(tmp_path, {"Flood": {"script": script, "outputs": {"out": OUT}}, **BYSTANDER}, html=False)
    step = report.steps["Flood"]
    assert step.status.value == "failed"
    assert f"holds more than {untrusted.DEFAULT_MAX_FILES:,} files and folders" in step.failure_reason
    assert "--max-output-files" in step.failure_reason
    assert report.steps["Bystander"].status.value == "succeeded"
    assert list((tmp_path / "wd" / "cache").glob("*/outputs/out/f1")) == []
