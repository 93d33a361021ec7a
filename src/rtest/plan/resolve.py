"""Config + interface -> one node's ScriptExecutionSpec, every value with its source."""

from __future__ import annotations

from rtest import jobs
from rtest.catalog import BYO_KIND, choose_image, framework_of, normalize_kind
from rtest.plan.discovery import DiscoveredScript
from rtest.plan.model import InputSpec, OutputSpec, ScriptExecutionSpec, Source, Sourced
from rtest.plan.scan import scan_script_paths
from rtest.plan.values import ResolvedValues, resolve_values

DEFAULT_INSTANCE_TYPE = "ml.m5.xlarge"
MAX_RUNTIME_FIELDS = ("max_runtime_in_seconds", "max_runtime_seconds", "max_runtime")


def resolve_spec(
    found: DiscoveredScript,
    image_map: dict[tuple[str, str], str] | None = None,
    *,
    values: ResolvedValues | None = None,
) -> ScriptExecutionSpec:
    """``values``: env vars and job arguments already resolved (see rtest.plan.values); else by the convention."""
    kind, version = _framework(found)
    values = values or resolve_values(found)
    return ScriptExecutionSpec(
        node=found.node,
        step_type=found.step_type,
        job_kind=found.job_kind,
        script_name=found.script_name,
        entry_point=found.entry_point,
        source_dir=found.source_dir.resolve(),
        interface_file=found.interface_file,
        inputs=_inputs(found),
        outputs=_outputs(found),
        environment={**_kind_environment(found), **values.environment},
        required_environment=(
            list(found.interface.contract.env_vars.required) if found.interface and found.interface.contract else []
        ),
        job_arguments=values.job_arguments,
        hyperparameters=_hyperparameters(found),
        instance_type=_instance_type(found),
        instance_count=int(found.config.get(jobs.get(found.job_kind).instance_count_field) or 1),
        framework=kind,
        framework_version=version,
        image=_image(kind.value, version.value, image_map or {}),
        max_runtime_s=_max_runtime(found),
        network_isolation=_network_isolation(found),
    )


def config_value(found: DiscoveredScript, field: str) -> Sourced | None:
    value = found.config.get(field)
    return None if value is None else Sourced(value=value, source=Source.CONFIG, field=field)


def _inputs(found: DiscoveredScript) -> dict[str, InputSpec]:
    contract = found.interface.contract if found.interface else None
    if contract is not None:
        return {n: InputSpec(name=n, container_path=d.path, required=d.required) for n, d in contract.inputs.items()}
    scanned = scan_script_paths(found.script_path, found.job_kind)
    return {
        n: InputSpec(name=n, container_path=p, required=True, declared_by=Source.SCRIPT_SCAN)
        for n, p in scanned.inputs.items()
    }


def _outputs(found: DiscoveredScript) -> dict[str, OutputSpec]:
    contract = found.interface.contract if found.interface else None
    if contract is not None:
        return {n: OutputSpec(name=n, container_path=d.path) for n, d in contract.outputs.items()}
    scanned = scan_script_paths(found.script_path, found.job_kind)
    return {n: OutputSpec(name=n, container_path=p, declared_by=Source.SCRIPT_SCAN) for n, p in scanned.outputs.items()}


def _hyperparameters(found: DiscoveredScript) -> dict[str, Sourced]:
    if not jobs.get(found.job_kind).takes_hyperparameters:
        return {}
    values = found.config.get("hyperparameters") or {}
    return {
        key: Sourced(value=value, source=Source.CONFIG, field=f"hyperparameters.{key}")
        for key, value in values.items()
        if value is not None
    }


def _instance_type(found: DiscoveredScript) -> Sourced:
    fields = jobs.get(found.job_kind).instance_type_fields(found.config.get)
    for field in [*fields, "instance_type"]:
        sourced = config_value(found, field)
        if sourced is not None and sourced.value:
            return sourced
    return Sourced(value=DEFAULT_INSTANCE_TYPE, source=Source.BUILTIN)


