"""run_pipeline: a validated plan in, a RunReport out, typed events to every subscriber on the way.

Shared by `rtest sandbox run` and the factory API, so both behave the same. Writing
reports is not its business (see rtest.session): it only emits events and returns the
report, so the run layer never imports report/ or imagebuild.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from rtest.errors import ImageNotFoundError
from rtest.plan.model import PipelineTestingSpec
from rtest.plan.selection import SelectedSteps, Selection, select_steps
from rtest.plan.settings import CommandLine, StepSettings, plan_settings
from rtest.run import layout
from rtest.run.backends import DEFAULT_BACKEND, create_backend
from rtest.run.backends.base import Backend, StepLaunch
from rtest.run.cache import StepCache
from rtest.run.events import EventBus, RunFinished, RunStarted, RunWarning, Subscriber, log_event
from rtest.run.image_check import missing_image_failures, missing_images_message, not_built_notes, present_images
from rtest.run.logcap import DEFAULT_MAX_LOG_BYTES
from rtest.run.model import RunReport, StepResult, StepStatus
from rtest.run.reuse import reused_results
from rtest.run.runner import Runner, SlotLimiter
from rtest.run.step import RunContext, StepExecutor
from rtest.run.untrusted import DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES, OutputLimits
from rtest.workspace import Workspace, new_run_id


@dataclass(frozen=True)
class RunOptions:
    """What is really per run; per-step settings (timeout, network, limits, cache ...) are StepSettings."""

    workdir: Path | str = ".rtest"
    jobs: int | None = None  # steps at once; default: the number of CPUs
    run_id: str | None = None
    stop_grace_s: float = 10.0  # SIGTERM to SIGKILL when a step is stopped
    backend: str = DEFAULT_BACKEND
    max_output_files: int = DEFAULT_MAX_FILES  # per step output; what a step writes is untrusted (run/untrusted.py)
    max_output_bytes: int = DEFAULT_MAX_BYTES
    cache_key: str = "imports"  # "imports": the files the entry script really uses; "full": the whole source folder
    slots: SlotLimiter | None = None  # a limit shared with other runs (rtest serve), on top of jobs
    max_log_bytes: int = DEFAULT_MAX_LOG_BYTES  # per step log (issue 14): head and tail kept, run/logcap.py
    # -- partial runs (issue 15): which steps run, where the others' outputs come from, missing images
    selection: Selection | None = None  # --only/--skip/--from/--reuse
    keep_going: bool = False  # a step whose image is missing fails alone instead of stopping the run


def run_pipeline(
    plan: PipelineTestingSpec,
    options: RunOptions | None = None,
    *,
    settings: Mapping[str, StepSettings] | CommandLine | None = None,
    subscribers: Iterable[Subscriber] = (),
    cancel: threading.Event | None = None,
    backend: Backend | None = None,
    launch_extras: Callable[[str, StepLaunch], StepLaunch] | None = None,
) -> RunReport:
    """Run every script of the plan, in DAG order; ``settings`` defaults to the plan's own values.

    ``launch_extras(node, launch)`` may add read-only mounts and env to a step's launch (the dependency
    layer's wheelhouse, see rtest.deps.runtime).
    """
    options = options or RunOptions()
    if not isinstance(settings, Mapping):
        settings = plan_settings(plan, settings)
    backend = backend or create_backend(options.backend)
    workspace = Workspace(options.workdir)
    run_id = options.run_id or new_run_id()
    run_dir = workspace.run_dir(run_id)
    chosen = select_steps(plan, options.selection)
    decided = decided_steps(plan, chosen, options, workspace, run_id)  # before the run folder: may refuse
    image_ids, missing = present_images(plan, backend, chosen.run)
    if missing and not options.keep_going:  # every missing image, with its nodes, stops us before any step
        raise ImageNotFoundError(missing_images_message(plan, missing))
    for node, reason in missing_image_failures(plan, missing, chosen.run).items():
        decided[node] = StepResult(node=node, status=StepStatus.FAILED, failure_reason=reason, ended_at=time.time())
    skipped = [n for n, r in decided.items() if r.status is StepStatus.SKIPPED]
    for node, note in not_built_notes(plan, backend, skipped).items():  # what running it would need
        decided[node] = decided[node].model_copy(update={"failure_reason": f"{decided[node].failure_reason}; {note}"})
    run_dir.mkdir(parents=True, exist_ok=True)
    # a cluster: every node sees the workdir and has the images (a no-op for one engine)
    backend.preflight(run_dir, sorted({s.image.value for n, s in settings.items()
                                       if n in chosen.run and n not in decided}))
    bus = EventBus([log_event, *subscribers])
    ctx = RunContext(run_id=run_id, run_dir=run_dir, settings=dict(settings), stop_grace_s=options.stop_grace_s,
                     image_ids=image_ids, executor_dir=_copy_executor(run_dir), emit=bus.emit,
                     output_limits=OutputLimits(options.max_output_files, options.max_output_bytes),
                     cache_key=options.cache_key, launch_extras=launch_extras, max_log_bytes=options.max_log_bytes)
    cache = StepCache(workspace.cache_dir) if any(s.cache.value for s in settings.values()) else None
    executor = StepExecutor(plan, backend, ctx, cache, stager=backend.stager)
    cancel = cancel or threading.Event()
    started = time.time()
    bus.emit(RunStarted(run_id=run_id, run_dir=run_dir, nodes=plan.execution_order(), started_at=started))
    for note in plan.notes:  # weak or missing wiring: subscribers show it next to the run
        bus.emit(RunWarning(note))
    try:
        results = Runner(plan, executor, jobs=options.jobs or _default_jobs(backend), emit=bus.emit,
                         slots=options.slots, decided=decided).run(cancel)
    finally:
        executor.close()
        backend.remove_run(run_id)  # whatever a crash or Ctrl-C left behind
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
        settings={node: s.rows() for node, s in settings.items()},
        plan_warnings=list(plan.warnings),
        synthesized_inputs=list(plan.synthesized),
    )
    bus.emit(RunFinished(report))
    return report


def decided_steps(plan: PipelineTestingSpec, chosen: SelectedSteps, options: RunOptions, workspace: Workspace,
                  run_id: str) -> dict[str, StepResult]:
    """Steps a partial run does not run: skipped with the reason, or reused when a run step needs their outputs."""
    decided = {node: StepResult(node=node, status=StepStatus.SKIPPED, failure_reason=why)
               for node, why in chosen.skipped.items() if node not in chosen.upstream}
    reuse_run = options.selection.reuse_run if options.selection else None
    decided.update(reused_results(plan, chosen.upstream, workspace, reuse_run, run_id))
    return decided


def _default_jobs(backend: Backend) -> int:
    """As many steps at once as the engine has CPUs: this machine's, or a cluster's total."""
    return backend.total_cpus() or os.cpu_count() or 1


def _copy_executor(run_dir: Path) -> Path:
    """Mount the bootstrap from the run folder: a host path even when rtest itself runs in a container."""
    target = run_dir / ".executor"
    shutil.copytree(layout.executor_dir(), target, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.md"))
    return target
