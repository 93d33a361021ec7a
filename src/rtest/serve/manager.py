"""The service's runs: submit, plan, run inside the shared slot pool, record, cancel, recover after a restart.

Each run gets a thread of its own that calls the same ``rtest.session.run_request`` as the CLI and the
factory: its planner builds the plan one at a time (the bundled example writes its sample data into the
shared workdir), dependency images are built one at a time across runs, the run gets its slot view,
and an observer keeps the registry and the event log current. The request body is
``rtest.options.RunRequest`` (re-exported here).
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from rtest.errors import RtestError
from rtest.options import RunRequest
from rtest.run.backends.base import Backend
from rtest.run.events import Event, RunStarted, RunWarning, StepFinished, StepQueued, StepStarted
from rtest.serve.eventlog import END, EventLog, event_record
from rtest.serve.policy import SubmitPolicy, plans_code, restart_refusal
from rtest.serve.registry import Registry
from rtest.serve.retention import Retention, after_run
from rtest.serve.slots import SlotPool
from rtest.workspace import Workspace, new_run_id

log = structlog.get_logger("rtest.serve")


@dataclass
class _Active:
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None


class RunManager:
    def __init__(self, workdir: Path, *, slots: int, backend: Backend, metrics=None,
                 step_user: str | None = None, max_log_bytes: int | None = None) -> None:
        self.workspace = Workspace(workdir)
        self.serve_dir = self.workspace.root / "serve"
        self.registry = Registry(self.serve_dir / "registry.sqlite")
        self.events = EventLog(self.serve_dir / "events")
        self.pool = SlotPool(slots, on_change=self._slot_changed)
        self.backend = backend
        self.metrics = metrics
        # -- issue 14: the operator's, never a submission's: who steps run as, how much log a step keeps
        self.step_user = step_user
        self.max_log_bytes = max_log_bytes
        self.active: dict[str, _Active] = {}
        self._plan_lock = threading.Lock()
        self._deps_lock = threading.Lock()  # one dependency build at a time: two runs never build the same image twice
        self._lock = threading.Lock()
        self._stopping = False
        # -- issue 14: what submissions may name, how long code-naming plans may take, how much history stays
        self.policy = SubmitPolicy()
        self.plan_timeout_s = 120.0
        self.retention = Retention()

    def submission_dir(self, run_id: str) -> Path:
        return self.serve_dir / "submissions" / run_id

    # ---- submitting and cancelling ---------------------------------------------------------
    def new_run_id(self) -> str:
        return new_run_id()

    def submit(self, request: RunRequest, run_id: str | None = None) -> str:
        """Record the run as queued and start its thread; a malformed spec raises PlanError (nothing recorded)."""
        if request.spec is not None:
            _require_absolute(_user_spec(request.spec))
        run_id = run_id or new_run_id()
        pipeline = "example" if request.example else _pipeline_name(request.spec)
        self.registry.add_run(run_id, request.model_dump(mode="json"), submitter=request.submitter or "anonymous",
                              pipeline=pipeline, jobs=request.jobs)
        self._start(run_id, request)
        return run_id

    def _start(self, run_id: str, request: RunRequest) -> None:
        active = _Active()
        active.thread = threading.Thread(target=self._run, args=(run_id, request, active.cancel),
                                         name=f"rtest-run-{run_id}", daemon=True)
        with self._lock:
            self.active[run_id] = active
        active.thread.start()

    def cancel(self, run_id: str) -> bool:
        """True if the run was going on and is now asked to stop."""
        with self._lock:
            active = self.active.get(run_id)
        if active is None:
            return False
        active.cancel.set()
        return True

    def queue_position(self, run_id: str) -> int | None:
        return self.pool.queue_position(run_id)

    # ---- one run ---------------------------------------------------------------------------------
    def _run(self, run_id: str, request: RunRequest, cancel: threading.Event) -> None:
        from rtest.options import LocalFlags
        from rtest.session import run_request

        status, exit_code, message = "error", 2, None
        try:
            report = run_request(lambda: self._plan(run_id, request), request.flags(),
                                 LocalFlags(run_id=run_id, step_user=self.step_user, max_log_bytes=self.max_log_bytes),
                                 workdir=self.workspace.root, observer=_Observer(self, run_id), backend=self.backend,
                                 cancel=cancel, formats={"html": None, "junit": None},
                                 slots=self.pool.for_run(run_id), deps_lock=self._deps_lock)
            status, exit_code = (("interrupted" if self._stopping else "cancelled", 130) if report.interrupted else
                                 ("succeeded", 0) if report.pipeline_success else ("failed", 1))
        except RtestError as exc:  # bad input or no engine: the user's one sentence, and its exit code
            exit_code, message = exc.exit_code, str(exc)
            status = getattr(exc, "run_status", status)  # planning code that crashed or hung: failed
        except Exception as exc:  # noqa: BLE001 - a bug in one run must not take the service down
            log.exception("run crashed", run_id=run_id)
            message = f"rtest internal error: {exc}"
        try:  # the end is recorded before the run stops being active: followers rely on that order
            if status == "error":
                self.registry.finish_open_steps(run_id, "cancelled", message or "")
            self.events.append(run_id, {"type": END, "status": status, "exit_code": exit_code, "message": message})
            self.registry.set_run(run_id, status=status, exit_code=exit_code, message=message, ended_at=time.time())
            if self.metrics:
                self.metrics.run_finished(status)
        finally:
            with self._lock:
                self.active.pop(run_id, None)
            after_run(self, run_id)  # the upload goes, then old runs (rtest.serve.retention)

    def _plan(self, run_id: str, request: RunRequest):
        from rtest.serve.planning import plan_submission

        spec_path = self._spec_file(run_id, request)
        if not request.example and plans_code(self.policy, spec_path):  # never in this process: see plan_worker
            assert spec_path is not None  # plans_code is False without a spec
            from rtest.serve.plan_worker import plan_in_worker

            return plan_in_worker(spec_path, self.workspace.root, timeout_s=self.plan_timeout_s)
        with self._plan_lock:  # the example writes its sample data into the shared workdir
            return plan_submission(spec_path, example=request.example, workspace=self.workspace,
                                   config_classes=self.policy.allow_code)

    def _spec_file(self, run_id: str, request: RunRequest) -> Path | None:
        from rtest.plan.userspec import save_user_spec
        from rtest.serve.bundle import SPEC_NAME, load_bundle_spec

        folder = self.submission_dir(run_id)
        if request.bundle:
            spec = load_bundle_spec(folder / "bundle")  # every path inside the bundle, or a BundleError
            self.registry.set_run(run_id, pipeline=_pipeline_name(spec.model_dump()))
            return folder / "bundle" / SPEC_NAME
        if request.spec is None:
            return None
        return save_user_spec(_user_spec(request.spec), folder / "spec.json")

    # ---- what a run emits ------------------------------------------------------------------------
    def _record(self, run_id: str, event: Event) -> None:
        self.events.append(run_id, event_record(event))
        if isinstance(event, RunStarted):
            self.registry.set_steps(run_id, event.nodes)
        elif isinstance(event, StepQueued):
            self.registry.set_step(run_id, event.node, status="queued")
        elif isinstance(event, StepStarted):
            self.registry.set_step(run_id, event.node, status="running", started_at=time.time())
        elif isinstance(event, StepFinished):
            result = event.result
            self.registry.set_step(run_id, event.node, status=result.status.value, started_at=result.started_at,
                                   ended_at=result.ended_at, duration_s=result.duration_s,
                                   exit_code=result.exit_code, reason=result.failure_reason, host=result.host)
            if self.metrics and result.started_at is not None:
                self.metrics.step_finished(result.duration_s, result.host)

    def _slot_changed(self, run_id: str, node: str, acquired: bool, in_use: int) -> None:
        """Called under the pool's lock: the slot events are numbered in their true order."""
        self.events.append(run_id, {"type": "slot", "node": node, "acquired": acquired, "in_use": in_use})
        if acquired:
            self.registry.set_step(run_id, node, status="running")
            run = self.registry.run(run_id)
            if run and run["status"] == "queued":
                self.registry.set_run(run_id, status="running", started_at=time.time())

    # ---- restarts and shutdown ------------------------------------------------------------------------
    def recover(self) -> dict[str, list[str]]:
        """Runs that were running when the service stopped are interrupted (containers removed); queued runs start
        again."""
        interrupted = self.registry.run_ids_with_status("running")
        for run_id in interrupted:
            self._interrupt(run_id, "the service stopped while the run went on")
        queued, refused = [], []
        for run_id in self.registry.run_ids_with_status("queued"):
            self.backend.remove_run(run_id)  # containers created ahead by the previous process
            request = RunRequest.model_validate(self.registry.request_of(run_id))
            why = restart_refusal(self.policy, request.spec)
            if why:  # code planning may be what stopped the service: never again on its own
                self._end_unstarted(run_id, why)
                refused.append(run_id)
                continue
            self.events.reset(run_id)
            self._start(run_id, request)
            queued.append(run_id)
        return {"interrupted": interrupted, "restarted": queued, "failed": refused}

    def _end_unstarted(self, run_id: str, why: str) -> None:
        self.registry.set_run(run_id, status="failed", exit_code=1, message=why, ended_at=time.time())
        self.events.append(run_id, {"type": END, "status": "failed", "exit_code": 1, "message": why})

    def _interrupt(self, run_id: str, why: str) -> None:
        removed = self.backend.remove_run(run_id)
        self.registry.finish_open_steps(run_id, "cancelled", why)
        self.registry.set_run(run_id, status="interrupted", exit_code=130, message=why, ended_at=time.time())
        self.events.append(run_id, {"type": END, "status": "interrupted", "exit_code": 130, "message": why})
        log.info("run interrupted", run_id=run_id, containers_removed=len(removed))

    def shutdown(self, wait_s: float = 30.0) -> None:
        """Stop every run (its containers are stopped and removed by the run itself)."""
        with self._lock:
            actives = list(self.active.values())
        self._stopping = True  # what was going on ends as interrupted, not as cancelled by a user
        for active in actives:
            active.cancel.set()
        deadline = time.monotonic() + wait_s
        for active in actives:
            if active.thread:
                active.thread.join(max(0.0, deadline - time.monotonic()))
        self.registry.close()


