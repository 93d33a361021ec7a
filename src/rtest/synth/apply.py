"""A draft plan's pending inputs fed with sample data synthesized from their skipped loaders' configs.

An input is synthesized when nothing feeds it (no user path, no wire, no config path) and one of its DAG
parents is a skipped data-loading node that delivers an output of its name (or alias). Inputs the user gave
always win: they are set before this runs. Each loader's dataset is made once, in
``<workdir>/synth/<loader>-<digest>/`` (the digest covers schema, rows and seed, so a folder is reused
only for the same data), and every input fed from it is recorded in ``plan.synthesized``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtest.errors import PlanError
from rtest.plan.model import PipelineTestingSpec, PlanWarning, Source, Sourced, SynthesizedInput
from rtest.synth.generate import derived_seed, generate_table
from rtest.synth.hints import gather_hints
from rtest.synth.schema import DatasetSchema, NotDerivable, derive_schema, loader_kind
from rtest.synth.write import preview, write_dataset

SYNTH_FORMAT = "2"  # part of every dataset digest: a change of the generator makes new folders
DELIVERED = ("DATA", "SIGNATURE", "METADATA")
DEFAULT_ROWS = 2000
RECORD = "rtest-synth.json"


@dataclass(frozen=True)
class SynthOptions:
    rows: int = DEFAULT_ROWS
    seed: int = 0


@dataclass
class Dataset:
    schema: DatasetSchema
    folders: dict[str, Path]
    seed: int
    preview: dict[str, Any]


def synthesize_pending_inputs(plan: PipelineTestingSpec, inputs: Any, root: Path, options: SynthOptions) -> None:
    """Feed every pending input a skipped loader would have fed; ``inputs``: the plan's PipelineInputs."""
    wired = {(w.target_node, w.target_input) for w in plan.wires}
    made: dict[str, Dataset | str] = {}
    missing: list[str] = []
    for node, spec in plan.scripts.items():
        for name, item in spec.inputs.items():
            if item.host_path is not None or (node, name) in wired:
                continue
            found = _loader_output(plan, inputs, node, name)
            if found is None:
                continue
            loader, output = found
            if loader not in made:
                made[loader] = _dataset(plan, inputs, loader, root, options)
            dataset = made[loader]
            if isinstance(dataset, str):
                if item.required:
                    missing.append(f"{node}.{name}: {dataset}")
                continue
            _feed(plan, node, name, loader, output, dataset, options)
    if missing:
        raise PlanError(f"Cannot synthesize {'; '.join(missing)}.",
                        hint="Give these inputs with --input NODE.NAME=PATH (user inputs always win over synthesis).")
    _drop_settled_warnings(plan)


def _loader_output(plan: PipelineTestingSpec, inputs: Any, node: str, name: str) -> tuple[str, str] | None:
    for parent, child in plan.dag_edges:
        if child != node or parent not in plan.skipped:
            continue
        step = inputs.config.step_config(parent)
        if step is None or loader_kind(step) is None:
            continue
        if name.upper() in DELIVERED:
            return parent, name.upper()
        interface = inputs.interfaces.get(step.step_type, step.get("job_type"))
        outputs = interface.spec.outputs if interface is not None and interface.spec is not None else {}
        for output, decl in outputs.items():
            if output in DELIVERED and name in decl.aliases:
                return parent, output
    return None


def loader_feeding(plan: PipelineTestingSpec, inputs: Any, node: str, name: str) -> tuple[str, str] | None:
    """(skipped loader, its output) that synthesis would feed ``node.name`` from; None if none (`rtest init`)."""
    return _loader_output(plan, inputs, node, name)


def synthesis_problem(plan: PipelineTestingSpec, inputs: Any, loader: str) -> str | None:
    """Why ``loader``'s dataset cannot be synthesized (its config says too little); None when it can."""
    spec_dirs = [plan.scripts[n].source_dir for n in plan.execution_order() if n in plan.scripts]
    try:
        derive_schema(inputs.config.step_config(loader), gather_hints(inputs.config, _downstream_first(plan, loader),
                                                                      spec_dirs))
    except NotDerivable as reason:
        return str(reason)
    return None


