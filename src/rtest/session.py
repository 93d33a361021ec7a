"""A run with its reports: what `rtest sandbox run` and the factory both do.

run_pipeline (run/) only emits events and returns the report; this module, above both
run/ and report/, subscribes the live report.json and writes the other formats after.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

from rtest.deps.runtime import PreparedDeps
from rtest.errors import RunFaultError
from rtest.plan.model import PipelineTestingSpec
from rtest.plan.settings import CommandLine, StepSettings
from rtest.report.writers import LiveReportJson, write_reports
from rtest.run.backends.base import Backend
from rtest.run.engine import RunOptions, run_pipeline
from rtest.run.events import Subscriber
from rtest.run.model import RunReport
from rtest.run.untrusted import fault_reason


def run_and_report(
    plan: PipelineTestingSpec,
    options: RunOptions | None = None,
    *,
    settings: Mapping[str, StepSettings] | CommandLine | None = None,
    formats: Mapping[str, Path | str | None] | Iterable[str] = ("html",),
    subscribers: Iterable[Subscriber] = (),
    cancel: threading.Event | None = None,
    backend: Backend | None = None,
    deps: PreparedDeps | None = None,
) -> RunReport:
    """Run the plan; report.json is kept current as steps finish, then ``formats`` are written.

    ``deps`` (rtest.deps.runtime.prepare_dependencies): steps run in their dependency images, with the
    wheelhouse mounted. Settings given as a mapping must have been computed from the swapped plan.
    """
    if deps is not None:
        plan = deps.plan(plan)
    report = run_pipeline(plan, options, settings=settings, subscribers=[LiveReportJson(plan), *subscribers],
                          cancel=cancel, backend=backend, launch_extras=deps.launch_extras if deps else None)
    wanted = dict(formats) if isinstance(formats, Mapping) else {name: None for name in formats}
    wanted.pop("json", None)  # already written, atomically, by the live subscriber
    try:
        Path(report.run_dir or ".").mkdir(parents=True, exist_ok=True)  # the run folder may have gone mid-run
        write_reports(report, plan, Path(report.run_dir or "."), wanted)
    except OSError as exc:  # disk full, folder removed: the run is over, say so in one sentence
        failed = sum(not r.status.ok for r in report.steps.values())
        raise RunFaultError(
            f"Run {report.run_id} finished ({failed} of {len(report.steps)} steps did not succeed), "
            "but rtest could not "
            f"write its report: {fault_reason(exc, 'writing the report')}"
        ) from None
    return report