class _Observer:
    """A run as the service shows it (rtest.session.RunObserver): the DAG's shape and the plan's warnings in the
    registry and the event log before the run, built dependency images, then every event of the run."""

    def __init__(self, manager: RunManager, run_id: str) -> None:
        self.manager, self.run_id = manager, run_id

    def planned(self, plan) -> None:
        events = self.manager.events
        shape = {"nodes": list(plan.dag_nodes), "edges": [list(e) for e in plan.dag_edges],
                 "scripts": plan.execution_order(), "skipped": dict(plan.skipped)}
        self.manager.registry.set_run(self.run_id, dag=json.dumps(shape))
        from rtest.serve.changes import write_fingerprint  # "what changed" on the web page (issue 16)

        write_fingerprint(self.manager.workspace.run_dir(self.run_id), plan)
        for warning in plan.warnings:  # before the run, as the CLI prints them; also in the report's plan_warnings
            record = event_record(RunWarning(warning.message, warning.node))
            events.append(self.run_id, {**record, "code": warning.code})
        for note in plan.notes:  # the run emits them again after it starts: clients show each message once
            events.append(self.run_id, event_record(RunWarning(note)))

    def warning(self, message: str) -> None:
        self.manager.events.append(self.run_id, {**event_record(RunWarning(message)), "code": "run"})

    def starting(self, run_id: str) -> None:
        """The run id is the submission's."""

    def deps_progress(self):
        return nullcontext(None)

    def deps_built(self, tags: list[str]) -> None:
        for tag in tags:
            self.manager.events.append(self.run_id, {"type": "deps_built", "image": tag})

    def running(self, plan):
        return nullcontext([lambda event: self.manager._record(self.run_id, event)])


def _pipeline_name(spec: dict[str, Any] | None) -> str:
    dag = ((spec or {}).get("pipeline") or {}).get("dag") or ""
    return Path(dag).name if dag and ":" not in dag else dag or "?"


def _user_spec(raw: dict[str, Any]):
    from pydantic import ValidationError

    from rtest.errors import PlanError
    from rtest.plan.userspec import UserSpec

    try:
        return UserSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PlanError(f"The run request's spec is invalid at {where}: {first['msg']}.") from None


def _require_absolute(spec) -> None:
    from rtest.errors import PlanError

    where = spec.pipeline
    paths = [where.config, where.source_root, *where.interfaces, *where.source_map.values(), spec.wheelhouse]
    paths += [where.dag] if where.dag and ":" not in where.dag else []
    for overrides in spec.scripts.values():
        paths += [*overrides.inputs.values(), *overrides.outputs.values()]
    for path in filter(None, paths):
        if not Path(path).is_absolute():
            raise PlanError(f"The submitted spec names the relative path '{path}'; the service needs absolute paths.")
