"""What a framework's config class computes, read from its source on disk (``ast``; never imported or run).

When the config classes cannot run, rtest's rules decide the values; this module finds where the
class would have decided differently, so the plan can say so for each value. Per class (its own
body and its bases, followed through imports inside the same package tree):

- env names it writes itself (``env["NAME"] = ...``, ``{"NAME": ...}``, ``("attr", "NAME")``), and
  whether that is only the plain field of the same name (``str(self.name)``) or a computation;
- attributes it defines (fields with defaults, properties), which its generic resolver reads for
  ``NAME`` -> ``self.name`` even when the config JSON does not hold them;
- whether it has its own env collector (then it may emit names the interface does not declare);
- the flags its job-argument methods write, and which of them are bare (``args.append("--flag")``).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

from rtest.pyparse import parse_module

MAX_FILES = 400
MAX_FILE_BYTES = 2_000_000
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]+$")
BASE_NAMES = {"BaseModel", "object", "BasePipelineConfig"}  # the generic resolver lives at or above these
ENV_METHODS = ("get_environment_variables", "environment_variables")


@dataclass
class ClassFacts:
    class_name: str
    env: dict[str, bool] = field(default_factory=dict)  # NAME -> True when it is just the plain self.name
    attributes: set[str] = field(default_factory=set)
    defaults: dict[str, str] = field(default_factory=dict)  # field -> its literal default, as env text
    own_collector: bool = False
    flags: set[str] = field(default_factory=set)
    bare_flags: set[str] = field(default_factory=set)
    has_job_arguments: bool = False  # a class below the base builds the arguments itself
    helper_flags: set[str] = field(default_factory=set)  # written by the base's helpers, only when set


class ClassSource:
    """An index of the config classes defined under some folders; facts per class name, cached."""

    def __init__(self, folders: list[Path]) -> None:
        self._files = [path for folder in folders for path in sorted(folder.rglob("*.py"))[:MAX_FILES]]
        self._classes: dict[str, tuple[ast.ClassDef, Path]] = {}
        self._imports: dict[Path, dict[str, Path]] = {}  # file -> name it imports relatively -> that module's file
        self._parsed: set[Path] = set()
        self._facts: dict[str, ClassFacts | None] = {}
        self._last: Path | None = None  # the file of the last class in the latest chain (where its base is imported)

    def facts(self, class_name: str) -> ClassFacts | None:
        if class_name not in self._facts:
            self._find(class_name)
            self._facts[class_name] = self._collect(class_name) if class_name in self._classes else None
        return self._facts[class_name]

    def _find(self, name: str, near: Path | None = None) -> None:
        """Parse the file that defines ``name``: the module ``near`` imports it from, else the first file
        whose text holds ``class name`` (only the files a plan needs are parsed)."""
        if name in self._classes:
            return
        if near is not None and name in self._imports.get(near, {}):
            self._parse(self._imports[near][name])
        needle = f"class {name}"
        for path in self._files:
            if name in self._classes:
                return
            if path not in self._parsed and _small(path) and needle in path.read_text("utf-8", errors="replace"):
                self._parse(path)

    def _parse(self, path: Path) -> None:
        if path in self._parsed or not _small(path):
            return
        self._parsed.add(path)
        try:
            tree = parse_module(path.read_text(encoding="utf-8", errors="replace"), filename=str(path))
        except (SyntaxError, ValueError, OSError):
            return
        imports = self._imports.setdefault(path, {})
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                self._classes.setdefault(node.name, (node, path))
            elif isinstance(node, ast.ImportFrom) and node.level:  # a base class may live elsewhere in the package
                for alias in node.names:
                    imports[alias.asname or alias.name] = _relative_module(path, node.level, node.module)

    def _chain(self, class_name: str) -> list[ast.ClassDef]:
        """The class and its bases, the class first; the generic base stops it."""
        chain: list[ast.ClassDef] = []
        todo: list[tuple[str, Path | None]] = [(class_name, None)]
        seen: set[str] = set()
        while todo:
            name, near = todo.pop(0)
            if name in seen or name in BASE_NAMES:
                continue
            self._find(name, near)
            if name not in self._classes:
                continue
            seen.add(name)
            node, path = self._classes[name]
            chain.append(node)
            todo += [(b.id if isinstance(b, ast.Name) else getattr(b, "attr", ""), path) for b in node.bases]
        self._last = self._classes[chain[-1].name][1] if chain else None
        return chain

    def _collect(self, class_name: str) -> ClassFacts:
        facts = ClassFacts(class_name)
        for node in self._chain(class_name):
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    facts.attributes.add(item.target.id)
                    default = _default(item.value)
                    if default is not None:
                        facts.defaults.setdefault(item.target.id, default)
                elif isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    facts.attributes.add(item.name)
                    facts.own_collector |= item.name in ENV_METHODS
                    facts.has_job_arguments |= item.name == "get_job_arguments"
                    _env_names(item, facts.env)
                    if "arg" in item.name:
                        _flags(item, facts)
        if facts.has_job_arguments:  # the base's helpers it calls (_job_type_arg) hold the common flags
            self._find("BasePipelineConfig", self._last)
            base = self._classes.get("BasePipelineConfig")
            for item in base[0].body if base else []:
                if isinstance(item, ast.FunctionDef) and "arg" in item.name and item.name != "get_job_arguments":
                    helper = ClassFacts(class_name)
                    _flags(item, helper)
                    facts.helper_flags |= helper.flags - facts.flags
                    facts.flags |= helper.flags
        return facts


def _small(path: Path) -> bool:
    return path.is_file() and path.stat().st_size <= MAX_FILE_BYTES


def _default(value: ast.AST | None) -> str | None:
    """A field's literal default (``x: int = 3`` or ``Field(default=3)``) as the env text it would become."""
    if isinstance(value, ast.Call) and getattr(value.func, "id", getattr(value.func, "attr", "")) == "Field":
        found = [k.value for k in value.keywords if k.arg == "default"] or value.args[:1]
        value = found[0] if found else None
    if not isinstance(value, ast.Constant) or value.value is None or value.value is Ellipsis:
        return None
    return ("true" if value.value else "false") if isinstance(value.value, bool) else str(value.value)


