"""The files of a source folder one step really runs, found by parsing, never by running.

A step's cache key covers its entry script, the modules of the source folder it
imports (transitively: ``import x``, ``from x import y``, ``from . import z``,
the ``__init__.py`` of every package on the way, ``importlib.import_module("x")``),
files of the folder it names by literal path (``open("config/x.json")``), and
the folder's ``requirements*.txt``. So editing one script of a shared
``scripts/`` folder reruns only the steps that use it. ``full`` hashes the
whole folder, as before.
"""

from __future__ import annotations

import ast
import hashlib
import os
from pathlib import Path, PurePosixPath

from rtest import jobs
from rtest.pyparse import parse_module
from rtest.run.cache import tree_digest

MAX_FILES = 5000  # a folder this size is hashed whole rather than parsed
MAX_PARSE_BYTES = 5 * 2**20
IMPORTERS = {"import_module", "__import__"}
REQUIREMENTS_GLOB = "requirements*.txt"


def source_digest(source_dir: Path, entry_point: str, *, full: bool = False) -> str:
    """Digest of what the step runs from ``source_dir`` (or of the whole folder with ``full``)."""
    if full:
        return tree_digest(source_dir)
    files = step_files(source_dir, entry_point)
    if files is None:
        return tree_digest(source_dir)
    digest = hashlib.sha256(b"imports-v1\0")
    for relative in files:
        path = source_dir / relative
        digest.update(relative.encode() + b"\0" + (b"x" if os.access(path, os.X_OK) else b"-"))
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def step_files(source_dir: Path, entry_point: str) -> list[str] | None:
    """Sorted paths (relative to ``source_dir``) the step runs; None when the folder is too big to follow."""
    root = source_dir.resolve()
    entry = (root / entry_point).resolve()
    if not _inside(entry, root) or not entry.is_file():
        return None
    search = list(dict.fromkeys([entry.parent, root]))  # sys.path[0] is the script's folder; the code folder too
    found: set[Path] = {p for folder in search for p in folder.glob(REQUIREMENTS_GLOB) if p.is_file()}
    todo, seen = [entry], set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        if len(seen) > MAX_FILES:
            return None
        for target in _references(module, root, search):
            found.add(target)
            if target.suffix == ".py":  # a module: follow its imports too
                todo.append(target)
    found |= seen
    return sorted(p.relative_to(root).as_posix() for p in found if _inside(p, root) and p.is_file())


def _references(module: Path, root: Path, search: list[Path]) -> list[Path]:
    """Modules and data files of the folder that ``module`` imports or names."""
    try:
        if module.stat().st_size > MAX_PARSE_BYTES:
            return []
        tree = parse_module(module.read_bytes(), filename=str(module))
    except (OSError, SyntaxError, ValueError):
        return []  # the step will fail on it anyway; the file itself is already counted
    found: list[Path] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found += _module_files(alias.name, search)
        elif isinstance(node, ast.ImportFrom):
            found += _from_import(node, module, root, search)
        elif (isinstance(node, ast.Call) and _called_name(node) in IMPORTERS and node.args
              and (name := _text(node.args[0]))):
            found += _module_files(name, search)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += _named_file(node.value, module.parent, root)
    return found


def _from_import(node: ast.ImportFrom, module: Path, root: Path, search: list[Path]) -> list[Path]:
    if node.level:  # from . import z / from ..pkg import y: relative to the importing file's package
        base = module.parent
        for _ in range(node.level - 1):
            base = base.parent
        bases = [base] if _inside(base, root) else []
        name = node.module or ""
    else:
        bases, name = search, node.module or ""
    found = _module_files(name, bases) if name else []
    for alias in node.names:  # `from pkg import sub` may name a submodule
        found += _module_files(f"{name}.{alias.name}" if name else alias.name, bases)
    return found


def _module_files(dotted: str, bases: list[Path]) -> list[Path]:
    """The files Python would execute to import ``dotted`` from the first base that has it."""
    parts = [part for part in dotted.split(".") if part]
    for base in bases:
        files, folder = [], base
        for i, part in enumerate(parts):
            package, plain = folder / part / "__init__.py", folder / f"{part}.py"
            if package.is_file():
                files.append(package)
            elif plain.is_file() and i == len(parts) - 1:
                files.append(plain)
            elif not (folder / part).is_dir():  # a namespace package folder goes on without an __init__
                files = []
                break
            folder = folder / part
        if files:
            return files
    return []


def _named_file(text: str, here: Path, root: Path) -> list[Path]:
    """A string literal that names a file of the folder: relative to the script, the folder, or its container path."""
    if not text or len(text) > 300 or "\n" in text or "\0" in text:
        return []
    for prefix in _code_prefixes():
        if text.startswith(prefix):
            text = text[len(prefix):]
            break
    if PurePosixPath(text).is_absolute():
        return []
    for base in (here, root):
        candidate = base / text
        try:
            if candidate.is_file() and _inside(candidate.resolve(), root):
                return [candidate.resolve()]
        except (OSError, ValueError):
            continue
    return []


def _called_name(node: ast.Call) -> str | None:
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _text(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def _code_prefixes() -> list[str]:
    """Where a source folder sits in some job kind's container: its code folder, or where a framework ships it."""
    places = [kind.code_path + "/" for kind in jobs.all_kinds()]
    places += [kind.bundled_source_root for kind in jobs.all_kinds() if kind.bundled_source_root]
    return list(dict.fromkeys(places))
