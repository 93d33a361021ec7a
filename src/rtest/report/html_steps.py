"""The per-step sections of report.html: what each script saw, did and printed.

Every user-supplied string (node names, env values, paths, log lines) goes
through ``escape``; a script may print anything, including markup.
"""

from __future__ import annotations

import re
from html import escape

from rtest.plan.model import PipelineTestingSpec, ScriptExecutionSpec, Sourced
from rtest.report.html_inference import inference_section
from rtest.report.logtail import log_tail, strip_ansi
from rtest.report.svg import STATUS_STYLE, format_duration
from rtest.run.model import RunReport, StepResult, StepStatus

# Reports get shared (CI artifacts, chat); values of secret-looking variables stay out of them.
_SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY", re.I)

LOG_BUDGET_BYTES = 4 * 1024 * 1024  # the whole page's log text; keeps 1000-step reports loadable


def status_chip(status: str) -> str:
    fill, stroke, label = STATUS_STYLE.get(status, STATUS_STYLE["not_run"])
    return f'<span class="chip" style="background:{fill};border-color:{stroke};color:{stroke}">{escape(label)}</span>'


def step_sections(report: RunReport, plan: PipelineTestingSpec, nodes: list[str], anchors: dict[str, str]) -> str:
    """One collapsible section per node in ``nodes``; failed steps start open."""
    budget = [LOG_BUDGET_BYTES]
    many = len(nodes) > 100
    parts = []
    for node in nodes:
        result, spec = report.steps.get(node), plan.scripts.get(node)
        failed = result is not None and result.status is StepStatus.FAILED
        lines = 200 if failed else (10 if many else 40)
        parts.append(_step_section(node, result, spec, plan, report, anchors[node], lines, budget))
    return "\n".join(parts)


def _step_section(
    node: str,
    result: StepResult | None,
    spec: ScriptExecutionSpec | None,
    plan: PipelineTestingSpec,
    report: RunReport,
    anchor: str,
    tail_lines: int,
    budget: list[int],
) -> str:
    status = result.status.value if result else "not_run"
    duration = format_duration(result.duration_s) if result and result.started_at is not None else ""
    is_open = " open" if status == "failed" else ""
    body = [_facts(result, spec), inference_section(result, status_chip)]
    if spec is not None:
        body += [
            _table("Inputs", ["name", "container path", "fed by"], _input_rows(spec, plan, report)),
            _table("Outputs", ["name", "container path", "host path"], _output_rows(spec, result)),
            _table("Environment variables", ["name", "value", "from"], _env_rows(spec)),
            _table("Job arguments", ["flag", "value", "from"], _argument_rows(spec)),
            _table("Settings", ["name", "value", "from"], _settings_rows(report.settings.get(node, {}))),
            _table("Hyperparameters", ["name", "value", "from"], _sourced_rows(spec.hyperparameters)),
        ]
    elif result is not None and result.outputs:
        body.append(_table("Outputs", ["name", "container path", "host path"], _output_rows(None, result)))
    if result is not None and result.log_path:
        body.append(_log_block(result, tail_lines, budget))
    return (
        f'<details class="step" id="{escape(anchor)}"{is_open}><summary>{status_chip(status)} '
        f'<span class="step-name">{escape(node)}</span> <span class="muted">{escape(duration)}</span></summary>'
        f'<div class="step-body">{"".join(body)}</div></details>'
    )


