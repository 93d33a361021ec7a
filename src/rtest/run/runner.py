"""The runner owns ordering, concurrency, skipping after failure and cancellation.

It walks the plan's script graph, runs every ready step on a worker thread (at
most ``jobs`` at once), and creates the containers of steps about to become
ready ahead of time, since their mounts are known in advance: once a step of the
run has gone past the cache to a container, so a run served from the cache
creates none. Each step itself is carried out by ``StepExecutor``; the backend
it uses sees one container only.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable, Protocol

import structlog

from rtest.errors import RtestError
from rtest.graph import Digraph, descendants
from rtest.plan.model import PipelineTestingSpec
from rtest.run.events import Event, StepFinished, StepQueued
from rtest.run.model import StepResult, StepStatus
from rtest.run.step import StepExecutor

log = structlog.get_logger("rtest.runner")


class SlotLimiter(Protocol):
    """A limit beyond ``jobs`` shared with other runs (e.g. rtest serve's machine-wide slot pool)."""

    def acquire(self, node: str, cancel: threading.Event) -> bool: ...  # False: cancelled while waiting

    def release(self, node: str) -> None: ...


@dataclass
class _State:
    results: dict[str, StepResult]
    running: dict[Future, str]
    started: set[str]


class Runner:
    def __init__(self, plan: PipelineTestingSpec, executor: StepExecutor, *, jobs: int,
                 emit: Callable[[Event], None] | None = None, slots: SlotLimiter | None = None,
                 decided: dict[str, StepResult] | None = None) -> None:
        self.plan = plan
        self.graph: Digraph[str] = plan.script_graph()
        self.order = plan.execution_order(self.graph)
        self.executor = executor
        self.jobs = max(1, jobs)
        self.emit = emit or (lambda event: None)
        self.slots = slots
        self.decided = decided or {}  # outcomes known before the run: not selected, reused, image missing

    def run(self, cancel: threading.Event) -> dict[str, StepResult]:
        state = _State(results={}, running={}, started=set())
        ok_first = sorted(self.decided.items(), key=lambda item: not item[1].status.ok)
        for node, result in ok_first:  # not-selected steps stay skipped even below a step that cannot start
            if node not in state.results:
                self._record(state, node, result)
        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="rtest-step") as pool:
            launched = self.executor.first_launch
            while True:
                if not cancel.is_set():
                    self._submit_ready(pool, state, cancel)
                    if launched.done():
                        self._prepare_upcoming(state)
                if not state.running:
                    break
                watched = [*state.running, *([] if launched.done() else [launched])]  # a first launch wakes us
                done, _ = wait(watched, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    if future in state.running:
                        self._finish(state, state.running.pop(future), future)
        self._close_unstarted(state, cancel)
        return {node: state.results[node] for node in self.order}

    def _submit_ready(self, pool: ThreadPoolExecutor, state: _State, cancel: threading.Event) -> None:
        for node in self.order:
            if len(state.running) >= self.jobs:
                return
            if node in state.started or node in state.results:
                continue
            parents = list(self.graph.predecessors(node))
            if all(p in state.results and state.results[p].status.ok for p in parents):
                state.started.add(node)
                self.emit(StepQueued(node))
                upstream = {p: state.results[p] for p in parents}
                state.running[pool.submit(self._execute, node, upstream, cancel)] = node

    def _execute(self, node: str, upstream: dict[str, StepResult], cancel: threading.Event) -> StepResult:
        """One step on a worker thread, inside a slot of the shared limiter when there is one."""
        if self.slots is None:
            return self.executor.execute(node, upstream, cancel)
        if not self.slots.acquire(node, cancel):
            return StepResult(node=node, status=StepStatus.CANCELLED,
                              failure_reason="cancelled while waiting for a slot", ended_at=time.time())
        try:
            return self.executor.execute(node, upstream, cancel)
        finally:
            self.slots.release(node)

    def _prepare_upcoming(self, state: _State) -> None:
        """Create containers for steps whose parents are all running or done, so their start is cheap.

        At most ``jobs`` wait created at a time: enough to hide creation, not a wide DAG's worth.
        """
        for node in self.order:
            if self.executor.prepared_count() >= self.jobs:
                return
            if node in state.started or node in state.results:
                continue
            parents = list(self.graph.predecessors(node))
            if parents and all(p in state.started for p in parents) and not any(
                p in state.results and not state.results[p].status.ok for p in parents
            ):
                self.executor.prepare_ahead(node)

    def _finish(self, state: _State, node: str, future: Future) -> None:
        try:
            result = future.result()
        except RtestError as exc:  # e.g. a mount the engine cannot make: the user can fix it
            result = StepResult(node=node, status=StepStatus.FAILED, failure_reason=str(exc))
        except Exception as exc:  # a bug or infrastructure fault in one step must not hang the rest
            log.exception("step crashed", node=node)
            result = StepResult(node=node, status=StepStatus.FAILED, failure_reason=f"rtest internal error: {exc}")
        self._record(state, node, result)

    def _record(self, state: _State, node: str, result: StepResult) -> None:
        """A step's outcome; a failed one marks every descendant not yet started as upstream_failed."""
        state.results[node] = result
        self.emit(StepFinished(node, result))
        if not result.status.ok:
            for downstream in descendants(self.graph, node):
                if downstream not in state.results and downstream not in state.started:
                    reason = f"upstream step {node} {result.status.value}"
                    state.results[downstream] = StepResult(node=downstream, status=StepStatus.UPSTREAM_FAILED,
                                                           failure_reason=reason)
                    self.executor.discard_prepared(downstream)
                    self.emit(StepFinished(downstream, state.results[downstream]))

    def _close_unstarted(self, state: _State, cancel: threading.Event) -> None:
        for node in self.order:
            if node not in state.results:
                reason = "cancelled before it started" if cancel.is_set() else "never became ready"
                state.results[node] = StepResult(node=node, status=StepStatus.CANCELLED, failure_reason=reason,
                                                 ended_at=time.time())
                self.executor.discard_prepared(node)
                self.emit(StepFinished(node, state.results[node]))
