"""Runs in the framework's interpreter: builds each step's config class and answers data-only questions.

Standard library only: the user's framework environment lacks rtest's dependencies. The parent
(``rtest.plan.framework_classes``) starts it once per plan with a scratch working folder and sends one
JSON request on stdin::

    {"modules": [...], "time_limit_s": 20, "nodes": [{"node", "class_name", "module", "fields",
     "declared", "attributes"}]}

and reads one JSON answer from stdout::

    {"framework": "cursus 2.9.32", "imported": [...], "import_errors": {...}, "log": [...],
     "nodes": {NODE: {"class_name", "ok", "error", "environment", "argv", "attributes"}}}

Everything the framework prints or logs goes to the captured log, never to the answer's stream.
A node whose class raises or runs past the time limit gets ``ok: false`` and the exception line.
"""

from __future__ import annotations

import importlib
import inspect
import io
import json
import logging
import os
import pkgutil
import signal
import sys

MAX_SUBMODULES = 200  # a package's submodules searched for a class, bounded
MAX_LOG_LINES = 500


class NodeTimeout(Exception):
    pass


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


def env_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def import_modules(names):
    """Each name, or the first importable of "a|b|c" alternatives; what failed, with its exception line."""
    modules, errors = [], {}
    for name in names:
        for alternative in name.split("|"):
            try:
                modules.append(importlib.import_module(alternative))
                errors.pop(name, None)
                break
            except Exception as exc:  # reported: the parent says why the framework is not usable
                errors.setdefault(name, one_line(exc))
                if not isinstance(exc, ImportError):
                    errors[name] = one_line(exc)
    return modules, errors


def find_class(name, modules):
    for module in modules:
        found = getattr(module, name, None)
        if isinstance(found, type):
            return found
    for module in modules:  # a package: one level into its submodules
        for i, info in enumerate(pkgutil.iter_modules(getattr(module, "__path__", None) or [])):
            if i >= MAX_SUBMODULES:
                break
            try:
                sub = importlib.import_module(f"{module.__name__}.{info.name}")
            except Exception:  # a broken sibling must not hide the class we want
                continue
            found = getattr(sub, name, None)
            if isinstance(found, type):
                return found
    return None


def build(cls, fields):
    data = {k: v for k, v in fields.items() if not k.startswith("__")}
    model_fields = getattr(cls, "model_fields", None)
    if isinstance(model_fields, dict):  # pydantic: values the serializer dumped are not all init fields
        names = set(model_fields) | {f.alias for f in model_fields.values() if getattr(f, "alias", None)}
        return cls.model_validate({k: v for k, v in data.items() if k in names})
    params = inspect.signature(cls).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return cls(**data)
    return cls(**{k: v for k, v in data.items() if k in params})


def takes_argument(function) -> bool:
    try:
        params = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params)


def defined_at(cls, name):
    """How far down the class hierarchy ``name`` is defined: 0 for the class itself; None when nowhere."""
    for depth, klass in enumerate(cls.__mro__):
        if name in vars(klass):
            return depth
    return None


def environment(instance, declared):
    """As the framework's builder asks: the more derived of a ``get_environment_variables`` method and an
    ``environment_variables`` property wins (a subclass's property beats the base's generic resolver)."""
    method = defined_at(type(instance), "get_environment_variables")
    prop = defined_at(type(instance), "environment_variables")
    if method is not None and (prop is None or method <= prop):
        collector = instance.get_environment_variables
        produced = collector(list(declared)) if takes_argument(collector) else collector()
    else:
        produced = getattr(instance, "environment_variables", None)
    if not isinstance(produced, dict):
        return {}
    return {str(k): env_text(v) for k, v in produced.items() if v is not None}


def attribute_text(instance, name):
    try:
        value = getattr(instance, name)
        value = value() if callable(value) else value
    except Exception:  # the class cannot say; the parent's rules may
        return None
    return str(value) if isinstance(value, (str, os.PathLike)) and str(value).strip() else None


