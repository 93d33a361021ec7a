"""Wire upstream outputs into downstream inputs along DAG edges.

Order of preference: the same logical name, then an alias, then a semantic
match from a compatible source. A weak match on an optional input is worse
than no match: it is reported in the plan's notes, never wired.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rtest.inputs.dag import PipelineDAG
from rtest.inputs.interfaces import StepInterface
from rtest.plan.model import ScriptExecutionSpec, Wire

# A semantic match must share at least this share of keywords to be wired at all;
# an optional input needs a strong one, since a wrong guess hides a real gap.
MIN_SEMANTIC_SCORE = 0.25
STRONG_SEMANTIC_SCORE = 0.5


@dataclass(frozen=True)
class _Candidate:
    wire: Wire
    rank: int  # 0 name, 1 alias, 2 semantic


def wire_plan(
    dag: PipelineDAG,
    specs: dict[str, ScriptExecutionSpec],
    interfaces: dict[str, StepInterface | None],
) -> tuple[list[Wire], list[str]]:
    """Return the wires and notes on weak, ambiguous or empty edges."""
    wires: list[Wire] = []
    notes: list[str] = []
    for target, spec in specs.items():
        parents = [p for p in dag.graph.predecessors(target) if p in specs]
        own = interfaces.get(target)
        for input_name, input_spec in spec.inputs.items():
            candidates = [c for p in parents
                          for c in _candidates(p, specs[p], interfaces.get(p), target, input_name, own)]
            chosen, note = _choose(candidates, target, input_name, input_spec.required)
            if chosen:
                wires.append(chosen.wire)
            if note:
                notes.append(note)
        if own is None or own.spec is None:  # a script-scan step: its names come from its script's literals
            wires += _scanned_edge_wires(target, spec, parents, specs, interfaces, wires, notes)
        for parent in parents:
            if not any(w.source_node == parent and w.target_node == target for w in wires):
                notes.append(f"Edge {parent} -> {target} carries no data: "
                             f"no output of {parent} matches an input of {target}.")
    return wires, notes


def _scanned_edge_wires(target: str, spec: ScriptExecutionSpec, parents: list[str],
                        specs: dict[str, ScriptExecutionSpec], interfaces: dict[str, StepInterface | None],
                        wires: list[Wire], notes: list[str]) -> list[Wire]:
    """Steps without an interface spec, along their DAG edges: names equal but for case and separators
    (train-data, TrainData, train_data), else the one output of the one upstream script into the one unfed input."""
    unfed = [name for name in spec.inputs if not any(w.target_node == target and w.target_input == name for w in wires)]
    plain = [p for p in parents if (interface := interfaces.get(p)) is None or interface.spec is None]
    found: list[Wire] = []
    for name in list(unfed):
        same = [(p, out) for p in plain for out in specs[p].outputs if _canonical(out) == _canonical(name)]
        if len(same) == 1:
            found.append(Wire(source_node=same[0][0], source_output=same[0][1], target_node=target,
                              target_input=name, match="name"))
            unfed.remove(name)
    if len(unfed) == 1 and len(plain) == 1 and len(specs[plain[0]].outputs) == 1 and len(parents) == 1:
        output = next(iter(specs[plain[0]].outputs))
        found.append(Wire(source_node=plain[0], source_output=output, target_node=target, target_input=unfed[0],
                          match="edge"))
        notes.append(f"{target}.{unfed[0]} takes {plain[0]}.{output} along the DAG edge {plain[0]} -> {target}: "
                     "the one output upstream and the one unfed input, as neither step has an interface; "
                     f"give --input {target}.{unfed[0]}=PATH if it should read something else.")
    return found


def _canonical(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _candidates(
    source: str,
    source_spec: ScriptExecutionSpec,
    source_iface: StepInterface | None,
    target: str,
    input_name: str,
    target_iface: StepInterface | None,
) -> list[_Candidate]:
    dependency = _dependency(target_iface, input_name)
    out: list[_Candidate] = []
    for output_name in source_spec.outputs:
        output_decl = _output_decl(source_iface, output_name)
        base = dict(source_node=source, source_output=output_name, target_node=target, target_input=input_name)
        if output_name == input_name:
            out.append(_Candidate(Wire(**base, match="name"), 0))
            continue
        output_aliases = set(output_decl.aliases) if output_decl else set()
        input_aliases = set(dependency.aliases) if dependency else set()
        if input_name in output_aliases or output_name in input_aliases:
            out.append(_Candidate(Wire(**base, match="alias"), 1))
            continue
        score = _semantic_score(dependency, source_spec.step_type, input_name, output_name, output_decl)
        if score >= MIN_SEMANTIC_SCORE:
            out.append(_Candidate(Wire(**base, match="semantic", score=score), 2))
    return out


def _choose(candidates: list[_Candidate], target: str, input_name: str,
            required: bool) -> tuple[_Candidate | None, str | None]:
    if not candidates:
        return None, None
    best_rank = min(c.rank for c in candidates)
    best = [c for c in candidates if c.rank == best_rank]
    best.sort(key=lambda c: -(c.wire.score or 0.0))
    chosen = best[0]
    if chosen.rank == 2 and not required and (chosen.wire.score or 0) < STRONG_SEMANTIC_SCORE:
        return None, (
            f"Optional input {target}.{input_name} was NOT wired: the best match, {chosen.wire.source_node}."
            f"{chosen.wire.source_output}, is only a weak semantic match ({chosen.wire.score:.2f}); supply it with"
            f" --input {target}.{input_name}=PATH if it is meant to be fed."
        )
    ties = [c for c in best if c is not chosen and (c.wire.score or 0.0) == (chosen.wire.score or 0.0)]
    if ties:
        others = ", ".join(f"{c.wire.source_node}.{c.wire.source_output}" for c in ties)
        took = f"{chosen.wire.source_node}.{chosen.wire.source_output}"
        return chosen, f"Input {target}.{input_name} matched several outputs equally well; took {took} over {others}."
    return chosen, None


def _dependency(iface: StepInterface | None, input_name: str):
    if iface is None or iface.spec is None:
        return None
    return iface.spec.dependencies.get(input_name)


def _output_decl(iface: StepInterface | None, output_name: str):
    if iface is None or iface.spec is None:
        return None
    return iface.spec.outputs.get(output_name)


def _semantic_score(dependency, source_step_type: str, input_name: str, output_name: str, output_decl) -> float:
    """Keyword overlap between what the input wants and what the output offers, for compatible sources."""
    if dependency is None or not dependency.compatible_sources:
        return 0.0
    if source_step_type not in dependency.compatible_sources:
        return 0.0
    wanted = set(dependency.semantic_keywords) | _tokens(input_name)
    offered = _tokens(output_name)
    if output_decl is not None:
        offered |= set(output_decl.semantic_keywords)
        for alias in output_decl.aliases:
            offered |= _tokens(alias)
    wanted = {w.lower() for w in wanted}
    offered = {o.lower() for o in offered}
    if not wanted or not offered:
        return 0.0
    return 2 * len(wanted & offered) / (len(wanted) + len(offered))  # Dice coefficient, 0..1


def _tokens(name: str) -> set[str]:
    return {t for t in re.split(r"[^A-Za-z0-9]+|(?<=[a-z])(?=[A-Z])", name.lower()) if t}
