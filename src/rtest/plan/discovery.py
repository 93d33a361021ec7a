"""Which DAG nodes really run a script of the user's, and why the others don't.

A node is a script to test only when it has a config, its interface (where one
is known) names a step type a job kind serves (rtest.jobs), it names an entry point, and that file
exists. An entry-point field alone is no proof: registration steps carry
``inference_entry_point`` and run nothing of the user's in a job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rtest.errors import DiscoveryError
from rtest.inputs.config import SERVING_ENTRY_FIELD, PipelineConfig, StepConfig, entry_point_field_names
from rtest.inputs.dag import PipelineDAG
from rtest.inputs.interfaces import InterfaceRegistry, StepInterface
from rtest.jobs.registry import get as get_kind
from rtest.jobs.registry import kind_for_entry_field, runnable_step_types
from rtest.plan.mistakes import check_sagemaker_step_types, interface_mismatch_warnings
from rtest.plan.model import PlanWarning
from rtest.plan.sources import SEARCH_MAX_DEPTH, Located, SourceContext, locate_source


@dataclass(frozen=True)
class DiscoveredScript:
    node: str
    step_type: str
    config: StepConfig
    interface: StepInterface | None
    interface_file: Path | None
    job_kind: str  # the name of the rtest.jobs kind that runs it
    entry_point_field: str
    entry_point: str  # relative to source_dir
    source_dir: Path
    source_dir_field: str = "source_dir"  # the config field the folder came from, or "search"

    @property
    def script_path(self) -> Path:
        return self.source_dir / self.entry_point

    @property
    def script_name(self) -> str:
        return Path(self.entry_point).stem


@dataclass
class Discovery:
    scripts: dict[str, DiscoveredScript] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    warnings: list[PlanWarning] = field(default_factory=list)  # source folders found by searching
    sources: SourceContext | None = None  # how config paths resolve here (root, --source-map, confinement)


def discover(
    dag: PipelineDAG, config: PipelineConfig, interfaces: InterfaceRegistry, source_root: Path | SourceContext
) -> Discovery:
    """Sort every DAG node into a script to test or a skipped node with its reason."""
    sources = source_root if isinstance(source_root, SourceContext) else SourceContext(root=Path(source_root).resolve())
    found = Discovery(sources=sources)
    missing: list[str] = []
    # Validate only the interfaces this DAG uses (with each node's job_type variant), all problems at once.
    interfaces.check([(c.step_type, c.get("job_type")) for n in dag.nodes if (c := config.step_config(n))])
    used = [(n, i) for n in dag.nodes if (c := config.step_config(n)) and (i := interfaces.get(c.step_type,
                                                                                           c.get("job_type")))]
    check_sagemaker_step_types(used, interfaces)  # a typo there would skip the node in silence
    found.warnings += interface_mismatch_warnings(dag, config, interfaces)
    for node in dag.nodes:
        step_config = config.step_config(node)
        if step_config is None:
            found.skipped[node] = f"no config: {config.path.name} has no configuration.specific entry for it"
            continue
        interface = interfaces.get(step_config.step_type, step_config.get("job_type"))
        reason = _skip_reason(step_config, interface, interfaces)
        if reason:
            found.skipped[node] = reason
            continue
        entry = step_config.entry_point()
        assert entry is not None  # _skip_reason skipped the steps without one
        entry_field, entry_point = entry
        located = locate_source(sources, node, step_config, entry_field, entry_point)
        if not isinstance(located, Located):
            searched = ", ".join(str(p) for p in located)
            if not get_kind(_job_kind(interface, entry_field)).script_job:  # a check rtest adds: skip, never block
                found.skipped[node] = (f"no inference check: its handler {entry_field}='{entry_point}' is not on "
                                       f"disk (searched: {searched})")
                continue
            missing.append(
                f"node '{node}' names {entry_field}='{entry_point}' but no such file exists (searched: {searched}, "
                f"and {SEARCH_MAX_DEPTH} folder levels beneath {sources.root})"
            )
            continue
        if located.warning is not None:
            found.warnings.append(located.warning)
        found.scripts[node] = DiscoveredScript(
            node=node,
            step_type=step_config.step_type,
            config=step_config,
            interface=interface,
            interface_file=interfaces.source_of(interface.step_type) if interface else None,
            job_kind=_job_kind(interface, entry_field),
            entry_point_field=entry_field,
            entry_point=located.entry_point,
            source_dir=located.folder,
            source_dir_field=located.field,
        )
    if missing:
        raise DiscoveryError(
            "Script not found: " + "; ".join(missing) + ".",
            hint="Fix the path in the config, point --source-root at the project folder the config's paths are "
                 "relative to, "
            "or map the config's folder to a local one with --source-map CONFIG_PATH=LOCAL_FOLDER.",
        )
    return found


def _skip_reason(step_config: StepConfig, interface: StepInterface | None, interfaces: InterfaceRegistry) -> str | None:
    if interface is not None and interface.skip_reason:
        return f"{interface.skip_reason} (interface {interfaces.source_of(interface.step_type).name})"
    entry = step_config.entry_point()
    if entry is None:
        return "no entry point: its config sets none of " + ", ".join(entry_point_field_names())
    if interface is None and entry[0] == SERVING_ENTRY_FIELD:
        # Without an interface, an inference handler alone means a model/registration step.
        kinds = " or ".join(runnable_step_types())
        return f"not a {kinds} job: it names only an inference_entry_point, which runs at serving time"
    return None


def _job_kind(interface: StepInterface | None, entry_field: str) -> str:
    if interface is not None:
        return interface.job_kind
    return kind_for_entry_field(entry_field).name
