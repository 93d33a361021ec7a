"""Inputs the framework feeds from the config, not from an upstream step.

- ``contract.input_source_overrides`` (input name -> config attribute): the
  framework mounts the path that attribute resolves to (the packaging step's
  ``inference_scripts_input`` gets the config's source folder). With the
  config classes importable the attribute is read from the instance; without
  them rtest reads the field of that name, ``X`` for ``resolved_X``, and the
  few derived attributes it knows (below).
- ``contract.source_dir: true``: the framework ships the step's whole source
  folder, so a processing input under ``/opt/ml/code/`` is that folder's
  matching sub-path, when it exists (a training step sees it in its code).

An input the real step would receive but rtest cannot resolve is left
unmounted with a warning that says how to supply it.
"""

from __future__ import annotations

from rtest.plan.class_answers import ClassResults
from rtest.plan.discovery import DiscoveredScript
from rtest.plan.model import PlanWarning, ScriptExecutionSpec, Source, Sourced
from rtest.plan.sources import SourceContext, config_path_candidates, confine, resolve_config_path

# Attributes the framework's config classes derive from plain fields: the fields, in the order they try them.
DERIVED_ATTRIBUTES = {"inference_scripts_source": ("inference_scripts_dir", "source_dir")}


def feed_config_inputs(
    found: DiscoveredScript, spec: ScriptExecutionSpec, ctx: SourceContext, classes: ClassResults | None
) -> list[PlanWarning]:
    contract = found.interface.contract if found.interface else None
    if contract is None:
        return []
    warnings: list[PlanWarning] = []
    for name, attr in (getattr(contract, "input_source_overrides", None) or {}).items():
        if name not in spec.inputs or spec.inputs[name].host_path is not None:
            continue
        fed, tried = _override_path(found, attr, ctx, classes)
        if fed is not None:
            spec.inputs[name].host_path = fed
        else:
            warnings.append(_unresolved(found, name, attr, tried, _prefix(found, attr)))
    root = spec.kind.bundled_source_root  # None: the kind's code mount already shows the folder
    if getattr(contract, "source_dir", False) and root:
        for item in spec.inputs.values():
            if item.host_path is None and item.container_path.startswith(root):
                bundled = spec.source_dir / item.container_path[len(root):]
                if bundled.exists():
                    path = confine(ctx, found.node, "contract.source_dir", bundled)
                    item.host_path = Sourced(value=str(path), source=Source.INTERFACE, field="contract.source_dir")
    return warnings


def _override_path(
    found: DiscoveredScript, attr: str, ctx: SourceContext, classes: ClassResults | None
) -> tuple[Sourced | None, list[str]]:
    answer = classes.answer(found.node) if classes is not None else None
    value = answer.attributes.get(attr) if answer is not None else None
    if answer is not None and value:  # a path the class computed, already mapped back from the scratch copy
        path = resolve_config_path(ctx, found.node, found.config, attr, value)
        if path is not None:
            return Sourced(value=str(path), source=Source.CONFIG_CLASS, field=f"{answer.class_name}.{attr}"), []
        return None, [f"{answer.class_name}.{attr} = '{value}'"]
    tried: list[str] = []
    for field_name in _fields_for(attr):
        value = found.config.get(field_name)
        if isinstance(value, str) and value.strip():
            path = resolve_config_path(ctx, found.node, found.config, field_name, value)
            if path is not None:
                return (
                    Sourced(
                        value=str(path), source=Source.CONFIG, field=f"{field_name} (input_source_overrides: {attr})"
                    ),
                    [],
                )
            tried.append(
                f"{field_name} = '{value}' (looked in "
                f"{', '.join(str(p) for p in config_path_candidates(ctx, found.config, value))})"
            )
    return None, tried


def _prefix(found: DiscoveredScript, attr: str) -> str:
    """The config path the user would map: the first field of ``attr`` that holds one."""
    for field_name in _fields_for(attr):
        value = found.config.get(field_name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return "CONFIG_PATH"


def _fields_for(attr: str) -> list[str]:
    fields = [attr]
    if attr.startswith("resolved_"):
        fields.append(attr[len("resolved_"):])
    fields += DERIVED_ATTRIBUTES.get(attr, ())
    return list(dict.fromkeys(fields))


def _unresolved(found: DiscoveredScript, name: str, attr: str, tried: list[str], prefix: str) -> PlanWarning:
    why = f"{'; '.join(tried)} does not exist here" if tried else f"the config has no field that gives {attr}"
    return PlanWarning(
        node=found.node,
        code="optional-input-unmounted",
        subject=f"inputs.{name}",
        message=f"{found.node}: input {name} is fed on the real pipeline by the config's {attr}, but {why}; "
                "it is left unmounted. "
        f"Map the config's folder with --source-map {prefix}=LOCAL_FOLDER, or supply --input {found.node}.{name}=PATH.",
    )
