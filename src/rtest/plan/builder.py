"""DAG + config + interfaces + user overrides -> a validated PipelineTestingSpec."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtest.catalog import parse_image_map
from rtest.errors import PlanError
from rtest.inputs.config import PipelineConfig, load_pipeline_config
from rtest.inputs.dag import PipelineDAG, load_dag
from rtest.inputs.interfaces import InterfaceRegistry, load_interfaces
from rtest.plan.discovery import Discovery, discover
from rtest.plan.model import InputSpec, JobArgument, PipelineTestingSpec, ScriptExecutionSpec, Source, Sourced
from rtest.plan.resolve import resolve_spec
from rtest.plan.userspec import ScriptOverrides, UserSpec
from rtest.plan.wiring import wire_plan


@dataclass
class PipelineInputs:
    dag: PipelineDAG
    config: PipelineConfig
    interfaces: InterfaceRegistry
    source_root: Path
    discovery: Discovery


@dataclass(frozen=True)
class Problem:
    node: str
    field: str  # "inputs.DATA", "environment.LABEL_FIELD", "job_arguments.--job_type", ...
    message: str


def load_pipeline_inputs(
    dag: Any, config_path: Path | str, interface_dirs: list[Path | str] | None = None, source_root: Path | str | None = None
) -> PipelineInputs:
    """Read the three inputs and discover the script nodes. Relative config paths resolve against source_root."""
    config = load_pipeline_config(config_path)
    pipeline_dag = load_dag(dag)
    if not interface_dirs:
        default_dir = config.path.parent / "interfaces"
        interface_dirs = [default_dir] if default_dir.is_dir() else []
    interfaces = load_interfaces([Path(d) for d in interface_dirs])
    root = Path(source_root).expanduser().resolve() if source_root else config.path.parent
    return PipelineInputs(pipeline_dag, config, interfaces, root, discover(pipeline_dag, config, interfaces, root))


def draft_plan(inputs: PipelineInputs, user: UserSpec | None = None) -> PipelineTestingSpec:
    """The plan with the user's overrides applied; see ``plan_problems`` for what is still missing."""
    user = user or UserSpec()
    _check_nodes(user, inputs.discovery)
    image_map = parse_image_map(user.image_map)
    specs = {node: resolve_spec(found, image_map) for node, found in inputs.discovery.scripts.items()}
    iface_by_node = {node: found.interface for node, found in inputs.discovery.scripts.items()}
    wires, notes = wire_plan(inputs.dag, specs, iface_by_node)
    for node, overrides in user.scripts.items():
        wires, notes = _apply_overrides(specs[node], overrides, wires, notes)
    return PipelineTestingSpec(
        dag_nodes=inputs.dag.nodes,
        dag_edges=inputs.dag.edges,
        scripts=specs,
        skipped=dict(inputs.discovery.skipped),
        wires=wires,
        notes=notes,
        config_path=inputs.config.path,
        source_root=inputs.source_root,
    )


def plan_problems(plan: PipelineTestingSpec) -> list[Problem]:
    """Everything that would stop a run: unfed required inputs, missing paths, env vars and arguments."""
    fed = {(w.target_node, w.target_input) for w in plan.wires}
    problems: list[Problem] = []
    for node, spec in plan.scripts.items():
        if not spec.inputs and not spec.outputs and spec.job_kind == "processing":
            problems.append(Problem(node, "inputs", f"{node}: no interface and no /opt/ml paths in {spec.entry_point}; name its inputs and outputs"))
        for name, item in spec.inputs.items():
            if item.host_path is not None and not Path(item.host_path.value).exists():
                problems.append(Problem(node, f"inputs.{name}", f"{node}.{name}: path does not exist: {item.host_path.value}"))
            elif item.required and item.host_path is None and (node, name) not in fed:
                problems.append(Problem(node, f"inputs.{name}", f"{node}.{name} ({item.container_path}) has no upstream script and no path"))
        problems += _path_problems(spec)
        for var, value in spec.environment.items():
            if value.value is None:
                problems.append(Problem(node, f"environment.{var}", f"{node}: required environment variable {var} has no value in the config"))
        for arg in spec.job_arguments:
            if arg.required and arg.value is None:
                problems.append(Problem(node, f"job_arguments.{arg.flag}", f"{node}: job argument {arg.flag} has no value in the config"))
    return problems


