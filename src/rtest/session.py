"""The one run path of `rtest sandbox run`, the factory and the service: plan -> backend -> checks ->
dependencies -> run -> reports (``run_request``), and a run with its reports (``run_and_report``).

run_pipeline (run/) only emits events and returns the report; this module, above both
run/ and report/, subscribes the live report.json and writes the other formats after. What
differs between the front doors (a console, an event log, nothing) is a ``RunObserver``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from rtest.deps.image import Progress
from rtest.deps.runtime import DepsOptions, PreparedDeps, prepare_dependencies
from rtest.errors import OptionError, RunFaultError
from rtest.options import LocalFlags, RunFlags
from rtest.plan.model import PipelineTestingSpec
from rtest.plan.settings import CommandLine, StepSettings
from rtest.plan.userspec import UserSpec
from rtest.report.writers import LiveReportJson, write_reports
from rtest.run.backends.base import Backend
from rtest.run.engine import RunOptions, run_pipeline
from rtest.run.events import Subscriber
from rtest.run.model import RunReport
from rtest.run.runner import SlotLimiter
from rtest.run.untrusted import fault_reason

Planner = Callable[[], "tuple[PipelineTestingSpec, UserSpec]"]


class RunObserver(Protocol):
    """What a front door shows of a run; every hook is optional (the factory shows nothing). A front door's
    observer matches by its methods (cli.progress.ConsoleObserver, the service's), or subclasses this class
    for the hooks it leaves out (each body here is the default: it does nothing)."""

    def planned(self, plan: PipelineTestingSpec) -> None:
        """The plan is built: its warnings and notes, before anything runs."""
        return None

    def warning(self, message: str) -> None:
        """Something the user should know before the run (a missing image under --keep-going, a declared
        requirement the image does not meet)."""
        return None

    def starting(self, run_id: str) -> None:
        """The run has its id (before dependency images are built)."""
        return None

    def deps_progress(self) -> AbstractContextManager[Progress | None]:
        """Around building dependency images; yields a progress callback, or None."""
        return nullcontext(None)

    def deps_built(self, tags: list[str]) -> None:
        """Dependency images built for this run."""
        return None

    def running(self, plan: PipelineTestingSpec) -> AbstractContextManager[list[Subscriber]]:
        """Around the run itself; yields the subscribers of its events."""
        return nullcontext([])


class SilentObserver(RunObserver):
    """Shows nothing: the observer of a run given none (the factory's)."""


def run_request(planner: Planner, flags: RunFlags, local: LocalFlags | None = None, *, workdir: Path | str,
                observer: RunObserver | None = None, backend: Backend | None = None,
                cancel: threading.Event | None = None, formats: Mapping[str, Path | str | None] | None = None,
                slots: SlotLimiter | None = None, deps_lock: AbstractContextManager | None = None,
                deps_options: DepsOptions | None = None) -> RunReport:
    """THE run: plan, backend, checks, dependency images, the run and its reports; what the CLI, the factory and
    the service call, each with its own observer (and the service with its slot pool and one-build lock)."""
    from rtest.run.backends import create_backend
    from rtest.workspace import new_run_id

    local = local or LocalFlags()
    observer = observer or SilentObserver()
    plan, user = planner()
    if flags.skip_inference_check:  # -- issue 21: registration nodes skipped, with the reason
        from rtest.plan.inference_check import skip_inference_checks

        skip_inference_checks(plan)
    observer.planned(plan)
    engine = backend or create_backend(local.backend, **local.backend_options(user))
    check_network(engine, flags.network)
    runnable = _partial_run(plan, engine, Path(workdir), flags, observer)
    run_id = local.run_id or new_run_id()
    observer.starting(run_id)
    with deps_lock or nullcontext(), observer.deps_progress() as progress:
        deps = _dependencies(plan, user, flags, engine, Path(workdir), deps_options, progress, runnable)
    if deps is not None:
        observer.deps_built(list(deps.built))
        for warning in deps.warnings:  # declared, unmet, not installed: as on SageMaker
            observer.warning(warning.message)
    options = RunOptions(workdir=workdir, jobs=flags.jobs, run_id=run_id, stop_grace_s=local.stop_grace_s,
                         backend=local.backend, cache_key=flags.cache_key.value, slots=slots,
                         selection=flags.selection(), keep_going=flags.keep_going, **flags.output_caps(),
                         **({"max_log_bytes": local.max_log_bytes} if local.max_log_bytes else {}))
    step_flags = replace(flags.step_flags(), user=local.step_user)  # issue 14: never root; the operator's choice
    if formats is None:
        formats = {**({"html": None} if local.html else {}), **({"junit": local.junit} if local.junit else {})}
    with observer.running(plan) as subscribers:
        return run_and_report(plan, options, settings=step_flags, formats=formats, subscribers=subscribers,
                              cancel=cancel, backend=engine, deps=deps)


def check_network(backend: Backend, name: str | None) -> None:
    """The engine must know the network, or the first step fails with a bare 404 (exit 2 here instead)."""
    if name and not backend.network_exists(name):
        raise OptionError(
            f"--network {name!r} does not exist on the container engine; use none (the default) or bridge, "
            f"or create it first with `docker network create {name}`."
        )


def _partial_run(plan: PipelineTestingSpec, engine: Backend, workdir: Path, flags: RunFlags,
                 observer: RunObserver) -> list[str]:
    """The selected steps whose image is there (--only/--skip/--from/--reuse refused now, before anything is
    built); every missing image at once unless --keep-going (then those steps fail alone in the run)."""
    from rtest.errors import ImageNotFoundError
    from rtest.plan.selection import select_steps
    from rtest.run.engine import decided_steps
    from rtest.run.image_check import missing_images_message, present_images
    from rtest.workspace import Workspace

    selection = flags.selection()
    chosen = select_steps(plan, selection)
    decided_steps(plan, chosen, RunOptions(workdir=workdir, selection=selection), Workspace(workdir), "")
    _, missing = present_images(plan, engine, chosen.run)
    if missing and not flags.keep_going:
        raise ImageNotFoundError(missing_images_message(plan, missing))
    for ref in missing:
        observer.warning(f"{missing_images_message(plan, [ref])} With --keep-going those steps fail and the "
                         "others run.")
    return [node for node in chosen.run if plan.scripts[node].image.value not in missing]


def _dependencies(plan: PipelineTestingSpec, user: UserSpec, flags: RunFlags, engine: Backend, workdir: Path,
                  given: DepsOptions | None, progress: Progress | None, nodes: list[str]) -> PreparedDeps | None:
    """Dependency images, unless --no-deps or the backend has no image store (no images to build)."""
    store = engine.images
    if flags.no_deps or store is None:
        return None
    homes = [Path(user.wheelhouse)] if user.wheelhouse else []
    options = given or DepsOptions(wheelhouses=homes, download=not homes, install_declared=flags.install_declared,
                                   nodes=nodes)
    if progress is not None and options.on_progress is None:
        options.on_progress = progress
    return prepare_dependencies(plan, workdir, store, options)


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
