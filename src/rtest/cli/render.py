"""Rich (text) and JSON renderings of discovery, requirements and plans."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from rtest.plan.builder import PipelineInputs, plan_problems
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
    }


def print_discovery(console: Console, inputs: PipelineInputs) -> None:
    data = discovery_json(inputs)
    table = Table(title=f"Scripts to test ({len(data['scripts'])})", title_justify="left")
    for column in ("node", "script", "job", "path"):
        table.add_column(column, overflow="fold")
    for s in data["scripts"]:
        table.add_row(s["node"], s["entry_point"], s["job_kind"], s["script_path"])
    console.print(table)
    skipped = Table(title=f"Skipped nodes ({len(data['skipped'])})", title_justify="left")
    skipped.add_column("node", overflow="fold")
    skipped.add_column("reason", overflow="fold")
    for s in data["skipped"]:
        skipped.add_row(s["node"], s["reason"])
    console.print(skipped)


def print_requirements(console: Console, requirements: dict[str, Any]) -> None:
    console.print(f"[bold]{requirements['node']}[/] runs {requirements['script_path']} as a {requirements['job_kind']} job"
                  f" on {requirements['instance_type']} in {requirements['image']}")
    table = Table(show_header=True)
    for column in ("kind", "name", "value / path", "source", "required"):
        table.add_column(column, overflow="fold")
    for item in requirements["expected_inputs"]:
        table.add_row("input", item["name"], f"{item['container_path']} <- {item['current_path'] or '-'}", item["source"] or "-", _yes(item["required"]))
    for item in requirements["expected_outputs"]:
        table.add_row("output", item["name"], item["container_path"], item["declared_by"], "")
    for item in requirements["environment_variables"]:
        table.add_row("env", item["name"], _text(item["default_value"]), item["source"], _yes(item["required"]))
    for item in requirements["job_arguments"]:
        table.add_row("arg", item["name"], _text(item["default_value"]), item["source"] or "-", _yes(item["required"]))
    for key, item in requirements["hyperparameters"].items():
        table.add_row("hyperparameter", key, _text(item["value"]), item["source"], "")
    console.print(table)
    for missing in requirements["missing"]:
        console.print(f"[yellow]missing:[/] {missing}")


def plan_json(plan: PipelineTestingSpec) -> dict[str, Any]:
    data = plan.model_dump(mode="json")
    data["execution_order"] = plan.execution_order()
    data["problems"] = [p.message for p in plan_problems(plan)]
    return data


def print_plan(console: Console, plan: PipelineTestingSpec) -> None:
    for node in plan.execution_order():
        _print_spec(console, plan.scripts[node], {w.target_input: w for w in plan.wires_into(node)})
    if plan.wires:
        console.print("[bold]Wires[/]")
        for wire in plan.wires:
            console.print(f"  {wire.describe()}")
    for note in plan.notes:
        console.print(f"[yellow]note:[/] {note}")
    for warning in plan.warnings:
        console.print(f"[yellow]warning:[/] {warning.message}", highlight=False)
    for node, reason in plan.skipped.items():
        console.print(f"[dim]skipped {node}: {reason}[/]")


def _print_spec(console: Console, spec: ScriptExecutionSpec, wires: dict) -> None:
    console.print(f"[bold cyan]{spec.node}[/] {spec.job_kind} {spec.entry_point} image={spec.image.value} ({spec.image.describe()})"
                  f" instance={spec.instance_type.value} ({spec.instance_type.describe()})")
    for item in spec.inputs.values():
        if item.host_path:
            where = f"{item.host_path.value} (user)"
        elif item.name in wires:
            where = f"{wires[item.name].source_node}.{wires[item.name].source_output} ({wires[item.name].match})"
        else:
            where = "(optional, not supplied)"
        console.print(f"  in  {item.name}: {item.container_path} <- {where}")
    for item in spec.outputs.values():
        console.print(f"  out {item.name}: {item.container_path}")
    for var, value in spec.environment.items():
        console.print(f"  env {var}={_text(value.value)} [dim]({value.describe()})[/]")
    if spec.job_arguments:
        console.print(f"  args {' '.join(spec.argv())}")
    for key, value in spec.hyperparameters.items():
        console.print(f"  hp  {key}={_text(value.value)} [dim]({value.describe()})[/]")


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, default=str)


def _yes(flag: bool) -> str:
    return "yes" if flag else ""


def _text(value: Any) -> str:
    return "-" if value is None else (json.dumps(value) if isinstance(value, (dict, list)) else str(value))
