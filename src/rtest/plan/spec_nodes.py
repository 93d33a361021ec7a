"""Which node a spec entry (or an --input flag) means: a node name, or a script name only one node runs;
entries of a spec file for nodes the DAG does not have are dropped with a warning naming the file."""

from __future__ import annotations

from rtest.errors import PlanError
from rtest.inputs.dag import PipelineDAG
from rtest.plan.discovery import Discovery
from rtest.plan.model import PlanWarning
from rtest.plan.userspec import UserSpec


def keyed_by_node(user: UserSpec, discovery: Discovery) -> UserSpec:
    """Spec entries and --input flags may name a script (preprocess, preprocess.py) where one node runs it."""
    renames: dict[str, str] = {}
    for key in user.scripts:
        if key in discovery.scripts:
            continue
        nodes = [n for n, found in discovery.scripts.items() if key in (found.script_name, found.entry_point)]
        if len(nodes) > 1:
            raise PlanError(f"Script name '{key}' is ambiguous: nodes {', '.join(nodes)} all run it; "
                            f"name the node instead (one of {', '.join(nodes)}).")
        if nodes:
            renames[key] = nodes[0]
    if not renames:
        return user
    renamed = user.model_copy(deep=True)
    renamed.scripts = {}
    for key, overrides in user.scripts.items():  # a node named both ways: its settings merge, later ones winning
        renamed = renamed.merged_with(UserSpec(scripts={renames.get(key, key): overrides}))
    return renamed


def without_nodes_outside_dag(user: UserSpec, dag: PipelineDAG) -> tuple[UserSpec, list[PlanWarning]]:
    """A spec file written for a bigger DAG: its entries for nodes this DAG lacks are ignored, with a warning."""
    stray = [node for node in user.scripts if node not in dag.nodes and node in user.file_nodes]
    if not stray:
        return user, []
    kept = user.model_copy(deep=True)
    for node in stray:
        del kept.scripts[node]
    return kept, _stray_warning(stray, user.origin)


def _stray_warning(stray: list[str], spec_file: str | None) -> list[PlanWarning]:
    where = f"spec file {spec_file}" if spec_file else "the spec"
    return [PlanWarning(code="spec-node-outside-dag", subject="scripts",
                        message=(f"{where} has settings for {', '.join(stray)}, which the DAG does not have; they are "
                                 f"ignored. Remove them from {where}, or use the DAG they were written for."))]