def answer_node(request, modules):
    class_name = request.get("class_name")
    answer = {"class_name": class_name, "ok": False, "error": None, "environment": {}, "argv": None,
              "attributes": {}}
    own = request.get("module")
    if own:
        extra, _ = import_modules([own])
        modules = extra + modules
    cls = find_class(class_name, modules) if class_name and modules else None
    if cls is None:
        searched = ", ".join(m.__name__ for m in modules) or "no importable module"
        answer["error"] = f"no class {class_name} in {searched}"
        return answer
    stage = f"{class_name}(**config)"
    try:
        instance = build(cls, request.get("fields") or {})
        stage = "its get_environment_variables/get_job_arguments"
        answer["environment"] = environment(instance, request.get("declared") or [])
        getter = getattr(instance, "get_job_arguments", None)
        argv = getter() if callable(getter) else None
        answer["argv"] = [str(token) for token in argv] if argv else None
        answer["attributes"] = {name: attribute_text(instance, name) for name in request.get("attributes") or []}
    except NodeTimeout:
        answer["error"] = f"{stage} ran past the time limit"
        return answer
    except Exception as exc:  # the user's code failed: the parent warns and falls back to its rules
        verb = "failed:" if stage.endswith("(**config)") else "raised"
        answer["error"] = f"{stage} {verb} {one_line(exc)}"
        return answer
    answer["ok"] = True
    return answer


def framework_version(modules) -> str | None:
    """ "cursus 2.9.32": the distribution that holds the first module, else its top-level name."""
    if not modules:
        return None
    top = modules[0].__name__.split(".")[0]
    try:
        from importlib import metadata

        name = (metadata.packages_distributions().get(top) or [top])[0]
        return f"{name} {metadata.version(name)}"
    except Exception:  # a source checkout on the path has no distribution metadata
        version = getattr(sys.modules.get(top), "__version__", None)
        return f"{top} {version}" if version else top


def on_alarm(signum, frame):
    raise NodeTimeout()


def answer_all(request):
    modules, errors = import_modules(request.get("modules") or [])
    limit = int(request.get("time_limit_s") or 0)
    nodes = {}
    for item in request.get("nodes") or []:
        if limit and hasattr(signal, "SIGALRM"):
            signal.signal(signal.SIGALRM, on_alarm)
            signal.alarm(limit)
        try:
            nodes[item["node"]] = answer_node(item, modules)
        except NodeTimeout:
            nodes[item["node"]] = {"class_name": item.get("class_name"), "ok": False,
                                   "error": "finding the class ran past the time limit"}
        finally:
            if limit and hasattr(signal, "SIGALRM"):
                signal.alarm(0)
    return {"framework": framework_version(modules), "imported": [m.__name__ for m in modules],
            "import_errors": errors, "nodes": nodes}


class ListHandler(logging.Handler):
    def __init__(self, lines):
        super().__init__(logging.DEBUG)
        self.lines = lines

    def emit(self, record):
        if len(self.lines) < MAX_LOG_LINES:
            self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}"[:1000])


def main() -> None:
    request = json.loads(sys.stdin.read())
    answer_stream = os.fdopen(os.dup(1), "w")
    sink = os.open(os.devnull, os.O_WRONLY)
    os.dup2(sink, 1)  # what the framework writes to the raw descriptors goes nowhere
    os.dup2(sink, 2)
    printed = io.StringIO()
    sys.stdout = sys.stderr = printed
    lines: list[str] = []
    logging.basicConfig(level=logging.INFO, handlers=[ListHandler(lines)], force=True)
    logging.captureWarnings(True)
    answer = answer_all(request)
    printed_lines = [line[:1000] for line in printed.getvalue().splitlines() if line.strip()]
    answer["log"] = (lines + printed_lines)[:MAX_LOG_LINES]
    answer_stream.write(json.dumps(answer))
    answer_stream.flush()


if __name__ == "__main__":
    main()
