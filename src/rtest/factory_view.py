"""The factory's answers in the shapes of the design ("Interactive Runtime Testing Factory"), and in a notebook.

The factory (rtest.factory) keeps the plan; this module only turns it into the dicts the design's
code reads (``requirements['source_dir']``, ``env_var['source'] == 'config'``,
``script_configurations[name]['status']``) and into HTML tables for Jupyter's ``_repr_html_``.
"""

from __future__ import annotations

import html
from typing import Any

from rtest.plan.model import PipelineTestingSpec, ScriptExecutionSpec, Sourced, Wire

# configure_script_testing's keyword names in the design's builder -> ours (both are accepted).
CONFIGURE_ALIASES = {
    "input_paths": "expected_inputs",
    "output_paths": "expected_outputs",
    "environ_vars": "environment_variables",
    "job_args": "job_arguments",
}


def node_for(plan: PipelineTestingSpec, name: str) -> str | None:
    """The node a name means: a node name always; a script name (``preprocess`` or ``preprocess.py``) when exactly
    one node runs it. None when nothing matches; ValueError when several nodes run that script."""
    if name in plan.scripts:
        return name
    nodes = [node for node, spec in plan.scripts.items() if name in (spec.script_name, spec.entry_point)]
    if len(nodes) > 1:
        raise ValueError(f"Script name '{name}' is ambiguous: nodes {', '.join(nodes)} all run it; "
                         f"name the node instead (one of {', '.join(nodes)}).")
    return nodes[0] if nodes else None


def with_design_names(design_names: dict[str, Any], *ours: Any) -> tuple[Any, ...]:
    """configure_script_testing's four mappings, each given under our name or the design's (never both)."""
    given = dict(zip(("expected_inputs", "expected_outputs", "environment_variables", "job_arguments"), ours))
    for name, value in rename_aliases(design_names).items():
        if given[name] is not None:
            raise TypeError(f"configure_script_testing() got '{name}' under both of its names")
        given[name] = value
    return tuple(given.values())


def rename_aliases(options: dict[str, Any]) -> dict[str, Any]:
    """The design's keyword names mapped to ours; giving both names of one argument is a TypeError."""
    renamed: dict[str, Any] = {}
    for key, value in options.items():
        ours = CONFIGURE_ALIASES.get(key)
        if ours is None:
            raise TypeError(f"configure_script_testing() got an unexpected keyword argument '{key}'")
        if ours in renamed:
            raise TypeError(f"configure_script_testing() got both '{key}' and '{ours}'; they are the same argument")
        renamed[ours] = value
    return renamed


def value_entry(name: str, value: Sourced | None, required: bool) -> dict[str, Any]:
    """One env var or job argument: {name, default_value, source, field, required}."""
    return {
        "name": name,
        "default_value": value.value if value is not None else None,
        "source": value.source.value if value is not None else None,
        "field": value.field if value is not None else None,
        "required": required,
    }


def input_entry(item: Any, wire: Wire | None) -> dict[str, Any]:
    """One expected input: where its data comes from (user / config path, an upstream wire, or nothing yet)."""
    entry = {"name": item.name, "container_path": item.container_path, "required": item.required,
             "current_path": None, "source": None, "field": None, "wire": None}
    if item.host_path is not None:
        entry.update(current_path=item.host_path.value, source=item.host_path.source.value, field=item.host_path.field)
    elif wire is not None:
        entry.update(source="wire", field=f"{wire.source_node}.{wire.source_output}", wire=wire.describe())
    return entry


def requirements_of(spec: ScriptExecutionSpec, plan: PipelineTestingSpec, missing: list[str],
                    auto_configurable: bool) -> Requirements:
    fed = {w.target_input: w for w in plan.wires_into(spec.node)}
    return Requirements({
        "node": spec.node,
        "step_name": spec.node,
        "script_name": spec.script_name,
        "step_type": spec.step_type,
        "job_kind": spec.job_kind,
        "script_path": str(spec.script_path),
        "source_dir": str(spec.source_dir),
        "entry_point": spec.entry_point,
        "expected_inputs": [input_entry(item, fed.get(item.name)) for item in spec.inputs.values()],
        "expected_outputs": [
            {"name": o.name, "container_path": o.container_path, "current_path": o.export_to,
             "declared_by": o.declared_by.value}
            for o in spec.outputs.values()
        ],
        "environment_variables": [value_entry(var, v, var in spec.required_environment)
                                  for var, v in spec.environment.items()],
        "job_arguments": [value_entry(a.flag, a.value, a.required) for a in spec.job_arguments],
        "hyperparameters": {k: {"value": v.value, "source": v.source.value, "field": v.field}
                            for k, v in spec.hyperparameters.items()},
        "instance_type": spec.instance_type.value,
        "image": spec.image.value,
        "missing": list(missing),
        "auto_configurable": auto_configurable,
    })


