"""Step interfaces: one YAML (or JSON) file per step type saying what the step's
script reads and writes in its container, and how its outputs feed other steps.

Loading reads every file but validates lazily: only the step types a pipeline
uses are checked (``InterfaceRegistry.check``), and all of their problems come
back in one error. A key the schema does not know is a warning naming the file
and key (``InterfaceRegistry.warnings``), never an error: a catalogue written
for a newer framework still loads. The schema is in ``interface_schema``.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml
from pydantic import ValidationError

from rtest.errors import InterfaceError
from rtest.inputs.interface_keys import unknown_key_message, unknown_keys
from rtest.inputs.interface_schema import (  # noqa: F401  (re-exported: the public names of interfaces)
    Compute,
    Contract,
    DependencyDecl,
    EnvVars,
    InputDecl,
    JobArgDecl,
    OutputDecl,
    Registry,
    Section,
    SpecDecl,
    SpecOutputDecl,
    StepInterface,
)
from rtest.yamltext import load_yaml

INTERFACE_PATTERNS = ("*.yaml", "*.yml", "*.json")  # *.step.yaml is a *.yaml
VARIANT_SECTIONS = ("spec", "contract", "patterns")


@dataclass(frozen=True)
class InterfaceWarning:
    file: Path
    key: str  # dotted location, e.g. contract.inputs.DATA.requird; "" for the whole file
    message: str


@dataclass
class InterfaceFile:
    path: Path
    data: dict[str, Any] | None  # None: unreadable, see problem
    problem: str | None = None

    @property
    def step_type(self) -> str | None:
        value = self.data.get("step_type") if self.data else None
        return value if isinstance(value, str) and value else None


def canonical(name: str) -> str:
    """'XGBoostTraining', 'xgboost_training' and 'XGBoost-Training' are one name."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


@dataclass
class InterfaceRegistry:
    """Interface files by step type; each is validated the first time it is asked for."""

    files: list[InterfaceFile] = field(default_factory=list)
    warnings: list[InterfaceWarning] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._by_type: dict[str, list[InterfaceFile]] = {}
        for entry in self.files:
            if entry.step_type:
                self._by_type.setdefault(entry.step_type, []).append(entry)
        self._validated: dict[tuple[str, str | None], StepInterface] = {}
        self._warned: set[tuple[Path, str]] = set()

    # ---- lookup --------------------------------------------------------------------------
    def _key(self, step_type: str) -> str | None:
        """Exact name, then case-insensitive, then separator-insensitive, then a declared config class."""
        if step_type in self._by_type:
            return step_type
        for match in (lambda t: t.lower() == step_type.lower(), lambda t: canonical(t) == canonical(step_type)):
            found = next((t for t in self._by_type if match(t)), None)
            if found:
                return found
        wanted = {canonical(step_type), canonical(step_type + "Config")}
        for name, entries in self._by_type.items():
            config_class = (entries[0].data.get("registry") or {}).get("config_class") if entries[0].data else None
            if isinstance(config_class, str) and canonical(config_class) in wanted:
                return name
        return None

    def get(self, step_type: str, job_type: str | None = None) -> StepInterface | None:
        """The validated interface (with the job type's variant applied), None when there is none."""
        key = self._key(step_type)
        if key is None:
            return None
        problems = self._problems(key, job_type)
        if problems:
            raise InterfaceError(_sentence(problems))
        return self._validated[(key, _variant_name(self._by_type[key][0], job_type))]

    def check(self, step_types: Iterable[str | tuple[str, str | None]] | None = None) -> None:
        """Validate the given step types (or every file) and raise ONE error listing every problem."""
        problems: list[str] = []
        if step_types is None:
            wanted: list[tuple[str, str | None]] = [(t, None) for t in self._by_type]
            problems += [entry.problem for entry in self.files if entry.problem]
        else:
            wanted = [item if isinstance(item, tuple) else (item, None) for item in step_types]
        for step_type, job_type in dict.fromkeys(wanted):
            key = self._key(step_type)
            if key is not None:
                problems += self._problems(key, job_type)
            elif step_types is not None:
                problems += [
                    e.problem for e in self._broken_files()
                    if e.problem and canonical(_stem(e.path)) == canonical(step_type)
                ]
        if problems:
            raise InterfaceError(_sentence(list(dict.fromkeys(problems))))

    def step_types(self) -> list[str]:
        return list(self._by_type)

    def source_of(self, step_type: str) -> Path:
        key = self._key(step_type)
        if key is None:
            raise KeyError(step_type)
        return self._by_type[key][0].path

    def __contains__(self, step_type: object) -> bool:
        return isinstance(step_type, str) and self._key(step_type) is not None

    def __len__(self) -> int:
        return len(self._by_type)

    # ---- validation ----------------------------------------------------------------------
    def _broken_files(self) -> list[InterfaceFile]:
        return [entry for entry in self.files if entry.problem]

    def _problems(self, key: str, job_type: str | None) -> list[str]:
        entries = self._by_type[key]
        if len(entries) > 1:
            first, second = entries[0].path, entries[1].path
            return [
                f"Interface files {first} and {second} both declare step_type '{key}'; "
                "keep one of them or rename the step_type"
            ]
        entry = entries[0]
        variant = _variant_name(entry, job_type)
        if (key, variant) in self._validated:
            return []
        try:
            interface = StepInterface.model_validate(_with_variant(entry.data, variant))
        except ValidationError as exc:
            return [f"Interface file {entry.path}: " + "; ".join(_describe(error) for error in exc.errors())]
        self._validated[(key, variant)] = interface
        for location, name in unknown_keys(interface):
            self._warn(entry.path, location, unknown_key_message(entry.path, location, name))
        return []

    def _warn(self, path: Path, key: str, message: str) -> None:
        if (path, key) not in self._warned:
            self._warned.add((path, key))
            self.warnings.append(InterfaceWarning(file=path, key=key, message=message))


