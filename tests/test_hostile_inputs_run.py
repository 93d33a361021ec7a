"""Hostile input through a real `rtest sandbox run` (issue 7, points 4 and 5), in real containers."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines import write_python_pipeline
from rtest.run.backends.base import LABEL_MANAGED, LABEL_USER

pytestmark = pytest.mark.docker

IN, OUT = "/opt/ml/processing/input/data", "/opt/ml/processing/output/r"
NOISY_FAILURE = (
    "import sys\n"
    "print('title \\x1b]0;PWNED\\x07 clear \\x1b[2J c1 \\x9b31m bell \\x07 markup [bold]x[/] Hop[/x]', flush=True)\n"
    "sys.stderr.write('reason \\x1b[31mred\\x1b[0m [/x]\\n')\n"
    "sys.exit(3)\n"
)


def _pipeline(root: Path, script: str, node: str = "A") -> dict[str, Path]:
    """One step; ``node`` may be any DAG name (the step type and its files stay 'A')."""
    p = write_python_pipeline(root, {"A": {"script": script, "inputs": {"DATA": IN}, "outputs": {"r": OUT}}}, [])
    if node != "A":
        config = json.loads(p["config"].read_text())
        for section in (config["configuration"]["specific"], config["metadata"]["config_types"]):
            section[node] = section.pop("A")
        p["config"].write_text(json.dumps(config))
        p["dag"].write_text(json.dumps({"nodes": [node], "edges": []}))
    (root / "data").mkdir()
    (root / "data" / "a.csv").write_text("a\n1\n")
    return {**p, "data": root / "data", "node": node}


def _run(p: dict, workdir: Path, *extra: str, timeout: float = 300) -> subprocess.CompletedProcess:
    args = ["--dag", str(p["dag"]), "--config", str(p["config"]), "--input", f"{p['node']}.DATA={p['data']}", "--workdir", str(workdir), *extra]
    return subprocess.run([sys.executable, "-m", "rtest.cli.main", "sandbox", "run", *args], capture_output=True, text=True, timeout=timeout)


def _report(workdir: Path) -> dict:
    return json.loads(next((workdir / "runs").glob("*/report.json")).read_text())


def test_markup_in_a_node_name_runs_and_reports(tmp_path):
    p = _pipeline(tmp_path / "p", f"open('{OUT}/x.txt', 'w').write('ok')\n", node="Hop[/x]")
    done = _run(p, tmp_path / "wd")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr and "Hop[/x]" in done.stdout
    assert _report(tmp_path / "wd")["steps"]["Hop[/x]"]["status"] == "succeeded"


def test_step_text_reaches_the_terminal_escaped_and_without_control_sequences(tmp_path):
    p = _pipeline(tmp_path / "p", NOISY_FAILURE)
    done = _run(p, tmp_path / "wd", "--verbose")
    shown = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in shown
    assert not any(c in shown for c in "\x1b\x07\x9b"), repr(shown)
    assert "reason red [/x]" in shown and "markup [bold]x[/] Hop[/x]" in shown  # markup shown as text, not applied
    report = _report(tmp_path / "wd")
    assert "reason red [/x]" in report["steps"]["A"]["failure_reason"]  # the last line it printed, cleaned
    html = (Path(report["run_dir"]) / "report.html").read_text()
    assert "markup [bold]x[/] Hop[/x]" in html  # the HTML report, written after the terminal output, is intact


def test_unknown_network_is_refused_before_any_container(tmp_path, docker_client):
    p = _pipeline(tmp_path / "p", "print('never runs')\n")
    net = f"rtest-no-such-net-{secrets.token_hex(3)}"
    done = _run(p, tmp_path / "wd", "--network", net)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"--network '{net}' does not exist on the container engine" in " ".join(done.stderr.split())
    assert not (tmp_path / "wd" / "runs").exists()


def test_oom_reason_names_the_memory_option(tmp_path):
    p = _pipeline(tmp_path / "p", "blocks = []\nwhile True:\n    blocks.append(bytearray(16 * 1024 * 1024))\n")
    done = _run(p, tmp_path / "wd", "--memory", "64m")
    reason = _report(tmp_path / "wd")["steps"]["A"]["failure_reason"]
    assert done.returncode == 1
    assert reason.startswith("out of memory") and "64 MiB limit set by --memory" in reason and "ml." not in reason, reason


@pytest.mark.timeout(180)
def test_run_id_printed_at_start_labels_user_and_interrupt_hint(tmp_path, docker_client):
    p = _pipeline(tmp_path / "p", "import time\nprint('sleeping', flush=True)\ntime.sleep(300)\n")
    args = ["--dag", str(p["dag"]), "--config", str(p["config"]), "--input", f"A.DATA={p['data']}", "--workdir", str(tmp_path / "wd")]
    proc = subprocess.Popen([sys.executable, "-m", "rtest.cli.main", "sandbox", "run", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()  # before any step has run
        assert first.startswith("Run ") and "started" in first, first
        run_id = first.split()[1]
        containers = []
        for _ in range(120):
            containers = docker_client.containers.list(filters={"label": f"rtest.run-id={run_id}", "status": "running"})
            if containers:
                break
            time.sleep(0.5)
        assert containers, "the step's container never started"
        assert containers[0].labels[LABEL_USER] == str(os.getuid())
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out + err
    assert f"rtest sandbox clean --run-id {run_id}" in " ".join((first + out).split())
    assert docker_client.containers.list(all=True, filters={"label": f"rtest.run-id={run_id}"}) == []


def test_clean_all_removes_only_the_invoking_users_containers(capsys, monkeypatch, docker_client):
    """Two users on one engine: `clean --all` of one leaves the other's (and unlabelled old) containers alone.

    The second user cannot exist here, so the uid rtest reads is set to one nobody else uses.
    """
    from rtest.cli.main import main

    mine, theirs = 4_000_000 + secrets.randbelow(10**6), 5_000_000 + secrets.randbelow(10**6)
    tag = secrets.token_hex(4)
    made = [
        docker_client.containers.create("rtest/sagemaker-base:py3", ["true"], name=f"rtest-clean-{who}-{tag}",
                                        labels={LABEL_MANAGED: "1", "rtest.run-id": f"r-{who}-{tag}", **({LABEL_USER: str(uid)} if uid else {})})
        for who, uid in (("mine", mine), ("theirs", theirs))
    ]
    try:
        monkeypatch.setattr(os, "getuid", lambda: mine)
        with pytest.raises(SystemExit) as exited:
            main(["sandbox", "clean", "--all"])
        out = capsys.readouterr().out
        assert exited.value.code == 0 and f"Removed 1 container(s): rtest-clean-mine-{tag}." in out, out
        left = {c.name for c in docker_client.containers.list(all=True, filters={"label": f"{LABEL_USER}={theirs}"})}
        assert left == {f"rtest-clean-theirs-{tag}"}
    finally:
        for container in made:
            try:
                container.remove(force=True)
            except Exception:  # already removed by the test
                pass
