"""report.html: one self-contained page (inline CSS and SVG, no fetches, no JS).

It has to open from a CI artifact store or an e-mail attachment, so nothing
may be loaded from anywhere else.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from rtest.plan.model import PipelineTestingSpec
from rtest.report.html_steps import status_chip, step_sections
from rtest.report.html_synth import synthesized_section
from rtest.report.json_report import write_text_atomically
from rtest.report.svg import STATUS_STYLE, dag_svg, format_duration, timeline_svg
from rtest.run.model import RunReport

_CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; margin: 0;
       color: #1f2328; background: #f6f7f9; }
main { max-width: 1240px; margin: 0 auto; padding: 20px 24px 60px; }
h1 { font-size: 22px; margin: 0 0 6px; } h2 { font-size: 17px; margin: 28px 0 10px; }
h4 { font-size: 13px; margin: 14px 0 4px; color: #57606a; text-transform: uppercase; letter-spacing: .03em; }
.card { background: #fff; border: 1px solid #d8dee4; border-radius: 8px; padding: 14px 16px; }
.scroll { overflow: auto; max-height: 1400px; }
.verdict { display: inline-block; font-weight: 700; padding: 2px 10px; border-radius: 6px; color: #fff; }
.verdict.pass { background: #2e9e4f; } .verdict.fail { background: #cc3333; } .verdict.stop { background: #6b7280; }
.meta { color: #57606a; margin: 6px 0 0; } .meta span { margin-right: 18px; }
.chip { display: inline-block; border: 1px solid; border-radius: 10px; padding: 0 8px; font-size: 12px;
        font-weight: 600; white-space: nowrap; }
.counts .chip { margin-right: 6px; }
.muted { color: #6e7781; }
svg.dag { display: block; margin: 8px auto 0; }
svg text { font-family: system-ui, "DejaVu Sans", sans-serif; }
.node-name { font-size: 12px; font-weight: 600; fill: #1f2328; } .node-status { font-size: 11px; }
.dag-node a:hover rect { stroke-width: 3; }
.tick { font-size: 11px; fill: #6e7781; } .bar-label { font-size: 12px; fill: #1f2328; }
.bar-time { font-size: 11.5px; fill: #57606a; }
details.step { background: #fff; border: 1px solid #d8dee4; border-radius: 8px; margin: 8px 0; }
details.step > summary { cursor: pointer; padding: 8px 12px; font-weight: 600; }
details.step:target { outline: 2px solid #3b6fd0; }
.step-name { margin: 0 6px; font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
.step-body { padding: 0 14px 12px; border-top: 1px solid #eaeef2; }
table { border-collapse: collapse; } th, td { text-align: left; vertical-align: top; padding: 3px 10px 3px 0; }
table.facts th { color: #57606a; font-weight: 500; width: 130px; padding-top: 6px; }
table.facts td { padding-top: 6px; overflow-wrap: anywhere; } td.reason { color: #cc3333; font-weight: 600; }
table.preview { font-size: 12px; border-collapse: collapse; white-space: nowrap; }
table.preview th, table.preview td { border-bottom: 1px solid #f0f2f4; padding: 2px 6px; text-align: left; }
table.grid { width: 100%; font-size: 13px; table-layout: fixed; }
table.grid th { border-bottom: 1px solid #d8dee4; color: #57606a; font-weight: 600; }
table.grid td { border-bottom: 1px solid #f0f2f4; font-family: ui-monospace, "DejaVu Sans Mono", monospace;
                font-size: 12.5px; overflow-wrap: anywhere; }
div.log { display: flex; flex-direction: column-reverse; overflow: auto; max-height: 420px;
          background: #0f1720; border-radius: 6px; }
div.log pre { margin: 0; padding: 10px 12px; color: #d8dee4; font-size: 12px; line-height: 1.35;
              white-space: pre-wrap; overflow-wrap: anywhere; }
.legend .chip { margin: 0 6px 4px 0; }
"""


def write_report_html(report: RunReport, plan: PipelineTestingSpec, path: Path) -> Path:
    """Write the HTML report for ``report`` (run against ``plan``) to ``path``; returns ``path``."""
    path = Path(path)
    write_text_atomically(path, render_report_html(report, plan))
    return path


