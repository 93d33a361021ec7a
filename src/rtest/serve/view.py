"""The web page's live picture of a run, drawn by the HTML report's own SVG pieces."""

from __future__ import annotations

import time

from rtest.report.svg import dag_svg, timeline_svg
from rtest.run.model import StepResult, StepStatus
from rtest.serve.models import RunView


def render_view(run: dict, steps: list[dict], events: list[dict]) -> RunView:
    shape = run.get("dag") or {"nodes": [s["node"] for s in steps], "edges": [], "skipped": {}}
    statuses = {node: "skipped" for node in shape.get("skipped", {})}
    statuses.update({s["node"]: _drawn_status(s["status"]) for s in steps})
    anchors = {s["node"]: f"step-{s['node']}" for s in steps}
    edges = [(a, b) for a, b in shape["edges"]]
    results = [_result(s) for s in steps if s["started_at"] is not None]
    warnings = list(dict.fromkeys(e["message"] for e in events if e.get("type") == "warning"))  # notes come twice
    if run.get("message"):
        warnings.append(run["message"])
    return RunView(dag_svg=dag_svg(shape["nodes"], edges, statuses, anchors),
                   timeline_svg=timeline_svg(results, run.get("started_at")), warnings=warnings, status=run["status"])


def _drawn_status(status: str) -> str:
    return "pending" if status == "queued" else status


def _result(step: dict) -> StepResult:
    status = step["status"] if step["status"] in StepStatus._value2member_map_ else "running"
    duration = step["duration_s"]
    if duration is None:  # still running: the bar grows until it ends
        duration = max(0.0, time.time() - step["started_at"])
    return StepResult(node=step["node"], status=StepStatus(status), started_at=step["started_at"],
                      ended_at=step["ended_at"], duration_s=duration, exit_code=step["exit_code"])