def _path_problems(spec: ScriptExecutionSpec) -> list[Problem]:
    """Container paths that would make the container fail to start: relative, or two at one place."""
    found: list[Problem] = []
    seen: dict[str, str] = {}
    items = [(f"input {n}", i.container_path) for n, i in spec.inputs.items()] + [(f"output {n}", o.container_path) for n, o in spec.outputs.items()]
    for label, path in items:
        if not path.startswith("/"):
            found.append(Problem(spec.node, label, f"{spec.node}: {label} has the relative container path '{path}'; make it absolute in the interface"))
        elif path.rstrip("/") in seen:
            found.append(Problem(spec.node, label, f"{spec.node}: {label} and {seen[path.rstrip('/')]} share the container path {path}"))
        seen[path.rstrip("/")] = label
    return found


def require_complete(plan: PipelineTestingSpec) -> PipelineTestingSpec:
    problems = plan_problems(plan)
    if problems:
        listing = "; ".join(p.message for p in problems)
        raise PlanError(
            f"The plan is incomplete: {listing}.",
            hint="Supply inputs with --input NODE.NAME=PATH, or put them (and environment/job_arguments values) under scripts.NODE in a spec file passed with --spec.",
        )
    return plan


def build_plan(inputs: PipelineInputs, user: UserSpec | None = None) -> PipelineTestingSpec:
    return require_complete(draft_plan(inputs, user))


def _check_nodes(user: UserSpec, discovery: Discovery) -> None:
    for node in user.scripts:
        if node not in discovery.scripts:
            why = f" (it is skipped: {discovery.skipped[node]})" if node in discovery.skipped else ""
            valid = ", ".join(sorted(discovery.scripts)) or "none"
            raise PlanError(f"Script '{node}' not found in validated scripts{why}; valid names are: {valid}.")


def _apply_overrides(spec: ScriptExecutionSpec, overrides: ScriptOverrides, wires: list, notes: list) -> tuple[list, list]:
    user = lambda value, field: Sourced(value=value, source=Source.USER, field=field)  # noqa: E731
    for name, path in overrides.inputs.items():
        if name not in spec.inputs:
            if spec.interface_file is not None:
                known = ", ".join(spec.inputs) or "none"
                raise PlanError(f"Node '{spec.node}' has no input '{name}'; its inputs are: {known}.")
            spec.inputs[name] = InputSpec(name=name, container_path=_conventional_path(spec, name), required=True,
                                             declared_by=Source.USER)
        spec.inputs[name].host_path = user(path, f"inputs.{name}")
        if any(w.target_node == spec.node and w.target_input == name for w in wires):
            notes = [*notes, f"{spec.node}.{name} takes the user's path {path} instead of its upstream wire."]
            wires = [w for w in wires if not (w.target_node == spec.node and w.target_input == name)]
    for name, path in overrides.outputs.items():
        if name not in spec.outputs:
            raise PlanError(f"Node '{spec.node}' has no output '{name}'; its outputs are: {', '.join(spec.outputs) or 'none'}.")
        spec.outputs[name].export_to = path
    for var, value in overrides.environment.items():
        spec.environment[var] = user(None if value is None else str(value), f"environment.{var}")
    for flag, value in overrides.job_arguments.items():
        flag = flag if flag.startswith("-") else f"--{flag}"
        existing = next((a for a in spec.job_arguments if a.flag == flag), None)
        if existing is None:
            spec.job_arguments.append(JobArgument(flag=flag, value=user(value, f"job_arguments.{flag}")))
        else:
            existing.value = user(value, f"job_arguments.{flag}")
    for key, value in overrides.hyperparameters.items():
        spec.hyperparameters[key] = user(value, f"hyperparameters.{key}")
    if overrides.image:
        spec.image = user(overrides.image, "image")
    if overrides.requirements:  # checked now, so a typo is reported with the plan, not after image builds
        from rtest.deps.requirements import parse_requirement

        spec.requirements = [user(parse_requirement(t, "user", f"scripts.{spec.node}.requirements").text, "requirements")
                             for t in overrides.requirements]
    if overrides.timeout_s:
        spec.max_runtime_s = user(float(overrides.timeout_s), "timeout_s")
    return wires, notes


def _conventional_path(spec: ScriptExecutionSpec, name: str) -> str:
    return f"/opt/ml/input/data/{name}" if spec.job_kind == "training" else f"/opt/ml/processing/input/{name}"