def load_interfaces(dirs: Iterable[Path | str]) -> InterfaceRegistry:
    """Read every interface file in the given folders (a file path is read by itself); validate none yet."""
    files = [read_interface_file(path) for folder in dirs for path in _interface_files(Path(folder).expanduser())]
    registry = InterfaceRegistry(files)
    for entry in files:
        if entry.problem:  # reported as an error only if the pipeline needs it, see check()
            registry._warn(entry.path, "", entry.problem)
    for step_type, entries in registry._by_type.items():
        for extra in entries[1:]:
            registry._warn(
                extra.path,
                "step_type",
                f"Interface file {extra.path} declares step_type '{step_type}' again "
                f"(first in {entries[0].path}); the first one is used",
            )
    return registry


def read_interface_file(path: Path) -> InterfaceFile:
    path = path.resolve()
    try:
        data = _parse(path, path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return InterfaceFile(path, None, f"Interface file {path} cannot be read: {exc}")
    except InterfaceError as exc:
        return InterfaceFile(path, None, exc.message.rstrip("."))
    if not isinstance(data, dict):
        found = "empty" if data is None else _kind_of(data)
        return InterfaceFile(
            path,
            None,
            f"Interface file {path} is {found}; it must be a mapping with step_type, registry, contract and spec",
        )
    if not isinstance(data.get("step_type"), str) or not data.get("step_type"):
        return InterfaceFile(path, data, f"Interface file {path}: field step_type: Field required")
    return InterfaceFile(path, data)


def _variant_name(entry: InterfaceFile, job_type: str | None) -> str | None:
    variants = (entry.data or {}).get("variants") or {}
    if not job_type or not isinstance(variants, dict):
        return None
    return next((name for name in variants if str(name).lower() == str(job_type).lower()), None)


def _with_variant(data: dict[str, Any] | None, variant: str | None) -> dict[str, Any]:
    """The file's data with one job_type variant deep-merged over its sections, as the framework does."""
    data = dict(data or {})
    override = ((data.get("variants") or {}).get(variant) or {}) if variant else {}
    for section in VARIANT_SECTIONS:
        if isinstance(override, dict) and isinstance(override.get(section), dict):
            data[section] = _deep_merge(data.get(section) or {}, override[section])
    return data


def _deep_merge(base: Any, override: Any) -> Any:
    if not isinstance(base, dict) or not isinstance(override, dict):
        return copy.deepcopy(override)
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _deep_merge(base.get(key), value) if key in base else copy.deepcopy(value)
    return merged


def _interface_files(folder: Path) -> list[Path]:
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        raise InterfaceError(
            f"Interface folder {folder} does not exist; pass the folder that holds the *.step.yaml files."
        )
    found = {path for pattern in INTERFACE_PATTERNS for path in folder.glob(pattern) if path.is_file()}
    return sorted(found)


def _parse(path: Path, text: str) -> Any:
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise InterfaceError(
                f"Interface file {path} is not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}."
            ) from exc
    try:
        return load_yaml(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise InterfaceError(
            f"Interface file {path} is not valid YAML at line {mark.line + 1}, column {mark.column + 1}: {exc.problem}."
        ) from exc
    except yaml.YAMLError as exc:
        raise InterfaceError(f"Interface file {path} is not valid YAML: {exc}.") from exc


def _stem(path: Path) -> str:
    return path.name.split(".")[0]


def _sentence(problems: list[str]) -> str:
    if len(problems) == 1:
        return problems[0] + "."
    return f"{len(problems)} interface problems: " + "; ".join(problems) + "."


def _describe(error: Mapping[str, Any]) -> str:
    location = ".".join(str(part) for part in error["loc"])
    message = error["msg"]
    value = error.get("input")
    if error["type"] != "missing" and isinstance(value, (str, int, float, bool)):
        message += f", got {value!r}"
    return f"field {location}: {message}"


def _kind_of(value: object) -> str:
    """'a list', 'an int': the type of a wrong value, for a sentence."""
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"
