"""Step interfaces: one YAML (or JSON) file per step type saying what the step's
script reads and writes in its container, and how its outputs feed other steps.

Unknown keys are ignored at the top level and in ``registry``/``compute``/``spec``
(room for the framework's own annotations) but rejected inside ``contract``:
there a stray key is nearly always a typo (``input:``) that would silently drop
a mount.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import UnionType
from typing import Any, Iterable, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rtest.contract import is_runnable_step_type
from rtest.errors import InterfaceError

INTERFACE_PATTERNS = ("*.yaml", "*.yml", "*.json")  # *.step.yaml is a *.yaml


def _as_text(value: Any) -> Any:
    """YAML reads 1.0 or true as numbers/booleans; containers want the text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _null_means_default(cls, data: Any) -> Any:
        # An empty YAML block (`outputs:`) is null; read it as "use the default".
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None or key not in cls.model_fields}
        return data


class _Strict(_Model):
    model_config = ConfigDict(extra="forbid")


class Registry(_Model):
    sagemaker_step_type: str = "Processing"


class Compute(_Model):
    kind: str = "python"
    framework_version_field: str | None = None
    framework_version: str | None = None  # a fixed version, used when no field gives one

    @field_validator("framework_version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        return _as_text(value)


class PathDecl(_Strict):
    path: str
    required: bool = True

    @model_validator(mode="before")
    @classmethod
    def _bare_path(cls, data: Any) -> Any:
        return {"path": data} if isinstance(data, str) else data


class JobArgDecl(_Strict):
    flag: str
    source: str | None = None  # config field holding the value
    default: str | None = None
    required: bool = True

    @field_validator("default", mode="before")
    @classmethod
    def _default_as_text(cls, value: Any) -> Any:
        return _as_text(value)


class EnvVars(_Strict):
    required: list[str] = Field(default_factory=list)
    optional: dict[str, str | None] = Field(default_factory=dict)

    @field_validator("optional", mode="before")
    @classmethod
    def _values_as_text(cls, value: Any) -> Any:
        return {k: _as_text(v) for k, v in value.items()} if isinstance(value, dict) else value


class Contract(_Strict):
    entry_point: str | None = None
    inputs: dict[str, PathDecl] = Field(default_factory=dict)
    outputs: dict[str, PathDecl] = Field(default_factory=dict)
    job_arguments: list[JobArgDecl] = Field(default_factory=list)
    env_vars: EnvVars = Field(default_factory=EnvVars)
    source_dir: bool = False  # the framework ships the step's whole source folder (h8val: read by plan/config_inputs.py)
    input_source_overrides: dict[str, str] = Field(default_factory=dict)  # input -> config attribute whose path feeds it


class DependencyDecl(_Model):
    required: bool = True
    compatible_sources: list[str] = Field(default_factory=list)
    semantic_keywords: list[str] = Field(default_factory=list)
    aliases: list[str] = Field(default_factory=list)


class OutputDecl(_Model):
    aliases: list[str] = Field(default_factory=list)
    semantic_keywords: list[str] = Field(default_factory=list)


class SpecDecl(_Model):
    dependencies: dict[str, DependencyDecl] = Field(default_factory=dict)
    outputs: dict[str, OutputDecl] = Field(default_factory=dict)


class StepInterface(_Model):
    step_type: str
    registry: Registry = Field(default_factory=Registry)
    compute: Compute = Field(default_factory=Compute)
    contract: Contract | None = None
    spec: SpecDecl | None = None
    max_runtime_in_seconds: int | None = None
    description: str | None = None

    @property
    def runs_script(self) -> bool:
        """SageMaker runs a script of the user's only in Processing and Training jobs, and only with a contract."""
        return is_runnable_step_type(self.registry.sagemaker_step_type) and self.contract is not None

    @property
    def job_kind(self) -> str:
        return "training" if self.registry.sagemaker_step_type.lower() == "training" else "processing"


class InterfaceRegistry:
    """Interfaces by step type, each with the file it came from."""

    def __init__(self, interfaces: dict[str, StepInterface] | None = None, sources: dict[str, Path] | None = None) -> None:
        self._interfaces = dict(interfaces or {})
        self._sources = dict(sources or {})
        self._by_lower: dict[str, str] = {}
        for step_type in self._interfaces:
            self._by_lower.setdefault(step_type.lower(), step_type)

    def _key(self, step_type: str) -> str | None:
        if step_type in self._interfaces:
            return step_type
        return self._by_lower.get(step_type.lower())

    def get(self, step_type: str) -> StepInterface | None:
        """Exact match first, then case-insensitive."""
        key = self._key(step_type)
        return None if key is None else self._interfaces[key]

    def step_types(self) -> list[str]:
        return list(self._interfaces)

    def source_of(self, step_type: str) -> Path:
        key = self._key(step_type)
        if key is None:
            raise KeyError(step_type)
        return self._sources[key]

    def __contains__(self, step_type: object) -> bool:
        return isinstance(step_type, str) and self._key(step_type) is not None

    def __len__(self) -> int:
        return len(self._interfaces)


def load_interfaces(dirs: Iterable[Path | str]) -> InterfaceRegistry:
    """Read every interface file in the given folders (a file path is read by itself)."""
    interfaces: dict[str, StepInterface] = {}
    sources: dict[str, Path] = {}
    for folder in dirs:
        for path in _interface_files(Path(folder).expanduser()):
            interface = load_interface_file(path)
            earlier = sources.get(interface.step_type)
            if earlier is not None:
                raise InterfaceError(
                    f"Interface files {earlier} and {path.resolve()} both declare step_type '{interface.step_type}'; "
                    "keep one of them or rename the step_type."
                )
            interfaces[interface.step_type] = interface
            sources[interface.step_type] = path.resolve()
    return InterfaceRegistry(interfaces, sources)


def _interface_files(folder: Path) -> list[Path]:
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        raise InterfaceError(f"Interface folder {folder} does not exist; pass the folder that holds the *.step.yaml files.")
    found = {path for pattern in INTERFACE_PATTERNS for path in folder.glob(pattern) if path.is_file()}
    return sorted(found)


def load_interface_file(path: Path) -> StepInterface:
    data = _read(path)
    if not isinstance(data, dict):
        found = "empty" if data is None else _kind_of(data)
        raise InterfaceError(f"Interface file {path} is {found}; it must be a mapping with step_type, registry, contract and spec.")
    try:
        return StepInterface.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(error) for error in exc.errors())
        raise InterfaceError(f"Interface file {path}: {problems}.") from exc


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InterfaceError(f"Interface file {path} cannot be read: {exc}.") from exc
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise InterfaceError(f"Interface file {path} is not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}.") from exc
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise InterfaceError(f"Interface file {path} is not valid YAML at line {mark.line + 1}, column {mark.column + 1}: {exc.problem}.") from exc
    except yaml.YAMLError as exc:
        raise InterfaceError(f"Interface file {path} is not valid YAML: {exc}.") from exc


def _describe(error: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(error["loc"][:-1])
        return f"field {location}: unknown key (a typo?); expected one of {', '.join(allowed)}"
    message = error["msg"]
    value = error.get("input")
    if error["type"] != "missing" and isinstance(value, (str, int, float, bool)):
        message += f", got {value!r}"
    return f"field {location}: {message}"


def _allowed_keys(parent: tuple) -> list[str]:
    """Field names of the model found at ``parent``, stepping over dict keys and list indexes."""
    current: Any = StepInterface
    for part in parent:
        if _is_model(current):
            field = current.model_fields.get(part) if isinstance(part, str) else None
            current = field.annotation if field else None
        else:
            args = get_args(current)  # dict[str, X] or list[X]: step into X
            current = args[-1] if args else None
        current = _without_none(current)
    return list(current.model_fields) if _is_model(current) else []


def _is_model(candidate: Any) -> bool:
    return isinstance(candidate, type) and issubclass(candidate, BaseModel)


def _without_none(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, UnionType):
        return next(arg for arg in get_args(annotation) if arg is not type(None))
    return annotation


def _kind_of(value: object) -> str:
    """'a list', 'an int': the type of a wrong value, for a sentence."""
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"
