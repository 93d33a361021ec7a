"""Host side of one step: its folders, the JSON files SageMaker would write, and its StepLaunch.

Every path a script sees is the one SageMaker gives it (see the container contract
doc); each is a bind mount of a folder under ``<run_dir>/<node>/``:

  input/<name>/   staged inputs          output/<name>/  declared outputs
  config/         the job's JSON files   sm_output/      /opt/ml/output (failure, success, data/)
  model/          training's /opt/ml/model when no output declares it
  meta/           /opt/rtest/meta (usage.json)         log.txt  the script's stdout+stderr
"""

from __future__ import annotations

import hashlib
import json
import math
import posixpath
import re
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from itertools import islice
from pathlib import Path, PurePosixPath

from rtest.contract import CHANNEL_ROOT, CODE_PATHS, CONFIG_PATHS, MODEL_PATH, SM_OUTPUT_PATH
from rtest.errors import PlanError, RtestError
from rtest.plan.model import ScriptExecutionSpec
from rtest.plan.settings import StepSettings
from rtest.run import untrusted
from rtest.run.backends.base import Mount, StepLaunch
EXECUTOR_PATH = "/opt/rtest/executor"
BOOTSTRAP_PATH = EXECUTOR_PATH + "/bootstrap.py"
META_PATH = "/opt/rtest/meta"
LOG_PATH = "/opt/rtest/log.txt"
HOST_NAME = "algo-1"
LOCAL_ACCOUNT = "000000000000"  # no AWS account is involved; ARNs only keep their shape
ROLE_ARN = f"arn:aws:iam::{LOCAL_ACCOUNT}:role/rtest-local"
DEFAULT_VOLUME_GB = 30  # the SageMaker SDK's default volume_size
FAILURE_REASON_CHARS = 8000  # read as at most this many bytes from the end of the failure file
USAGE_MAX_BYTES = 64 * 1024
_SAFE = re.compile(r"[A-Za-z0-9_.-]+")
_CONTENT_TYPES = {".csv": "text/csv", ".parquet": "application/x-parquet", ".json": "application/json",
                  ".jsonl": "application/jsonlines", ".libsvm": "text/libsvm", ".pb": "application/x-recordio-protobuf"}


@dataclass(frozen=True)
class StepFolders:
    root: Path

    def input_dir(self, name: str) -> Path:
        return self.root / "input" / safe_name(name)

    def output_dir(self, name: str) -> Path:
        return self.root / "output" / safe_name(name)

    # Fixed places; see the module docstring for what is mounted where.
    config_dir = property(lambda self: self.root / "config")
    sm_output_dir = property(lambda self: self.root / "sm_output")
    model_dir = property(lambda self: self.root / "model")
    meta_dir = property(lambda self: self.root / "meta")
    log_path = property(lambda self: self.root / "log.txt")
    failure_path = property(lambda self: self.sm_output_dir / "failure")
    success_path = property(lambda self: self.sm_output_dir / "success")
    usage_path = property(lambda self: self.meta_dir / "usage.json")


def safe_name(name: str) -> str:
    """``name`` if it is safe as a folder or container name, else a cleaned form plus a hash (two names never merge)."""
    if _SAFE.fullmatch(name) and name not in (".", ".."):
        return name
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "x"
    return f"{cleaned[:80]}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def step_folders(run_dir: Path, node: str) -> StepFolders:
    return StepFolders(Path(run_dir) / safe_name(node))


def job_name(run_id: str, node: str) -> str:
    """SageMaker job names: [a-zA-Z0-9-], at most 63 characters."""
    raw = f"rtest-{run_id}-{node}"
    name = re.sub(r"-{2,}", "-", re.sub(r"[^a-zA-Z0-9-]", "-", raw)).strip("-")
    if len(name) > 63:
        name = f"{name[:54].rstrip('-')}-{hashlib.sha1(raw.encode()).hexdigest()[:8]}"
    return name


# ---- mounts -------------------------------------------------------------------------------


