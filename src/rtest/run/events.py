"""Typed events of a run, delivered to any number of subscribers.

The run emits; the CLI's live view, the structlog output, the report.json written as the
run goes (and later a service) subscribe. A subscriber that raises is logged and dropped
from nothing else: one broken view must not stop a run.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rtest.run.model import RunReport, StepResult


def _log() -> Any:
    """structlog, imported when a run logs (a service's client reads these events and never logs them)."""
    import structlog

    return structlog.get_logger("rtest.events")


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    run_dir: Path
    nodes: list[str]  # execution order
    started_at: float


@dataclass(frozen=True)
class StepQueued:
    """Every parent succeeded: the step went to a worker."""

    node: str


@dataclass(frozen=True)
class StepCreated:
    """Its container (or job) exists, not yet started."""

    node: str


@dataclass(frozen=True)
class StepStarted:
    """Inputs staged, no cache hit: the container starts now."""

    node: str


@dataclass(frozen=True)
class StepFinished:
    node: str
    result: StepResult


@dataclass(frozen=True)
class RunWarning:
    message: str
    node: str | None = None


@dataclass(frozen=True)
class RunFinished:
    report: RunReport


Event = RunStarted | StepQueued | StepCreated | StepStarted | StepFinished | RunWarning | RunFinished
Subscriber = Callable[[Event], None]


@dataclass
class EventBus:
    subscribers: list[Subscriber] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def subscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.append(subscriber)

    def emit(self, event: Event) -> None:
        """Deliver in subscription order, one event at a time (subscribers need no locks of their own)."""
        with self._lock:
            for subscriber in self.subscribers:
                try:
                    subscriber(event)
                except Exception:  # a broken view must not break the run
                    _log().exception("event subscriber failed", event=type(event).__name__)


def log_event(event: Event) -> None:
    """The structlog view of a run."""
    log = _log()
    if isinstance(event, RunStarted):
        log.info("run started", run_id=event.run_id, steps=len(event.nodes), run_dir=str(event.run_dir))
    elif isinstance(event, StepQueued):
        log.info("step queued", node=event.node)
    elif isinstance(event, StepCreated):
        log.info("container created", node=event.node)
    elif isinstance(event, StepStarted):
        log.info("step started", node=event.node)
    elif isinstance(event, StepFinished):
        result = event.result
        reason = (result.failure_reason or "").strip().splitlines()[-1:] or None
        log.info("step finished", node=event.node, status=result.status.value, exit_code=result.exit_code,
                 duration_s=result.duration_s, reason=reason)
    elif isinstance(event, RunWarning):  # info: the CLI prints plan notes itself, before the run
        log.info("warning", message=event.message, node=event.node)
    elif isinstance(event, RunFinished):
        report = event.report
        log.info("run finished", run_id=report.run_id, success=report.pipeline_success, duration_s=report.duration_s)
