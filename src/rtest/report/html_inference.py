"""report.html's table of an inference check: each payload sample, its status and latency."""

from __future__ import annotations

from html import escape

from rtest.run.inference_results import summary
from rtest.run.model import StepResult

_STATUS = {"answered": "succeeded", "failed": "failed", "not-sent": "not_run"}


def inference_section(result: StepResult | None, chip) -> str:
    """The samples table (status chips drawn by ``chip``), or "" for a step that is not an inference check."""
    check = result.inference_check if result else None
    if check is None:
        return ""
    head = "".join(f"<th>{escape(h)}</th>" for h in ("sample", "content type -> accept", "status", "latency",
                                                       "failure"))
    rows = []
    for sample in check.samples:
        latency = f"{sample.latency_ms:.1f} ms" if sample.latency_ms is not None else ""
        cells = [escape(sample.file), escape(f"{sample.content_type} -> {sample.accept or '-'}"),
                 chip(_STATUS.get(sample.status, "not_run")), escape(latency), escape(sample.failure or "")]
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    functions = ", ".join(f"{name}: {origin}" for name, origin in check.functions.items())
    lines = [summary(check)]
    if check.load_s is not None:
        lines.append(f"model_fn loaded the model in {check.load_s:.2f} s")
    lines += [f"handler {check.handler} from the {check.handler_from}" if check.handler_from else "",
              functions, *check.notes]
    facts = "".join(f"<p class=\"muted\">{escape(line)}</p>" for line in lines if line)
    table = (f'<table class="grid"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
             if rows else "")
    return f"<h4>Inference check</h4>{facts}{table}"
