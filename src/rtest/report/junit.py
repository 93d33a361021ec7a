"""JUnit XML: one test case per DAG node, so CI dashboards show a pipeline run.

Mapping of step statuses to JUnit verdicts (and why):

- succeeded -> passed.
- cached -> passed, with a <system-out> note: the result is valid, it was just reused.
- failed -> <failure>: the script itself ran and said no (non-zero exit, OOM, timeout).
- upstream_failed -> <skipped>: the step never ran; counting it as a failure would
  multiply one broken script into N red tests and bury the real culprit.
- cancelled while running -> <error>: JUnit's "could not complete" verdict. A
  <skipped> would be drawn neutral/green by Jenkins, GitLab and GitHub, making an
  interrupted run look healthy, while <failure> would blame a script that may be fine.
- cancelled before it started, and pending -> <skipped>: nothing ran, nothing to blame.
- running (a report written mid-run or after a crash) -> <error>: no verdict exists.
- skipped DAG nodes (no script) -> <skipped> with the discovery reason.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

from rtest.report.json_report import write_text_atomically
from rtest.report.logtail import log_tail, strip_ansi
from rtest.run.model import RunReport, StepResult, StepStatus

# XML 1.0 forbids most control characters; a log with one of them would make the file unparsable.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_safe(text: str) -> str:
    return _XML_ILLEGAL.sub("\ufffd", strip_ansi(text))


def write_junit(
    report: RunReport,
    path: Path,
    *,
    suite_name: str = "rtest",
    log_tail_lines: int = 50,
    pipeline_name: str | None = None,
) -> Path:
    """Write ``report`` as JUnit XML to ``path``; ``pipeline_name`` (else the run id) names the class."""
    classname = f"rtest.{pipeline_name or report.run_id}"
    suite = ET.Element("testsuite", name=suite_name)
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_time = 0.0
    for result in _ordered_steps(report):
        total_time += result.duration_s or 0.0
        samples = _sample_cases(result, classname)
        if not samples or not _all_failures_in_samples(result):
            _add_case(suite, _step_case(result, classname, log_tail_lines), counts)
        for case in samples:
            _add_case(suite, case, counts)
    for node, reason in report.skipped_nodes.items():
        if node in report.steps:
            continue  # a node is either run or skipped; trust the step record if both appear
        case = _case(classname, node, 0.0)
        ET.SubElement(case, "skipped", message=xml_safe(f"no script to run: {reason}"))
        _add_case(suite, case, counts)
    _add_warnings(suite, report)
    suite_time = report.duration_s if report.duration_s is not None else total_time
    _set_totals(suite, counts, suite_time)
    suite.set("timestamp", _timestamp(report.started_at))
    suite.set("hostname", socket.gethostname())
    root = ET.Element("testsuites", name=suite_name)
    _set_totals(root, counts, suite_time)
    root.append(suite)
    return _write_tree(root, Path(path))


def _add_warnings(suite: ET.Element, report: RunReport) -> None:
    """Plan warnings (guessed or missing values): on each node's case, and all of them on the suite."""
    if not report.plan_warnings:
        return
    for case in suite.findall("testcase"):
        mine = [w.message for w in report.plan_warnings if w.node == case.get("name")]
        if mine:
            out = case.find("system-out")
            out = out if out is not None else ET.SubElement(case, "system-out")
            out.text = "\n".join(filter(None, [out.text, *(xml_safe(f"warning: {m}") for m in mine)]))
    out = ET.SubElement(suite, "system-out")
    out.text = xml_safe("\n".join(f"warning: {w.message}" for w in report.plan_warnings))


def _ordered_steps(report: RunReport) -> list[StepResult]:
    # Execution order first so the CI list reads like the run; steps it lacks follow in report order.
    ordered = [report.steps[node] for node in report.execution_order if node in report.steps]
    seen = {result.node for result in ordered}
    return ordered + [result for node, result in report.steps.items() if node not in seen]


def _case(classname: str, name: str, seconds: float) -> ET.Element:
    return ET.Element("testcase", classname=xml_safe(classname), name=xml_safe(name), time=f"{seconds:.3f}")