def _container_path(spec: ScriptExecutionSpec, what: str, path: str) -> str:
    if not path.startswith("/"):
        raise PlanError(f"Node {spec.node}: {what} has container path {path!r}, which is not absolute; "
                        "give it an absolute path such as /opt/ml/processing/input/<name> in the step interface.")
    return posixpath.normpath(path)


def _labelled_mounts(spec: ScriptExecutionSpec, folders: StepFolders) -> list[tuple[str, Mount]]:
    """Every mount but the code and the executor, each with the words that name it in an error."""
    mounts = [(f"input {n!r}", Mount(host=folders.input_dir(n),
                                     container=_container_path(spec, f"input {n!r}", i.container_path)))
              for n, i in spec.inputs.items()]
    mounts += [(f"output {n!r}", Mount(host=folders.output_dir(n),
                                       container=_container_path(spec, f"output {n!r}", o.container_path)))
               for n, o in spec.outputs.items()]
    if spec.job_kind == "training" and MODEL_PATH not in {m.container for _, m in mounts}:
        mounts.append(("rtest's model folder", Mount(host=folders.model_dir, container=MODEL_PATH)))
    mounts += [
        ("rtest's output folder", Mount(host=folders.sm_output_dir, container=SM_OUTPUT_PATH)),
        ("rtest's config folder",
         Mount(host=folders.config_dir, container=CONFIG_PATHS[spec.job_kind], read_only=True)),
        ("rtest's meta folder", Mount(host=folders.meta_dir, container=META_PATH)),
        ("rtest's log file", Mount(host=folders.log_path, container=LOG_PATH)),
    ]
    return mounts


def _checked_mounts(spec: ScriptExecutionSpec, labelled: list[tuple[str, Mount]]) -> list[Mount]:
    """Two folders at one path, or a folder inside the read-only code, would fail at container start."""
    code = CODE_PATHS[spec.job_kind]
    seen: dict[str, str] = {}
    for label, mount in labelled:
        if mount.container in seen:
            raise PlanError(f"Node {spec.node}: {seen[mount.container]} and {label} both use container path "
                            f"{mount.container}; give each its own path in the step interface.")
        if mount.container.startswith(code + "/"):
            raise PlanError(f"Node {spec.node}: {label} at {mount.container} lies inside the read-only code folder "
                            f"{code}; move it out of the code folder in the step interface.")
        seen[mount.container] = label
    return [mount for _, mount in labelled]


def prepare_step_folders(spec: ScriptExecutionSpec, folders: StepFolders) -> None:
    """Create every folder a mount needs (idempotent: it runs again after a container was created ahead)."""
    mounts = _checked_mounts(spec, _labelled_mounts(spec, folders))
    for mount in mounts:
        if mount.container == LOG_PATH:
            mount.host.parent.mkdir(parents=True, exist_ok=True)
            mount.host.touch()  # a bind of a missing file would make the engine create a folder
        else:
            mount.host.mkdir(parents=True, exist_ok=True)
    if spec.job_kind == "training":
        (folders.sm_output_dir / "data").mkdir(exist_ok=True)
    _make_mount_points(mounts)


def _make_mount_points(mounts: list[Mount]) -> None:
    """A mount inside another needs a folder there; made now, it is the user's, not root's."""
    folders = [m for m in mounts if not m.read_only and m.container != LOG_PATH]
    for mount in mounts:
        parents = [p for p in folders if mount.container.startswith(p.container.rstrip("/") + "/")]
        if parents:
            parent = max(parents, key=lambda p: len(p.container))
            (parent.host / posixpath.relpath(mount.container, parent.container)).mkdir(parents=True, exist_ok=True)


