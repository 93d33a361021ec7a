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

from rtest.plan.model import PipelineTestingSpec
from rtest.plan.settings import CommandLine, StepSettings, plan_settings
from rtest.run import layout
from rtest.run.backends import DEFAULT_BACKEND, create_backend
from rtest.run.backends.base import Backend, StepLaunch
from rtest.run.cache import StepCache
from rtest.run.events import EventBus, RunFinished, RunStarted, RunWarning, Subscriber, log_event
from rtest.run.image_check import image_ids as check_images
from rtest.run.model import RunReport, StepStatus
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
    run_dir.mkdir(parents=True, exist_ok=True)
    image_ids = check_images(plan, backend)  # every missing image, with the nodes needing it, stops us before any step
    preflight = getattr(backend, "preflight", None)  # a cluster: every node sees the workdir and has the images
    if preflight is not None:
        preflight(run_dir, sorted({s.image.value for s in settings.values()}))
    bus = EventBus([log_event, *subscribers])
    ctx = RunContext(run_id=run_id, run_dir=run_dir, settings=dict(settings), stop_grace_s=options.stop_grace_s,
                     image_ids=image_ids, executor_dir=_copy_executor(run_dir), emit=bus.emit,
                     output_limits=OutputLimits(options.max_output_files, options.max_output_bytes),
                     cache_key=options.cache_key, launch_extras=launch_extras)
    cache = StepCache(workspace.cache_dir) if any(s.cache.value for s in settings.values()) else None
    executor = StepExecutor(plan, backend, ctx, cache, stager=getattr(backend, "stager", None))
    cancel = cancel or threading.Event()
    started = time.time()
    bus.emit(RunStarted(run_id=run_id, run_dir=run_dir, nodes=plan.execution_order(), started_at=started))
    for note in plan.notes:  # weak or missing wiring: subscribers show it next to the run
        bus.emit(RunWarning(note))
    try:
        results = Runner(plan, executor, jobs=options.jobs or _default_jobs(backend), emit=bus.emit,
                         slots=options.slots).run(cancel)
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
    )
    bus.emit(RunFinished(report))
    return report


def _default_jobs(backend: Backend) -> int:
    """As many steps at once as the engine has CPUs: this machine's, or a cluster's total."""
    total_cpus = getattr(backend, "total_cpus", None)
    return (total_cpus() if total_cpus else None) or os.cpu_count() or 1


def _copy_executor(run_dir: Path) -> Path:
    """Mount the bootstrap from the run folder: a host path even when rtest itself runs in a container."""
    target = run_dir / ".executor"
    shutil.copytree(layout.executor_dir(), target, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.md"))
    return target
