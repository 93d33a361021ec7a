"""The in-container bootstrap, run on the host against a stand-in /opt/ml (RTEST_OPT_ML)."""

from __future__ import annotations

import ast
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

BOOTSTRAP = Path(__file__).resolve().parents[1] / "executor" / "bootstrap.py"

PROBE = """\
import json, os, sys
print(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(),
                  "env": {k: v for k, v in os.environ.items() if k.startswith(("SM_", "PYTHONUNBUFFERED"))}}))
"""


class FakeJob:
    """A temp folder laid out as /opt/ml plus the rtest log and meta folder."""

    def __init__(self, root: Path, kind: str) -> None:
        self.root, self.kind = root, kind
        self.ml = root / "ml"
        self.code = self.ml / ("code" if kind == "training" else "processing/input/code")
        self.config = self.ml / ("input/config" if kind == "training" else "config")
        self.log = root / "log.txt"
        self.meta = root / "meta"
        for folder in (self.code, self.config, self.ml / "output"):
            folder.mkdir(parents=True)
        self.log.touch()

    def script(self, text: str, name: str = "main.py") -> Path:
        path = self.code / name
        path.write_text(text)
        return path

    def env(self, entry: Path | str) -> dict[str, str]:
        return {**os.environ, "RTEST_OPT_ML": str(self.ml), "RTEST_JOB_KIND": self.kind, "RTEST_ENTRY_POINT": str(entry),
                "RTEST_LOG": str(self.log), "RTEST_META_DIR": str(self.meta), "RTEST_CODE_DIR": str(self.code)}

    def run(self, entry: Path | str, *args: str, python: str = sys.executable) -> subprocess.CompletedProcess:
        return subprocess.run([python, str(BOOTSTRAP), "--", *args], env=self.env(entry),
                              capture_output=True, text=True, timeout=60)

    @property
    def failure(self) -> Path:
        return self.ml / "output" / "failure"

    def usage(self) -> dict:
        return json.loads((self.meta / "usage.json").read_text())

    def probe_output(self) -> dict:
        line = next(line for line in self.log.read_text().splitlines() if line.startswith("{"))
        return json.loads(line)