def render_report_html(report: RunReport, plan: PipelineTestingSpec) -> str:
    dag_nodes = _all_nodes(report, plan)
    statuses = _statuses(report, plan, dag_nodes)
    step_nodes = _step_nodes(report, plan)
    anchors = {node: f"step-{i}" for i, node in enumerate(step_nodes)}
    sections = [
        _header(report, statuses),
        '<h2>Pipeline</h2><div class="card legend">' + _legend(statuses) + '<div class="scroll">'
        + dag_svg(dag_nodes, _edges(plan, dag_nodes), statuses, anchors) + "</div></div>",
        '<h2>Timeline</h2><div class="card scroll">'
        + timeline_svg([report.steps[n] for n in step_nodes if n in report.steps], report.started_at)
        + "</div>",
        _plan_warnings(report),
        synthesized_section(plan),  # issue 19
        _notes(plan),
        _skipped(report, plan),
        f"<h2>Steps ({len(step_nodes)})</h2>"
        + (step_sections(report, plan, step_nodes, anchors) if step_nodes else '<p class="muted">No step ran.</p>'),
    ]
    title = f"rtest run {report.run_id}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # No fetches at all: a CSP makes that a guarantee, not just a habit of this code.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "img-src data:\">"
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>\n<body><main>\n"
        + "\n".join(part for part in sections if part)
        + "\n</main></body></html>\n"
    )


def _all_nodes(report: RunReport, plan: PipelineTestingSpec) -> list[str]:
    # Plan order first; anything only the report knows (a stale plan) is still drawn.
    planned = set(plan.dag_nodes)
    extra = [n for n in [*report.steps, *report.skipped_nodes] if n not in planned]
    return list(dict.fromkeys([*plan.dag_nodes, *extra]))


def _edges(plan: PipelineTestingSpec, nodes: list[str]) -> list[tuple[str, str]]:
    known = set(nodes)
    return [(a, b) for a, b in plan.dag_edges if a in known and b in known]


def _statuses(report: RunReport, plan: PipelineTestingSpec, nodes: list[str]) -> dict[str, str]:
    statuses = {}
    for node in nodes:
        if node in report.steps:
            statuses[node] = report.steps[node].status.value
        elif node in report.skipped_nodes or node in plan.skipped or node not in plan.scripts:
            statuses[node] = "skipped"
        else:
            statuses[node] = "not_run"
    return statuses


def _step_nodes(report: RunReport, plan: PipelineTestingSpec) -> list[str]:
    ordered = [n for n in report.execution_order if n in report.steps or n in plan.scripts]
    return list(dict.fromkeys([*ordered, *report.steps, *plan.scripts]))


def _header(report: RunReport, statuses: dict[str, str]) -> str:
    if report.interrupted:
        verdict = '<span class="verdict stop">INTERRUPTED</span>'
    elif report.pipeline_success:
        verdict = '<span class="verdict pass">PASSED</span>'
    else:
        verdict = '<span class="verdict fail">FAILED</span>'
    meta = [f"run <b>{escape(report.run_id)}</b>"]
    if report.started_at:
        started = datetime.fromtimestamp(report.started_at, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        meta.append(f"started {escape(started)}")
    if report.duration_s is not None:
        meta.append(f"took {escape(format_duration(report.duration_s))}")
    if report.run_dir:
        meta.append(f"folder <code>{escape(report.run_dir)}</code>")
    counts = Counter(statuses.values())
    chips = "".join(f"{status_chip(s)}<b>{counts[s]}</b> &nbsp;" for s in STATUS_STYLE if counts[s])
    return (
        f'<h1>{verdict} &nbsp;rtest run report</h1><p class="meta">'
        + "".join(f"<span>{m}</span>" for m in meta)
        + f'</p><p class="counts">{chips or "<span class=muted>The DAG is empty.</span>"}</p>'
    )


def _legend(statuses: dict[str, str]) -> str:
    shown = [s for s in STATUS_STYLE if s in statuses.values()]
    return "<div>" + "".join(status_chip(s) for s in shown) + "</div>"


def _notes(plan: PipelineTestingSpec) -> str:
    if not plan.notes:
        return ""
    items = "".join(f"<li>{escape(note)}</li>" for note in plan.notes)
    return f'<h2>Planning notes</h2><div class="card"><ul>{items}</ul></div>'


def _plan_warnings(report: RunReport) -> str:
    if not report.plan_warnings:
        return ""
    items = "".join(f"<li>{escape(w.message)}</li>" for w in report.plan_warnings)
    return f'<h2>Plan warnings ({len(report.plan_warnings)})</h2><div class="card"><ul>{items}</ul></div>'


def _skipped(report: RunReport, plan: PipelineTestingSpec) -> str:
    reasons = {**plan.skipped, **report.skipped_nodes}
    if not reasons:
        return ""
    rows = "".join(f"<tr><td>{escape(node)}</td><td>{escape(reason)}</td></tr>" for node, reason in reasons.items())
    return (
        f'<h2>Skipped nodes ({len(reasons)})</h2><div class="card"><table class="grid">'
        f"<thead><tr><th>node</th><th>reason</th></tr></thead><tbody>{rows}</tbody></table></div>"
    )
