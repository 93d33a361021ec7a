"""Rich (text) and JSON renderings of discovery, requirements and plans."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rtest.cli.text import markup_safe as safe
from rtest.cli.text import plain
from rtest.plan.builder import PipelineInputs, plan_problems
from rtest.plan.images import interface_warnings
from rtest.plan.model import PipelineTestingSpec, ScriptExecutionSpec


def discovery_json(inputs: PipelineInputs) -> dict[str, Any]:
    found = inputs.discovery
    return {
        "scripts": [
            {
                "node": s.node,
                "script_name": s.script_name,
                "entry_point": s.entry_point,
                "job_kind": s.job_kind,
                "script_path": str(s.script_path.resolve()),
            }
            for s in found.scripts.values()
        ],
        "skipped": [{"node": node, "reason": reason} for node, reason in found.skipped.items()],
        "warnings": [w.model_dump(mode="json") for w in [*found.warnings, *interface_warnings(inputs.interfaces)]],
    }


def print_discovery(console: Console, inputs: PipelineInputs) -> None:
    data = discovery_json(inputs)
    table = Table(title=f"Scripts to test ({len(data['scripts'])})", title_justify="left")
    for column in ("node", "script", "job", "path"):
        table.add_column(column, overflow="fold")
    for s in data["scripts"]:
        table.add_row(*(plain(s[k]) for k in ("node", "entry_point", "job_kind", "script_path")))
    console.print(table)
    skipped = Table(title=f"Skipped nodes ({len(data['skipped'])})", title_justify="left")
    skipped.add_column("node", overflow="fold")
    skipped.add_column("reason", overflow="fold")
    for s in data["skipped"]:
        skipped.add_row(plain(s["node"]), plain(s["reason"]))
    console.print(skipped)
    for warning in data["warnings"]:
        console.print(f"[yellow]warning:[/] {escape(warning['message'])}", highlight=False)


def print_requirements(console: Console, requirements: dict[str, Any]) -> None:
    r = {k: safe(v) for k, v in requirements.items() if isinstance(v, str)}
    console.print(
        f"[bold]{r['node']}[/] runs {r['script_path']} as a {r['job_kind']} job on {r['instance_type']} in {r['image']}"
    )
    table = Table(show_header=True)
    for column in ("kind", "name", "value / path", "source", "required"):
        table.add_column(column, overflow="fold")
    for item in requirements["expected_inputs"]:
        table.add_row(
            "input",
            plain(item["name"]),
            plain(f"{item['container_path']} <- {_fed_by(item, requirements['node'])}"),
            plain(_source(item)),
            _yes(item["required"]),
        )
    for item in requirements["expected_outputs"]:
        table.add_row("output", plain(item["name"]), plain(item["container_path"]), plain(item["declared_by"]), "")
    for item in requirements["environment_variables"]:
        table.add_row(
            "env",
            plain(item["name"]),
            plain(_text(item["default_value"])),
            plain(_source(item)),
            _yes(item["required"]),
        )
    for item in requirements["job_arguments"]:
        table.add_row(
            "arg",
            plain(item["name"]),
            plain(_text(item["default_value"])),
            plain(_source(item)),
            _yes(item["required"]),
        )
    for key, item in requirements["hyperparameters"].items():
        table.add_row("hyperparameter", plain(key), plain(_text(item["value"])), plain(_source(item)), "")
    console.print(table)
    for missing in requirements["missing"]:
        console.print(f"[yellow]missing:[/] {safe(missing)}")


def _fed_by(item: dict[str, Any], node: str) -> str:
    """Where an input's data comes from, in words: a path, the upstream output wired in, or what is missing."""
    if item["current_path"]:
        return str(item["current_path"])
    if item["source"] == "wire":
        return f"output {item['field']} (wired along the DAG edge)"
    if not item["required"]:
        return "nothing (optional)"
    return f"MISSING: give --input {node}.{item['name']}=PATH"


def _source(item: dict[str, Any]) -> str:
    return ":".join(str(part) for part in (item.get("source"), item.get("field")) if part) or "-"


def plan_json(plan: PipelineTestingSpec) -> dict[str, Any]:
    from rtest.plan.settings import plan_settings

    data = plan.model_dump(mode="json")
    data["settings"] = {node: {name: {"value": value, "source": source} for name, (value, source) in s.rows().items()}
                        for node, s in plan_settings(plan).items()}
    data["execution_order"] = plan.execution_order()
    data["problems"] = [p.message for p in plan_problems(plan)]
    return data


