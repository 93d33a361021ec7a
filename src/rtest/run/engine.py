"""run_pipeline: one call from a validated plan to a written report.

Shared by `rtest sandbox run` and the factory API, so both behave the same.
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import structlog

from rtest.errors import RunFaultError
from rtest.plan.model import PipelineTestingSpec
from rtest.run import layout, untrusted
from rtest.run.cache import StepCache
from rtest.run.docker_backend import DockerBackend
from rtest.run.model import RunReport, StepStatus
from rtest.run.runner import EventSink, Runner
from rtest.run.step import RunContext, RunOptions, StepExecutor

log = structlog.get_logger("rtest.engine")


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def invoking_user() -> str:
    """Containers run as whoever runs rtest, so every output file is theirs."""
    return f"{os.getuid()}:{os.getgid()}"


def run_pipeline(
    plan: PipelineTestingSpec,
    *,
    workdir: Path | str = ".rtest",
    jobs: int | None = None,
    use_cache: bool = True,
    network: str | None = None,
    limits: bool = True,
    timeout_s: float | None = None,
    memory_bytes: int | None = None,
    pack_model: bool = True,
    stop_grace_s: float = 10.0,
    on_event: EventSink | None = None,
    cancel: threading.Event | None = None,
    backend: DockerBackend | None = None,
    run_id: str | None = None,
    junit_path: Path | str | None = None,
    html: bool = True,
    max_output_files: int | None = None,
    max_output_bytes: int | None = None,
) -> RunReport:
    """Run every script of the plan in containers and write report.json (plus JUnit/HTML)."""
    backend = backend or DockerBackend()
    workdir = Path(workdir).expanduser().resolve()
    run_id = run_id or new_run_id()
    run_dir = workdir / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    images = {spec.image.value for spec in plan.scripts.values()}
    image_ids = {ref: backend.image_id(ref) for ref in sorted(images)}  # a missing image stops us before any step
    options = RunOptions(network=network, limits=limits, timeout_s=timeout_s, memory_bytes=memory_bytes, pack_model=pack_model,
                         user=invoking_user(), stop_grace_s=stop_grace_s)
    if max_output_files:
        options.max_output_files = max_output_files
    if max_output_bytes:
        options.max_output_bytes = max_output_bytes
    ctx = RunContext(run_id=run_id, run_dir=run_dir, options=options, image_ids=image_ids, executor_dir=_copy_executor(run_dir))
    cache = StepCache(workdir / "cache") if use_cache else None
    executor = StepExecutor(plan, backend, ctx, cache)
    cancel = cancel or threading.Event()
    started = time.time()
    log.info("run started", run_id=run_id, steps=len(plan.scripts), run_dir=str(run_dir))
    try:
        results = Runner(plan, executor, jobs=jobs or os.cpu_count() or 1, on_event=on_event).run(cancel)
    finally:
        executor.close()
        backend.remove_labelled(run_id)  # whatever a crash or Ctrl-C left behind
    report = RunReport(
        run_id=run_id,
        pipeline_success=all(r.status.ok for r in results.values()),
        steps=results,
        skipped_nodes=dict(plan.skipped),
        run_dir=str(run_dir),
        started_at=started,
        duration_s=round(time.time() - started, 3),
        execution_order=plan.execution_order(),
        interrupted=cancel.is_set() or any(r.status is StepStatus.CANCELLED for r in results.values()),
    )
    _write_reports_or_say_why(report, plan, run_dir, junit_path=junit_path, html=html)
    log.info("run finished", run_id=run_id, success=report.pipeline_success, duration_s=report.duration_s)
    return report


def _copy_executor(run_dir: Path) -> Path:
    """Mount the bootstrap from the run folder: a host path even when rtest itself runs in a container."""
    target = run_dir / ".executor"
    shutil.copytree(layout.executor_dir(), target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.md"))
    return target


def _write_reports_or_say_why(report: RunReport, plan: PipelineTestingSpec, run_dir: Path, **kwargs) -> None:
    """A host fault (disk full, run folder removed) while writing the report ends the run with a sentence."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)  # the run folder may have been removed during the run
        write_reports(report, plan, run_dir, **kwargs)
    except OSError as exc:
        failed = sum(not r.status.ok for r in report.steps.values())
        raise RunFaultError(
            f"Run {report.run_id} finished ({failed} of {len(report.steps)} steps did not succeed), but rtest could not "
            f"write its report: {untrusted.fault_reason(exc, 'writing the report')}") from None


def write_reports(report: RunReport, plan: PipelineTestingSpec, run_dir: Path, *, junit_path=None, html: bool = True) -> None:
    from rtest.report.json_report import write_report_json

    write_report_json(report, run_dir / "report.json")
    if junit_path:
        from rtest.report.junit import write_junit

        write_junit(report, Path(junit_path))
    if html:
        from rtest.report.html import write_report_html

        write_report_html(report, plan, run_dir / "report.html")
