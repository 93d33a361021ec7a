"""Mistakes that used to pass in silence, each turned into a sentence naming the file and the fix.

- an interface whose ``step_type`` matches no config class (the node quietly became a script-scan step);
- a ``registry.sagemaker_step_type`` one typo away from a step type rtest runs (the node was quietly skipped);
- a required input left unfed although a DAG edge reaches it (no output name or alias matched);
- a spec file naming nodes the DAG does not have (rtest.plan.spec_nodes).
"""

from __future__ import annotations

import difflib

from rtest.errors import InterfaceError
from rtest.inputs.config import PipelineConfig
from rtest.inputs.dag import PipelineDAG
from rtest.inputs.interfaces import InterfaceRegistry, StepInterface, canonical
from rtest.jobs.registry import runnable_step_types
from rtest.plan.model import PipelineTestingSpec, PlanWarning


def check_sagemaker_step_types(used: list[tuple[str, StepInterface]], interfaces: InterfaceRegistry) -> None:
    """One error for every interface (of a node in the DAG) whose sagemaker_step_type misspells one rtest runs."""
    runnable = list(runnable_step_types())
    problems: dict[str, str] = {}
    for node, interface in used:
        given = interface.registry.sagemaker_step_type
        if not given or given.lower() in (t.lower() for t in runnable):
            continue
        close = difflib.get_close_matches(given.lower(), [t.lower() for t in runnable], n=1, cutoff=0.75)
        if not close:
            continue
        meant = next(t for t in runnable if t.lower() == close[0])
        path = interfaces.source_of(interface.step_type)
        problems.setdefault(str(path), (
            f"interface {path}: registry.sagemaker_step_type '{given}' is not a SageMaker step type; did you mean "
            f"'{meant}'? Fix it in that file (as written, node {node} would be skipped as not a script)"))
    if problems:
        raise InterfaceError("; ".join(problems.values()) + ".")


# A folder with at most this many interface files no node uses is the user's own, not a framework catalogue:
# each of them may be the missing one, so a node without an interface names them all.
FEW_UNUSED_INTERFACES = 3


def interface_mismatch_warnings(dag: PipelineDAG, config: PipelineConfig,
                                interfaces: InterfaceRegistry) -> list[PlanWarning]:
    """A node with no interface while interface files no node uses are there (one with a close step_type, or a
    few): likely a misnamed step_type, which leaves the node's inputs and outputs to a scan of its script."""
    steps = {node: step for node in dag.nodes if (step := config.step_config(node)) is not None}
    used = {canonical(i.step_type) for s in steps.values() if (i := interfaces.get(s.step_type)) is not None}
    unused = {canonical(t): t for t in interfaces.step_types() if canonical(t) not in used}
    found: list[PlanWarning] = []
    for node, step in steps.items():
        if interfaces.get(step.step_type) is not None:
            continue
        close = difflib.get_close_matches(canonical(step.step_type), list(unused), n=1, cutoff=0.6)
        if close:
            declared = unused[close[0]]
            suspects = (f"{interfaces.source_of(declared)} declares step_type '{declared}', "
                        "which no config class matches")
            which = "If that file is this step's"
        elif 0 < len(unused) <= FEW_UNUSED_INTERFACES:
            suspects = "no config class matches " + ", ".join(
                f"{interfaces.source_of(t)} (step_type '{t}')" for t in unused.values())
            which = "If one of them is this step's"
        else:
            continue
        found.append(PlanWarning(
            node=node, code="interface-step-type-mismatch", subject="interface",
            message=(f"{node}: no interface has step_type '{step.step_type}' (from its config class "
                     f"{step.config_class or '?'}), so its inputs and outputs come from a scan of its script; "
                     f"{suspects}. {which}, set step_type: {step.step_type} in it (or registry.config_class: "
                     f"{step.config_class or step.step_type + 'Config'}).")))
    return found


def unfed_input_message(plan: PipelineTestingSpec, node: str, name: str, container_path: str) -> str:
    """Why a required input has no data: no upstream script at all, or edges whose outputs matched no name."""
    base = f"{node}.{name} ({container_path})"
    parents = [p for p, child in plan.dag_edges if child == node and p in plan.scripts]
    if not parents:
        return f"{base} has no upstream script and no path"
    edges = []
    for parent in parents:
        outputs = list(plan.scripts[parent].outputs)
        where = plan.scripts[parent].interface_file
        fix = (f"add aliases: [{name}] to one of them under spec.outputs in {where}" if where else
               f"name the folder {parent} writes '{name}' or give --input {node}.{name}=PATH")
        edges.append(f"edge {parent} -> {node} exists, but no output of {parent} is named or aliased '{name}' "
                     f"(its outputs: {', '.join(outputs) or 'none'}); {fix}")
    return f"{base} has no path, and " + "; ".join(edges)
