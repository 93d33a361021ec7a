"""DAG + config + interfaces + user overrides -> a validated PipelineTestingSpec."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from rtest.catalog import parse_image_map
from rtest.errors import PlanError
from rtest.inputs.config import PipelineConfig, load_pipeline_config
from rtest.inputs.dag import PipelineDAG, load_dag
from rtest.inputs.interfaces import InterfaceRegistry, load_interfaces
from rtest.plan import warnings as plan_warnings
from rtest.plan.checks import check_names, require_something_to_run
from rtest.plan.class_answers import ClassChoice, ClassResults
from rtest.plan.class_source import ClassSource
from rtest.plan.config_inputs import feed_config_inputs
from rtest.plan.container_paths import container_path_problems
from rtest.plan.discovery import Discovery, discover
from rtest.plan.framework_classes import framework_source_folders, resolve_config_classes
from rtest.plan.images import image_warnings, interface_warnings
from rtest.plan.inference_check import settle_inference_checks
from rtest.plan.input_paths import input_path_problem
from rtest.plan.limits import shape_note
from rtest.plan.mistakes import unfed_input_message
from rtest.plan.model import (
    InputSpec,
    JobArgument,
    PipelineTestingSpec,
    PlanWarning,
    ScriptExecutionSpec,
    Source,
    Sourced,
    format_env_value,
)
from rtest.plan.resolve import resolve_spec
from rtest.plan.rule_limits import builder_path_warnings, rule_limit_warnings
from rtest.plan.sources import make_source_context
from rtest.plan.spec_nodes import keyed_by_node, without_nodes_outside_dag
from rtest.plan.userspec import ScriptOverrides, UserSpec
from rtest.plan.values import resolve_values
from rtest.plan.wiring import wire_plan


@dataclass
class PipelineInputs:
    dag: PipelineDAG
    config: PipelineConfig
    interfaces: InterfaceRegistry
    source_root: Path
    discovery: Discovery
    config_classes: list[str] = field(default_factory=list)  # modules of the pipeline's own config classes
    framework_python: str | None = None  # the user's project interpreter, where the config classes run
    use_config_classes: bool = True  # False: --no-config-classes
    _class_results: ClassResults | None = field(default=None, repr=False)

    def class_results(self) -> ClassResults:
        """The config classes' answers, asked once (one subprocess) however many plans are drafted."""
        if self._class_results is None:
            choice = ClassChoice(tuple(self.config_classes), self.framework_python, self.use_config_classes)
            self._class_results = resolve_config_classes(self.discovery, choice)
        return self._class_results

@dataclass(frozen=True)
class Problem:
    node: str
    field: str  # "inputs.DATA", "environment.LABEL_FIELD", "job_arguments.--job_type", ...
    message: str


def load_pipeline_inputs(
    dag: Any,
    config_path: Path | str,
    interface_dirs: Sequence[Path | str] | None = None,
    source_root: Path | str | None = None,
    *,
    source_map: dict[str, str] | None = None,
    allow_source_outside_root: bool = False,
    config_classes: list[str] | None = None,
    framework_python: str | None = None,
    use_config_classes: bool = True,
) -> PipelineInputs:
    """Read the three inputs and discover the script nodes. Relative config paths resolve against source_root,
    or the local folder ``source_map`` maps their prefix to (see rtest.plan.sources)."""
    config = load_pipeline_config(config_path)
    pipeline_dag = load_dag(dag)
    if not interface_dirs:
        default_dir = config.path.parent / "interfaces"
        interface_dirs = [default_dir] if default_dir.is_dir() else []
    interfaces = load_interfaces([Path(d) for d in interface_dirs])
    root = Path(source_root).expanduser().resolve() if source_root else config.path.parent
    sources = make_source_context(root, source_map, allow_outside_root=allow_source_outside_root)
    found = discover(pipeline_dag, config, interfaces, sources)
    return PipelineInputs(pipeline_dag, config, interfaces, root, found, list(config_classes or []),
                          framework_python=framework_python, use_config_classes=use_config_classes)


