"""Recognising pip installs in parsed source: which call runs pip install, and which arguments name packages."""

from __future__ import annotations

import ast
import shlex

# pip options that take a value: the value is not a package
_VALUE_OPTIONS = {
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "-c",
    "--constraint",
    "-r",
    "--requirement",
    "--trusted-host",
    "-t",
    "--target",
    "--prefix",
    "--root",
    "--python-version",
    "--platform",
    "--cert",
    "--proxy",
    "--timeout",
    "--retries",
    "-e",
    "--editable",
    "--src",
    "--upgrade-strategy",
    "--progress-bar",
}


_RUNNERS = {"system", "run", "call", "check_call", "check_output", "Popen", "getoutput", "getstatusoutput", "main"}


def pip_args(call: ast.Call, lists: dict[str, ast.expr] | None = None) -> list[ast.expr] | None:
    """The argument nodes after "install" when ``call`` runs pip install; None otherwise."""
    if not call.args or called_name(call) not in _RUNNERS:
        return None
    first = call.args[0]
    if called_name(call) == "main" and isinstance(first, (ast.List, ast.Tuple)):  # pip.main(["install", ...])
        if not (isinstance(call.func, ast.Attribute) and ast.unparse(call.func.value).endswith("pip")):
            return None
        values = [i.value if isinstance(i, ast.Constant) else None for i in first.elts]
        return first.elts[values.index("install") + 1:] if "install" in values else None
    if isinstance(first, ast.Name) and lists and first.id in lists:  # cmd = [..., "pip", "install", ...]; run(cmd)
        first = lists[first.id]
    if isinstance(first, (ast.List, ast.Tuple)):
        items = first.elts
        words: list[str | None] = [
            i.value if isinstance(i, ast.Constant) and isinstance(i.value, str) else None for i in items
        ]
        for index, word in enumerate(words):
            if word == "install" and any(
                w is not None and (w == "pip" or w.endswith(("/pip", "/pip3", "pip3"))) for w in words[:index]
            ):
                return items[index + 1:]
        return None
    if isinstance(first, ast.Constant) and isinstance(first.value, str):  # os.system("pip install x") / shell=True
        try:
            shell_words = shlex.split(first.value)
        except ValueError:
            return None
        if "install" in shell_words and any(
            w.endswith(("pip", "pip3")) for w in shell_words[: shell_words.index("install")]
        ):
            return [ast.Constant(value=w, lineno=first.lineno) for w in shell_words[shell_words.index("install") + 1:]]
    return None


def package_nodes(args: list[ast.expr]) -> list[ast.expr]:
    """Drop pip options and their values; what is left names packages."""
    kept: list[ast.expr] = []
    skip = False
    for node in args:
        word = node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None
        if skip:
            skip = False
            continue
        if word is not None and word.startswith("-"):
            skip = word in _VALUE_OPTIONS
            continue
        kept.append(node.value if isinstance(node, ast.Starred) else node)
    return kept


def local_lists(scope: ast.AST) -> dict[str, ast.expr]:
    """NAME = [...] inside a scope (the first assignment: later ``+=`` of options does not name packages)."""
    found: dict[str, ast.expr] = {}
    for node in ast.walk(scope):
        if isinstance(node, ast.Assign) and isinstance(node.value, (ast.List, ast.Tuple)):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found.setdefault(target.id, node.value)
    return found


def loop_targets(func: ast.AST) -> dict[str, ast.expr]:
    """for pkg in <iterable>: a name bound by a loop stands for its iterable's items."""
    return {n.target.id: n.iter for n in ast.walk(func) if isinstance(n, ast.For) and isinstance(n.target, ast.Name)}


def call_packages(
    call: ast.Call, installers: dict[str, int], lists: dict[str, ast.expr] | None = None
) -> list[ast.expr]:
    args = pip_args(call, lists)
    if args is not None:
        return package_nodes(args)
    name = called_name(call)
    if name in installers and len(call.args) > installers[name]:
        arg = call.args[installers[name]]
        return [arg.value if isinstance(arg, ast.Starred) else arg]
    return []


def called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None
