"""The SageMaker container layout, checked from INSIDE real containers by a probe script.

Each test builds a spec by hand, lays out its folders, writes the job's config
files, and runs it with the real DockerBackend as an unprivileged user who owns
the run folder (as `rtest sandbox run` does for whoever invokes it).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from rtest.plan.model import InputSpec, OutputSpec, Source, Sourced
from rtest.plan.settings import CommandLine, step_settings
from rtest.run import layout
from rtest.run.backends.docker import DockerBackend
from test_layout import RUN_ID, _v, make_spec, processing_spec, training_spec

pytestmark = pytest.mark.docker

IMAGE = "rtest/sagemaker-base:py3"
USER = (1000, 1000)  # not root, and not the owner of anything in the image

PROBE = r'''
import json, os, sys

def state(path):
    info = {"exists": os.path.exists(path), "is_dir": os.path.isdir(path), "writable": False}
    if info["is_dir"]:
        try:
            with open(os.path.join(path, ".probe"), "w"):
                pass
            os.remove(os.path.join(path, ".probe"))
            info["writable"] = True
        except OSError:
            pass
    return info

def configs(folder):
    found = {}
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        with open(os.path.join(folder, name)) as handle:
            found[name] = json.load(handle)
    return found

paths = json.loads(os.environ["PROBE_PATHS"])
report = {"env": dict(os.environ), "argv": sys.argv[1:], "cwd": os.getcwd(), "uid": os.getuid(),
          "paths": {p: state(p) for p in paths}, "configs": configs(os.environ["PROBE_CONFIG_DIR"]),
          "data": sorted(os.listdir("/opt/ml/input/data")) if os.path.isdir("/opt/ml/input/data") else None,
          "code_files": sorted(os.listdir(os.path.dirname(os.path.abspath(__file__))))}
with open(os.environ["PROBE_OUT"], "w") as out:
    json.dump(report, out)
print("probe done")
'''


@pytest.fixture(scope="module")
def backend(docker_client) -> DockerBackend:
    return DockerBackend(docker_client)


def _chown(root: Path) -> None:
    for folder, dirs, files in os.walk(root):
        for name in [folder, *(os.path.join(folder, d) for d in dirs), *(os.path.join(folder, f) for f in files)]:
            os.chown(name, *USER)


def run_step(backend, spec, tmp_path, *, stage=None, timeout_s=None, stop_grace_s=10.0):
    """prepare folders, stage inputs, write config, run; returns (StepExit, folders)."""
    folders = layout.step_folders(tmp_path / "run", spec.node)
    layout.prepare_step_folders(spec, folders)
    if stage:
        stage(folders)
    settings = step_settings(spec, CommandLine(timeout_s=timeout_s, user=f"{USER[0]}:{USER[1]}")).model_copy(update={
        "image": Sourced(value=IMAGE, source=Source.USER), "cpus": Sourced(value=1.0, source=Source.BUILTIN),
        "memory_bytes": Sourced(value=512 * 2**20, source=Source.BUILTIN)})
    layout.write_job_config_files(spec, folders, settings, run_id=RUN_ID)
    _chown(tmp_path / "run")
    launch = layout.build_launch(spec, folders, settings, run_id=RUN_ID, executor_dir=layout.executor_dir(),
                                 stop_grace_s=stop_grace_s)
    handle = backend.prepare(launch)
    return backend.run(handle, folders.log_path, threading.Event()), folders


def _code(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / "src"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    os.chmod(folder, 0o755)
    return folder


def _env(**values):
    return {k: _v(v) for k, v in values.items()}


# ---- the probe ---------------------------------------------------------------------------------

PROCESSING_PATHS = ["/opt/ml/processing/input/data", "/opt/ml/processing/input/signature", "/opt/ml/processing/input/code",
                    "/opt/ml/processing/output/processed", "/opt/ml/processing/output/report", "/opt/ml/config",
                    "/opt/ml/output", "/opt/rtest/executor", "/opt/rtest/meta", "/tmp"]


def test_processing_layout_seen_from_inside(backend, tmp_path):
    code = _code(tmp_path, "main.py", PROBE)
    out = "/opt/ml/processing/output/report/probe.json"
    spec = processing_spec(code)
    spec = spec.model_copy(update={"environment": {**spec.environment, **_env(
        PROBE_PATHS=json.dumps(PROCESSING_PATHS), PROBE_CONFIG_DIR="/opt/ml/config", PROBE_OUT=out)}})

    def stage(folders):
        (folders.input_dir("data") / "raw.csv").write_text("a,b\n1,2\n")

    exit_info, folders = run_step(backend, spec, tmp_path, stage=stage)
    assert exit_info.exit_code == 0, folders.log_path.read_text()
    seen = json.loads((folders.output_dir("report") / "probe.json").read_text())

    assert seen["argv"] == ["--job_type", "training", "--verbose"]
    assert seen["cwd"] == "/opt/ml/processing/input/code" and seen["uid"] == USER[0]
    env = seen["env"]
    assert {k: env[k] for k in ("LABEL_FIELD", "TRAIN_RATIO", "DEBUG", "HOME")} == {
        "LABEL_FIELD": "is_fraud", "TRAIN_RATIO": "0.7", "DEBUG": "true", "HOME": "/tmp"}
    assert "UNSET" not in env and not [k for k in env if k.startswith(("SM_", "TRAINING_JOB"))]
    paths = seen["paths"]
    for path in PROCESSING_PATHS:
        assert paths[path]["is_dir"], path
    writable = {p for p, info in paths.items() if info["writable"]}
    assert writable == {"/opt/ml/processing/input/data", "/opt/ml/processing/input/signature",
                        "/opt/ml/processing/output/processed", "/opt/ml/processing/output/report",
                        "/opt/ml/output", "/opt/rtest/meta", "/tmp"}
    assert seen["code_files"] == ["main.py"]
    configs = seen["configs"]
    assert sorted(configs) == ["processingjobconfig.json", "resourceconfig.json"]
    job = configs["processingjobconfig.json"]
    assert set(job) >= {"ProcessingJobArn", "ProcessingJobName", "AppSpecification", "Environment", "ProcessingInputs",
                        "ProcessingOutputConfig", "ProcessingResources", "RoleArn", "StoppingCondition"}
    assert job["AppSpecification"]["ContainerEntrypoint"] == ["python3", "/opt/ml/processing/input/code/main.py"]
    assert job["AppSpecification"]["ContainerArguments"] == seen["argv"]
    assert job["Environment"]["LABEL_FIELD"] == "is_fraud"
    local_paths = {entry["S3Input"]["LocalPath"].rstrip("/") for entry in job["ProcessingInputs"]}
    assert local_paths == {"/opt/ml/processing/input/data", "/opt/ml/processing/input/signature", "/opt/ml/processing/input/code"}
    assert all(paths[path]["is_dir"] for path in local_paths)  # every declared input is a real folder inside
    assert configs["resourceconfig.json"] == {"current_host": "algo-1", "hosts": ["algo-1"],
                                              "network_interface_name": "eth0", "current_instance_type": "ml.m5.xlarge"}
    assert "probe done" in folders.log_path.read_text()
    assert layout.read_usage(folders)["exit_code"] == 0 and not folders.failure_path.exists()


TRAINING_PATHS = ["/opt/ml/code", "/opt/ml/input/data", "/opt/ml/input/data/train", "/opt/ml/input/data/val",
                  "/opt/ml/input/data/extra", "/opt/ml/input/config", "/opt/ml/model", "/opt/ml/output",
                  "/opt/ml/output/data"]


def test_training_layout_seen_from_inside(backend, tmp_path):
    code = _code(tmp_path, "train.py", PROBE)
    spec = training_spec(code, outputs={"model_output": OutputSpec(name="model_output", container_path="/opt/ml/model")})
    spec = spec.model_copy(update={"environment": {**spec.environment, **_env(
        PROBE_PATHS=json.dumps(TRAINING_PATHS), PROBE_CONFIG_DIR="/opt/ml/input/config", PROBE_OUT="/opt/ml/model/probe.json")}})

    def stage(folders):
        root = folders.input_dir("input_path")
        for channel in ("train", "val"):
            (root / channel).mkdir()
            (root / channel / "part.csv").write_text("x,y\n")
        (folders.input_dir("extra") / "e.json").write_text("{}")

    exit_info, folders = run_step(backend, spec, tmp_path, stage=stage)
    assert exit_info.exit_code == 0, folders.log_path.read_text()
    seen = json.loads((folders.output_dir("model_output") / "probe.json").read_text())

    assert seen["argv"] == ["--cols", "['a', 'b']", "--eta", "0.3", "--label_name", "is_fraud", "--max_depth", "6"]
    assert seen["cwd"] == "/opt/ml/code" and seen["data"] == ["extra", "train", "val"]
    writable = {p for p, info in seen["paths"].items() if info["writable"]}
    assert all(info["is_dir"] for info in seen["paths"].values()), seen["paths"]
    assert writable == {"/opt/ml/input/data", "/opt/ml/input/data/train", "/opt/ml/input/data/val",
                        "/opt/ml/input/data/extra", "/opt/ml/model", "/opt/ml/output", "/opt/ml/output/data"}
    configs = seen["configs"]
    assert configs["hyperparameters.json"] == {"max_depth": "6", "eta": "0.3", "label_name": '"is_fraud"', "cols": '["a", "b"]'}
    assert sorted(configs["inputdataconfig.json"]) == ["extra", "train", "val"]
    assert configs["inputdataconfig.json"]["train"]["TrainingInputMode"] == "File"
    assert configs["inputdataconfig.json"]["train"]["ContentType"] == "text/csv"
    assert configs["resourceconfig.json"]["current_instance_type"] == "ml.m5.large"

    env = seen["env"]
    job = f"rtest-{RUN_ID}-Train"
    hps = '{"cols":["a","b"],"eta":0.3,"label_name":"is_fraud","max_depth":6}'
    expected = {
        "TRAINING_JOB_NAME": job, "CA_REPACK": "false", "HOME": "/tmp",
        "SM_MODEL_DIR": "/opt/ml/model", "SM_CHANNELS": '["extra","train","val"]',
        "SM_CHANNEL_TRAIN": "/opt/ml/input/data/train", "SM_CHANNEL_VAL": "/opt/ml/input/data/val",
        "SM_CHANNEL_EXTRA": "/opt/ml/input/data/extra", "SM_HPS": hps,
        "SM_HP_MAX_DEPTH": "6", "SM_HP_ETA": "0.3", "SM_HP_LABEL_NAME": "is_fraud", "SM_HP_COLS": '["a","b"]',
        "SM_OUTPUT_DATA_DIR": "/opt/ml/output/data", "SM_OUTPUT_DIR": "/opt/ml/output", "SM_INPUT_DIR": "/opt/ml/input",
        "SM_INPUT_CONFIG_DIR": "/opt/ml/input/config", "SM_CURRENT_HOST": "algo-1", "SM_HOSTS": '["algo-1"]',
        "SM_NUM_CPUS": "1", "SM_NUM_GPUS": "0", "SM_CURRENT_INSTANCE_TYPE": "ml.m5.large",
        "SM_USER_ENTRY_POINT": "train.py", "SM_MODULE_DIR": "/opt/ml/code", "SM_MODULE_NAME": "train", "SM_LOG_LEVEL": "20",
        "SM_USER_ARGS": json.dumps(seen["argv"], separators=(",", ":")),
        "SM_RESOURCE_CONFIG": json.dumps(configs["resourceconfig.json"], sort_keys=True, separators=(",", ":")),
        "SM_INPUT_DATA_CONFIG": json.dumps(configs["inputdataconfig.json"], sort_keys=True, separators=(",", ":")),
    }
    assert {k: env.get(k) for k in expected} == expected
    assert env["TRAINING_JOB_ARN"].endswith(f":training-job/{job}")
    training_env = json.loads(env["SM_TRAINING_ENV"])
    assert training_env["hyperparameters"] == json.loads(hps) and training_env["job_name"] == job
    assert training_env["channel_input_dirs"]["train"] == "/opt/ml/input/data/train"
    # No output declared at /opt/ml/output/data: it lives in the step's sm_output folder, and success is written.
    assert (folders.sm_output_dir / "data").is_dir() and folders.success_path.exists()
    assert folders.model_dir.exists() is False


# ---- failures, signals, usage ------------------------------------------------------------------


def _simple(tmp_path, script: str, name: str = "main.py", **fields):
    code = _code(tmp_path, name, script)
    return make_spec(code, outputs={"out": OutputSpec(name="out", container_path="/opt/ml/processing/output/out")}, **fields)


def test_crash_gives_nonzero_exit_and_traceback_failure(backend, tmp_path):
    spec = _simple(tmp_path, "print('loading')\nimport json\njson.loads('{not json')\n")
    exit_info, folders = run_step(backend, spec, tmp_path)
    assert exit_info.exit_code == 1 and not exit_info.timed_out
    reason = layout.read_failure_reason(folders)
    assert reason.startswith("json.decoder.JSONDecodeError: ") and "\n\nTraceback (most recent call last):" in reason
    assert "loading" in folders.log_path.read_text()
    assert layout.read_usage(folders)["exit_code"] == 1


def test_script_written_failure_is_kept(backend, tmp_path):
    script = "open('/opt/ml/output/failure', 'w').write('Label column is_fraud missing from train.csv')\nraise SystemExit(5)\n"
    exit_info, folders = run_step(backend, _simple(tmp_path, script), tmp_path)
    assert exit_info.exit_code == 5
    assert layout.read_failure_reason(folders) == "Label column is_fraud missing from train.csv"


def test_missing_entry_point_fails_clearly(backend, tmp_path):
    spec = _simple(tmp_path, "print('x')\n", name="other.py", entry_point="preprocess.py")
    exit_info, folders = run_step(backend, spec, tmp_path)
    assert exit_info.exit_code == 2
    reason = layout.read_failure_reason(folders)
    assert "/opt/ml/processing/input/code/preprocess.py not found" in reason and "other.py" in reason


def test_usage_is_recorded(backend, tmp_path):
    script = "block = bytearray(150 * 2**20)\nfor i in range(0, len(block), 4096):\n    block[i] = 1\n"
    exit_info, folders = run_step(backend, _simple(tmp_path, script), tmp_path)
    assert exit_info.exit_code == 0, folders.log_path.read_text()
    usage = layout.read_usage(folders)
    assert usage["exit_code"] == 0 and usage["max_rss_bytes"] > 150 * 2**20 and usage["cpu_time_s"] > 0
    assert usage["ended_at"] >= usage["started_at"]


def test_timeout_sigterm_reaches_the_script(backend, tmp_path):
    script = (
        "import signal, sys, time\n"
        "def bye(*a):\n    open('/opt/ml/processing/output/out/term.txt', 'w').write('got SIGTERM')\n    sys.exit(143)\n"
        "signal.signal(signal.SIGTERM, bye)\nprint('waiting', flush=True)\ntime.sleep(120)\n"
    )
    exit_info, folders = run_step(backend, _simple(tmp_path, script), tmp_path, timeout_s=2, stop_grace_s=8)
    assert exit_info.timed_out and exit_info.exit_code == 143
    assert exit_info.duration_s < 8  # the script left on SIGTERM; no SIGKILL after the grace period was needed
    assert (folders.output_dir("out") / "term.txt").read_text() == "got SIGTERM"
    assert layout.read_usage(folders)["exit_code"] == 143
    assert "waiting" in folders.log_path.read_text()


def test_run_folder_stays_owned_by_the_user(backend, tmp_path):
    script = "import os\nos.makedirs('/opt/ml/processing/output/out/deep/er')\nopen('/opt/ml/processing/output/out/deep/er/f', 'w').write('x')\n"
    spec = _simple(tmp_path, script)
    spec = spec.model_copy(update={"inputs": {"a": InputSpec(name="a", container_path="/opt/ml/processing/input/a")}})
    exit_info, folders = run_step(backend, spec, tmp_path)
    assert exit_info.exit_code == 0, folders.log_path.read_text()
    owners = {(p.stat().st_uid, p.stat().st_gid) for p in folders.root.rglob("*")}
    assert owners == {USER}, owners  # nothing root-owned that the user could not delete
