"""Inline SVG for report.html: the DAG coloured by status, and a timeline of steps.

Plain string building; the geometry comes from dag_layout, so this module only
decides how things look.
"""

from __future__ import annotations

import math
from html import escape

from rtest.report.dag_layout import BOX_H, BOX_W, layout_dag
from rtest.run.model import StepResult

# status -> (fill, stroke, label); "skipped" and "not_run" are report-only states.
STATUS_STYLE: dict[str, tuple[str, str, str]] = {
    "succeeded": ("#d7f0dd", "#2e9e4f", "succeeded"),
    "cached": ("#d3edf3", "#1683a0", "cached"),
    "failed": ("#f9d6d6", "#cc3333", "failed"),
    "upstream_failed": ("#fde4c4", "#dd8416", "upstream failed"),
    "cancelled": ("#e2e4e8", "#6b7280", "cancelled"),
    "running": ("#dbe6fb", "#3b6fd0", "running"),
    "pending": ("#ffffff", "#9aa3af", "pending"),
    "not_run": ("#ffffff", "#9aa3af", "not run"),
    "skipped": ("#f4f4f5", "#8f96a0", "skipped"),
    "reused": ("#e6eef8", "#5b7fa8", "reused"),
}

LABEL_CHARS = 33


def short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def dag_svg(nodes: list[str], edges: list[tuple[str, str]], statuses: dict[str, str], anchors: dict[str, str]) -> str:
    """The DAG, top to bottom; ``anchors`` maps a node to the page anchor of its section."""
    if not nodes:
        return '<p class="muted">The DAG has no nodes.</p>'
    layout = layout_dag(nodes, edges)
    width, height = round(layout.width), round(layout.height)
    parts = [
        f'<svg class="dag" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="pipeline DAG">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#7b8494"/></marker></defs>',
    ]
    parts += [_edge(points) for _, _, points in layout.routes]
    parts += [_node_box(node, layout.boxes[node], statuses.get(node, "not_run"), anchors.get(node)) for node in nodes]
    parts.append("</svg>")
    return "\n".join(parts)


def _edge(points: list[tuple[float, float]]) -> str:
    (x, y), path = points[0], [f"M{points[0][0]:.0f},{points[0][1]:.0f}"]
    for x2, y2 in points[1:]:
        if x2 == x:  # straight down through a waypoint's slot
            path.append(f"L{x2:.0f},{y2:.0f}")
        else:
            bend = max(12.0, (y2 - y) / 2)
            path.append(f"C{x:.0f},{y + bend:.0f} {x2:.0f},{y2 - bend:.0f} {x2:.0f},{y2:.0f}")
        x, y = x2, y2
    return (
        f'<path class="edge" d="{" ".join(path)}" fill="none" stroke="#7b8494" stroke-width="1.4" '
        'marker-end="url(#arrow)"/>'
    )


def _node_box(node: str, position: tuple[float, float], status: str, anchor: str | None) -> str:
    fill, stroke, label = STATUS_STYLE.get(status, STATUS_STYLE["not_run"])
    x, y = position
    dash = ' stroke-dasharray="5 4"' if status in ("skipped", "not_run", "pending") else ""
    body = (
        f"<title>{escape(node)}: {escape(label)}</title>"
        f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_W}" height="{BOX_H}" rx="7" fill="{fill}" stroke="{stroke}" '
        f'stroke-width="1.8"{dash}/>'
        f'<text x="{x + BOX_W / 2:.0f}" y="{y + 19:.0f}" text-anchor="middle" class="node-name">'
        f"{escape(short(node, LABEL_CHARS))}</text>"
        f'<text x="{x + BOX_W / 2:.0f}" y="{y + 35:.0f}" text-anchor="middle" class="node-status" '
        f'fill="{stroke}">{escape(label)}</text>'
    )
    if anchor:
        body = f'<a href="#{escape(anchor)}">{body}</a>'
    return f'<g class="dag-node" data-node="{escape(node)}" data-status="{escape(status)}">{body}</g>'


LABEL_W, CHART_W, DURATION_W, ROW_H = 240, 790, 90, 22


def timeline_svg(results: list[StepResult], run_start: float | None) -> str:
    """A Gantt chart of the steps that ran, relative to the run start."""
    timed = [r for r in results if r.started_at is not None]
    if not timed:
        return '<p class="muted">No step ran, so there is no timeline.</p>'
    start = min([_start_of(r) for r in timed] + ([run_start] if run_start else []))
    end = max(_end_of(r) for r in timed)
    span = max(end - start, 1e-3)
    scale = CHART_W / span
    height = 30 + len(timed) * ROW_H + 8
    width = LABEL_W + CHART_W + DURATION_W
    parts = [
        f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="step timeline">'
    ]
    parts += _axis(span, scale, height)
    for i, result in enumerate(sorted(timed, key=lambda r: (r.started_at, r.node))):
        y = 30 + i * ROW_H
        x = LABEL_W + (_start_of(result) - start) * scale
        bar = max(2.0, (_end_of(result) - _start_of(result)) * scale)
        fill, stroke, label = STATUS_STYLE.get(result.status.value, STATUS_STYLE["not_run"])
        parts.append(
            f'<g class="bar" data-node="{escape(result.node)}"><title>{escape(result.node)}: {escape(label)}, '
            f"{format_duration(result.duration_s)}</title>"
            f'<text x="{LABEL_W - 8}" y="{y + 15}" text-anchor="end" class="bar-label">'
            f"{escape(short(result.node, 34))}</text>"
            f'<rect x="{x:.1f}" y="{y + 3}" width="{bar:.1f}" height="{ROW_H - 6}" rx="3" fill="{stroke}" '
            f'fill-opacity="0.85"/>'
            f'<text x="{LABEL_W + CHART_W + 8}" y="{y + 15}" class="bar-time">'
            f"{format_duration(result.duration_s)}</text></g>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _start_of(result: StepResult) -> float:
    return result.started_at or 0.0


def _end_of(result: StepResult) -> float:
    if result.ended_at is not None:
        return result.ended_at
    return (result.started_at or 0.0) + (result.duration_s or 0.0)


def _axis(span: float, scale: float, height: int) -> list[str]:
    step = _nice_step(span / 6)
    parts = []
    for k in range(int(span / step) + 1):
        x = LABEL_W + k * step * scale
        parts.append(
            f'<line x1="{x:.1f}" y1="22" x2="{x:.1f}" y2="{height - 6}" stroke="#e3e6ea"/>'
            f'<text x="{x:.1f}" y="15" text-anchor="middle" class="tick">{format_duration(k * step)}</text>'
        )
    return parts


def _nice_step(raw: float) -> float:
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if 0 < seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds == int(seconds) else f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} m {secs:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} m"
