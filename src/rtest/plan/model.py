"""The plan: everything a runner needs to execute a pipeline's scripts.

A plan is pure data (pydantic), saved and reloaded as JSON. Every value a
script will see records where it came from, so a user can tell why it is what
it is.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ConfigDict, Field, field_validator

from rtest import jobs
from rtest.modelbase import Model

if TYPE_CHECKING:
    from rtest.graph import Digraph


class Source(str, Enum):
    INTERFACE = "interface"  # the step interface's default
    CONFIG = "config"  # a field of the pipeline config (see Sourced.field)
    USER = "user"  # factory API, spec file or CLI flag
    SCRIPT_SCAN = "script_scan"  # a /opt/ml literal found in the script
    BUILTIN = "builtin"  # rtest's own default
    CONFIG_CLASS = "config-class"  # the pipeline's own config class computed it (Sourced.field: the class)
    SYNTHESIZED = "synthesized"  # sample data rtest made from the config (issue 19; Sourced.field: the loader)

    def __str__(self) -> str:
        return self.value


class Sourced(Model):
    """A value plus where it came from."""

    model_config = ConfigDict(frozen=True)

    value: Any
    source: Source
    field: str | None = None  # the config field, interface key or flag it came from

    def describe(self) -> str:
        return f"{self.source.value}:{self.field}" if self.field else self.source.value


class InputSpec(Model):
    name: str
    container_path: str
    required: bool = True
    declared_by: Source = Source.INTERFACE  # or SCRIPT_SCAN / USER when no interface names it
    # A host path the user supplied; None when an upstream wire feeds it or it is optional.
    host_path: Sourced | None = None


class OutputSpec(Model):
    name: str
    container_path: str
    declared_by: Source = Source.INTERFACE
    export_to: str | None = None  # a host folder the user wants the output copied to after the run


class JobArgument(Model):
    flag: str
    value: Sourced | None = None  # None: a bare flag, or a field the config lacks
    required: bool = True

    def argv(self) -> list[str]:
        if self.value is None or self.value.value is None:
            return [self.flag]
        return [self.flag, str(self.value.value)]


class ScriptExecutionSpec(Model):
    """How one DAG node's script runs: the one thing a runner needs per step."""

    node: str
    step_type: str
    job_kind: str  # a registered job kind's name (rtest.jobs): "processing", "training", ...
    script_name: str  # entry point without .py, e.g. "preprocess"
    entry_point: str  # relative to source_dir, e.g. "preprocess.py"
    source_dir: Path  # absolute host folder holding the entry point
    interface_file: Path | None = None  # None: inputs/outputs came from a script scan or the user
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    outputs: dict[str, OutputSpec] = Field(default_factory=dict)
    environment: dict[str, Sourced] = Field(default_factory=dict)
    required_environment: list[str] = Field(default_factory=list)  # the interface's required env vars
    job_arguments: list[JobArgument] = Field(default_factory=list)
    hyperparameters: dict[str, Sourced] = Field(default_factory=dict)
    instance_type: Sourced
    instance_count: int = 1
    framework: Sourced  # image kind, e.g. "sklearn", "xgboost", "python"
    framework_version: Sourced
    image: Sourced
    max_runtime_s: Sourced | None = None
    network_isolation: Sourced | None = None  # True: no network (the sandbox default)
    requirements: list[Sourced] = Field(default_factory=list)  # extra package specs the user adds (see rtest.deps)

    @field_validator("job_kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        return jobs.get(value).name  # ValueError naming the known kinds

    @property
    def kind(self) -> jobs.JobKind:
        """The job kind module's object: container paths, config files, env, output handling."""
        return jobs.get(self.job_kind)

    @property
    def script_path(self) -> Path:
        return self.source_dir / self.entry_point

    def argv(self) -> list[str]:
        return [part for arg in self.job_arguments for part in arg.argv()]

    def env(self) -> dict[str, str]:
        return {name: format_env_value(v.value) for name, v in self.environment.items() if v.value is not None}

    def hyperparameter_values(self) -> dict[str, Any]:
        return {name: v.value for name, v in self.hyperparameters.items()}


def format_env_value(value: Any) -> str:
    """A config value as the framework writes it into an env var: bool -> true/false,
    list/tuple -> comma-joined, dict -> JSON, anything else -> str()."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    if isinstance(value, dict):
        import json

        return json.dumps(value)
    return str(value)


MatchKind = Literal["name", "alias", "semantic", "edge"]  # edge: the one output into the one input (no interface)


class Wire(Model):
    """An upstream output feeding a downstream input along a DAG edge."""

    source_node: str
    source_output: str
    target_node: str
    target_input: str
    match: MatchKind
    score: float | None = None  # semantic matches only

    def describe(self) -> str:
        how = self.match if self.score is None else f"{self.match} {self.score:.2f}"
        return f"{self.source_node}.{self.source_output} -> {self.target_node}.{self.target_input} ({how})"


class PlanWarning(Model):
    """A guess or a gap the plan made visible: never silent, an error under --strict."""

    model_config = ConfigDict(frozen=True)

    node: str | None = None  # None: about the pipeline as a whole
    code: str  # see rtest.plan.warnings for the codes
    message: str  # a finished sentence naming the value and how to set it
    subject: str | None = None  # the value it is about: "environment.ID_FIELD", "inputs.DATA", ...


class SynthesizedInput(Model):
    """An input fed with sample data rtest synthesized from a skipped loader's config (rtest.synth)."""

    node: str
    input: str
    loader: str  # the skipped data-loading node whose output it stands in for
    output: str  # DATA, SIGNATURE or METADATA
    path: str
    rows: int
    seed: int  # the dataset's own seed, derived from the run's seed and the loader's name
    file_format: str
    fields: list[str] = Field(default_factory=list)  # the config fields it was derived from, node:field
    columns: list[list[str]] = Field(default_factory=list)  # [name, type]
    preview: list[list[str]] = Field(default_factory=list)  # a few rows, as text


class PipelineTestingSpec(Model):
    """The whole plan: specs per script node, wires, and what was skipped and why."""

    dag_nodes: list[str]
    dag_edges: list[tuple[str, str]]
    scripts: dict[str, ScriptExecutionSpec]
    skipped: dict[str, str] = Field(default_factory=dict)
    wires: list[Wire] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)  # weak or unmatched wiring, reported not guessed
    warnings: list[PlanWarning] = Field(default_factory=list)  # guesses and gaps; errors under --strict
    config_path: Path | None = None
    source_root: Path | None = None
    follow_input_links: bool = False  # the user allows input links that point outside their folder
    values_resolver: str | None = None  # who decided env values and arguments: config classes or rtest's rules
    framework_log: list[str] = Field(default_factory=list)  # what the config classes logged (plan --verbose)
    synthesized: list[SynthesizedInput] = Field(default_factory=list)  # inputs fed with sample data (issue 19)

    def script_graph(self) -> Digraph[str]:
        """Script nodes only; an edge wherever a script reaches another directly or through skipped nodes."""
        from rtest.graph import Digraph

        full: Digraph[str] = Digraph()
        full.add_nodes_from(self.dag_nodes)
        full.add_edges_from(self.dag_edges)
        graph: Digraph[str] = Digraph()
        graph.add_nodes_from(self.scripts)
        for node in self.scripts:
            frontier, seen = list(full.predecessors(node)), set()
            while frontier:  # walk up through skipped nodes only, stopping at the first scripts
                parent = frontier.pop()
                if parent in seen:
                    continue
                seen.add(parent)
                if parent in self.scripts:
                    graph.add_edge(parent, node)
                else:
                    frontier.extend(full.predecessors(parent))
        return graph

    def execution_order(self, graph: Digraph[str] | None = None) -> list[str]:
        """Topological, ties broken by DAG declaration order; pass ``script_graph()`` if already built."""
        from rtest.graph import lexicographical_topological_sort

        order = {node: i for i, node in enumerate(self.dag_nodes)}
        return lexicographical_topological_sort(
            graph if graph is not None else self.script_graph(), key=order.__getitem__
        )

    def wires_into(self, node: str) -> list[Wire]:
        return [w for w in self.wires if w.target_node == node]
