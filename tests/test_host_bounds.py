"""Issue 14, host side, without an engine: log caps (bootstrap and host), sparse staging, the sweep of a
step's files (setuid/setgid bits, device files, ownership) and the new options' checks."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_helpers import rtest_here
from rtest.errors import OptionError, UntrustedOutputError
from rtest.options import LocalFlags
from rtest.run import ownership, staging
from rtest.run.logcap import cap_log
from rtest.sizes import parse_step_user

BOOTSTRAP = Path(__file__).resolve().parents[1] / "executor" / "bootstrap.py"
DROPPED = b"bytes of output dropped here"


def _bootstrap(tmp_path: Path, script: str, cap: int) -> tuple[subprocess.CompletedProcess, bytes]:
    ml, meta, log = tmp_path / "ml", tmp_path / "meta", tmp_path / "log.txt"
    (ml / "output").mkdir(parents=True)
    entry = tmp_path / "main.py"
    entry.write_text(script)
    env = {**os.environ, "RTEST_OPT_ML": str(ml), "RTEST_ENTRY_POINT": str(entry), "RTEST_LOG": str(log),
           "RTEST_META_DIR": str(meta), "RTEST_CODE_DIR": str(tmp_path), "RTEST_MAX_LOG_BYTES": str(cap)}
    done = subprocess.run([sys.executable, str(BOOTSTRAP), "--"], env=env, capture_output=True, timeout=60)
    return done, log.read_bytes()


def test_bootstrap_keeps_the_head_and_the_tail_of_a_loud_script(tmp_path):
    script = "import sys\nfor i in range(200000):\n    sys.stdout.write('line %07d\\n' % i)\nprint('THE END')\n"
    done, log = _bootstrap(tmp_path, script, 100_000)
    assert done.returncode == 0
    assert len(log) < 100_000 + 1000
    assert b"line 0000000\n" in log and b"line 0199999\nTHE END\n" in log
    before, note, after = log.partition(DROPPED)
    assert note and before.endswith(b"[rtest] ... 2,500,008 ")  # 2,600,008 printed, 100,000 kept
    kept_tail = after[after.index(b"...\n") + 4:after.index(b"[rtest] script exited")]
    assert len(kept_tail) == 50_000


def test_bootstrap_under_the_cap_logs_everything_and_a_failure_keeps_its_traceback(tmp_path):
    script = "print('x' * 50)\nraise ValueError('bad column z')\n"
    done, log = _bootstrap(tmp_path, script, 100_000)
    assert done.returncode == 1 and DROPPED not in log
    assert b"x" * 50 in log and b"ValueError: bad column z" in log
    assert "ValueError: bad column z" in (tmp_path / "ml" / "output" / "failure").read_text()


def test_bootstrap_does_not_wait_for_a_background_process_holding_the_log_pipe(tmp_path):
    script = "import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\nprint('bye')\n"
    started = time.monotonic()
    done, log = _bootstrap(tmp_path, script, 100_000)
    assert done.returncode == 0 and b"bye" in log
    assert time.monotonic() - started < 20


def test_host_caps_a_log_to_its_head_and_tail(tmp_path):
    log = tmp_path / "log.txt"
    log.write_bytes(b"H" * 1000 + b"M" * 10_000 + b"T" * 1000)
    assert cap_log(log, 2000) == 10_000
    text = log.read_bytes()
    assert text.startswith(b"H" * 1000) and text.endswith(b"T" * 1000) and DROPPED in text and b"M" not in text
    assert cap_log(log, 2000) == 0  # a capped log is not capped again


def test_host_does_not_follow_a_log_that_is_a_link(tmp_path):
    target = tmp_path / "precious"
    target.write_bytes(b"p" * 10_000)
    (tmp_path / "log.txt").symlink_to(target)
    with pytest.raises(OSError):
        cap_log(tmp_path / "log.txt", 1000)
    assert target.read_bytes() == b"p" * 10_000


def test_staging_a_sparse_output_keeps_its_holes(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with open(out / "sparse.bin", "wb") as handle:
        handle.write(b"head")
        handle.seek(2**31)
        handle.write(b"tail")
    staging.stage_output(out, tmp_path / "in", label="output out")
    copy = tmp_path / "in" / "sparse.bin"
    assert copy.stat().st_size == 2**31 + 4
    assert copy.stat().st_blocks * 512 < 2**20  # not 2 GiB allocated per consumer
    with open(copy, "rb") as handle:
        assert handle.read(4) == b"head"
        handle.seek(2**31)
        assert handle.read() == b"tail"


def test_sweep_strips_setuid_and_setgid_and_never_follows_a_link(tmp_path):
    step = tmp_path / "step"
    (step / "output" / "g").mkdir(parents=True)
    shell = step / "output" / "sh"
    shell.write_bytes(b"#!/bin/sh\n")
    shell.chmod(0o6755)
    (step / "output" / "g").chmod(0o2775)
    outside = tmp_path / "outside"
    outside.write_bytes(b"x")
    outside.chmod(0o4755)
    (step / "output" / "link").symlink_to(outside)
    ownership.take_back(step, f"{os.getuid()}:{os.getgid()}")
    assert stat.S_IMODE(shell.stat().st_mode) == 0o755
    assert stat.S_IMODE((step / "output" / "g").stat().st_mode) == 0o775
    assert stat.S_IMODE(outside.stat().st_mode) == 0o4755  # the link's target is not the step's


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can make a device file or give files away")
def test_sweep_as_root_removes_device_files_and_hands_files_over_and_back(tmp_path):
    step = tmp_path / "step"
    (step / "output").mkdir(parents=True)
    (step / "output" / "data.csv").write_text("a\n")
    ownership.hand_over(step, "4321:4322")
    assert {(st.st_uid, st.st_gid) for st in map(os.lstat, [step, step / "output", step / "output" / "data.csv"])} \
        == {(4321, 4322)}
    os.mknod(step / "output" / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    with pytest.raises(UntrustedOutputError, match="character device"):
        ownership.take_back(step, "4321:4322")
    assert not (step / "output" / "null").exists()
    assert os.lstat(step / "output" / "data.csv").st_uid == os.getuid()


def test_step_user_and_log_cap_options():
    assert parse_step_user(" 1000:1000 ") == "1000:1000"
    for bad in ("0:0", "0:1000", "nobody", "1000", "-1:2"):
        with pytest.raises(OptionError):
            LocalFlags(step_user=bad)
    assert LocalFlags(max_log_bytes="64m").max_log_bytes == 64 * 2**20 and LocalFlags().max_log_bytes is None
    for bad in ("12", "lots", "0m"):
        with pytest.raises(OptionError):
            LocalFlags(max_log_bytes=bad)


def test_step_user_and_log_cap_are_not_sent_to_a_service():
    done = rtest_here("sandbox", "run", "--example", "--server", "http://127.0.0.1:9", "--step-user", "1000:1000",
                      cwd=Path.cwd())
    assert done.returncode == 2 and "operator" in done.stdout + done.stderr
