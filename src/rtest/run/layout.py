"""Host side of one step: its folders, the JSON files SageMaker would write, and its StepLaunch.

Every path a script sees is the one SageMaker gives it (see the container contract
doc); each is a bind mount of a folder under ``<run_dir>/<node>/``:

  input/<name>/   staged inputs          output/<name>/  declared outputs
  config/         the job's JSON files   sm_output/      /opt/ml/output (failure, success, data/)
  model/          training's /opt/ml/model when no output declares it (a kind's ``own_mounts``)
  meta/           /opt/rtest/meta (usage.json)         log.txt  the script's stdout+stderr
"""

from __future__ import annotations

import hashlib
import json
import math
import posixpath
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath

from rtest.errors import RtestError
from rtest.jobs.base import EXECUTOR_PATH, LOG_PATH, META_PATH, SM_OUTPUT_PATH, JobFiles, Placed, resource_config
from rtest.plan.container_paths import in_code_folder
from rtest.plan.model import ScriptExecutionSpec
from rtest.plan.settings import StepSettings
from rtest.run import untrusted
from rtest.run.backends.base import Mount, StepLaunch

BOOTSTRAP_PATH = EXECUTOR_PATH + "/bootstrap.py"
FAILURE_REASON_CHARS = 8000  # read as at most this many bytes from the end of the failure file
USAGE_MAX_BYTES = 64 * 1024
_SAFE = re.compile(r"[A-Za-z0-9_.-]+")


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
# The plan checked every container path (plan/container_paths): absolute, no two at one place,
# none inside the code folder but unfed inputs, which are not mounted (the code folder shows them).


def _step_mounts(spec: ScriptExecutionSpec, folders: StepFolders) -> list[Mount]:
    """Every mount but the code and the executor."""
    kind = spec.kind
    mounts = [Mount(host=folders.input_dir(n), container=posixpath.normpath(i.container_path))
              for n, i in spec.inputs.items() if not in_code_folder(spec, i.container_path)]
    mounts += [Mount(host=folders.output_dir(n), container=posixpath.normpath(o.container_path))
               for n, o in spec.outputs.items()]
    declared = {m.container for m in mounts}
    mounts += [Mount(host=folders.root / name, container=path)
               for name, path in kind.own_mounts.items() if path not in declared]
    mounts += [
        Mount(host=folders.sm_output_dir, container=kind.output_path),
        Mount(host=folders.config_dir, container=kind.config_path, read_only=True),
        Mount(host=folders.meta_dir, container=META_PATH),
        Mount(host=folders.log_path, container=LOG_PATH),
    ]
    return mounts


def prepare_step_folders(spec: ScriptExecutionSpec, folders: StepFolders) -> None:
    """Create every folder a mount needs (idempotent: it runs again after a container was created ahead)."""
    mounts = _step_mounts(spec, folders)
    for mount in mounts:
        if mount.container == LOG_PATH:
            mount.host.parent.mkdir(parents=True, exist_ok=True)
            mount.host.touch()  # a bind of a missing file would make the engine create a folder
        else:
            mount.host.mkdir(parents=True, exist_ok=True)
    for name in spec.kind.output_folders:
        (folders.sm_output_dir / name).mkdir(exist_ok=True)
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
                 executor_dir: Path, stop_grace_s: float = 10.0, max_log_bytes: int | None = None) -> StepLaunch:
    """One container's worth of SageMaker: the bootstrap runs the entry point with the job's arguments."""
    code = spec.kind.code_path
    fixed = [Mount(host=spec.source_dir, container=code, read_only=True),
             Mount(host=executor_dir, container=EXECUTOR_PATH, read_only=True)]
    mounts = fixed + _step_mounts(spec, folders)
    assert len({m.container for m in mounts}) == len(mounts), f"{spec.node}: a plan with clashing container paths"
    mounts = [m.model_copy(update={"host": m.host.resolve()}) for m in mounts]  # the engine wants absolute paths
    return StepLaunch(
        run_id=run_id, node=spec.node, name=safe_name(f"rtest-{run_id}-{spec.node}"), image=settings.image.value,
        command=["python3", BOOTSTRAP_PATH, "--", *spec.argv()],
        environment=_environment(spec, run_id, settings.cpus.value, max_log_bytes), mounts=mounts,
        user=settings.user.value, network=settings.network.value, working_dir=code,
        timeout_s=settings.timeout_s.value, stop_grace_s=stop_grace_s,
        cpus=settings.cpus.value, memory_bytes=settings.memory_bytes.value, max_log_bytes=max_log_bytes,
        instance_type=spec.instance_type.value, memory_is_users=settings.memory_bytes.field == "--memory",
    )


