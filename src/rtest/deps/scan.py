"""Find what a script installs at import time, by reading its source (nothing is run).

Handled shapes (all seen in real pipeline scripts):
  subprocess.check_call([sys.executable, "-m", "pip", "install", "pandas==1.5.0", ...])
  check_call([..., "pip", "install", *packages])  inside ``def install(packages)``, called as
      ``install(["x==1"])`` or ``install(REQUIRED)`` with ``REQUIRED = [...]`` at module level
  for pkg in ["a", "b"]: check_call([..., "install", pkg])
  os.system("pip install x==1")
Local modules the script imports (files in its source folder) are scanned the same way, and an
installer function defined in one is recognised when another calls it.

Env reads near the installing code (``os.environ.get("USE_SECURE_PYPI")`` in an installer, or at
module level in a variable an installer uses) are reported as index switches.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from rtest.deps.pipcalls import call_packages, local_lists, loop_targets
from rtest.deps.requirements import Requirement, parse_requirement
from rtest.pyparse import parse_module

MAX_MODULES = 200
MAX_BYTES = 2_000_000


@dataclass(frozen=True)
class EnvSwitch:
    name: str  # the env var, e.g. USE_SECURE_PYPI
    file: str
    line: int


@dataclass
class ScanResult:
    requirements: list[Requirement] = field(default_factory=list)
    switches: list[EnvSwitch] = field(default_factory=list)


@dataclass
class _Scope:
    """A module or one of its functions, walked once: the installer rounds read it many times."""

    node: ast.AST
    name: str  # the function's name; "" for the module
    params: list[str]  # the function's positional parameters
    loops: dict[str, ast.expr]
    lists: dict[str, ast.expr]
    calls: list[ast.Call]


@dataclass
class _Module:
    path: Path
    tree: ast.Module
    constants: dict[str, list[tuple[str, int]]]  # module-level NAME = "x" / ["x", "y"] -> strings with lines
    env_vars: dict[str, list[EnvSwitch]]  # module-level NAME = <expr reading env> -> the env reads
    scopes: list[_Scope] = field(default_factory=list)  # the module first, then every function

    @property
    def functions(self) -> list[_Scope]:
        return self.scopes[1:]


def scan_script(script: Path, source_dir: Path) -> ScanResult:
    paths = local_modules(script, source_dir)
    installers: dict[str, int] = {}  # function name -> index of its packages parameter
    result = ScanResult()
    for _ in range(4):  # installers calling installers: a few rounds reach a fixed point
        before = dict(installers)
        for module in _installing(paths, installers):
            _find_installers(module, installers)
        if installers == before:
            break
    modules = list(_installing(paths, installers))
    seen: set[tuple[str, str, int]] = set()
    for module in modules:
        for text, line, _node in _installed_specs(module, installers):
            if (text, str(module.path), line) not in seen:
                seen.add((text, str(module.path), line))
                result.requirements.append(parse_requirement(text, "script", module.path, line))
        result.switches += _switches(module, installers)
    result.switches = sorted(set(result.switches), key=lambda s: (s.file, s.line, s.name))
    return result


def _installing(paths: list[Path], installers: dict[str, int]):
    """The modules that can install, walked as they are reached: a pip call needs the word "pip" in the source and
    an installer call the installer's name, so most of a pipeline's modules are never walked. ``installers`` is read
    at each module, as it grows, so the rounds above find what walking every module would."""
    for path in paths:
        text = _text(path)
        if text is not None and ("pip" in text or any(name in text for name in installers)):
            module = _load(path)
            if module is not None:
                yield module


def local_modules(script: Path, source_dir: Path) -> list[Path]:
    """The script and the modules of its source folder it imports, transitively, found by parsing imports."""
    source_dir = source_dir.resolve()
    found: list[Path] = []
    queue = [script.resolve()]
    while queue and len(found) < MAX_MODULES:
        path = queue.pop(0)
        if path in found:
            continue
        found.append(path)
        tree = _parse(path)
        if tree is None:
            continue
        for name in _imported_names(tree):
            for base in (path.parent, source_dir):
                candidate = _module_file(base, name)
                if candidate is not None and candidate.is_relative_to(source_dir) and candidate not in found:
                    queue.append(candidate)
                    break
    return found


def _imported_names(tree: ast.Module) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom):  # from . import x
            names += [alias.name for alias in node.names]
    return names


def _module_file(base: Path, dotted: str) -> Path | None:
    parts = dotted.split(".")
    for candidate in (base.joinpath(*parts).with_suffix(".py"), base.joinpath(*parts, "__init__.py")):
        if candidate.is_file() and not candidate.is_symlink():
            return candidate.resolve()
    return None


def _file_key(path: Path) -> tuple[Path, int, int] | None:
    """(path, mtime, size): what the memos below are keyed by, so an edited file is read again."""
    try:
        if path.is_symlink():
            return None
        st = path.stat()
    except OSError:
        return None
    return (path, st.st_mtime_ns, st.st_size)


def _small_key(path: Path) -> tuple[Path, int, int] | None:
    """The file's key when it is a file rtest reads at all (no link, at most MAX_BYTES)."""
    key = _file_key(path)
    return None if key is None or key[2] > MAX_BYTES else key