def _facts(result: StepResult | None, spec: ScriptExecutionSpec | None) -> str:
    rows: list[tuple[str, str]] = []
    if spec is not None:
        rows += [
            ("script", f"{spec.source_dir / spec.entry_point}"),
            ("step type", f"{spec.step_type} ({spec.job_kind})"),
            ("instance", f"{spec.instance_type.value} x {spec.instance_count}"),
        ]
    image = (result.image if result else None) or (str(spec.image.value) if spec else None)
    rows.append(("image", image or "-"))
    if result is not None:
        rows += [
            ("exit code", "-" if result.exit_code is None else str(result.exit_code)),
            ("duration", format_duration(result.duration_s)),
            ("ran on", result.host or ""),
            ("failure reason", result.failure_reason or ""),
            ("peak memory", _bytes(result.peak_memory_bytes) if result.peak_memory_bytes is not None else ""),
            ("CPU time", format_duration(result.cpu_time_s) if result.cpu_time_s is not None else ""),
            ("cache key", result.cache_key or ""),
            (
                "warnings",
                (
                    f"{result.warning_count} in its log: " + " | ".join(result.warning_lines)
                    if result.warning_count
                    else ""
                ),
            ),
            ("log", result.log_path or ""),
        ]
    cells = "".join(
        f'<tr><th>{escape(k)}</th><td{" class=reason" if k == "failure reason" else ""}>{escape(v)}</td></tr>'
        for k, v in rows
        if v
    )
    return f'<table class="facts">{cells}</table>'


def _input_rows(spec: ScriptExecutionSpec, plan: PipelineTestingSpec, report: RunReport) -> list[list[str]]:
    wires = {w.target_input: w for w in plan.wires_into(spec.node)}
    rows = []
    for name, item in spec.inputs.items():
        wire = wires.get(name)
        if item.host_path is not None:
            fed_by = f"{item.host_path.value}  [{item.host_path.describe()}]"
        elif wire is not None:
            upstream = report.steps.get(wire.source_node)
            host = upstream.outputs.get(wire.source_output) if upstream else None
            fed_by = f"wire {wire.describe()}" + (f"  \u2190 {host}" if host else "")
        else:
            fed_by = "(not provided)" if not item.required else "(missing: required input with no source)"
        rows.append([name, item.container_path, fed_by])
    return rows


def _output_rows(spec: ScriptExecutionSpec | None, result: StepResult | None) -> list[list[str]]:
    produced = result.outputs if result else {}
    declared = spec.outputs if spec else {}
    names = list(declared) + [name for name in produced if name not in declared]
    return [
        [name, declared[name].container_path if name in declared else "", produced.get(name, "(not produced)")]
        for name in names
    ]


def _env_rows(spec: ScriptExecutionSpec) -> list[list[str]]:
    rows = []
    for name, sourced in spec.environment.items():
        value = spec.env().get(name, "")
        rows.append([name, "\u2022\u2022\u2022 (hidden)" if _SECRET_NAME.search(name) else value, sourced.describe()])
    return rows


def _argument_rows(spec: ScriptExecutionSpec) -> list[list[str]]:
    return [
        [arg.flag, "" if arg.value is None else str(arg.value.value), "" if arg.value is None else arg.value.describe()]
        for arg in spec.job_arguments
    ]


def _settings_rows(settings: dict) -> list[list[str]]:
    """The run's effective StepSettings (timeout, network, limits, user, image, cache), each with its source."""
    return [[name, "-" if value is None else str(value), source] for name, (value, source) in settings.items()]


def _sourced_rows(values: dict[str, Sourced]) -> list[list[str]]:
    return [[name, str(value.value), value.describe()] for name, value in values.items()]


def _table(title: str, headers: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return ""
    head = "".join(f'<th style="width:{w}%">{escape(h)}</th>' for h, w in zip(headers, (22, 33, 45)))
    body = "".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<h4>{escape(title)}</h4><table class="grid"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _log_block(result: StepResult, tail_lines: int, budget: list[int]) -> str:
    if budget[0] <= 0:
        return f'<p class="muted">Log tail left out to keep this page small; see {escape(result.log_path or "")}.</p>'
    tail = strip_ansi(log_tail(result.log_path, tail_lines, max_bytes=min(budget[0], 64 * 1024)))
    budget[0] -= len(tail.encode("utf-8", errors="replace"))
    if not tail:
        return '<p class="muted">The log is empty or missing.</p>'
    shown = tail.count("\n") + 1
    # column-reverse makes the box open scrolled to the bottom, where the error is, without JS.
    return f'<h4>Last {shown} log lines</h4><div class="log"><pre>{escape(tail)}</pre></div>'


def _bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"
