"""What a SageMaker job kind is to rtest: one ``JobKind`` per kind, each in its own module.

A kind holds everything that differs between SageMaker Processing and Training jobs:
the step types it serves, its container paths, where an input nobody placed goes,
which ``/opt/ml`` literals in a script name its inputs and outputs, the JSON files the
service writes into the container, the environment it adds, and which outputs are
packed when the job ends (training's ``/opt/ml/model`` -> model.tar.gz).

This package imports neither the plan model nor run's folders: a config writer gets a
``JobFiles`` of plain values, so plan/, run/ and inputs/ can all read the kinds.
The in-container bootstrap (stdlib only) has its own branch per kind on ``RTEST_JOB_KIND``;
a kind it does not know runs as a plain script (the processing behaviour).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal

# Paths every kind shares.
SM_OUTPUT_PATH = "/opt/ml/output"  # failure, success; training's data/
# rtest's own paths in every container (the bootstrap reads them from RTEST_* variables).
EXECUTOR_PATH = "/opt/rtest/executor"
META_PATH = "/opt/rtest/meta"
LOG_PATH = "/opt/rtest/log.txt"

# The fake AWS identity the job files carry: no account is involved; ARNs only keep their shape.
HOST_NAME = "algo-1"
LOCAL_ACCOUNT = "000000000000"
ROLE_ARN = f"arn:aws:iam::{LOCAL_ACCOUNT}:role/rtest-local"

NAME_CHARS = "A-Za-z0-9_.-"  # a logical input/output name taken from a path literal


@dataclass(frozen=True)
class ScannedPath:
    """One ``/opt/ml`` literal of a script read as an input or output."""

    direction: Literal["input", "output"]
    name: str
    container_path: str


@dataclass(frozen=True)
class Placed:
    """A logical input or output: its name, the host folder behind it, its container path."""

    name: str
    host: Path
    container_path: str


@dataclass(frozen=True)
class JobFiles:
    """The plain values a kind's config writer needs (built by run/layout from spec, folders and settings)."""

    job_name: str
    image: str
    entry_point: str  # container path of the script
    argv: list[str]
    environment: dict[str, str]
    code_dir: Path  # host folder mounted at the kind's code path
    inputs: list[Placed]
    outputs: list[Placed]
    instance_type: str
    instance_count: int
    max_runtime_s: int
    hyperparameters: dict[str, Any] = field(default_factory=dict)


class JobKind(ABC):
    """One SageMaker job kind. Subclasses set the class attributes and write their config files."""

    name: ClassVar[str]  # "processing", "training": the plan's ``job_kind`` and the bootstrap's RTEST_JOB_KIND
    step_types: ClassVar[tuple[str, ...]]  # SageMaker step types served (compared case-insensitively)
    entry_point_fields: ClassVar[tuple[str, ...]] = ()  # config fields that mean this kind when no interface says
    code_path: ClassVar[str]  # the read-only code folder
    config_path: ClassVar[str]  # where the service's JSON files are
    output_path: ClassVar[str] = SM_OUTPUT_PATH
    output_folders: ClassVar[tuple[str, ...]] = ()  # made under output_path before the script runs
    own_mounts: ClassVar[dict[str, str]] = {}  # rtest folder name -> container path, when no output declares it
    packed_outputs: ClassVar[tuple[str, ...]] = ()  # container paths packed as model.tar.gz when the job ends
    default_outputs: ClassVar[dict[str, str]] = {}  # a scanned script's outputs when no literal names any
    takes_hyperparameters: ClassVar[bool] = False
    needs_named_paths: ClassVar[bool] = False  # a script with no interface and no paths cannot be planned
    bundled_source_root: ClassVar[str | None] = None  # inputs under it come from the step's source folder
    results_file: ClassVar[str | None] = None  # a per-sample results file the kind leaves in output_path
    script_job: ClassVar[bool] = True  # False: a check rtest runs where SageMaker makes a service call

    @abstractmethod
    def conventional_input_path(self, name: str) -> str:
        """Where SageMaker puts an input nobody gave a path."""

    @abstractmethod
    def scan_literal(self, path: str) -> ScannedPath | None:
        """A script's ``/opt/ml`` literal (without a trailing slash) as this kind's input or output, or None."""

    @abstractmethod
    def config_files(self, job: JobFiles) -> dict[str, Any]:
        """File name -> JSON value: what the service writes into ``config_path`` besides resourceconfig.json."""

    def environment(self, job_name: str) -> dict[str, str]:
        """Variables the service sets for this kind (the step's own Environment comes on top)."""
        return {}

    @property
    def instance_count_field(self) -> str:
        return f"{self.name}_instance_count"

    def instance_type_fields(self, get: Callable[[str], Any]) -> list[str]:
        """Config fields holding the instance type, in the order they are tried (``instance_type`` last)."""
        return [f"{self.name}_instance_type"]

    def framework_version_fields(self, framework: str) -> list[str]:
        """Where an interface names no version field: the config fields such configs use."""
        return [] if framework == "python" else ["framework_version"]

    def reserved_paths(self) -> dict[str, str]:
        """Container paths rtest mounts itself, by the words that name them in an error."""
        return {"the code folder": self.code_path, "rtest's executor": EXECUTOR_PATH,
                "rtest's output folder": self.output_path, "rtest's config folder": self.config_path,
                "rtest's meta folder": META_PATH, "rtest's log file": LOG_PATH}

    def packs(self, container_path: str) -> bool:
        return container_path.rstrip("/") in self.packed_outputs

    def installs_requirements_txt(self, compute_kind: str | None) -> tuple[bool, str]:
        """Whether SageMaker pip-installs the source folder's requirements.txt before the script, and who does.

        ``compute_kind`` is the interface's ``compute.kind`` (sklearn, xgboost, framework, script, ...).
        """
        return False, f"a {self.name} job installs nothing before the script"

    def serves(self, step_type: str) -> bool:
        """Whether this kind runs nodes of a SageMaker step type (case-insensitive; a kind may match more widely)."""
        return step_type.lower() in (t.lower() for t in self.step_types)

    def config_environment(self, get: Callable[[str], Any]) -> dict[str, tuple[str, str]]:
        """Variables the kind reads from the step's config: name -> (value, config field). None by default."""
        return {}

    def serving_framework(self, get: Callable[[str], Any]) -> tuple[str, str] | None:
        """(framework, config field) when a node without a compute section names its image's framework in config."""
        return None


def resource_config(instance_type: str) -> dict[str, Any]:
    """resourceconfig.json: the same for every kind."""
    return {"current_host": HOST_NAME, "hosts": [HOST_NAME], "network_interface_name": "eth0",
            "current_instance_type": instance_type}


def job_arn(kind: str, job_name: str) -> str:
    return f"arn:aws:sagemaker:local:{LOCAL_ACCOUNT}:{kind}-job/{job_name}"
