"""Host side of a step's SageMaker layout: folders, job config files, the StepLaunch, limits."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from rtest.errors import PlanError
from rtest.plan.container_paths import container_path_problems
from rtest.plan.limits import GIB, NANO, host_memory_bytes, instance_shape, limits_for
from rtest.plan.model import InputSpec, JobArgument, OutputSpec, ScriptExecutionSpec, Source, Sourced
from rtest.plan.settings import CommandLine, step_settings
from rtest.run import layout
from rtest.run.backends.base import Mount, run_labels

RUN_ID = "20240101T000000-abc123"


def _v(value, source=Source.CONFIG) -> Sourced:
    return Sourced(value=value, source=source)


def make_spec(source_dir: Path, kind: str = "processing", **fields) -> ScriptExecutionSpec:
    """A spec as the planner would make one; fields override the defaults."""
    defaults = dict(
        node="Preprocess", step_type="Preprocess", job_kind=kind, script_name="main", entry_point="main.py",
        source_dir=source_dir, instance_type=_v("ml.m5.xlarge"), framework=_v("python"),
        framework_version=_v("3"), image=_v("rtest/sagemaker-base:py3"),
    )
    return ScriptExecutionSpec(**{**defaults, **fields})


def processing_spec(source_dir: Path, **fields) -> ScriptExecutionSpec:
    defaults = dict(
        inputs={"data": InputSpec(name="data", container_path="/opt/ml/processing/input/data"),
                "signature": InputSpec(name="signature", container_path="/opt/ml/processing/input/signature/")},
        outputs={"processed": OutputSpec(name="processed", container_path="/opt/ml/processing/output/processed"),
                 "report": OutputSpec(name="report", container_path="/opt/ml/processing/output/report")},
        environment={"LABEL_FIELD": _v("is_fraud"), "TRAIN_RATIO": _v(0.7), "DEBUG": _v(True), "UNSET": _v(None)},
        job_arguments=[JobArgument(flag="--job_type", value=_v("training")), JobArgument(flag="--verbose")],
        max_runtime_s=_v(1200),
    )
    return make_spec(source_dir, **{**defaults, **fields})


def training_spec(source_dir: Path, **fields) -> ScriptExecutionSpec:
    defaults = dict(
        node="Train", step_type="Train", entry_point="train.py", script_name="train",
        inputs={"input_path": InputSpec(name="input_path", container_path="/opt/ml/input/data"),
                "extra": InputSpec(name="extra", container_path="/opt/ml/input/data/extra")},
        outputs={"model_output": OutputSpec(name="model_output", container_path="/opt/ml/model"),
                 "evaluation_output": OutputSpec(name="evaluation_output", container_path="/opt/ml/output/data")},
        environment={"CA_REPACK": _v("false")},
        hyperparameters={"max_depth": _v(6), "eta": _v(0.3), "label_name": _v("is_fraud"), "cols": _v(["a", "b"]),
                         "missing": _v(None)},
        instance_type=_v("ml.m5.large"),
    )
    return make_spec(source_dir, "training", **{**defaults, **fields})


@pytest.fixture
def code(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "main.py").write_text("print('hi')\n")
    (folder / "train.py").write_text("print('hi')\n")
    return folder


def _settings(spec, image: str | None = None, **flags):
    """The spec's own settings (flags as on the command line), an image and 2 CPUs / 4 GiB unless limits are off."""
    settings = step_settings(spec, CommandLine(**flags))
    update = {"image": _v(image, Source.USER)} if image else {}
    if flags.get("limits", True):
        update.update(cpus=_v(2.0, Source.BUILTIN), memory_bytes=_v(4 * GIB, Source.BUILTIN))
    return settings.model_copy(update=update)


def _launch(spec, folders, tmp_path, limits: bool = True, **flags):
    settings = _settings(spec, **{"user": "1000:1000", "timeout_s": 30.0, "limits": limits, **flags})
    return layout.build_launch(spec, folders, settings, run_id=RUN_ID, executor_dir=tmp_path / "executor")


# ---- folders ---------------------------------------------------------------------------------


