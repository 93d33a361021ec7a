"""The step interface schema: every key of the cursus ``*.step.yaml`` catalogue, and rtest's own.

Keys rtest acts on are typed (compute kind and versions, the contract's inputs,
outputs, env vars and job arguments, ...); keys that only steer the framework's
builder are still declared, so the real catalogue loads with no warnings. Any
other key is kept (``extra="allow"``) and reported by the loader as a warning
naming the file and key: a typo never stops a run, but never goes unseen.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, field_validator, model_validator

from rtest.jobs.registry import DEFAULT_KIND, is_runnable_step_type, job_kind_for, runnable_step_types
from rtest.modelbase import Model

# Why SageMaker runs no script of the user's for these job types (lower-cased).
NOT_A_SCRIPT = {
    "createmodel": "it registers model artifacts with a serving image and runs no script of yours",
    "transform": "batch transform runs the model's serving container, not a script of yours",
    "tuning": "it launches many training jobs; the training step it tunes is the script to test",
    "registermodel": "model registration is a service call, not a script of yours",
}


def as_text(value: Any) -> Any:
    """YAML reads 1.0 or true as numbers/booleans; containers and image tags want the text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


class Section(Model):
    """A part of an interface; unknown keys are kept (and warned about by the loader)."""

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="before")
    @classmethod
    def _null_means_default(cls, data: Any) -> Any:
        # An empty YAML block (`outputs:`) is null; read it as "use the default". A field with no
        # default keeps its explicit null (`path: null`: a step that runs no script).
        if isinstance(data, dict):
            fields = cls.model_fields
            return {k: v for k, v in data.items() if v is not None or k not in fields or fields[k].is_required()}
        return data


class Registry(Section):
    sagemaker_step_type: str = "Processing"
    description: str | None = None
    requires: str | None = None  # a build-time SDK the framework needs
    config_class: str | None = None  # a config class that breaks the <StepType>Config convention
    step_assembly: str | None = None


class Patterns(Section):
    """How the framework's builder assembles the step; carried, not used."""

    step_assembly: str | None = None
    include_job_type_in_path: bool | None = None
    direct_input_keys: list[str] = Field(default_factory=list)


