"""Part of a pipeline: which script steps a run runs (``--only``, ``--skip``, ``--from``), and why the rest do not.

Pure plan arithmetic: the runner applies the answer (it owns skipping), the run layer finds the outputs of
the upstream steps that are not run (``rtest.run.reuse``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rtest.errors import PlanError
from rtest.plan.model import PipelineTestingSpec


@dataclass(frozen=True)
class Selection:
    only: tuple[str, ...] = ()  # run just these
    skip: tuple[str, ...] = ()  # run all but these
    from_node: str | None = None  # run this step and everything downstream of it
    reuse_run: str | None = None  # take the outputs of steps not run from this earlier run

    @property
    def partial(self) -> bool:
        return bool(self.only or self.skip or self.from_node)


@dataclass
class SelectedSteps:
    run: list[str]  # in execution order
    skipped: dict[str, str] = field(default_factory=dict)  # node -> why it is not run
    upstream: dict[str, list[str]] = field(default_factory=dict)  # not run, but feeds a run step -> its consumers


def select_steps(plan: PipelineTestingSpec, selection: Selection | None) -> SelectedSteps:
    """The steps to run and the reason for each one not run; a name that is no script step is an error."""
    order = plan.execution_order()
    if selection is None or not selection.partial:
        return SelectedSteps(run=order)
    _check_names(plan, selection)
    graph = plan.script_graph()
    from rtest.graph import descendants

    chosen, why_not = set(order), {}
    if selection.from_node:
        keep = {selection.from_node} | descendants(graph, selection.from_node)
        why_not.update({n: f"not run: upstream of --from {selection.from_node}" for n in chosen - keep})
        chosen &= keep
    if selection.only:
        listed = ", ".join(selection.only) if len(selection.only) <= 3 else f"({len(selection.only)} steps)"
        why_not.update({n: f"not run: not in --only {listed}" for n in chosen - set(selection.only)})
        chosen &= set(selection.only)
    for node in selection.skip:
        if node in chosen:
            why_not[node] = "not run: --skip"
            chosen.discard(node)
    if not chosen:
        raise PlanError("The selection (--only/--skip/--from) leaves no step to run; "
                        f"script steps are: {', '.join(order)}.")
    upstream: dict[str, list[str]] = {}
    for node in order:
        if node in chosen:
            for parent in graph.predecessors(node):
                if parent not in chosen:
                    upstream.setdefault(parent, []).append(node)
    return SelectedSteps(run=[n for n in order if n in chosen],
                         skipped={n: why_not[n] for n in order if n not in chosen}, upstream=upstream)


def _check_names(plan: PipelineTestingSpec, selection: Selection) -> None:
    named = [*selection.only, *selection.skip, *([selection.from_node] if selection.from_node else [])]
    for node in named:
        if node not in plan.scripts:
            why = f" ({plan.skipped[node]})" if node in plan.skipped else ""
            raise PlanError(f"'{node}' is not a script step of this pipeline{why}; "
                            f"script steps are: {', '.join(plan.execution_order())}.")
