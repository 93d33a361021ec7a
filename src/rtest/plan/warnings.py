"""Guesses the plan makes visible: a value that differs from the real step's is never silent.

Codes (``PlanWarning.code``):

- ``env-default-guess``: a declared env var took its interface default while the
  config holds a field that plausibly feeds it (``ID_FIELD`` vs ``id_name``);
- ``optional-input-unmounted``: an optional input the real step would receive
  (from an upstream step or the config) is left unmounted;
- ``required-value-missing``: a required env var has no value;
- ``dag-config-mismatch``: DAG nodes with no config while the config holds steps
  that are in no DAG node;
- ``source-dir-searched``: a source folder found by searching, not by the config;
- ``config-class-failed``: the pipeline's config class could not be used (raised, hung, not found);
- ``class-computes``: the rules decided a value the framework's config class computes itself
  (``rule_limits``, from the class's source read with ``ast``);
- ``builder-computed``: an S3 path the framework's builder joins at execution time.

``--strict`` turns every warning into an error (``strict_check``).
"""

from __future__ import annotations

import re
from typing import Any

from rtest.errors import PlanError
from rtest.inputs.config import PipelineConfig
from rtest.inputs.dag import PipelineDAG
from rtest.inputs.interfaces import InterfaceRegistry
from rtest.plan.discovery import DiscoveredScript
from rtest.plan.model import PipelineTestingSpec, PlanWarning, ScriptExecutionSpec, Source

# Words that say what kind of thing a name holds, not which thing: they never make two names alike.
_GENERIC = {"field", "fields", "name", "names", "type", "types", "value", "values", "key", "keys", "is", "use", "the",
            "of", "list", "s3", "uri", "path", "dir", "enable", "num", "flag"}


def name_tokens(name: str) -> set[str]:
    """The words of a name that say which thing it is: ``CONTENT_TYPES`` -> {content}."""
    words = re.split(r"[^A-Za-z0-9]+|(?<=[a-z])(?=[A-Z])", name)
    tokens = {w.lower() for w in words if w}
    tokens = {t[:-1] if len(t) > 3 and t.endswith("s") and not t.endswith("ss") else t for t in tokens}
    return {t for t in tokens if t not in _GENERIC}


def plausible_fields(env_name: str, fields: dict[str, Any], used: set[str]) -> list[str]:
    """Config fields whose name holds every telling word of ``env_name`` (and that no other var took)."""
    wanted = name_tokens(env_name)
    if not wanted:
        return []
    return [f for f, v in fields.items() if v not in (None, "", [], {}) and f not in used and f != env_name.lower()
            and wanted <= name_tokens(f.rsplit(".", 1)[-1])]


def _fields(found: DiscoveredScript) -> dict[str, Any]:
    fields = {k: v for k, v in found.config.fields.items() if not k.startswith("__") and k != "hyperparameters"}
    hyper = found.config.get("hyperparameters")
    if isinstance(hyper, dict):
        fields.update({f"hyperparameters.{k}": v for k, v in hyper.items()})
    return fields


def env_guess_warnings(found: DiscoveredScript, spec: ScriptExecutionSpec) -> list[PlanWarning]:
    fields = _fields(found)
    used = {v.field for v in spec.environment.values() if v.source == Source.CONFIG and v.field}
    warnings = []
    for name, value in spec.environment.items():
        if value.source != Source.INTERFACE:
            continue
        candidates = plausible_fields(name, fields, used)
        if candidates:
            shown = ", ".join(f"{f} = {_short(fields[f])}" for f in candidates[:3])
            warnings.append(
                PlanWarning(
                    node=spec.node,
                    code="env-default-guess",
                    subject=f"environment.{name}",
                    message=f"{spec.node}: {name} took its interface default '{value.value}', "
                            f"but the config has {shown}, which the "
                    f"real step may use (a config class can compute {name} from it). Set it under "
                    f"scripts.{spec.node}.environment.{name} "
                    "in a spec file, or let the pipeline's own config classes decide with --config-classes MODULE.",
                )
            )
    return warnings


