"""rtest_demo_report: a tiny pure-Python package the example's steps install (see the example README section).

It stands in for the small third-party libraries real scripts pull in: rtest builds it into a wheel
on the host, so the example's dependency handling runs with no package index at all.
"""

__version__ = "0.1.0"


def markdown_table(rows, columns):
    """Rows (dicts) as a Markdown table with the given columns, numbers right-aligned."""
    header = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join("---:" if _numeric(rows, c) else "---" for c in columns) + "|"
    body = ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join([header, rule, *body]) + "\n"


def _numeric(rows, column):
    return all(isinstance(row.get(column), (int, float)) for row in rows) and bool(rows)


def _cell(value):
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)