def test_step_folders_paths(tmp_path):
    folders = layout.step_folders(tmp_path, "Preprocess")
    assert folders.root == tmp_path / "Preprocess"
    assert folders.input_dir("data") == tmp_path / "Preprocess" / "input" / "data"
    assert folders.output_dir("out") == tmp_path / "Preprocess" / "output" / "out"
    assert folders.log_path == folders.root / "log.txt"
    assert folders.failure_path == folders.sm_output_dir / "failure"
    assert folders.usage_path == folders.meta_dir / "usage.json"


@pytest.mark.parametrize("name", ["a b", "../escape", "x/y", "..", "Ünïcode"])
def test_unsafe_node_names_become_distinct_safe_folders(tmp_path, name):
    folder = layout.step_folders(tmp_path, name).root
    assert folder.parent == tmp_path and re.fullmatch(r"[A-Za-z0-9_.-]+", folder.name) and folder.name not in (".", "..")
    lookalike = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "x"
    assert folder != layout.step_folders(tmp_path, lookalike).root  # cleaning never merges two names


def test_prepare_creates_every_mount_source_and_an_empty_log(tmp_path, code):
    spec = training_spec(code)
    folders = layout.step_folders(tmp_path, spec.node)
    layout.prepare_step_folders(spec, folders)
    layout.prepare_step_folders(spec, folders)  # twice: a container may have been created ahead
    for path in (folders.input_dir("input_path"), folders.input_dir("extra"), folders.output_dir("model_output"),
                 folders.output_dir("evaluation_output"), folders.config_dir, folders.sm_output_dir, folders.meta_dir):
        assert path.is_dir(), path
    assert folders.log_path.is_file() and folders.log_path.stat().st_size == 0
    # Mount points inside other mounts exist beforehand, so the engine never makes root-owned folders there.
    assert (folders.input_dir("input_path") / "extra").is_dir()
    assert (folders.sm_output_dir / "data").is_dir()
    assert not folders.model_dir.exists()  # an output declares /opt/ml/model


def test_prepare_keeps_the_log(tmp_path, code):
    spec = processing_spec(code)
    folders = layout.step_folders(tmp_path, spec.node)
    layout.prepare_step_folders(spec, folders)
    folders.log_path.write_text("kept\n")
    layout.prepare_step_folders(spec, folders)
    assert folders.log_path.read_text() == "kept\n"


# The rule that container paths can be mounted is checked once, at plan time (plan/container_paths);
# the layout trusts a checked plan.


def test_two_mounts_at_one_path_are_a_plan_error(tmp_path, code):
    spec = processing_spec(code, outputs={"clash": OutputSpec(name="clash", container_path="/opt/ml/processing/input/data")})
    messages = [m for _, m in container_path_problems(spec)]
    assert messages == ["Preprocess: output clash and input data share the container path /opt/ml/processing/input/data; "
                        "give each its own path in the step interface"]
    own = processing_spec(code, outputs={"o": OutputSpec(name="o", container_path="/opt/ml/config/")})
    assert [m for _, m in container_path_problems(own)] == [
        "Preprocess: output o and rtest's config folder share the container path /opt/ml/config; "
        "give each its own path in the step interface"]


def test_relative_or_code_nested_paths_are_plan_errors(tmp_path, code):
    relative = processing_spec(code, outputs={"o": OutputSpec(name="o", container_path="output/o")})
    assert container_path_problems(relative) == [
        ("outputs.o", "Preprocess: output o has the relative container path 'output/o'; make it absolute in the interface")]
    nested = processing_spec(code, outputs={"o": OutputSpec(name="o", container_path="/opt/ml/processing/input/code/o")})
    assert any("inside the read-only code folder /opt/ml/processing/input/code" in m
               for _, m in container_path_problems(nested))
    assert container_path_problems(processing_spec(code)) == [] and container_path_problems(training_spec(code)) == []


