"""The pipeline's own config classes decide each step's values, run isolated in a subprocess.

Which classes: the config names each step's class (``__model_type__`` or ``metadata.config_types``);
the module comes from ``--config-classes MODULE``, the step's ``__model_module__``, or the framework's
config package found beside the interface files (``.../steps/interfaces`` -> ``steps.configs``).
Which interpreter: ``--framework-python PATH`` (the user's project venv), else rtest's own when the
framework is importable there. Either way the classes run in ONE child process per plan
(``classes_child``, standard library only) with a scratch working folder over a scratch copy of the
source folders (``class_scratch``): user files are never written. Only plain values come back
(``class_answers``). A class that raises, hangs or is not found is a warning; that node takes the rules.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from rtest.errors import PlanError
from rtest.plan.class_answers import ClassAnswer, ClassChoice, ClassResults, rules_only
from rtest.plan.class_scratch import MAX_WRITES_LISTED, Scratch
from rtest.plan.discovery import DiscoveredScript, Discovery
from rtest.plan.model import PlanWarning

MODULE_FIELD = "__model_module__"
NODE_TIME_LIMIT_S = 20  # one class's build and questions; past it the node takes the rules
CHILD = Path(__file__).with_name("classes_child.py")


def resolve_config_classes(discovery: Discovery, choice: ClassChoice) -> ClassResults:
    """Ask every script node's config class for its values, in one batch; rules_only when none can run."""
    if not choice.enabled:
        return rules_only("config classes turned off (--no-config-classes)")
    nodes = [found for found in discovery.scripts.values() if found.config.config_class]
    modules = list(dict.fromkeys([*choice.modules, *framework_packages(discovery)]))
    own = [m for f in nodes if isinstance(m := f.config.get(MODULE_FIELD), str) and m]
    nodes = [f for f in nodes if modules or f.config.get(MODULE_FIELD)]  # no module to look in: the rules decide
    if not nodes or not (modules or own):
        return rules_only("no config-class module is known (the config names no __model_module__ and no "
                          "framework config package sits beside the interface files); name one with --config-classes")
    interpreter = choice.framework_python or sys.executable
    if choice.framework_python is None:
        wanted = list(dict.fromkeys([*modules, *own]))
        missing = [m for m in wanted if not any(_findable(alt) for alt in m.split("|"))]
        if choice.modules and any(m in missing for m in choice.modules):
            raise PlanError(f"--config-classes {', '.join(choice.modules)}: no such module in rtest's environment; "
                            "pass --framework-python PATH (your project's venv python) or check the module name.")
        if len(missing) == len(wanted):
            names = " or ".join(missing[0].split("|")[:2])
            return rules_only(f"framework not importable because there is no module {names} in rtest's environment; "
                              "pass --framework-python PATH (your project's venv python) for exact values")
    return _ask(discovery, nodes, modules, interpreter, choice)


def framework_packages(discovery: Discovery) -> list[str]:
    """The ``configs`` package beside each interface folder, as its possible dotted names, longest first
    (``src/cursus/steps/configs`` -> "src.cursus.steps.configs|cursus.steps.configs"): the child imports the
    first that its interpreter can import."""
    found: list[str] = []
    for configs in framework_source_folders(discovery):
        parts, here = ["configs"], configs.parent
        while (here / "__init__.py").is_file():
            parts.insert(0, here.name)
            here = here.parent
        found.append("|".join(".".join(parts[i:]) for i in range(len(parts) - 1)))
    return found


def framework_source_folders(discovery: Discovery) -> list[Path]:
    """The framework's config packages on disk: ``configs`` beside an interface folder (read by ``class_source``)."""
    folders = []
    for f in discovery.scripts.values():
        if f.interface_file and (f.interface_file.parent.parent / "configs" / "__init__.py").is_file():
            folders.append(f.interface_file.parent.parent / "configs")
    return list(dict.fromkeys(folders))


def _findable(module: str) -> bool:
    """The module's top-level package is on rtest's import path (found without running any of its code)."""
    try:
        return importlib.util.find_spec(module.split(".")[0]) is not None
    except (ImportError, ValueError):
        return False


def _ask(discovery: Discovery, nodes: list[DiscoveredScript], modules: list[str], interpreter: str,
         choice: ClassChoice) -> ClassResults:
    scratch = Scratch.make()
    try:
        request = {
            "modules": modules,
            "time_limit_s": NODE_TIME_LIMIT_S,
            "nodes": [_node_request(found, scratch, discovery) for found in nodes],
        }
        child = scratch.root / "child" / CHILD.name  # run from its own folder: nothing of rtest's is importable
        child.parent.mkdir()
        shutil.copyfile(CHILD, child)
        scratch.snapshot()
        answer, failure = _run_child(request, interpreter, scratch, same_env=choice.framework_python is None)
        written = scratch.written()
        if failure is not None:
            return _all_failed(nodes, interpreter, failure, written, scratch)
        return _results(answer, nodes, interpreter, choice, written, scratch)
    finally:
        scratch.remove()