def build_launch(spec: ScriptExecutionSpec, folders: StepFolders, settings: StepSettings, *, run_id: str,
                 executor_dir: Path, stop_grace_s: float = 10.0) -> StepLaunch:
    """One container's worth of SageMaker: the bootstrap runs the entry point with the job's arguments."""
    code = CODE_PATHS[spec.job_kind]
    fixed = [("the code folder", Mount(host=spec.source_dir, container=code, read_only=True)),
             ("rtest's executor", Mount(host=executor_dir, container=EXECUTOR_PATH, read_only=True))]
    mounts = _checked_mounts(spec, fixed + _labelled_mounts(spec, folders))
    mounts = [m.model_copy(update={"host": m.host.resolve()}) for m in mounts]  # the engine wants absolute paths
    return StepLaunch(
        run_id=run_id, node=spec.node, name=safe_name(f"rtest-{run_id}-{spec.node}"), image=settings.image.value,
        command=["python3", BOOTSTRAP_PATH, "--", *spec.argv()],
        environment=_environment(spec, run_id, settings.cpus.value), mounts=mounts,
        user=settings.user.value, network=settings.network.value, working_dir=code,
        timeout_s=settings.timeout_s.value, stop_grace_s=stop_grace_s,
        cpus=settings.cpus.value, memory_bytes=settings.memory_bytes.value,
    )


def _environment(spec: ScriptExecutionSpec, run_id: str, cpus: float | None) -> dict[str, str]:
    # The container runs as the invoking uid, which has no home in the image.
    env = {"HOME": "/tmp", **spec.env()}
    if spec.job_kind == "training":  # set by the service; for processing the Environment dict is all there is
        name = job_name(run_id, spec.node)
        env["TRAINING_JOB_NAME"] = name
        env["TRAINING_JOB_ARN"] = f"arn:aws:sagemaker:local:{LOCAL_ACCOUNT}:training-job/{name}"
    env.update(RTEST_JOB_KIND=spec.job_kind, RTEST_ENTRY_POINT=entry_point_path(spec), RTEST_LOG=LOG_PATH,
               RTEST_META_DIR=META_PATH, RTEST_CODE_DIR=CODE_PATHS[spec.job_kind])
    if cpus:
        env["RTEST_NUM_CPUS"] = str(max(1, math.ceil(cpus)))
    return env


def entry_point_path(spec: ScriptExecutionSpec) -> str:
    return posixpath.join(CODE_PATHS[spec.job_kind], PurePosixPath(spec.entry_point).as_posix())


# ---- the job's JSON files -----------------------------------------------------------------


def write_job_config_files(spec: ScriptExecutionSpec, folders: StepFolders, settings: StepSettings, *,
                           run_id: str) -> None:
    """What SageMaker writes into the container; call it after the inputs were staged (channels come from them)."""
    config = folders.config_dir
    config.mkdir(parents=True, exist_ok=True)
    _write_json(config / "resourceconfig.json", {
        "current_host": HOST_NAME, "hosts": [HOST_NAME], "network_interface_name": "eth0",
        "current_instance_type": spec.instance_type.value,
    })
    if spec.job_kind == "processing":
        _write_json(config / "processingjobconfig.json", processing_job_config(spec, folders, settings, run_id=run_id))
        return
    hyperparameters = {k: json.dumps(v) for k, v in spec.hyperparameter_values().items() if v is not None}
    _write_json(config / "hyperparameters.json", hyperparameters)
    _write_json(config / "inputdataconfig.json", {
        channel: _channel_config(folder) for channel, folder in training_channels(spec, folders).items()
    })


def processing_job_config(spec: ScriptExecutionSpec, folders: StepFolders, settings: StepSettings, *,
                          run_id: str) -> dict:
    name = job_name(run_id, spec.node)
    inputs = [_processing_input(name_, folders.input_dir(name_), item.container_path)
              for name_, item in spec.inputs.items()]
    inputs.append(_processing_input("code", spec.source_dir, CODE_PATHS["processing"]))
    outputs = [{"OutputName": n, "AppManaged": False, "S3Output": {
        "S3Uri": folders.output_dir(n).resolve().as_uri(), "LocalPath": o.container_path, "S3UploadMode": "EndOfJob"}}
        for n, o in spec.outputs.items()]
    return {
        "ProcessingJobArn": f"arn:aws:sagemaker:local:{LOCAL_ACCOUNT}:processing-job/{name}",
        "ProcessingJobName": name,
        "AppSpecification": {"ImageUri": settings.image.value,
                             "ContainerEntrypoint": ["python3", entry_point_path(spec)],
                             "ContainerArguments": spec.argv()},
        "Environment": spec.env(),
        "ProcessingInputs": inputs,
        "ProcessingOutputConfig": {"Outputs": outputs},
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": spec.instance_count,
                                                  "InstanceType": spec.instance_type.value,
                                                  "VolumeSizeInGB": DEFAULT_VOLUME_GB}},
        "RoleArn": ROLE_ARN,
        "StoppingCondition": {"MaxRuntimeInSeconds": settings.max_runtime_s()},
    }