def _parse(path: Path) -> ast.Module | None:
    key = _small_key(path)
    return None if key is None else _parse_file(key)


def _load(path: Path) -> _Module | None:
    key = _file_key(path)
    return None if key is None else _build_module(key)


def _text(path: Path) -> str | None:
    key = _small_key(path)
    return None if key is None else _read(key)


# A pipeline's scripts share their folder's modules: each file is read, parsed and walked once per process.
@lru_cache(maxsize=2000)
def _read(key: tuple[Path, int, int]) -> str | None:
    try:
        return key[0].read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


@lru_cache(maxsize=2000)
def _parse_file(key: tuple[Path, int, int]) -> ast.Module | None:
    text = _read(key)
    try:
        return None if text is None else parse_module(text, filename=str(key[0]))
    except (SyntaxError, ValueError):
        return None


def _scope(node: ast.AST) -> _Scope:
    name, params = "", []
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        name, params = node.name, _params(node)
    return _Scope(node, name, params, loop_targets(node), local_lists(node),
                  [n for n in ast.walk(node) if isinstance(n, ast.Call)])


@lru_cache(maxsize=2000)
def _build_module(key: tuple[Path, int, int]) -> _Module | None:
    path = key[0]
    tree = _parse(path)
    if tree is None:
        return None
    constants: dict[str, list[tuple[str, int]]] = {}
    env_vars: dict[str, list[EnvSwitch]] = {}
    for stmt in tree.body:
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            strings = _strings(stmt.value, {})
            reads = _env_reads(stmt.value, path)
            for target in targets:
                if isinstance(target, ast.Name):
                    if strings is not None:
                        constants[target.id] = strings
                    if reads:
                        env_vars[target.id] = reads
    scopes = [_scope(tree), *(_scope(func) for func in _functions(tree))]
    return _Module(path, tree, constants, env_vars, scopes)


def _strings(node: ast.AST, names: dict[str, list[tuple[str, int]]]) -> list[tuple[str, int]] | None:
    """The literal strings an expression stands for: "x", ["x", "y"], NAME, [*NAME, "z"], A + B."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [(node.value, node.lineno)]
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        out: list[tuple[str, int]] = []
        for item in node.elts:
            part = _strings(item.value if isinstance(item, ast.Starred) else item, names)
            if part is None:
                return None
            out += part
        return out
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _strings(node.left, names), _strings(node.right, names)
        return None if left is None or right is None else left + right
    return None


def _env_reads(node: ast.AST, path: Path) -> list[EnvSwitch]:
    """os.environ.get("X"), os.getenv("X"), os.environ["X"] anywhere inside ``node``."""
    found = []
    for sub in ast.walk(node):
        if not isinstance(sub, (ast.Call, ast.Subscript)):
            continue
        name = None
        if (
            isinstance(sub, ast.Call)
            and sub.args
            and isinstance(sub.args[0], ast.Constant)
            and isinstance(sub.args[0].value, str)
        ):
            func = ast.unparse(sub.func)
            if func.endswith(("environ.get", "getenv")):
                name = sub.args[0].value
        elif isinstance(sub, ast.Subscript) and ast.unparse(sub.value).endswith("environ"):
            key = sub.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                name = key.value
        if name:
            found.append(EnvSwitch(name, str(path), sub.lineno))
    return found


def _functions(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _params(func: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    return [a.arg for a in [*func.args.posonlyargs, *func.args.args]]


def _find_installers(module: _Module, installers: dict[str, int]) -> None:
    """Functions whose pip install (or installer call) takes its packages from one of their parameters."""
    for scope in module.functions:
        for call in scope.calls:
            for node in call_packages(call, installers, scope.lists):
                node = scope.loops.get(node.id, node) if isinstance(node, ast.Name) else node
                if isinstance(node, ast.Name) and node.id in scope.params and scope.name not in installers:
                    installers[scope.name] = scope.params.index(node.id)


def _installed_specs(module: _Module, installers: dict[str, int]):
    """(spec text, line, call) for every literal package a pip call or installer call in this module names."""
    for scope in module.scopes:  # each call is read with its own function's local lists
        for call in scope.calls:
            for node in call_packages(call, installers, scope.lists):
                if isinstance(node, ast.Name) and node.id not in module.constants:
                    node = scope.loops.get(node.id, node)
                for text, line in _strings(node, module.constants) or []:
                    if text.strip() and not text.startswith("-") and text not in (".",):
                        yield text, line, call


def _switches(module: _Module, installers: dict[str, int]) -> list[EnvSwitch]:
    """Env vars read inside installer functions, or by module-level variables those functions use."""
    found: list[EnvSwitch] = []
    for scope in module.functions:
        installs = any(call_packages(c, installers, scope.lists) for c in scope.calls)
        if scope.name not in installers and not installs:
            continue
        found += _env_reads(scope.node, module.path)
        for name in {n.id for n in ast.walk(scope.node) if isinstance(n, ast.Name)}:
            found += module.env_vars.get(name, [])
    return found
