"""Plan-wide checks of names a run turns into folder names and environment variables.

A bad name is bad input: it is refused before any container starts, with one
sentence naming the node, the name and where it came from, instead of failing
later as an OSError or a 400 from the container engine.
"""

from __future__ import annotations

import re

from rtest.errors import PlanError
from rtest.plan.model import PipelineTestingSpec, ScriptExecutionSpec, Source, Sourced

# POSIX portable names: what every shell and os.environ lookup in a script can use.
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Node, input and output names become folder names; most file systems cap one at 255 bytes.
MAX_NAME_BYTES = 255


def env_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be an environment variable's name; None when it can."""
    if not name:
        return "is empty"
    if "=" in name:
        return "holds '=', which would set a different variable"
    if not ENV_NAME.fullmatch(name):
        return "is not a valid name (use letters, digits and _, not starting with a digit)"
    return None


def name_length_problem(name: str) -> str | None:
    """Why ``name`` cannot become a folder name; None when it can."""
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate, e.g. "\ud800" in a JSON file: no file system takes it
        return "holds a character that is not valid Unicode text (a lone surrogate)"
    return f"is {size} bytes long, over the {MAX_NAME_BYTES} a file name may have" if size > MAX_NAME_BYTES else None


def check_names(plan: PipelineTestingSpec) -> None:
    """Raise PlanError for the first node, input, output or environment name a run cannot use."""
    for node in plan.scripts:  # skipped nodes get no folder
        why = name_length_problem(node)
        if why:
            raise PlanError(
                f"DAG node name {_short(node)} {why}; rtest makes a folder of each script node, "
                "so rename it in the DAG."
            )
    for spec in plan.scripts.values():
        _check_spec(spec)


def _check_spec(spec: ScriptExecutionSpec) -> None:
    for kind, names in (("input", spec.inputs), ("output", spec.outputs)):
        for name in names:
            why = name_length_problem(name)
            if why:
                raise PlanError(f"Node {spec.node}: {kind} name {_short(name)} {why}; rename it in the step interface.")
    for var, value in spec.environment.items():
        why = env_name_problem(var)
        if why:
            raise PlanError(
                f"Node {spec.node}: environment variable name {var!r} {why}; it comes from {_origin(spec, value)}, "
                "fix it there."
            )


def require_something_to_run(plan: PipelineTestingSpec) -> None:
    """A plan with no script node would 'succeed' having tested nothing."""
    if plan.scripts:
        return
    if not plan.dag_nodes:
        raise PlanError(
            "The DAG has no nodes, so there is nothing to run; check that --dag points at the pipeline's DAG."
        )
    skipped = "; ".join(f"{node}: {why}" for node, why in plan.skipped.items())
    raise PlanError(
        f"None of the DAG's {len(plan.dag_nodes)} node(s) runs a script, so there is nothing to run ({skipped})."
    )


def _origin(spec: ScriptExecutionSpec, value: Sourced) -> str:
    if value.source is Source.USER:
        return (f"the user's settings (scripts.{spec.node}.environment in the spec file, "
                "or the factory's environment_variables)")
    if value.source is Source.INTERFACE and spec.interface_file:
        return f"the step interface {spec.interface_file} ({value.field})"
    return f"the {value.source.value} ({value.field})" if value.field else f"the {value.source.value}"


def _short(name: str, keep: int = 60) -> str:
    """The name quoted (repr: a lone surrogate or a control character shows as an escape), cut when long."""
    return repr(name) if len(name) <= keep else f"{name[:keep]!r}... ({len(name)} characters)"
