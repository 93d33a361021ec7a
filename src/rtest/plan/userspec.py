"""What the user supplies: a spec file (YAML/JSON) and CLI flags, in one model.

Relative paths in a spec file resolve against the spec file's folder, so a
saved spec runs again from anywhere.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ConfigDict, Field, PrivateAttr, ValidationError

from rtest.errors import PlanError, SpecFileError, SpecFileNotFoundError
from rtest.modelbase import Model
from rtest.plan.input_paths import absolute_path
from rtest.yamltext import load_yaml


class ScriptOverrides(Model):
    model_config = ConfigDict(extra="forbid")

    inputs: dict[str, str] = Field(default_factory=dict)  # logical name -> host path
    outputs: dict[str, str] = Field(default_factory=dict)  # logical name -> host folder to export to
    environment: dict[str, Any] = Field(default_factory=dict)
    job_arguments: dict[str, Any] = Field(default_factory=dict)  # flag -> value
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    image: str | None = None
    timeout_s: float | None = None
    requirements: list[str] = Field(default_factory=list)  # extra package specs, e.g. "pandas==1.5.3" (rtest.deps)
    placement: list[str] = Field(default_factory=list)  # a cluster's placement constraints, "node.hostname==gpu1"


class PipelineLocation(Model):
    model_config = ConfigDict(extra="forbid")

    dag: str | None = None
    config: str | None = None
    interfaces: list[str] = Field(default_factory=list)
    source_root: str | None = None
    source_map: dict[str, str] = Field(default_factory=dict)  # config path prefix -> local folder
    config_classes: list[str] = Field(default_factory=list)  # modules holding the pipeline's config classes
    allow_source_outside_root: bool = False
    # -- issue 19: sample data for loader-fed inputs, synthesized from the config (rtest.synth)
    synthesize_inputs: bool = False
    rows: int | None = Field(default=None, ge=1)
    seed: int | None = None


class UserSpec(Model):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    pipeline: PipelineLocation = Field(default_factory=PipelineLocation)
    image_map: dict[str, str] = Field(default_factory=dict)  # "KIND:VERSION" -> image
    scripts: dict[str, ScriptOverrides] = Field(default_factory=dict)
    strict: bool = False  # plan warnings are errors
    follow_input_links: bool = False  # copy link targets outside an input folder too (see plan/input_paths.py)
    wheelhouse: str | None = None  # a folder of wheels for offline dependency installs (rtest.deps)
    # The file it was read from, and the nodes that file names (not saved; see plan.mistakes.spec_nodes_outside_dag).
    _origin: str | None = PrivateAttr(default=None)
    _file_nodes: frozenset[str] = PrivateAttr(default=frozenset())

    @property
    def origin(self) -> str | None:
        return self._origin

    @property
    def file_nodes(self) -> frozenset[str]:
        return self._file_nodes

    def for_node(self, node: str) -> ScriptOverrides:
        return self.scripts.setdefault(node, ScriptOverrides())

    def merged_with(self, other: UserSpec) -> UserSpec:
        """``other`` wins (CLI flags over the spec file), field by field."""
        merged = self.model_copy(deep=True)
        merged.image_map.update(other.image_map)
        merged.strict = merged.strict or other.strict
        merged.follow_input_links = self.follow_input_links or other.follow_input_links
        for node, overrides in other.scripts.items():
            mine = merged.for_node(node)
            for field in ("inputs", "outputs", "environment", "job_arguments", "hyperparameters"):
                getattr(mine, field).update(getattr(overrides, field))
            mine.image = overrides.image or mine.image
            mine.timeout_s = overrides.timeout_s or mine.timeout_s
            mine.requirements += [r for r in overrides.requirements if r not in mine.requirements]
            mine.placement += [r for r in overrides.placement if r not in mine.placement]
        merged.wheelhouse = other.wheelhouse or merged.wheelhouse
        if merged.origin is None:  # flags merged over a spec file: the file is still where its entries came from
            merged._origin, merged._file_nodes = other.origin, other.file_nodes
        return merged


def load_user_spec(path: Path | str) -> UserSpec:
    path = Path(path)
    if not path.is_file():
        raise SpecFileNotFoundError(f"Spec file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        raw = json.loads(text) if path.suffix == ".json" else load_yaml(text)
    except json.JSONDecodeError as exc:
        raise SpecFileError(
            f"Spec file {path} is not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}."
        ) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecFileError(f"Spec file {path} is not valid YAML{where}: {getattr(exc, 'problem', exc)}.") from exc
    try:
        spec = UserSpec.model_validate(raw or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise SpecFileError(f"Spec file {path}: field {field}: {first['msg']}.") from exc
    spec._origin, spec._file_nodes = str(path), frozenset(spec.scripts)
    return _absolutize(spec, path.resolve().parent)


def save_user_spec(spec: UserSpec, path: Path | str, *, relative: bool = False) -> Path:
    """``relative``: paths are written relative to the spec's folder where they share a top folder with it, so a
    project folder holding the spec can be moved or shared; loading resolves them back (see _absolutize)."""
    path = Path(path)
    if relative:
        spec = _paths_relative_to(spec, path.expanduser().resolve().parent)
    data = spec.model_dump(mode="json", exclude_defaults=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2) if path.suffix == ".json" else yaml.safe_dump(data, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def _paths_relative_to(spec: UserSpec, base: Path) -> UserSpec:
    return _map_paths(spec.model_copy(deep=True), lambda value: _relative(value, base))


def _relative(value: str | None, base: Path) -> str | None:
    if value is None or not Path(value).is_absolute():
        return value
    common = os.path.commonpath([value, str(base)])
    if common == os.path.sep:  # nothing shared but the root: a relative path would only be harder to read
        return value
    return Path(os.path.relpath(value, base)).as_posix()


def _absolutize(spec: UserSpec, base: Path) -> UserSpec:
    return _map_paths(spec, lambda value: None if value is None else absolute_path(value, base))


def _map_paths(spec: UserSpec, convert) -> UserSpec:
    """Apply ``convert`` to every host path a spec holds (a DAG given as module:function is no path)."""
    location = spec.pipeline
    location.dag = convert(location.dag) if location.dag and ":" not in location.dag else location.dag
    location.config = convert(location.config)
    location.source_root = convert(location.source_root)
    location.interfaces = [convert(d) for d in location.interfaces]
    location.source_map = {prefix: convert(target) for prefix, target in location.source_map.items()}
    spec.wheelhouse = convert(spec.wheelhouse)
    for overrides in spec.scripts.values():
        overrides.inputs = {k: convert(v) for k, v in overrides.inputs.items()}
        overrides.outputs = {k: convert(v) for k, v in overrides.outputs.items()}
    return spec


def parse_input_flags(flags: list[str] | None) -> UserSpec:
    """``--input NODE.NAME=PATH`` flags as a UserSpec."""
    spec = UserSpec()
    for flag in flags or []:
        key, sep, value = flag.partition("=")
        node, dot, name = key.rpartition(".")
        if not sep or not dot or not node or not name or not value:
            raise PlanError(
                f"--input '{flag}' is not of the form NODE.NAME=PATH; write it like --input "
                "Preprocess_training.DATA=./data."
            )
        spec.for_node(node.strip()).inputs[name.strip()] = absolute_path(value.strip())
    return spec


def parse_image_flags(flags: list[str] | None) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for flag in flags or []:
        key, sep, image = flag.partition("=")
        if not sep:
            raise PlanError(f"--image-map '{flag}' has no '='; write it as KIND:VERSION=IMAGE.")
        mapping[key.strip()] = image.strip()
    return mapping
