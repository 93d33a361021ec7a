"""Failures explain themselves: the exception line, network attempts under network none, warnings of a success."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rtest.run import diagnose

CHAINED = """
import json
try:
    json.loads("{")
except ValueError as exc:
    raise RuntimeError("config unreadable") from exc
"""


def python_output(tmp_path: Path, source: str) -> str:
    """What a real interpreter prints for ``source`` (stdout and stderr, as the log holds them)."""
    script = tmp_path / "script.py"
    script.write_text(source)
    done = subprocess.run([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return done.stdout


def test_the_reason_is_the_exception_line_not_the_last_line(tmp_path):
    log = python_output(tmp_path, "import atexit\natexit.register(print, 'cleaning up')\nprint('loading')\nimport no_such_module\n")
    assert log.rstrip().splitlines()[-1] == "cleaning up"  # what a naive reader would report
    reason = diagnose.failure_reason(None, log, "bridge", "main.py", 1)
    assert reason == "ModuleNotFoundError: No module named 'no_such_module'"


def test_chained_exceptions_give_the_last_one(tmp_path):
    assert diagnose.exception_line(python_output(tmp_path, CHAINED)) == "RuntimeError: config unreadable"


def test_a_syntax_error_and_a_cut_traceback_still_give_the_line(tmp_path):
    assert diagnose.exception_line(python_output(tmp_path, "def broken(:\n    pass\n")) == "SyntaxError: invalid syntax"
    cut = python_output(tmp_path, "def f():\n    raise KeyError('label')\nf()\n")
    headless = cut[cut.index('  File "'):]  # the failure file's head was trimmed
    assert diagnose.exception_line("..." + headless) == "KeyError: 'label'"


def test_the_scripts_own_failure_text_wins_and_the_bootstrap_fallback_does_not():
    assert diagnose.failure_reason("Input folder is empty", "ValueError: x", "none", "m.py", 2) == "Input folder is empty"
    fallback = "Script m.py exited with code 3; last lines of its log:\nloading\ndone"
    assert diagnose.failure_reason(fallback, "loading\ndone\n", "none", "m.py", 3) == "Script m.py exited with code 3: done"
    assert diagnose.failure_reason(None, "", "none", "m.py", 3) == "script m.py exited with code 3"


PIP_OFFLINE = """\
WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPSConnection object at 0x7f>: Failed to establish a new connection: [Errno -3] Temporary failure in name resolution')': /simple/lightgbm/
ERROR: Could not find a version that satisfies the requirement lightgbm (from versions: none)
ERROR: No matching distribution found for lightgbm
Traceback (most recent call last):
  File "/opt/ml/processing/input/code/train.py", line 4, in <module>
    import lightgbm
ModuleNotFoundError: No module named 'lightgbm'
"""


def test_a_network_attempt_under_network_none_says_so_with_both_ways_out():
    reason = diagnose.failure_reason(None, PIP_OFFLINE, "none", "train.py", 1)
    assert reason.startswith("ModuleNotFoundError: No module named 'lightgbm'; it tried to reach the network (WARNING: Retrying")
    assert "--network bridge" in reason and "`rtest deps`" in reason
    assert diagnose.failure_reason(None, PIP_OFFLINE, "bridge", "train.py", 1) == "ModuleNotFoundError: No module named 'lightgbm'"


@pytest.mark.parametrize(
    "line",
    [
        "socket.gaierror: [Errno -3] Temporary failure in name resolution",
        "OSError: [Errno 101] Network is unreachable",
        "urllib.error.URLError: <urlopen error [Errno -2] Name or service not known>",
        "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='x', port=443)",
        "botocore.exceptions.EndpointConnectionError: Could not connect to the endpoint URL: \"https://s3.amazonaws.com/\"",
    ],
)
def test_network_signs(line):
    assert diagnose.network_attempt(f"loading\n{line}\n") == line
    assert diagnose.network_attempt("ValueError: bad label\n[rtest] processing job: main.py\n") is None


def test_warnings_of_a_success_are_counted_and_bounded(tmp_path):
    source = (
        "import logging, warnings\nlogging.basicConfig()\n"
        "for i in range(30):\n    warnings.warn(f'column {i} is deprecated', FutureWarning)\n"
        "logging.getLogger('prep').warning('3 rows dropped')\nprint('done; no warning here')\n"
    )
    log = python_output(tmp_path, source) + "[rtest] WARNING: ours, not the script's\n"
    found = diagnose.warnings_in(log)
    assert found.count == 31
    assert len(found.lines) == diagnose.MAX_WARNING_LINES
    assert found.lines[0].endswith("FutureWarning: column 0 is deprecated")
    assert diagnose.warnings_in(log[log.index("WARNING:prep"):]).lines == ["WARNING:prep:3 rows dropped"]


def test_the_log_is_read_bounded_and_never_through_a_link_or_fifo(tmp_path):
    log = tmp_path / "log.txt"
    log.write_text("x" * 100_000 + "\nValueError: the end\n")
    tail = diagnose.read_log_tail(log)
    assert len(tail.encode()) <= diagnose.MAX_LOG_BYTES and tail.endswith("ValueError: the end\n")
    link = tmp_path / "link.txt"
    link.symlink_to(log)
    assert diagnose.read_log_tail(link) == ""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert diagnose.read_log_tail(fifo) == ""  # returns at once instead of waiting for a writer
    assert diagnose.read_log_tail(tmp_path / "missing") == ""


@pytest.mark.docker
def test_real_steps_explain_their_failures_and_warnings(tmp_path, docker_client):
    from rtest.plan.builder import build_plan, load_pipeline_inputs
    from rtest.plan.settings import CommandLine
    from rtest.run.engine import RunOptions, run_pipeline
    from rtest.testing import write_python_pipeline

    out = {"out": "/opt/ml/processing/output/out"}
    steps = {
        "Missing": {"script": "print('loading')\nimport no_such_module\n", "outputs": out},
        "Online": {"script": "import subprocess, sys\nsubprocess.run([sys.executable, '-m', 'pip', 'install', '--retries', '0', "
                             "'--timeout', '2', 'no-such-package-rtest'])\nimport no_such_package_rtest\n", "outputs": out},
        "Noisy": {"script": "import warnings\nwarnings.warn('old API', DeprecationWarning, stacklevel=1)\n"
                            "warnings.simplefilter('always')\nwarnings.warn('old API again', UserWarning)\nprint('WARNING: disk almost full')\n",
                  "outputs": out},
    }
    p = write_python_pipeline(tmp_path / "pipe", steps, [])
    plan = build_plan(load_pipeline_inputs(p["dag"], p["config"], [p["interfaces"]]))
    report = run_pipeline(plan, RunOptions(workdir=tmp_path / "wd"), settings=CommandLine(cache=False))
    assert report.steps["Missing"].failure_reason == "ModuleNotFoundError: No module named 'no_such_module'"
    online = report.steps["Online"].failure_reason
    assert online.startswith("ModuleNotFoundError: No module named 'no_such_package_rtest'; it tried to reach the network (")
    assert "--network bridge" in online
    noisy = report.steps["Noisy"]
    assert noisy.status.value == "succeeded" and noisy.warning_count == 3  # __main__ shows DeprecationWarning too
    assert noisy.warning_lines[0].endswith("main.py:2: DeprecationWarning: old API")
    assert noisy.warning_lines[1:] == ["/opt/ml/processing/input/code/main.py:4: UserWarning: old API again", "WARNING: disk almost full"]
    assert report.steps["Missing"].warning_count == 0