def _step_case(result: StepResult, classname: str, log_tail_lines: int) -> ET.Element:
    case = _case(classname, result.node, result.duration_s or 0.0)
    status = result.status
    if status is StepStatus.FAILED:
        reason = result.failure_reason or f"exit code {result.exit_code}"
        failure = ET.SubElement(case, "failure", message=xml_safe(reason), type="StepFailed")
        failure.text = xml_safe(_failure_body(result, reason, log_tail_lines))
    elif status is StepStatus.UPSTREAM_FAILED:
        message = result.failure_reason or "not run: an upstream step failed"
        ET.SubElement(case, "skipped", message=xml_safe(message))
    elif status is StepStatus.CANCELLED and result.started_at is not None:
        message = result.failure_reason or "cancelled while running"
        error = ET.SubElement(case, "error", message=xml_safe(message), type="StepCancelled")
        error.text = xml_safe(_failure_body(result, message, log_tail_lines))
    elif status in (StepStatus.CANCELLED, StepStatus.PENDING):
        ended = "cancelled" if status is StepStatus.CANCELLED else "stopped"
        message = result.failure_reason or f"not run: the run was {ended} before this step started"
        ET.SubElement(case, "skipped", message=xml_safe(message))
    elif status is StepStatus.RUNNING:
        ET.SubElement(case, "error", message="still running when the report was written", type="StepIncomplete")
    elif status is StepStatus.SKIPPED:  # a partial run left it out: nothing ran, nothing to blame
        ET.SubElement(case, "skipped", message=xml_safe(result.failure_reason or "not run: not selected"))
    elif status is StepStatus.REUSED:
        ET.SubElement(case, "skipped", message=xml_safe(result.failure_reason or "not run: outputs reused"))
    elif status is StepStatus.CACHED:
        out = ET.SubElement(case, "system-out")
        out.text = xml_safe(f"cached: reused the outputs of an earlier identical run (cache key {result.cache_key}).")
    return case


def _sample_cases(result: StepResult, classname: str) -> list[ET.Element]:
    """An inference check: one case per payload sample and accept type (the step's own case only when the
    check failed for a reason no sample carries, such as a model that did not load)."""
    check = result.inference_check
    cases = []
    for sample in check.samples if check else []:
        name = f"{result.node}[{sample.file} {sample.content_type} -> {sample.accept or 'not sent'}]"
        case = _case(f"{classname}.{result.node}", name, (sample.latency_ms or 0.0) / 1000)
        if sample.status == "failed":
            ET.SubElement(case, "failure", message=xml_safe(sample.failure or "failed"), type="InferenceFailed")
        elif sample.status == "not-sent":
            ET.SubElement(case, "skipped", message=xml_safe(sample.failure or "not sent"))
        cases.append(case)
    return cases


def _all_failures_in_samples(result: StepResult) -> bool:
    check = result.inference_check
    if check is None:
        return result.status.ok
    in_samples = {s.failure for s in check.samples if s.failure}
    return result.status.ok or (bool(check.failures) and all(f in in_samples for f in check.failures))


def _failure_body(result: StepResult, reason: str, log_tail_lines: int) -> str:
    lines = [reason, f"exit code: {result.exit_code}", f"image: {result.image}", f"log: {result.log_path}"]
    tail = log_tail(result.log_path, log_tail_lines)
    if tail:
        lines += ["", f"--- last {log_tail_lines} log lines ---", tail]
    elif result.log_path:
        lines += ["", "(the log file is missing or empty)"]
    return "\n".join(lines)


def _add_case(suite: ET.Element, case: ET.Element, counts: dict[str, int]) -> None:
    suite.append(case)
    counts["tests"] += 1
    for verdict, key in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
        if case.find(verdict) is not None:
            counts[key] += 1


def _set_totals(element: ET.Element, counts: dict[str, int], seconds: float) -> None:
    for key, value in counts.items():
        element.set(key, str(value))
    element.set("time", f"{seconds:.3f}")


def _timestamp(epoch: float | None) -> str:
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc) if epoch else datetime.now(timezone.utc)
    return moment.replace(microsecond=0).isoformat()


def _write_tree(root: ET.Element, path: Path) -> Path:
    tree = ET.ElementTree(root)
    ET.indent(tree)
    text = ET.tostring(root, encoding="unicode", xml_declaration=True)
    write_text_atomically(path, text + "\n")  # CI may pick the file up at any moment
    return path