def _node_request(found: DiscoveredScript, scratch: Scratch, discovery: Discovery) -> dict[str, Any]:
    contract = found.interface.contract if found.interface else None
    declared = list(dict.fromkeys([*contract.env_vars.required, *contract.env_vars.optional])) if contract else []
    attributes = list((getattr(contract, "input_source_overrides", None) or {}).values()) if contract else []
    fields = scratch.fields_for(discovery.sources, found) if discovery.sources else dict(found.config.fields)
    return {"node": found.node, "class_name": found.config.config_class, "module": found.config.get(MODULE_FIELD),
            "fields": _jsonable(fields), "declared": declared, "attributes": attributes}


def _run_child(request: dict, interpreter: str, scratch: Scratch, *, same_env: bool) -> tuple[dict, str | None]:
    child = scratch.root / "child" / CHILD.name
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    if same_env:  # "importable from rtest's environment" means exactly this process's import path
        paths = [p for p in sys.path if p and Path(p).is_dir() and Path(p).resolve() != Path.cwd().resolve()]
        env["PYTHONPATH"] = os.pathsep.join(paths)
    limit = NODE_TIME_LIMIT_S * (len(request["nodes"]) + 1) + 30
    try:
        done = subprocess.run([interpreter, str(child)], input=json.dumps(request), capture_output=True, text=True,
                              cwd=scratch.cwd, env=env, timeout=limit, check=False)
    except subprocess.TimeoutExpired:
        return {}, f"the config classes' process ran past {limit} s and was stopped"
    except OSError as exc:
        return {}, f"--framework-python {interpreter} cannot be started ({exc.strerror or exc})"
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        tail = (done.stderr or done.stdout or "").strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        return {}, f"the config classes' process gave no answer ({tail[0][:300]})"
    return (answer, None) if isinstance(answer, dict) else ({}, "the config classes' process gave no answer")


def _results(answer: dict, nodes: list[DiscoveredScript], interpreter: str, choice: ClassChoice,
             written: list[str], scratch: Scratch) -> ClassResults:
    errors = answer.get("import_errors") or {}
    named = [m for m in choice.modules if m in errors]
    if named:
        raise PlanError(f"--config-classes {named[0]}: the module cannot be imported ({errors[named[0]]}); "
                        "run rtest where the pipeline's framework is installed, pass --framework-python PATH, "
                        "or check the module name.")
    framework = answer.get("framework") or "the framework's"
    via = f"--framework-python {interpreter}" if choice.framework_python else f"rtest's Python ({interpreter})"
    imported = ", ".join(answer.get("imported") or []) or "the modules the config names"
    results = ClassResults(description=f"{framework} config classes via {via}, from {imported}")
    results.log = [scratch.config_paths_in(str(line)) for line in answer.get("log") or []]
    answered = answer.get("nodes")
    raw = answered if isinstance(answered, dict) else {}
    for found in nodes:
        got = ClassAnswer.from_json(raw.get(found.node))
        got.attributes = {k: (None if v is None else scratch.mapped_back(v)) for k, v in got.attributes.items()}
        got.environment = {k: scratch.mapped_back(v) for k, v in got.environment.items()}
        got.argv = [scratch.mapped_back(a) for a in got.argv] if got.argv else got.argv
        results.answers[found.node] = got
        if not got.ok:
            results.warnings.append(_failed(found.node, got.class_name or found.config.config_class or "?",
                                            got.error or "it gave no answer"))
    results.used = any(a.ok for a in results.answers.values())
    if not results.used:
        why = "; ".join(f"{m}: {e}" for m, e in errors.items()) or "no node's class could be used"
        results.description = f"rtest's rules: framework not importable because {why}"
    results.notes = _notes(results.log, written, scratch)
    return results


def _all_failed(nodes: list[DiscoveredScript], interpreter: str, failure: str, written: list[str],
                scratch: Scratch) -> ClassResults:
    results = rules_only(f"the config classes could not run ({failure})")
    results.warnings = [_failed(f.node, f.config.config_class or "?", failure) for f in nodes]
    results.notes = _notes([], written, scratch)
    return results


def _notes(log: list[str], written: list[str], scratch: Scratch) -> list[str]:
    notes = [f"the config classes wrote {path} (in a scratch copy; your files are unchanged)"
             for path in written[:MAX_WRITES_LISTED]]
    if len(written) > MAX_WRITES_LISTED:
        notes.append(f"... and {len(written) - MAX_WRITES_LISTED} more files the config classes wrote")
    notes += [f"a source folder was too big to copy for the config classes, so they did not see it: {s}"
              for s in scratch.skipped]
    if log:
        notes.append(f"the framework logged {len(log)} line(s) while building the configs (--verbose shows them)")
    return notes


def _failed(node: str, class_name: str, why: str) -> PlanWarning:
    return PlanWarning(
        node=node,
        code="config-class-failed",
        message=f"{node}: could not use the config class {class_name} ({why}); its env vars and job arguments "
                "follow rtest's rules instead, which miss values the class computes.",
    )


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