def _framework(found: DiscoveredScript) -> tuple[Sourced, Sourced]:
    """The framework (from compute.kind, or the SDK class an estimator/model uses) and its version.

    The version comes from the interface's version field, else its framework_version_default, as
    the framework reads it (getattr with a default). For a bring-your-own image the "version" is
    the image URI the config field compute.image_uri_field names.
    """
    compute = found.interface.compute if found.interface else None
    serving = jobs.get(found.job_kind).serving_framework(found.config.get)
    # a registration names its serving framework
    if serving is not None and (compute is None or "kind" not in compute.model_fields_set):
        return _serving_framework(found, *serving)
    if compute is None:
        return Sourced(value="python", source=Source.BUILTIN), Sourced(value="3", source=Source.BUILTIN)
    framework = framework_of(
        compute.kind, compute.sdk_class, compute.framework_name, compute.retrieve_framework, compute.retrieve_image
    )
    via = next(
        (
            f"compute.{k}"
            for k in ("framework_name", "sdk_class")
            if getattr(compute, k) and framework != normalize_kind(compute.kind)
        ),
        "compute.kind",
    )
    kind = Sourced(value=framework, source=Source.INTERFACE, field=via)
    if framework == BYO_KIND:
        return kind, config_value(found, compute.image_uri_field or "image_uri") or Sourced(
            value=None, source=Source.BUILTIN
        )
    # Where an interface names no version field: the fields such configs use.
    fields = ([compute.framework_version_field] if compute.framework_version_field
              else jobs.get(found.job_kind).framework_version_fields(framework))
    for field in fields:
        value = config_value(found, field)
        if value is not None:
            return kind, Sourced(value=str(value.value), source=Source.CONFIG, field=field)
    for key in ("framework_version_default", "framework_version"):
        if getattr(compute, key):
            return kind, Sourced(value=str(getattr(compute, key)), source=Source.INTERFACE, field=f"compute.{key}")
    return kind, Sourced(value="3" if framework == "python" else None, source=Source.BUILTIN)


def _serving_framework(found: DiscoveredScript, framework: str, field: str) -> tuple[Sourced, Sourced]:
    kind = Sourced(value=framework, source=Source.CONFIG, field=field)
    for version_field in jobs.get(found.job_kind).framework_version_fields(framework):
        value = config_value(found, version_field)
        if value is not None:
            return kind, Sourced(value=str(value.value), source=Source.CONFIG, field=version_field)
    return kind, Sourced(value=None, source=Source.BUILTIN)


def _kind_environment(found: DiscoveredScript) -> dict[str, Sourced]:
    """Variables the job kind takes from the config (the inference check's content types, hosting's variables)."""
    env = jobs.get(found.job_kind).config_environment(found.config.get)
    return {name: Sourced(value=value, source=Source.CONFIG, field=field) for name, (value, field) in env.items()}


def _image(kind: str, version: str | None, image_map: dict[tuple[str, str], str]) -> Sourced:
    """The user's image map first, else the look-alike (or the nearest one; see rtest.plan.images for the warning)."""
    choice = choose_image(kind, version, image_map)
    if choice.mapped and (kind, version or "") in image_map:
        return Sourced(value=choice.image, source=Source.USER, field=f"image_map.{kind}:{version}")
    if choice.mapped:  # a bring-your-own image the config names
        return Sourced(value=choice.image, source=Source.CONFIG, field="image_uri")
    return Sourced(value=choice.image, source=Source.BUILTIN)


def _max_runtime(found: DiscoveredScript) -> Sourced | None:
    for field in MAX_RUNTIME_FIELDS:
        value = config_value(found, field)
        if value is not None:
            return Sourced(value=float(value.value), source=Source.CONFIG, field=field)
    interface = found.interface
    if interface is not None and interface.max_runtime_in_seconds:
        return Sourced(
            value=float(interface.max_runtime_in_seconds), source=Source.INTERFACE, field="max_runtime_in_seconds"
        )
    return None


def _network_isolation(found: DiscoveredScript) -> Sourced | None:
    for field in ("enable_network_isolation", "network_isolation"):
        value = config_value(found, field)
        if value is not None:
            return Sourced(value=bool(value.value), source=Source.CONFIG, field=field)
    return None