def _dataset(plan: PipelineTestingSpec, inputs: Any, loader: str, root: Path, options: SynthOptions) -> Dataset | str:
    order = _downstream_first(plan, loader)
    spec_dirs = [plan.scripts[n].source_dir for n in plan.execution_order() if n in plan.scripts]
    hints = gather_hints(inputs.config, order, spec_dirs)
    try:
        schema = derive_schema(inputs.config.step_config(loader), hints)
    except NotDerivable as reason:
        return str(reason)
    for message in schema.warnings:
        plan.warnings.append(PlanWarning(node=loader, code="synth-schema", message=message))
    seed = derived_seed(options.seed, loader)
    material = json.dumps([SYNTH_FORMAT, schema.describe(), options.rows, seed], sort_keys=True, default=str)
    folder = root / f"{loader}-{hashlib.sha256(material.encode()).hexdigest()[:16]}"
    if not (folder / RECORD).is_file():
        _write_aside(schema, options.rows, seed, folder)
    record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    folders = {name: folder / name.lower() for name in DELIVERED}
    return Dataset(schema, folders, seed, record["preview"])


def _write_aside(schema: DatasetSchema, rows: int, seed: int, folder: Path) -> None:
    """Written beside, then renamed into place: a crash never leaves a half dataset that looks complete."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    table = generate_table(schema, rows, seed)
    write_dataset(schema, table, staging, seed)
    (staging / RECORD).write_text(json.dumps({"schema": schema.describe(), "rows": rows, "seed": seed,
                                              "preview": preview(table)}, default=str), encoding="utf-8")
    try:
        staging.rename(folder)
    except OSError:  # another planner made it first: the same bytes, keep theirs
        shutil.rmtree(staging, ignore_errors=True)


def _feed(plan: PipelineTestingSpec, node: str, name: str, loader: str, output: str, dataset: Dataset,
          options: SynthOptions) -> None:
    path = dataset.folders[output]
    plan.scripts[node].inputs[name].host_path = Sourced(value=str(path), source=Source.SYNTHESIZED,
                                                        field=f"{loader}.{output}")
    plan.synthesized.append(SynthesizedInput(
        node=node, input=name, loader=loader, output=output, path=str(path), rows=options.rows, seed=dataset.seed,
        file_format=dataset.schema.file_format if output == "DATA" else "text", fields=dataset.schema.fields,
        columns=dataset.preview["columns"], preview=dataset.preview["rows"] if output == "DATA" else []))


def _downstream_first(plan: PipelineTestingSpec, loader: str) -> list[str]:
    """The loader's descendants in DAG order, then every other node: nearer steps' fields win."""
    children: dict[str, list[str]] = {}
    for parent, child in plan.dag_edges:
        children.setdefault(parent, []).append(child)
    seen, frontier = [], list(children.get(loader, []))
    while frontier:
        node = frontier.pop(0)
        if node not in seen:
            seen.append(node)
            frontier += children.get(node, [])
    return seen + [n for n in plan.dag_nodes if n not in seen and n != loader]


def _drop_settled_warnings(plan: PipelineTestingSpec) -> None:
    fed = {(s.node, f"inputs.{s.input}") for s in plan.synthesized}
    plan.warnings = [w for w in plan.warnings if (w.node, w.subject) not in fed]


def describe(item: SynthesizedInput) -> str:
    """One line for the terminal and the logs (report.json and report.html list every field)."""
    shown = ", ".join(item.fields[:3]) + (f" and {len(item.fields) - 3} more" if len(item.fields) > 3 else "")
    what = f"{item.file_format}, {len(item.columns)} columns" if item.output == "DATA" else item.output.lower()
    return (f"{item.node}.{item.input} <- {item.loader}.{item.output}: {item.rows} rows, seed {item.seed}, "
            f"{what}; from {shown}")


def build_synthesized_plan(inputs: Any, user: Any, workdir: Path | str | None, options: SynthOptions, *,
                           strict: bool | None = None) -> PipelineTestingSpec:
    """``build_plan`` with pending loader inputs synthesized between the draft and the completeness check."""
    from rtest.plan.builder import draft_plan, require_complete
    from rtest.workspace import Workspace

    plan = draft_plan(inputs, user)
    synthesize_pending_inputs(plan, inputs, Workspace(workdir or ".rtest").root / "synth", options)
    return require_complete(plan, workdir, strict=user.strict if strict is None else strict)