def testing_results(report: Any, configurations: dict[str, dict[str, Any]], manual: int,
                    auto: int) -> TestingResults:
    return TestingResults({
        "pipeline_success": report.pipeline_success,
        "script_results": {node: result.model_dump(mode="json") for node, result in report.steps.items()},
        "execution_order": report.execution_order,
        "run_id": report.run_id,
        "run_dir": report.run_dir,
        "interactive_factory_info": {
            "total_scripts": len(configurations),
            "manually_configured": manual,
            "auto_configured": auto,
            "script_configurations": configurations,
        },
    })


# ---- notebook rendering ------------------------------------------------------------------------
def _cell(value: Any) -> str:
    return "<td>" + ("" if value is None else html.escape(str(value))) + "</td>"


def _table(headers: list[str], rows: list[list[Any]], caption: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    title = f"<caption style='text-align:left'><b>{html.escape(caption)}</b></caption>" if caption else ""
    return f"<table>{title}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _from(entry: dict[str, Any]) -> str:
    return ":".join(str(p) for p in (entry.get("source"), entry.get("field")) if p) or "-"


class Requirements(dict):
    """get_script_testing_requirements' answer: a plain dict that draws itself as a table in Jupyter."""

    def _repr_html_(self) -> str:
        rows: list[list[Any]] = []
        for item in self["expected_inputs"]:
            where = item["current_path"] or (item["field"] if item["source"] == "wire" else None)
            rows.append(["input", item["name"], where or ("(optional)" if not item["required"] else "MISSING"),
                         _from(item), "yes" if item["required"] else "no"])
        rows += [["output", o["name"], o["current_path"] or o["container_path"], o["declared_by"], ""]
                 for o in self["expected_outputs"]]
        rows += [["env", e["name"], e["default_value"], _from(e), "yes" if e["required"] else "no"]
                 for e in self["environment_variables"]]
        rows += [["arg", a["name"], a["default_value"], _from(a), "yes" if a["required"] else "no"]
                 for a in self["job_arguments"]]
        title = f"{self['node']} runs {self['script_path']} ({self['job_kind']})"
        missing = "".join(f"<li>{html.escape(m)}</li>" for m in self["missing"])
        return _table(["kind", "name", "value / path", "source", "required"], rows, title) + (
            f"<p><b>Missing:</b></p><ul>{missing}</ul>" if missing else "")


class TestingResults(dict):
    """execute_dag_guided_testing's answer: a plain dict that draws itself as a table in Jupyter."""

    __test__ = False  # not a pytest test class, despite its name

    def _repr_html_(self) -> str:
        configured = self["interactive_factory_info"]["script_configurations"]
        rows = []
        for node, result in self["script_results"].items():
            rows.append([node, configured.get(node, {}).get("script_name"), result.get("status"),
                         configured.get(node, {}).get("status"), result.get("duration_s"), result.get("reason")])
        verdict = "succeeded" if self["pipeline_success"] else "FAILED"
        caption = f"Run {self['run_id']} {verdict}; reports in {self['run_dir']}"
        return _table(["node", "script", "result", "configuration", "seconds", "reason"], rows, caption)


def factory_html(summary: dict[str, Any], scripts: dict[str, ScriptExecutionSpec],
                 missing: dict[str, list[str]]) -> str:
    """The factory in a notebook: each script with its configuration status, skipped nodes, warnings."""
    status = {**{n: "auto_configured" for n in summary["auto_configured"]},
              **{n: "manually_configured" for n in summary["manually_configured"]},
              **{n: "pending" for n in summary["pending"]}}
    rows = [[node, spec.script_name, spec.job_kind, status.get(node, "-"), "; ".join(missing.get(node, []))]
            for node, spec in scripts.items()]
    ready = "ready to execute" if summary["ready_to_execute"] else f"{len(summary['pending'])} pending"
    out = _table(["node", "script", "job", "status", "missing"], rows, f"{len(scripts)} scripts, {ready}")
    if summary["skipped_nodes"]:
        out += _table(["node", "why skipped"], [[n, r] for n, r in summary["skipped_nodes"].items()])
    if summary["warnings"]:
        out += "<ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in summary["warnings"]) + "</ul>"
    return out