def print_plan(console: Console, plan: PipelineTestingSpec, *, verbose: bool = False) -> None:
    if plan.values_resolver:
        console.print(f"[bold]values:[/] {safe(plan.values_resolver)}", highlight=False)
    if verbose:
        for line in plan.framework_log:
            console.print(f"[dim]framework: {safe(line)}[/]", highlight=False)
    print_warnings(console, plan)
    from rtest.plan.settings import plan_settings

    settings = plan_settings(plan)
    missing = _missing_images({spec.image.value for spec in plan.scripts.values()})
    for node in plan.execution_order():
        _print_spec(console, plan.scripts[node], {w.target_input: w for w in plan.wires_into(node)}, missing)
        for name, (value, source) in settings[node].rows().items():  # `sandbox run` flags may still override
            if name == "image" and value == plan.scripts[node].image.value:  # never "builtin" for an image
                source = image_origin(plan.scripts[node], missing)
            console.print(f"  set {name}={_text(value)} [dim]({safe(source)})[/]")
    if plan.wires:
        console.print("[bold]Wires[/]")
        for wire in plan.wires:
            console.print(f"  {safe(wire.describe())}")
    for note in plan.notes:
        console.print(f"[yellow]note:[/] {safe(note)}")
    for node, reason in plan.skipped.items():
        console.print(f"[dim]skipped {safe(node)}: {safe(reason)}[/]")


def print_warnings(console: Console, plan: PipelineTestingSpec) -> None:
    """Guessed or missing values first: they are why a run may differ from the real pipeline's."""
    if plan.warnings:
        console.print(f"[bold yellow]{len(plan.warnings)} warning(s)[/] (--strict makes them errors):")
    for warning in plan.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning.message)}", highlight=False)


def image_origin(spec: ScriptExecutionSpec, missing: set[str] | None) -> str:
    """Where the image came from, and, when it is not in the engine, that it is not built and how to get it.

    ``missing``: the plan's images the engine lacks (None: the engine could not be asked). An image rtest
    chose is never called builtin: it is a look-alike rtest builds, or a name with no look-alike behind it.
    """
    from rtest.catalog import IMAGE_DIRS, missing_image_fix
    from rtest.plan.model import Source

    ref = spec.image.value
    fix = missing_image_fix(ref, spec.framework.value, spec.framework_version.value,
                            mapped=spec.image.source is not Source.BUILTIN)
    if spec.image.source is Source.BUILTIN and ref not in IMAGE_DIRS:
        return f"not built: {fix}"  # no look-alike exists, whatever the engine holds under that name
    origin = "rtest look-alike" if spec.image.source is Source.BUILTIN else spec.image.describe()
    return f"{origin}, not built: {fix}" if missing and ref in missing else origin


def _missing_images(refs: set[str]) -> set[str] | None:
    """The images the local engine does not have; None when there is no engine to ask (plan works without one)."""
    try:
        from rtest.run.backends import image_store

        store = image_store()
        return {ref for ref in refs if not store.exists(ref)}
    except Exception:  # noqa: BLE001 - no engine, no permission: the plan is still worth printing
        return None


def _print_spec(console: Console, spec: ScriptExecutionSpec, wires: dict, missing: set[str] | None = None) -> None:
    console.print(
        f"[bold cyan]{safe(spec.node)}[/] {spec.job_kind} {safe(spec.entry_point)} image={safe(spec.image.value)} "
        f"({safe(image_origin(spec, missing))})"
        f" instance={safe(spec.instance_type.value)} ({safe(spec.instance_type.describe())})"
    )
    for item in spec.inputs.values():
        if item.host_path:
            how = "user" if item.host_path.source.value == "user" else item.host_path.describe()
            where = f"{item.host_path.value} ({how})"
        elif item.name in wires:
            where = f"{wires[item.name].source_node}.{wires[item.name].source_output} ({wires[item.name].match})"
        else:
            where = "(optional, not supplied)"
        console.print(f"  in  {safe(item.name)}: {safe(item.container_path)} <- {safe(where)}")
    for output in spec.outputs.values():
        console.print(f"  out {safe(output.name)}: {safe(output.container_path)}")
    for var, value in spec.environment.items():
        console.print(f"  env {safe(var)}={safe(_text(value.value))} [dim]({safe(value.describe())})[/]")
    if spec.job_arguments:
        console.print(f"  args {safe(' '.join(spec.argv()))}")
    for key, value in spec.hyperparameters.items():
        console.print(f"  hp  {safe(key)}={safe(_text(value.value))} [dim]({safe(value.describe())})[/]")


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, default=str)


def _yes(flag: bool) -> str:
    return "yes" if flag else ""


def _text(value: Any) -> str:
    return "-" if value is None else (json.dumps(value) if isinstance(value, (dict, list)) else str(value))