class Compute(Section):
    kind: str = "python"  # sklearn | xgboost | estimator | model | framework | script | byo_container | ...
    sdk_class: str | None = None  # XGBoost, SKLearn, PyTorch, XGBoostModel, ...
    framework_name: str | None = None  # the framework of a model's inference image
    retrieve_image: bool = False
    retrieve_framework: str | None = None  # the training image's framework when retrieve_image is set
    framework_version_field: str | None = None
    framework_version_default: str | None = None  # used when the config field is unset
    framework_version: str | None = None  # rtest's own: a fixed version
    py_version_field: str | None = None
    image_uri_field: str | None = None  # a config field holding the image URI itself
    container_entrypoint: list[str] | None = None
    instance_size_mode: str | None = None
    network_mode: str | None = None
    kms_network: bool = False
    subnets_field: str | None = None
    security_group_ids_field: str | None = None
    enable_network_isolation_field: str | None = None
    lock_training_region: bool = False
    locked_region: str | None = None
    requires: str | None = None

    @field_validator("framework_version", "framework_version_default", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        return as_text(value)


class InputDecl(Section):
    path: str | None  # None: a step that runs no script (CreateModel, Transform)
    required: bool = True
    channels: list[str] = Field(default_factory=list)  # training channel names under this input

    @model_validator(mode="before")
    @classmethod
    def _bare_path(cls, data: Any) -> Any:
        return {"path": data} if isinstance(data, str) else data


class OutputDecl(Section):
    path: str | None

    @model_validator(mode="before")
    @classmethod
    def _bare_path(cls, data: Any) -> Any:
        return {"path": data} if isinstance(data, str) else data


class JobArgDecl(Section):
    flag: str
    source: str | None = None  # config field holding the value
    default: str | None = None  # rtest's own
    required: bool = True  # rtest's own

    @field_validator("default", mode="before")
    @classmethod
    def _default_as_text(cls, value: Any) -> Any:
        return as_text(value)

    @field_validator("source", mode="before")
    @classmethod
    def _empty_source_is_none(cls, value: Any) -> Any:
        return value or None


class EnvVars(Section):
    required: list[str] = Field(default_factory=list)
    optional: dict[str, str | None] = Field(default_factory=dict)

    @field_validator("optional", mode="before")
    @classmethod
    def _values_as_text(cls, value: Any) -> Any:
        return {k: as_text(v) for k, v in value.items()} if isinstance(value, dict) else value


class Contract(Section):
    entry_point: str | None = None  # None: the config's entry-point field names the script
    inputs: dict[str, InputDecl] = Field(default_factory=dict)
    outputs: dict[str, OutputDecl] = Field(default_factory=dict)
    arguments: dict[str, str | None] = Field(default_factory=dict)  # argument name -> description
    job_arguments: list[JobArgDecl] = Field(default_factory=list)
    env_vars: EnvVars = Field(default_factory=EnvVars)
    framework_requirements: dict[str, str | None] = Field(default_factory=dict)  # package -> version spec
    runtime_requires: list[str] = Field(default_factory=list)
    description: str | None = None
    source_dir: bool = False  # the step's whole source folder is uploaded with the script
    input_source_overrides: dict[str, str] = Field(default_factory=dict)  # input -> config field feeding it
    skip_inputs: list[str] = Field(default_factory=list)  # declared, but loaded by the script itself
    include_job_type_in_path: bool | None = None
    circular_ref_check: bool = False
    sink: bool = False  # produces no outputs
    computed_env_paths: dict[str, list[str]] = Field(default_factory=dict)  # env var -> S3 path segments
    output_path_token: str | None = None
    compute: dict[str, Any] | None = None  # the framework's back-compat mirror of the top-level compute

    @field_validator("framework_requirements", mode="before")
    @classmethod
    def _versions_as_text(cls, value: Any) -> Any:
        return {k: as_text(v) for k, v in value.items()} if isinstance(value, dict) else value


class DependencyDecl(Section):
    required: bool = True
    type: str | None = None
    compatible_sources: list[str] = Field(default_factory=list)
    semantic_keywords: list[str] = Field(default_factory=list)
    aliases: list[str] = Field(default_factory=list)
    data_type: str | None = None
    description: str | None = None
    logical_name: str | None = None


class SpecOutputDecl(Section):
    type: str | None = None
    aliases: list[str] = Field(default_factory=list)
    semantic_keywords: list[str] = Field(default_factory=list)
    property_path: str | None = None
    data_type: str | None = None
    description: str | None = None
    logical_name: str | None = None


class SpecDecl(Section):
    dependencies: dict[str, DependencyDecl] = Field(default_factory=dict)
    outputs: dict[str, SpecOutputDecl] = Field(default_factory=dict)
    step_type: str | None = None
    node_type: str | None = None


class VariantDecl(Section):
    """Per-job_type overrides, deep-merged over the base sections by the loader."""

    step_type: str | None = None
    spec: dict[str, Any] = Field(default_factory=dict)
    contract: dict[str, Any] = Field(default_factory=dict)
    patterns: dict[str, Any] = Field(default_factory=dict)


class StepInterface(Section):
    step_type: str
    node_type: str | None = None  # source | internal | sink
    registry: Registry = Field(default_factory=Registry)
    patterns: Patterns = Field(default_factory=Patterns)
    compute: Compute = Field(default_factory=Compute)
    contract: Contract | None = None
    spec: SpecDecl | None = None
    variants: dict[str, VariantDecl] = Field(default_factory=dict)
    max_runtime_in_seconds: int | None = None  # rtest's own
    description: str | None = None

    @property
    def skip_reason(self) -> str | None:
        """Why SageMaker runs no script of the user's for this step type, or None when it does."""
        job_type = self.registry.sagemaker_step_type
        lowered = job_type.lower()
        if not is_runnable_step_type(job_type):
            if lowered in NOT_A_SCRIPT:
                why = NOT_A_SCRIPT[lowered]
            elif "dataloading" in lowered:
                why = "data loading runs in a managed service, not as a script of yours"
            elif "registration" in lowered:
                why = "model registration is a service call, not a script of yours"
            else:
                why = "SageMaker runs no script of yours in it"
            return f"not a {' or '.join(runnable_step_types())} job ({job_type}): {why}"
        if self.contract is None:
            kind = job_kind_for(job_type)
            if kind is not None and not kind.script_job:  # a registration: rtest's check needs its inputs' paths
                return (f"not a {' or '.join(runnable_step_types())} job ({job_type}): model registration is a "
                        "service call, and no inference check runs because its interface declares no contract "
                        "(the packaged model and payload inputs with their paths)")
            return "it declares no script contract"
        declared: dict[str, InputDecl | OutputDecl] = {**self.contract.inputs, **self.contract.outputs}
        unplaced = [name for name, decl in declared.items() if decl.path is None]
        if unplaced:
            return f"its contract gives no container path for {', '.join(unplaced)} (path: null)"
        return None

    @property
    def runnable(self) -> bool:
        return self.skip_reason is None

    @property
    def runs_script(self) -> bool:  # the older name
        return self.runnable

    @property
    def job_kind(self) -> str:
        """The job kind serving its SageMaker step type; the default kind for one rtest does not run."""
        kind = job_kind_for(self.registry.sagemaker_step_type)
        return kind.name if kind else DEFAULT_KIND