def _relative_module(path: Path, level: int, module: str | None) -> Path:
    base = path.parent
    for _ in range(level - 1):
        base = base.parent
    target = base.joinpath(*(module or "").split(".")) if module else base
    return target.with_suffix(".py") if not (target / "__init__.py").is_file() else target / "__init__.py"


def _env_names(function: ast.AST, found: dict[str, bool]) -> None:
    for node in ast.walk(function):
        pairs: list[tuple[str | None, ast.AST | None]] = []
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Subscript) and _text(target.slice) is not None:
                    pairs.append((_text(target.slice), node.value))
        elif isinstance(node, ast.Dict):
            pairs += [(_text(k), v) for k, v in zip(node.keys, node.values) if k is not None]
        elif isinstance(node, ast.Tuple) and len(node.elts) == 2 and _text(node.elts[1]):
            pairs.append((_text(node.elts[1]), None))  # ("bucket", "BUCKET_NAME"): a field of another name
        for name, value in pairs:
            if name and ENV_NAME.match(name):
                found[name] = found.get(name, True) and _plain(value, name.lower())


def _plain(value: ast.AST | None, attr: str) -> bool:
    """The value is the field of the env var's own name, as the generic resolver formats it."""
    if value is None:
        return False
    used = {n.attr for n in ast.walk(value) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
            and n.value.id == "self"}
    calls = [n for n in ast.walk(value) if isinstance(n, ast.Call)]
    return used == {attr} and all(_formatting(call) for call in calls)


def _formatting(call: ast.Call) -> bool:
    """``str(x)``, or ``str(x).lower()`` (how a boolean becomes "true"); ``x.lower()`` on a string changes it."""
    if isinstance(call.func, ast.Name):
        return call.func.id == "str"
    return (isinstance(call.func, ast.Attribute) and call.func.attr == "lower" and isinstance(call.func.value, ast.Call)
            and isinstance(call.func.value.func, ast.Name) and call.func.value.func.id == "str")


def _flags(function: ast.AST, facts: ClassFacts) -> None:
    for node in ast.walk(function):
        text = _text(node) if isinstance(node, ast.Constant) else None
        if text and text.startswith("--"):
            facts.flags.add(text)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "append"
                and len(node.args) == 1 and (flag := _text(node.args[0]) or "").startswith("--")):
            facts.bare_flags.add(flag)


def _text(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None