def required_env_warnings(found: DiscoveredScript, spec: ScriptExecutionSpec, resolver: str) -> list[PlanWarning]:
    fields = _fields(found)
    warnings = []
    for name in spec.required_environment:
        if name in spec.environment and spec.environment[name].value is not None:
            continue
        by = (
            "its config class did not produce it"
            if resolver != "convention"
            else f"the config has no field {name.lower()} (nor hyperparameters.{name.lower()})"
        )
        near = plausible_fields(name, fields, set())
        if near and resolver == "convention":
            by += (
                "; the config's "
                + ", ".join(f"{f} = {_short(fields[f])}" for f in near[:3])
                + " may be what a config class passes"
            )
        warnings.append(
            PlanWarning(
                node=spec.node,
                code="required-value-missing",
                subject=f"environment.{name}",
                message=f"{spec.node}: required environment variable {name} has no value ({by}), "
                        "so the step runs without it, as the "
                f"framework would. Set {name.lower()} in the config, or scripts.{spec.node}.environment.{name} in a "
                "spec file.",
            )
        )
    return warnings


def unmounted_input_warnings(
    plan: PipelineTestingSpec, dag: PipelineDAG, config: PipelineConfig, registry: InterfaceRegistry
) -> list[PlanWarning]:
    """Optional inputs nothing feeds here, while a DAG parent that is a compatible source offers an output for them."""
    fed = {(w.target_node, w.target_input) for w in plan.wires}
    warnings = []
    for node, spec in plan.scripts.items():
        iface = registry.get(spec.step_type)
        deps = iface.spec.dependencies if iface is not None and iface.spec is not None else {}
        for name, item in spec.inputs.items():
            if item.required or item.host_path is not None or (node, name) in fed or name not in deps:
                continue
            parents = [
                p
                for p in dag.graph.predecessors(node)
                if _offers(config, registry, p, name, deps[name].compatible_sources)
            ]
            if parents:
                warnings.append(
                    PlanWarning(
                        node=node,
                        code="optional-input-unmounted",
                        subject=f"inputs.{name}",
                        message=f"{node}: optional input {name} is left unmounted, "
                                f"but on the real pipeline {', '.join(parents)} "
                        "(a compatible source with a matching output) would feed it. Supply it with --input "
                        f"{node}.{name}=PATH "
                        "if the step should see it.",
                    )
                )
    return warnings


def _offers(config: PipelineConfig, registry: InterfaceRegistry, parent: str, name: str, compatible: list[str]) -> bool:
    """Whether ``parent`` is a compatible source whose interface has an output named ``name`` or aliased to it."""
    step = config.step_config(parent)
    if step is None or step.step_type not in compatible:
        return False
    iface = registry.get(step.step_type)
    if iface is None:
        return False
    outputs = set(iface.contract.outputs) if iface.contract is not None else set()
    aliases = {a for o in (iface.spec.outputs.values() if iface.spec is not None else []) for a in (o.aliases or [])}
    return name in outputs or name in aliases


def dag_config_warnings(dag: PipelineDAG, config: PipelineConfig) -> list[PlanWarning]:
    unconfigured = [n for n in dag.nodes if config.step_config(n) is None]
    unused = [s for s in config.step_names() if s not in set(dag.nodes)]
    if not unconfigured or not unused:
        return []
    return [
        PlanWarning(
            node=node,
            code="dag-config-mismatch",
            message=f"{node}: DAG node {node} has no config, while the config's steps {', '.join(unused)} are in no "
                    "DAG node; "
            "is the DAG meant for another config (or a step renamed)? Rename one side so they match.",
        )
        for node in unconfigured
    ]


def strict_check(plan: PipelineTestingSpec) -> None:
    if plan.warnings:
        listing = " ".join(f"({i}) {w.message}" for i, w in enumerate(plan.warnings, 1))
        raise PlanError(f"--strict: the plan has {len(plan.warnings)} warning(s): {listing}",
                        hint="Resolve each one, or run without --strict to accept them.")


def _step_type(config: PipelineConfig, node: str) -> str | None:
    step = config.step_config(node)
    return step.step_type if step is not None else None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
