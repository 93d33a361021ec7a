"""Requirement sets with sources: every package spec a step needs, and the file and line it came from.

Sources, in order: the interface's ``contract.framework_requirements``, ``requirements*.txt`` in the
step's source folder (``requirements.txt`` always, others when a config field names them), the specs a
script installs at import time (see ``scan``), and the user's extras (spec file, factory, ``--add``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import InvalidRequirement
from packaging.requirements import Requirement as PackagingRequirement
from packaging.utils import canonicalize_name

from rtest.errors import PlanError
from rtest.yamltext import compose_yaml

REQUIREMENTS_FILE = re.compile(r"requirements[\w.-]*\.txt")


class DependencyError(PlanError):
    """A requirement that cannot be met: bad syntax, conflicting pins, no wheel for the image's Python."""


@dataclass(frozen=True)
class Requirement:
    text: str  # as written, e.g. "pandas>=1.3,<2"
    name: str  # canonical, e.g. "scikit-learn"
    specifier: str  # e.g. ">=1.3,<2" ("" for any version)
    origin: str  # interface | requirements.txt | script | user
    file: str | None = None
    line: int | None = None

    @property
    def where(self) -> str:
        if self.file is None:
            return self.origin
        return f"{self.file}:{self.line}" if self.line else self.file

    def to_json(self) -> dict[str, Any]:
        return {
            "requirement": self.text,
            "name": self.name,
            "origin": self.origin,
            "file": self.file,
            "line": self.line,
        }


def parse_requirement(text: str, origin: str, file: str | Path | None = None, line: int | None = None) -> Requirement:
    try:
        parsed = PackagingRequirement(text.strip())
    except InvalidRequirement as exc:
        where = f"{file}:{line}" if file and line else (str(file) if file else origin)
        raise DependencyError(
            f"{where}: '{text}' is not a valid requirement ({exc}); write it like pandas>=1.3,<2."
        ) from exc
    if parsed.url:
        where = f"{file}:{line}" if file and line else origin
        raise DependencyError(f"{where}: '{text}' installs from a URL, which cannot be resolved offline; "
                              "build it into a wheel and pass its folder with --wheelhouse.")
    return Requirement(text=text.strip(), name=canonicalize_name(parsed.name), specifier=str(parsed.specifier),
                       origin=origin, file=str(file) if file else None, line=line)


def from_interface(interface_file: Path | None) -> list[Requirement]:
    """``contract.framework_requirements``: name -> specifier (or null), each with its YAML line."""
    if interface_file is None or interface_file.suffix not in (".yaml", ".yml") or not interface_file.is_file():
        return _from_json_interface(interface_file)
    try:
        root = compose_yaml(interface_file.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return []  # the interface loader already reported it
    block = _mapping_child(_mapping_child(root, "contract"), "framework_requirements")
    found = []
    for key, value in (block.value if isinstance(block, yaml.MappingNode) else []):
        spec = value.value if isinstance(value, yaml.ScalarNode) and value.value not in ("", "null", "~") else ""
        found.append(
            parse_requirement(f"{key.value}{_as_specifier(spec)}", "interface", interface_file, key.start_mark.line + 1)
        )
    return found


def _from_json_interface(interface_file: Path | None) -> list[Requirement]:
    if interface_file is None or interface_file.suffix != ".json" or not interface_file.is_file():
        return []
    import json

    try:
        block = (json.loads(interface_file.read_text(encoding="utf-8")).get("contract") or {}).get(
            "framework_requirements"
        ) or {}
    except (ValueError, AttributeError):
        return []
    return [
        parse_requirement(f"{name}{_as_specifier(spec or '')}", "interface", interface_file)
        for name, spec in block.items()
    ]


def _as_specifier(spec: Any) -> str:
    spec = str(spec).strip()
    if not spec or spec == "*":
        return ""
    return spec if spec[0] in "<>=!~;[" else f"=={spec}"  # a bare version means that version


def _mapping_child(node: Any, key: str) -> Any:
    if not isinstance(node, yaml.MappingNode):
        return None
    return next((value for k, value in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)


def from_requirements_files(source_dir: Path, config_fields: dict[str, Any] | None = None) -> list[Requirement]:
    """``requirements.txt`` in the source folder, plus ``requirements*.txt`` files a config field names."""
    names = ["requirements.txt"]
    for value in (config_fields or {}).values():
        if isinstance(value, str) and REQUIREMENTS_FILE.fullmatch(Path(value).name) and Path(value).name not in names:
            names.append(value)
    found: list[Requirement] = []
    for name in names:
        path = (source_dir / name).resolve()
        if path.is_file() and path.is_relative_to(source_dir.resolve()):
            found += read_requirements_file(path)
    return found


def read_requirements_file(path: Path) -> list[Requirement]:
    found = []
    for number, raw in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines()[:5000], start=1):
        text = raw.split(" #", 1)[0].strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("-"):  # -r, -c, --index-url ...: pip options, not packages
            continue
        found.append(parse_requirement(text, "requirements.txt", path, number))
    return found


@dataclass
class RequirementSet:
    """One step's requirements, each with its source, plus the index switches its install code reads."""

    node: str
    requirements: list[Requirement] = field(default_factory=list)
    switches: list[Any] = field(default_factory=list)  # scan.EnvSwitch

    def by_name(self) -> dict[str, list[Requirement]]:
        grouped: dict[str, list[Requirement]] = {}
        for req in self.requirements:
            grouped.setdefault(req.name, []).append(req)
        return grouped

    def conflicts(self) -> list[tuple[Requirement, Requirement]]:
        """Pairs of pins that no single version satisfies (an exact pin outside another's range)."""
        from packaging.specifiers import SpecifierSet

        found = []
        for reqs in self.by_name().values():
            for pinned in reqs:
                exact = _exact_version(pinned.specifier)
                if exact is None:
                    continue
                for other in reqs:
                    if (
                        other is not pinned
                        and other.specifier
                        and not SpecifierSet(other.specifier).contains(exact, prereleases=True)
                    ):
                        found.append((pinned, other))
        return found


def _exact_version(specifier: str) -> str | None:
    parts = [s for s in specifier.split(",") if s]
    if len(parts) == 1 and parts[0].startswith("==") and "*" not in parts[0]:
        return parts[0][2:].strip()
    return None