def test_an_unfed_input_inside_the_code_folder_is_not_mounted(tmp_path, code):
    """cursus's training interfaces declare /opt/ml/code/hyperparams/hyperparameters.json: the code folder shows it."""
    hp = InputSpec(name="hp", container_path="/opt/ml/code/hyperparams/hyperparameters.json", required=False)
    spec = training_spec(code, inputs={**training_spec(code).inputs, "hp": hp})
    assert container_path_problems(spec) == []
    assert container_path_problems(spec, fed={"hp"}) == [("inputs.hp", (
        "Train: input hp at /opt/ml/code/hyperparams/hyperparameters.json lies inside the read-only code folder "
        "/opt/ml/code; move it out of the code folder in the step interface"))]
    launch = _launch(spec, layout.step_folders(tmp_path / "run", spec.node), tmp_path)
    assert not any(m.container.startswith("/opt/ml/code/") for m in launch.mounts)


# ---- job config files ------------------------------------------------------------------------


def _prepared(spec, tmp_path):
    folders = layout.step_folders(tmp_path / "run", spec.node)
    layout.prepare_step_folders(spec, folders)
    return folders


def test_processing_job_config(tmp_path, code):
    spec = processing_spec(code)
    folders = _prepared(spec, tmp_path)
    layout.write_job_config_files(spec, folders, _settings(spec, image="img:1"), run_id=RUN_ID)
    config = json.loads((folders.config_dir / "processingjobconfig.json").read_text())
    assert config["ProcessingJobName"] == f"rtest-{RUN_ID}-Preprocess"
    assert config["ProcessingJobArn"].endswith(f":processing-job/rtest-{RUN_ID}-Preprocess")
    assert config["AppSpecification"] == {"ImageUri": "img:1",
                                          "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/main.py"],
                                          "ContainerArguments": ["--job_type", "training", "--verbose"]}
    assert config["Environment"] == {"LABEL_FIELD": "is_fraud", "TRAIN_RATIO": "0.7", "DEBUG": "true"}
    assert {i["InputName"]: i["S3Input"]["LocalPath"] for i in config["ProcessingInputs"]} == {
        "data": "/opt/ml/processing/input/data", "signature": "/opt/ml/processing/input/signature/",
        "code": "/opt/ml/processing/input/code"}
    assert {o["OutputName"]: o["S3Output"]["LocalPath"] for o in config["ProcessingOutputConfig"]["Outputs"]} == {
        "processed": "/opt/ml/processing/output/processed", "report": "/opt/ml/processing/output/report"}
    assert config["ProcessingResources"]["ClusterConfig"] == {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30}
    assert config["RoleArn"].startswith("arn:aws:iam::")
    assert config["StoppingCondition"] == {"MaxRuntimeInSeconds": 1200}
    resource = json.loads((folders.config_dir / "resourceconfig.json").read_text())
    assert resource == {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0",
                        "current_instance_type": "ml.m5.xlarge"}


