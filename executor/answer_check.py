"""Is one answer of the inference handler what the registration promises? Stdlib only.

The answer must have the configured response type, parse (JSON or CSV), and carry every
configured output variable with its declared type (NUMERIC: a number, or a string that is
one, as cursus handlers write them; TEXT: any scalar). Returns one sentence, or None.
"""

import csv
import io
import json

MAX_RECORDS = 1000  # a sample's answer is small; more records are not looked at


def check_answer(body, answer_type, accept, variables):
    """``variables``: [[name, type], ...]. The problem as a sentence, else None."""
    got = base_type(answer_type)
    if got != base_type(accept):
        return "the answer's content type is %s, not the configured %s" % (answer_type, accept)
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            return "the %s answer is not UTF-8 text" % got
    if not isinstance(body, str):
        return "output_fn returned a %s, not the serialized answer (str or bytes)" % type(body).__name__
    if got == "application/json":
        return _check_json(body, variables)
    if got == "text/csv":
        return _check_csv(body, variables)
    return None  # another type: answered, nothing rtest can read in it


def base_type(content_type):
    return (content_type or "").split(";")[0].strip().lower()


def _check_json(body, variables):
    try:
        parsed = json.loads(body)
    except ValueError as exc:
        return "the answer is not valid JSON (%s)" % exc
    if not variables:
        return None
    records = parsed.get("predictions", parsed) if isinstance(parsed, dict) else parsed
    records = records if isinstance(records, list) else [records]
    if not records:
        return "the JSON answer holds no prediction"
    for record in records[:MAX_RECORDS]:
        if not isinstance(record, dict):
            return ("the JSON answer's predictions are %s, not objects, so output variable '%s' is missing"
                    % (type(record).__name__, variables[0][0]))
        for name, kind in variables:
            if name not in record:
                return "output variable '%s' is missing from the answer (it has: %s)" % (
                    name, ", ".join(sorted(record)) or "nothing")
            problem = _type_problem(name, kind, record[name])
            if problem:
                return problem
    return None


def _check_csv(body, variables):
    try:
        rows = [row for row in csv.reader(io.StringIO(body)) if row]
    except csv.Error as exc:
        return "the answer is not valid CSV (%s)" % exc
    if not rows:
        return "the CSV answer is empty"
    if not variables:
        return None
    names = [name for name, _ in variables]
    header = rows[0] if all(name in rows[0] for name in names) else None
    positions = [header.index(name) for name in names] if header else list(range(len(names)))
    for row in (rows[1:] if header else rows)[:MAX_RECORDS]:
        if len(row) < len(names):
            missing = names[len(row)]
            return ("output variable '%s' is missing from the answer: its CSV rows have %d column(s) for %d output "
                    "variables (%s)" % (missing, len(row), len(names), ", ".join(names)))
        for (name, kind), at in zip(variables, positions):
            problem = _type_problem(name, kind, row[at])
            if problem:  # without a header the column is the variable's place in the configured order: say so
                return problem if header else "%s (CSV column %d of %d, in the configured order: %s)" % (
                    problem, at + 1, len(row), ", ".join(names))
    return None


def _type_problem(name, kind, value):
    if kind == "NUMERIC":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            return "output variable '%s' is %r, not NUMERIC" % (name, value)
        try:
            float(value)
        except ValueError:
            return "output variable '%s' is %r, not NUMERIC" % (name, value)
    elif isinstance(value, (dict, list)):
        return "output variable '%s' is a %s, not %s" % (name, type(value).__name__, kind)
    return None
