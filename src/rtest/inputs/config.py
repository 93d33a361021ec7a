"""The pipeline config JSON (cursus style): ``configuration.shared`` overlaid by
``configuration.specific[node]`` gives one step's fields.

The serializer that wrote the file wraps values in type markers
(``__model_type__`` on objects, ``{"__type_info__": "list", "value": [...]}``);
they are unwrapped once, at load time, so every later reader sees plain JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from rtest.errors import ConfigError, ConfigNotFoundError
from rtest.jobs.registry import entry_point_fields

MODEL_TYPE_KEY = "__model_type__"
TYPE_INFO_KEY = "__type_info__"
SERVING_ENTRY_FIELD = "inference_entry_point"  # a model's handler: runs at serving time, in no job of rtest's
SOURCE_DIR_FIELDS = ("portable_processing_source_dir", "processing_source_dir", "source_dir", "portable_source_dir")


def entry_point_field_names() -> tuple[str, ...]:
    """Entry-point fields in priority order: every registered job kind's, then the serving handler's."""
    return (*entry_point_fields(), SERVING_ENTRY_FIELD)


_EXPECTED = 'expected {"configuration": {"shared": {...}, "specific": {"<step>": {...}}}}'


@dataclass(frozen=True)
class StepConfig:
    node: str
    config_class: str | None
    step_type: str
    fields: dict[str, Any]

    def get(self, name: str, default: Any = None) -> Any:
        value = self.fields.get(name)
        return default if value is None else value

    def has(self, name: str) -> bool:
        """True when the field is set; a JSON null counts as unset, as it does for the framework."""
        return self.fields.get(name) is not None

    def entry_point(self) -> tuple[str, str] | None:
        """(field name, value) of the highest-priority entry-point field that is set."""
        return self._first_set(entry_point_field_names())

    def source_dir(self) -> tuple[str, str] | None:
        """(field name, value) of the highest-priority source-folder field that is set."""
        return self._first_set(SOURCE_DIR_FIELDS)

    def _first_set(self, names: tuple[str, ...]) -> tuple[str, str] | None:
        for name in names:
            value = self.fields.get(name)
            if isinstance(value, str) and value.strip():
                return name, value.strip()
        return None


@dataclass(frozen=True)
class PipelineConfig:
    path: Path  # absolute
    shared: dict[str, Any]
    specific: dict[str, dict[str, Any]]
    config_types: dict[str, str]  # node -> config class: metadata.config_types, else the step's __model_type__
    metadata: dict[str, Any] = field(default_factory=dict)

    def step_names(self) -> list[str]:
        return list(self.specific)

    def step_config(self, node: str) -> StepConfig | None:
        specific = self.specific.get(node)
        if specific is None:
            return None
        fields = {**self.shared, **specific}
        config_class = self.config_types.get(node)
        step_type = _step_type(node, config_class, fields)
        return StepConfig(node=node, config_class=config_class, step_type=step_type, fields=fields)


def load_pipeline_config(path: Path | str) -> PipelineConfig:
    """Read, check and unwrap a pipeline config; user mistakes raise ``ConfigError``."""
    given = Path(path).expanduser()
    if not given.is_file():
        raise ConfigNotFoundError(f"Configuration file not found: {path}")
    data = _read_json(given)
    section = _section(data, "configuration", given, "at the top level")
    shared = _section(section, "shared", given, "under 'configuration'", required=False)
    specific = _section(section, "specific", given, "under 'configuration'")
    metadata = _section(data, "metadata", given, "at the top level", required=False)
    declared_types = _section(metadata, "config_types", given, "under 'metadata'", required=False)
    config_types: dict[str, str] = {}
    steps: dict[str, dict[str, Any]] = {}
    for node, raw in specific.items():
        if not isinstance(raw, dict):
            raise ConfigError(
                f"Configuration file {given}: configuration.specific.{node} is {_kind_of(raw)}, not an object; "
                "give each step an object of its fields."
            )
        model_type = declared_types.get(node) or raw.get(MODEL_TYPE_KEY)
        if isinstance(model_type, str) and model_type:
            config_types[node] = model_type
        steps[node] = unwrap(raw)
    return PipelineConfig(
        path=given.resolve(),
        shared=unwrap(shared),
        specific=steps,
        config_types=config_types,
        metadata=unwrap(metadata),
    )


def unwrap(value: Any) -> Any:
    """Strip the serializer's type markers, recursively; plain JSON passes through unchanged."""
    if isinstance(value, dict):
        if TYPE_INFO_KEY in value:
            return _unwrap_type_info(value)
        return {key: unwrap(item) for key, item in value.items() if key != MODEL_TYPE_KEY}
    if isinstance(value, list):
        return [unwrap(item) for item in value]
    return value


def _unwrap_type_info(value: dict[str, Any]) -> Any:
    if "value" not in value:
        return {key: unwrap(item) for key, item in value.items() if key not in (TYPE_INFO_KEY, MODEL_TYPE_KEY)}
    # Lists, tuples and sets all become lists (set items may be unhashable, and the result
    # must stay JSON); anything else (dict, datetime, path, enum, ...) is its serialized value.
    return unwrap(value["value"])


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Configuration file {path} cannot be read: {exc}.") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"Configuration file {path} is not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}."
        ) from exc


def _section(parent: Any, key: str, path: Path, where: str, *, required: bool = True) -> dict[str, Any]:
    if not isinstance(parent, Mapping):
        raise ConfigError(f"Configuration file {path} holds {_kind_of(parent)}, not an object; {_EXPECTED}.")
    value = parent.get(key)
    if value is None:
        if required:
            raise ConfigError(f"Configuration file {path} has no '{key}' section {where}; {_EXPECTED}.")
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"Configuration file {path}: section '{key}' {where} is {_kind_of(value)}, not an object.")
    return value


def _step_type(node: str, config_class: str | None, fields: Mapping[str, Any]) -> str:
    if config_class:
        if config_class.endswith("Config") and len(config_class) > len("Config"):
            return config_class[: -len("Config")]
        return config_class
    job_type = fields.get("job_type")
    if isinstance(job_type, str) and job_type:
        suffix = f"_{job_type}"
        if node.lower().endswith(suffix.lower()) and len(node) > len(suffix):
            return node[: -len(suffix)]
    return node


def _kind_of(value: object) -> str:
    """'a list', 'an int': the type of a wrong value, for a sentence."""
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"