def draft_plan(inputs: PipelineInputs, user: UserSpec | None = None) -> PipelineTestingSpec:
    """The plan with the user's overrides applied; see ``plan_problems`` for what is still missing."""
    user = keyed_by_node(user or UserSpec(), inputs.discovery)
    user, stray = without_nodes_outside_dag(user, inputs.dag)
    _check_nodes(user, inputs.discovery)
    image_map = parse_image_map(user.image_map)
    classes = inputs.class_results()
    specs, resolvers, early = {}, {}, [*inputs.discovery.warnings, *classes.warnings]
    for node, found in inputs.discovery.scripts.items():
        values = resolve_values(found, classes.answer(node))
        specs[node], resolvers[node] = resolve_spec(found, image_map, values=values), values.resolver
        assert inputs.discovery.sources is not None  # discover() always sets it
        early += feed_config_inputs(found, specs[node], inputs.discovery.sources, classes)
    iface_by_node = {node: found.interface for node, found in inputs.discovery.scripts.items()}
    wires, notes = wire_plan(inputs.dag, specs, iface_by_node)
    # An input the config feeds takes the config's path, not a wire: the framework overrides the dependency.
    wires = [w for w in wires if specs[w.target_node].inputs[w.target_input].host_path is None]
    for node, overrides in user.scripts.items():
        wires, notes = _apply_overrides(specs[node], overrides, wires, notes)
    plan = PipelineTestingSpec(
        dag_nodes=inputs.dag.nodes,
        dag_edges=inputs.dag.edges,
        scripts=specs,
        skipped=dict(inputs.discovery.skipped),
        wires=wires,
        notes=[*classes.notes, *notes],
        values_resolver=classes.description,
        framework_log=list(classes.log),
        warnings=image_warnings(specs, image_map) + interface_warnings(inputs.interfaces),
        config_path=inputs.config.path,
        source_root=inputs.source_root,
        follow_input_links=user.follow_input_links,
    )
    plan.warnings = list(dict.fromkeys(plan.warnings + _warnings(inputs, plan, resolvers, early) + stray))
    settle_inference_checks(plan)  # a registration with no payloads or no model is skipped, saying which
    types = dict.fromkeys(s.instance_type.value for s in specs.values() if s.instance_type is not None)
    plan.notes += [note for t in types if (note := shape_note(t))]  # once per type, not a log line per plan
    check_names(plan)
    return plan


def _warnings(
    inputs: PipelineInputs, plan: PipelineTestingSpec, resolvers: dict[str, str], early: list[PlanWarning]
) -> list[PlanWarning]:
    """Every guess and gap, after the user's overrides (a value the user set is no longer a guess)."""
    found = inputs.discovery.scripts
    out = plan_warnings.dag_config_warnings(inputs.dag, inputs.config)
    out += [w for w in early if not _settled(plan, w)]
    source: ClassSource | None = None
    for node, spec in plan.scripts.items():
        if resolvers[node] == "convention":
            source = source or ClassSource(framework_source_folders(inputs.discovery))
            facts = source.facts(found[node].config.config_class or "")
            limits = rule_limit_warnings(found[node], spec, facts) if facts else []
            said = {w.subject for w in limits}
            out += limits + [w for w in plan_warnings.env_guess_warnings(found[node], spec) if w.subject not in said]
        out += plan_warnings.required_env_warnings(found[node], spec, resolvers[node])
        out += builder_path_warnings(found[node], spec)
    out += plan_warnings.unmounted_input_warnings(plan, inputs.dag, inputs.config, inputs.interfaces)
    return list(dict.fromkeys(out))


def _settled(plan: PipelineTestingSpec, warning: PlanWarning) -> bool:
    spec = plan.scripts.get(warning.node or "")
    if spec is None or not warning.subject or not warning.subject.startswith("inputs."):
        return False
    item = spec.inputs.get(warning.subject.split(".", 1)[1])
    return (
        item is None
        or item.host_path is not None
        or any(w.target_input == item.name for w in plan.wires_into(spec.node))
    )


def plan_problems(plan: PipelineTestingSpec, workdir: Path | str | None = None) -> list[Problem]:
    """Everything that would stop a run: unfed required inputs, unusable paths, unusable container paths.

    With ``workdir``, an input that holds it is a problem too (its copy would copy itself).
    """
    fed = {(w.target_node, w.target_input) for w in plan.wires}
    problems: list[Problem] = []
    for node, spec in plan.scripts.items():
        if not spec.inputs and not spec.outputs and spec.kind.needs_named_paths:
            problems.append(Problem(node, "inputs", f"{node}: no interface and no /opt/ml paths in {spec.entry_point}; "
                                                    "name its inputs and outputs"))
        for name, item in spec.inputs.items():
            unusable = (
                input_path_problem(item.host_path.value, follow_links=plan.follow_input_links, workdir=workdir)
                if item.host_path
                else None
            )
            if unusable:
                problems.append(Problem(node, f"inputs.{name}", f"{node}.{name}: {unusable}"))
            elif item.required and item.host_path is None and (node, name) not in fed:
                problems.append(Problem(node, f"inputs.{name}",
                                        unfed_input_message(plan, node, name, item.container_path)))
        problems += [
            Problem(node, field, message)
            for field, message in container_path_problems(spec, {i for n, i in fed if n == node})
        ]
    # A required env var without a value, or a job argument whose field is unset, is omitted as the
    # framework omits it; it shows as a plan warning (an error under --strict), not as a blocker here.
    return problems


