"""Every report format behind one signature, and report.json kept current while a run goes on.

A writer is ``(report, plan, path) -> path``. ``write_reports`` is what the CLI and the
factory call after a run; ``LiveReportJson`` subscribes to a run's events and rewrites
report.json atomically after each step, so a run that crashes leaves a readable report
(``duration_s`` is null until the run has finished).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Callable

import structlog

from rtest.plan.model import PipelineTestingSpec
from rtest.report.html import write_report_html
from rtest.report.json_report import REPORT_FILE_NAME, write_report_json
from rtest.run.events import Event, RunFinished, RunStarted, StepFinished
from rtest.run.model import RunReport, StepResult, StepStatus

log = structlog.get_logger("rtest.report")

ReportWriter = Callable[[RunReport, PipelineTestingSpec, Path], Path]

WRITERS: dict[str, ReportWriter] = {
    "json": lambda report, plan, path: write_report_json(report, path),
    "html": write_report_html,
    "junit": lambda report, plan, path: _write_junit(report, path),
}
DEFAULT_FILES = {"json": REPORT_FILE_NAME, "html": "report.html", "junit": "junit.xml"}


def _write_junit(report: RunReport, path: Path) -> Path:
    from rtest.report.junit import write_junit  # XML only for a run that asked for it (issue 18: start-up)

    return write_junit(report, path)


def write_reports(report: RunReport, plan: PipelineTestingSpec, run_dir: Path | str,
                  formats: Mapping[str, Path | str | None] | Iterable[str] = ("json", "html")) -> dict[str, Path]:
    """Write each format (to its path, or to its default file in the run folder); returns format -> path."""
    wanted = dict(formats) if isinstance(formats, Mapping) else {name: None for name in formats}
    written: dict[str, Path] = {}
    for name, path in wanted.items():
        writer = WRITERS[name]  # a KeyError here is a bug of the caller, not bad user input
        written[name] = writer(report, plan, Path(path) if path else Path(run_dir) / DEFAULT_FILES[name])
    return written


class LiveReportJson:
    """Subscriber: report.json as the run goes, every step not yet finished shown as pending."""

    def __init__(self, plan: PipelineTestingSpec) -> None:
        self.plan = plan
        self.report: RunReport | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            steps = {node: StepResult(node=node, status=StepStatus.PENDING) for node in event.nodes}
            self.report = RunReport(run_id=event.run_id, pipeline_success=False, steps=steps,
                                    skipped_nodes=dict(self.plan.skipped), run_dir=str(event.run_dir),
                                    started_at=event.started_at, execution_order=list(event.nodes))
        elif isinstance(event, StepFinished) and self.report is not None:
            self.report.steps[event.node] = event.result
            self.report.duration_s = None
        elif isinstance(event, RunFinished):
            self.report = event.report
        else:
            return
        if self.report is not None and self.report.run_dir:
            try:
                write_report_json(self.report, Path(self.report.run_dir) / REPORT_FILE_NAME)
            except OSError as exc:  # disk full or run folder gone: the run goes on; the final write says why
                log.warning("report.json could not be updated", reason=exc.strerror, path=str(exc.filename or ""))