def test_processing_max_runtime_defaults_to_a_day(tmp_path, code):
    spec = processing_spec(code).model_copy(update={"max_runtime_s": None})
    folders = _prepared(spec, tmp_path)
    layout.write_job_config_files(spec, folders, _settings(spec, image="img:1"), run_id=RUN_ID)
    config = json.loads((folders.config_dir / "processingjobconfig.json").read_text())
    assert config["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}


def test_training_config_files(tmp_path, code):
    spec = training_spec(code)
    folders = _prepared(spec, tmp_path)
    root = folders.input_dir("input_path")
    for channel, name in (("train", "a.csv"), ("val", "b.csv"), ("test", "c.parquet")):
        (root / channel).mkdir()
        (root / channel / name).write_text("x")
    (root / ".hidden").mkdir()
    (root / "README.txt").write_text("not a channel")
    layout.write_job_config_files(spec, folders, _settings(spec, image="img:1"), run_id=RUN_ID)
    hps = json.loads((folders.config_dir / "hyperparameters.json").read_text())
    assert hps == {"max_depth": "6", "eta": "0.3", "label_name": '"is_fraud"', "cols": '["a", "b"]'}
    channels = json.loads((folders.config_dir / "inputdataconfig.json").read_text())
    assert sorted(channels) == ["extra", "test", "train", "val"]  # "extra" is both a mount point and its own input
    assert all(c["TrainingInputMode"] == "File" for c in channels.values())
    assert channels["train"]["ContentType"] == "text/csv" and channels["test"]["ContentType"] == "application/x-parquet"
    assert "ContentType" not in channels["extra"]
    resource = json.loads((folders.config_dir / "resourceconfig.json").read_text())
    assert resource["current_instance_type"] == "ml.m5.large" and resource["hosts"] == ["algo-1"]
    assert not (folders.config_dir / "processingjobconfig.json").exists()


@pytest.mark.parametrize("node", ["Train", "model_calibration.v2", "x" * 100])
def test_job_names_fit_sagemaker(node):
    name = layout.job_name(RUN_ID, node)
    assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", name), name


# ---- the launch ------------------------------------------------------------------------------


def test_processing_launch(tmp_path, code):
    spec = processing_spec(code)
    folders = _prepared(spec, tmp_path)
    launch = _launch(spec, folders, tmp_path)
    mounts = {m.container: (m.host, m.read_only) for m in launch.mounts}
    assert mounts == {
        "/opt/ml/processing/input/code": (code.resolve(), True),
        "/opt/rtest/executor": ((tmp_path / "executor").resolve(), True),
        "/opt/ml/processing/input/data": (folders.input_dir("data").resolve(), False),
        "/opt/ml/processing/input/signature": (folders.input_dir("signature").resolve(), False),
        "/opt/ml/processing/output/processed": (folders.output_dir("processed").resolve(), False),
        "/opt/ml/processing/output/report": (folders.output_dir("report").resolve(), False),
        "/opt/ml/output": (folders.sm_output_dir.resolve(), False),
        "/opt/ml/config": (folders.config_dir.resolve(), True),
        "/opt/rtest/meta": (folders.meta_dir.resolve(), False),
        "/opt/rtest/log.txt": (folders.log_path.resolve(), False),
    }
    assert launch.command == ["python3", "/opt/rtest/executor/bootstrap.py", "--", "--job_type", "training", "--verbose"]
    assert launch.environment == {
        "HOME": "/tmp", "LABEL_FIELD": "is_fraud", "TRAIN_RATIO": "0.7", "DEBUG": "true",
        "RTEST_JOB_KIND": "processing", "RTEST_ENTRY_POINT": "/opt/ml/processing/input/code/main.py",
        "RTEST_LOG": "/opt/rtest/log.txt", "RTEST_META_DIR": "/opt/rtest/meta",
        "RTEST_CODE_DIR": "/opt/ml/processing/input/code", "RTEST_NUM_CPUS": "2"}
    assert run_labels(launch.run_id, launch.node) == {"rtest.managed": "1", "rtest.run-id": RUN_ID, "rtest.node": "Preprocess",
                                                           "rtest.user": str(os.getuid())}
    assert launch.name == f"rtest-{RUN_ID}-Preprocess" and launch.working_dir == "/opt/ml/processing/input/code"
    assert (launch.user, launch.network, launch.timeout_s) == ("1000:1000", "none", 30.0)
    assert (launch.cpus, launch.memory_bytes) == (2.0, 4 * GIB)


def test_training_launch(tmp_path, code):
    spec = training_spec(code)
    folders = _prepared(spec, tmp_path)
    launch = _launch(spec, folders, tmp_path, limits=False, network="bridge")
    mounts = {m.container: m.host for m in launch.mounts}
    assert mounts["/opt/ml/code"] == code.resolve()
    assert mounts["/opt/ml/input/data"] == folders.input_dir("input_path").resolve()
    assert mounts["/opt/ml/input/data/extra"] == folders.input_dir("extra").resolve()
    assert mounts["/opt/ml/model"] == folders.output_dir("model_output").resolve()
    assert mounts["/opt/ml/output/data"] == folders.output_dir("evaluation_output").resolve()
    assert mounts["/opt/ml/output"] == folders.sm_output_dir.resolve()
    assert mounts["/opt/ml/input/config"] == folders.config_dir.resolve()
    env = launch.environment
    assert env["TRAINING_JOB_NAME"] == f"rtest-{RUN_ID}-Train"
    assert env["TRAINING_JOB_ARN"].endswith(f":training-job/rtest-{RUN_ID}-Train")
    assert env["RTEST_ENTRY_POINT"] == "/opt/ml/code/train.py" and env["CA_REPACK"] == "false"
    assert "RTEST_NUM_CPUS" not in env and launch.cpus is None and launch.network == "bridge"
    assert launch.working_dir == "/opt/ml/code"


def test_training_without_model_output_still_mounts_a_model_folder(tmp_path, code):
    spec = training_spec(code, outputs={})
    folders = _prepared(spec, tmp_path)
    mounts = {m.container: m.host for m in _launch(spec, folders, tmp_path).mounts}
    assert mounts["/opt/ml/model"] == folders.model_dir.resolve() and folders.model_dir.is_dir()


def test_container_names_are_docker_safe(tmp_path, code):
    spec = processing_spec(code, node="my step/1")
    launch = _launch(spec, layout.step_folders(tmp_path, spec.node), tmp_path)
    assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", launch.name) and launch.node == "my step/1"


# ---- reading back, executor ------------------------------------------------------------------


def test_read_failure_and_usage(tmp_path):
    folders = layout.step_folders(tmp_path, "S")
    assert layout.read_failure_reason(folders) is None and layout.read_usage(folders) is None
    folders.sm_output_dir.mkdir(parents=True)
    folders.failure_path.write_text("\n  ")
    assert layout.read_failure_reason(folders) is None
    folders.failure_path.write_text("x" * 20000 + "ValueError: the end\n")
    reason = layout.read_failure_reason(folders)
    assert reason.endswith("ValueError: the end") and len(reason) <= layout.FAILURE_REASON_CHARS + 3
    folders.meta_dir.mkdir()
    folders.usage_path.write_text("{broken")
    assert layout.read_usage(folders) is None
    folders.usage_path.write_text('{"exit_code": 0, "max_rss_bytes": 10}')
    assert layout.read_usage(folders) == {"exit_code": 0, "max_rss_bytes": 10}


def test_executor_dir_holds_the_bootstrap():
    assert (layout.executor_dir() / "bootstrap.py").is_file()


# ---- limits ----------------------------------------------------------------------------------


def test_limits_from_the_table_capped_at_the_host():
    small = limits_for("ml.t3.medium")
    assert small.nano_cpus == min(2, os.cpu_count()) * NANO
    assert small.mem_bytes == min(4 * GIB, host_memory_bytes())
    big = limits_for("ml.m5.4xlarge")
    assert big.nano_cpus == min(16, os.cpu_count()) * NANO
    assert big.mem_bytes == min(64 * GIB, host_memory_bytes())


def test_limits_off_or_local_mean_none():
    assert limits_for("ml.m5.xlarge", enabled=False) is None
    assert limits_for("local") is None and limits_for(None) is None


@pytest.mark.parametrize("instance_type, shape", [
    ("ml.c5.4xlarge", (16, 32.0)), ("ml.r5.large", (2, 16.0)), ("ml.m6i.xlarge", (4, 16.0)),
    ("ml.p3.2xlarge", (8, 64.0)), ("ml.weird", (4, 16)), ("ml.c5.2xlarge", (8, 16)),
])
def test_instance_shapes(instance_type, shape):
    assert instance_shape(instance_type) == shape


def test_a_launch_takes_extra_mounts_and_env_but_no_clashes(tmp_path, code):
    spec = processing_spec(code)
    launch = _launch(spec, _prepared(spec, tmp_path), tmp_path)
    extra = Mount(host=tmp_path / "deps", container="/opt/rtest/deps", read_only=True)
    more = launch.with_extras([extra], {"PYTHONPATH": "/opt/rtest/deps"})
    assert more.mounts[-1] == extra and more.environment["PYTHONPATH"] == "/opt/rtest/deps"
    assert extra not in launch.mounts and "PYTHONPATH" not in launch.environment  # the original is unchanged
    with pytest.raises(PlanError, match="already uses; mount it at another container path"):
        launch.with_extras([Mount(host=tmp_path, container="/opt/ml/output")])
    with pytest.raises(PlanError, match="HOME are already set"):
        launch.with_extras(environment={"HOME": "/root"})