def _python_3_8() -> str | None:
    """A real 3.8 interpreter, if this machine has one (pyenv's shims may refuse, so each is asked)."""
    candidates = [shutil.which("python3.8"), *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.8*/bin/python3.8")))]
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == "(3, 8)":
            return candidate
    return None


@pytest.fixture
def processing(tmp_path: Path) -> FakeJob:
    return FakeJob(tmp_path, "processing")


@pytest.fixture
def training(tmp_path: Path) -> FakeJob:
    return FakeJob(tmp_path, "training")


# ---- what the file is allowed to be ------------------------------------------------------------


def test_bootstrap_parses_as_python_3_8():
    ast.parse(BOOTSTRAP.read_text(), feature_version=(3, 8))


def test_bootstrap_rejects_3_9_syntax_check_works():
    # The check above means something: a 3.10 match statement fails it.
    with pytest.raises(SyntaxError):
        ast.parse("match x:\n    case 1:\n        pass\n", feature_version=(3, 8))


def test_bootstrap_imports_only_the_standard_library():
    tree = ast.parse(BOOTSTRAP.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert imported, "no imports found: the walk is broken"
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)


def test_bootstrap_avoids_3_9_apis():
    text = BOOTSTRAP.read_text()
    for api in ("removeprefix", "removesuffix", "functools.cache(", "zoneinfo", "list[", "dict[", "tuple["):
        assert api not in text, api


# ---- processing ------------------------------------------------------------------------------


def test_processing_runs_script_with_job_args_in_code_folder(processing):
    entry = processing.script(PROBE)
    done = processing.run(entry, "--job_type", "training")
    assert done.returncode == 0, done.stderr
    seen = processing.probe_output()
    assert seen["argv"] == ["--job_type", "training"]
    assert seen["cwd"] == str(processing.code)
    assert seen["env"] == {"PYTHONUNBUFFERED": "1"}  # no SM_* for processing: the job's Environment is all
    assert not processing.failure.exists() and not (processing.ml / "output" / "success").exists()
    usage = processing.usage()
    assert set(usage) == {"exit_code", "max_rss_bytes", "cpu_time_s", "started_at", "ended_at"}
    assert usage["exit_code"] == 0 and usage["max_rss_bytes"] > 1_000_000 and usage["ended_at"] >= usage["started_at"]


def test_crash_writes_the_traceback_as_failure(processing):
    entry = processing.script("print('noise ' * 50)\n" * 2000 + "def f():\n    raise ValueError('bad column x')\nf()\n")
    done = processing.run(entry)
    assert done.returncode == 1
    failure = processing.failure.read_text()
    # the exception line first (SageMaker shows a failure file's start), then the whole traceback
    assert failure.startswith("ValueError: bad column x\n\nTraceback (most recent call last):")
    assert failure.rstrip().endswith("ValueError: bad column x")
    assert "noise" not in failure and "[rtest]" not in failure
    assert processing.usage()["exit_code"] == 1


def test_script_failure_file_is_kept(processing):
    entry = processing.script(
        f"open({str(processing.failure)!r}, 'w').write('label column missing')\nraise SystemExit(4)\n")
    assert processing.run(entry).returncode == 4
    assert processing.failure.read_text() == "label column missing"


def test_exit_without_traceback_names_script_code_and_last_lines(processing):
    entry = processing.script("import sys\nprint('step one')\nprint('giving up', file=sys.stderr)\nsys.exit(3)\n", "prep.py")
    assert processing.run(entry).returncode == 3
    failure = processing.failure.read_text()
    assert failure.startswith("Script prep.py exited with code 3")
    assert "step one" in failure and "giving up" in failure


def test_killed_by_signal_exits_128_plus_n(processing):
    entry = processing.script("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    assert processing.run(entry).returncode == 128 + signal.SIGKILL
    assert "exited with code 137" in processing.failure.read_text()


def test_missing_entry_point_exits_2_with_a_clear_failure(processing):
    processing.script("print(1)\n", "other.py")
    done = processing.run(processing.code / "preprocess.py")
    assert done.returncode == 2
    failure = processing.failure.read_text()
    assert "preprocess.py not found" in failure and "other.py" in failure
    assert processing.usage()["exit_code"] == 2


def test_large_output_reaches_the_log_complete(processing):
    entry = processing.script("import sys\nline = 'x' * 99 + '\\n'\nfor _ in range(200_000):\n    sys.stdout.write(line)\n")
    assert processing.run(entry).returncode == 0
    lines = processing.log.read_text().splitlines()
    assert sum(1 for line in lines if line == "x" * 99) == 200_000


def test_log_is_appended_not_truncated(processing):
    processing.log.write_text("engine says hello\n")
    entry = processing.script("print('script says hi')\n")
    assert processing.run(entry).returncode == 0
    text = processing.log.read_text()
    assert text.startswith("engine says hello\n") and "script says hi" in text


def test_sigterm_is_forwarded_to_the_script(processing):
    marker = processing.root / "term.txt"
    entry = processing.script(
        "import signal, sys, time, pathlib\n"
        f"def bye(*a):\n    pathlib.Path({str(marker)!r}).write_text('got SIGTERM')\n    sys.exit(143)\n"
        "signal.signal(signal.SIGTERM, bye)\nprint('ready', flush=True)\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, str(BOOTSTRAP), "--"], env=processing.env(entry))
    try:
        deadline = time.monotonic() + 20
        while "ready" not in processing.log.read_text():
            assert time.monotonic() < deadline and proc.poll() is None, "script never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 143
    finally:
        proc.kill()
    assert marker.read_text() == "got SIGTERM"
    assert processing.usage()["exit_code"] == 143


# ---- training ----------------------------------------------------------------------------------


def _training_config(job: FakeJob, hps: dict, channels: list[str]) -> None:
    (job.config / "hyperparameters.json").write_text(json.dumps(hps))
    (job.config / "inputdataconfig.json").write_text(json.dumps({c: {"TrainingInputMode": "File"} for c in channels}))
    (job.config / "resourceconfig.json").write_text(json.dumps(
        {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0", "current_instance_type": "ml.m5.large"}))


def test_training_passes_hyperparameters_as_the_toolkit_does(training):
    _training_config(training, {"max_depth": "6", "eta": "0.3", "label": '"is_fraud"', "raw": "not json",
                                "flag": "true", "k": "5", "cols": '["a", "b"]', "sagemaker_program": '"main.py"'}, ["val", "train"])
    entry = training.script(PROBE)
    done = training.run(entry)
    assert done.returncode == 0, done.stderr
    seen = training.probe_output()
    # Sorted keys; str() of decoded values; one-letter keys get one dash; sagemaker_* stay out.
    assert seen["argv"] == ["--cols", "['a', 'b']", "--eta", "0.3", "--flag", "True", "-k", "5", "--label", "is_fraud",
                            "--max_depth", "6", "--raw", "not json"]
    assert seen["cwd"] == str(training.code)
    env = seen["env"]
    assert env["SM_HPS"] == '{"cols":["a","b"],"eta":0.3,"flag":true,"k":5,"label":"is_fraud","max_depth":6,"raw":"not json"}'
    assert env["SM_HP_MAX_DEPTH"] == "6" and env["SM_HP_LABEL"] == "is_fraud" and env["SM_HP_COLS"] == '["a","b"]'
    assert env["SM_CHANNELS"] == '["train","val"]'
    assert env["SM_CHANNEL_TRAIN"] == f"{training.ml}/input/data/train"
    assert env["SM_FRAMEWORK_PARAMS"] == '{"sagemaker_program":"main.py"}'
    assert env["SM_CURRENT_INSTANCE_TYPE"] == "ml.m5.large" and env["SM_USER_ENTRY_POINT"] == "main.py"
    assert json.loads(env["SM_USER_ARGS"]) == seen["argv"]
    assert json.loads(env["SM_TRAINING_ENV"])["hyperparameters"]["eta"] == 0.3
    assert (training.ml / "output" / "success").read_text() == ""
    assert (training.ml / "model").is_dir() and (training.ml / "output" / "data").is_dir()


def test_training_failure_writes_failure_not_success(training):
    _training_config(training, {}, [])
    entry = training.script("raise RuntimeError('no train channel')\n")
    assert training.run(entry).returncode == 1
    assert "RuntimeError: no train channel" in training.failure.read_text()
    assert not (training.ml / "output" / "success").exists()


def test_training_without_config_files_still_runs(training):
    entry = training.script(PROBE)
    assert training.run(entry).returncode == 0
    env = training.probe_output()["env"]
    assert env["SM_CHANNELS"] == "[]" and env["SM_HPS"] == "{}" and env["SM_CURRENT_HOST"] == "algo-1"


def test_bootstrap_runs_under_python_3_8(training):
    python = _python_3_8()
    if python is None:
        pytest.skip("no Python 3.8 interpreter on this machine; the grammar check above still applies")
    _training_config(training, {"eta": "0.3"}, ["train"])
    entry = training.script(PROBE + "raise KeyError('x')\n")
    done = training.run(entry, python=python)
    assert done.returncode == 1, done.stderr
    seen = training.probe_output()
    assert seen["argv"] == ["--eta", "0.3"] and seen["env"]["SM_CHANNELS"] == '["train"]'
    assert "KeyError: 'x'" in training.failure.read_text()
    assert training.usage()["exit_code"] == 1