def require_complete(plan: PipelineTestingSpec, workdir: Path | str | None = None, *,
                     strict: bool = False) -> PipelineTestingSpec:
    """The plan, if nothing stops a run; ``strict``: its warnings stop it too."""
    require_something_to_run(plan)
    problems = plan_problems(plan, workdir)
    if problems:
        listing = "; ".join(p.message for p in problems)
        # A misspelt interface key (an alias under 'alises') is often why an input went unfed: say it here too.
        suspects = [w.message for w in plan.warnings if w.code.startswith("interface-")]
        also = f" Interface warnings that may be the cause: {' '.join(suspects)}" if suspects else ""
        raise PlanError(
            f"The plan is incomplete: {listing}.{also}",
            hint="Supply inputs with --input NODE.NAME=PATH, or put them (and environment/job_arguments values) under "
                 "scripts.NODE in a spec file passed with --spec.",
        )
    if strict:
        plan_warnings.strict_check(plan)
    return plan


def build_plan(inputs: PipelineInputs, user: UserSpec | None = None, workdir: Path | str | None = None, *,
               strict: bool | None = None) -> PipelineTestingSpec:
    """``strict`` None: the spec file's ``strict`` decides."""
    user = user or UserSpec()
    return require_complete(draft_plan(inputs, user), workdir, strict=user.strict if strict is None else strict)


def _check_nodes(user: UserSpec, discovery: Discovery) -> None:
    for node in user.scripts:
        if node not in discovery.scripts:
            why = f" (it is skipped: {discovery.skipped[node]})" if node in discovery.skipped else ""
            valid = ", ".join(sorted(discovery.scripts)) or "none"
            raise PlanError(f"Script '{node}' not found in validated scripts{why}; valid names are: {valid}.")


def _apply_overrides(
    spec: ScriptExecutionSpec, overrides: ScriptOverrides, wires: list, notes: list
) -> tuple[list, list]:
    user = lambda value, field: Sourced(value=value, source=Source.USER, field=field)  # noqa: E731
    for name, path in overrides.inputs.items():
        if name not in spec.inputs:
            if spec.interface_file is not None:
                known = ", ".join(spec.inputs) or "none"
                raise PlanError(f"Node '{spec.node}' has no input '{name}'; its inputs are: {known}.")
            spec.inputs[name] = InputSpec(
                name=name,
                container_path=spec.kind.conventional_input_path(name),
                required=True,
                declared_by=Source.USER,
            )
        spec.inputs[name].host_path = user(path, f"inputs.{name}")
        if any(w.target_node == spec.node and w.target_input == name for w in wires):
            notes = [*notes, f"{spec.node}.{name} takes the user's path {path} instead of its upstream wire."]
            wires = [w for w in wires if not (w.target_node == spec.node and w.target_input == name)]
    for name, path in overrides.outputs.items():
        if name not in spec.outputs:
            raise PlanError(
                f"Node '{spec.node}' has no output '{name}'; its outputs are: {', '.join(spec.outputs) or 'none'}."
            )
        spec.outputs[name].export_to = path
    for var, value in overrides.environment.items():
        spec.environment[var] = user(None if value is None else format_env_value(value), f"environment.{var}")
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
        spec.requirements = [
            user(_checked_requirement(text, spec.node), "requirements") for text in overrides.requirements
        ]
    if overrides.timeout_s:
        spec.max_runtime_s = user(float(overrides.timeout_s), "timeout_s")
    return wires, notes


def _checked_requirement(text: str, node: str) -> str:
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        Requirement(text.strip())
    except InvalidRequirement as exc:
        raise PlanError(f"scripts.{node}.requirements: '{text}' is not a valid requirement ({exc}); "
                        "write it like pandas>=1.3,<2.") from None
    return text.strip()