def _processing_input(name: str, host: Path, local_path: str) -> dict:
    return {"InputName": name, "AppManaged": False, "S3Input": {
        "S3Uri": Path(host).resolve().as_uri(), "LocalPath": local_path, "S3DataType": "S3Prefix",
        "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated", "S3CompressionType": "None"}}


def training_channels(spec: ScriptExecutionSpec, folders: StepFolders) -> dict[str, Path]:
    """Channel name -> host folder: inputs at /opt/ml/input/data/<channel>, and the sub-folders of one at the root."""
    channels: dict[str, Path] = {}
    for name, item in spec.inputs.items():
        path = posixpath.normpath(item.container_path)
        staged = folders.input_dir(name)
        if path == CHANNEL_ROOT and staged.is_dir():
            channels.update({sub.name: sub for sub in sorted(staged.iterdir())
                             if sub.is_dir() and not sub.name.startswith(".")})
        elif path.startswith(CHANNEL_ROOT + "/"):
            channels[path[len(CHANNEL_ROOT) + 1:].split("/")[0]] = staged
    return dict(sorted(channels.items()))


def _channel_config(folder: Path) -> dict:
    config = {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
    files = islice(folder.rglob("*"), 2000) if folder.is_dir() else ()  # a sample is enough, and stays quick
    suffixes = Counter(p.suffix.lower() for p in files if p.is_file())
    known = [(count, _CONTENT_TYPES[s]) for s, count in suffixes.items() if s in _CONTENT_TYPES]
    if known:  # SageMaker only has a ContentType when the user gave one; the files' type is the best stand-in
        config["ContentType"] = max(known)[1]
    return config


def _write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")


# ---- reading what the container left -------------------------------------------------------


def read_failure_reason(folders: StepFolders, exited: str = "the script failed") -> str | None:
    """The failure file's text (the end of it when long: a traceback's last lines say the most).

    The step wrote it, so it is read bounded and never followed: a link, FIFO or device there gives
    a note saying so instead of its contents.
    """
    text, note = untrusted.read_small_text(folders.failure_path, FAILURE_REASON_CHARS, shown_as=f"{SM_OUTPUT_PATH}/failure", tail=True)
    if note:
        return f"{exited}; {note}"
    text = (text or "").strip()
    if len(text) > FAILURE_REASON_CHARS:
        text = "..." + text[-FAILURE_REASON_CHARS:]
    elif text and folders.failure_path.stat(follow_symlinks=False).st_size > FAILURE_REASON_CHARS:
        text = "..." + text
    return text or None


def read_usage(folders: StepFolders) -> dict | None:
    text, _ = untrusted.read_small_text(folders.usage_path, USAGE_MAX_BYTES, shown_as=f"{META_PATH}/usage.json")
    try:
        usage = json.loads(text) if text else None
    except ValueError:
        return None
    return usage if isinstance(usage, dict) else None


def executor_dir() -> Path:
    """The bootstrap's folder: inside an installed wheel, or the source tree's executor/."""
    packaged = Path(str(resources.files("rtest") / "_executor"))
    for candidate in (packaged, Path(__file__).resolve().parents[3] / "executor"):
        if (candidate / "bootstrap.py").is_file():
            return candidate
    raise RtestError("rtest's executor/bootstrap.py is missing from its installation; "
                     "reinstall rtest (pip install --force-reinstall rtest).")
