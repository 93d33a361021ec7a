"""report.html's section on synthesized inputs (issue 19): what was made, from which config fields, a preview."""

from __future__ import annotations

from html import escape

from rtest.plan.model import PipelineTestingSpec, SynthesizedInput

MAX_PREVIEW_COLUMNS = 40  # wider tables are cut, with a note: the full schema is in report.json


def synthesized_section(plan: PipelineTestingSpec) -> str:
    if not plan.synthesized:
        return ""
    cards = "".join(_card(item) for item in plan.synthesized)
    return (f"<h2>Synthesized inputs ({len(plan.synthesized)})</h2>"
            '<p class="muted">Sample data rtest made from the config, not real data: each input below stands in '
            "for what its skipped loader would deliver.</p>" + cards)


def _card(item: SynthesizedInput) -> str:
    head = (f"<b>{escape(item.node)}.{escape(item.input)}</b> as {escape(item.loader)}'s {escape(item.output)}: "
            f"{item.rows} rows, seed {item.seed}, {escape(item.file_format)}, {len(item.columns)} columns")
    fields = "".join(f"<li>{escape(f)}</li>" for f in item.fields)
    body = f'<div class="card"><p>{head}</p><details><summary>config fields</summary><ul>{fields}</ul></details>'
    if item.preview:
        shown = item.columns[:MAX_PREVIEW_COLUMNS]
        header = "".join(f"<th>{escape(name)}<br><span class=\"muted\">{escape(kind)}</span></th>"
                         for name, kind in shown)
        rows = "".join("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in row[:len(shown)]) + "</tr>"
                       for row in item.preview)
        cut = (f'<p class="muted">First {len(shown)} of {len(item.columns)} columns; '
               "report.json has them all.</p>" if len(item.columns) > len(shown) else "")
        body += (f'<div class="scroll"><table class="preview"><thead><tr>{header}</tr></thead>'
                 f"<tbody>{rows}</tbody></table></div>{cut}")
    return body + "</div>"