def _environment(spec: ScriptExecutionSpec, run_id: str, cpus: float | None,
                 max_log_bytes: int | None = None) -> dict[str, str]:
    # The container runs as the invoking uid (or an unprivileged one), which has no home in the image.
    env = {"HOME": "/tmp", **spec.env()}
    env.update(spec.kind.environment(job_name(run_id, spec.node)))
    env.update(RTEST_JOB_KIND=spec.job_kind, RTEST_ENTRY_POINT=entry_point_path(spec), RTEST_LOG=LOG_PATH,
               RTEST_META_DIR=META_PATH, RTEST_CODE_DIR=spec.kind.code_path)
    if cpus:
        env["RTEST_NUM_CPUS"] = str(max(1, math.ceil(cpus)))
    if max_log_bytes:
        env["RTEST_MAX_LOG_BYTES"] = str(max_log_bytes)
    return env


def entry_point_path(spec: ScriptExecutionSpec) -> str:
    return posixpath.join(spec.kind.code_path, PurePosixPath(spec.entry_point).as_posix())


# ---- the job's JSON files -----------------------------------------------------------------


def write_job_config_files(spec: ScriptExecutionSpec, folders: StepFolders, settings: StepSettings, *,
                           run_id: str) -> None:
    """What SageMaker writes into the container; call it after the inputs were staged (channels come from them)."""
    config = folders.config_dir
    config.mkdir(parents=True, exist_ok=True)
    _write_json(config / "resourceconfig.json", resource_config(spec.instance_type.value))
    for name, value in spec.kind.config_files(job_files(spec, folders, settings, run_id=run_id)).items():
        _write_json(config / name, value)


def job_files(spec: ScriptExecutionSpec, folders: StepFolders, settings: StepSettings, *, run_id: str) -> JobFiles:
    """The plain values a job kind's config writer reads: this step's spec, host folders and settings."""
    return JobFiles(
        job_name=job_name(run_id, spec.node), image=settings.image.value, entry_point=entry_point_path(spec),
        argv=spec.argv(), environment=spec.env(), code_dir=spec.source_dir,
        inputs=[Placed(n, folders.input_dir(n), i.container_path) for n, i in spec.inputs.items()],
        outputs=[Placed(n, folders.output_dir(n), o.container_path) for n, o in spec.outputs.items()],
        instance_type=spec.instance_type.value, instance_count=spec.instance_count,
        max_runtime_s=settings.max_runtime_s(), hyperparameters=spec.hyperparameter_values(),
    )


def _write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")


# ---- reading what the container left -------------------------------------------------------


def read_failure_reason(folders: StepFolders, exited: str = "the script failed") -> str | None:
    """The failure file's text (the end of it when long: a traceback's last lines say the most).

    The step wrote it, so it is read bounded and never followed: a link, FIFO or device there gives
    a note saying so instead of its contents.
    """
    shown_as = f"{SM_OUTPUT_PATH}/failure"  # every kind's output folder
    text, note = untrusted.read_small_text(folders.failure_path, FAILURE_REASON_CHARS, shown_as=shown_as, tail=True)
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
