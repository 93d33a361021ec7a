"""Run-time values: what a step did, and what a run did (the launch description is in backends/base.py).

Outcomes are values: a failed script is a StepResult with a reason, not an
exception. Exceptions are kept for infrastructure (no engine, missing image).
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, Field

from rtest.plan.model import PlanWarning


class StepStatus(str, Enum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    CACHED = "cached"
    FAILED = "failed"
    UPSTREAM_FAILED = "upstream_failed"
    CANCELLED = "cancelled"

    @property
    def ok(self) -> bool:
        return self in (StepStatus.SUCCEEDED, StepStatus.CACHED)

    @property
    def finished(self) -> bool:
        return self not in (StepStatus.PENDING, StepStatus.RUNNING)


class StepResult(BaseModel):
    node: str
    status: StepStatus
    exit_code: int | None = None
    duration_s: float = 0.0
    started_at: float | None = None  # epoch seconds
    ended_at: float | None = None
    image: str | None = None
    outputs: dict[str, str] = Field(default_factory=dict)  # logical name -> host path
    log_path: str | None = None
    failure_reason: str | None = None
    peak_memory_bytes: int | None = None
    cpu_time_s: float | None = None
    cache_key: str | None = None
    warning_count: int = 0  # warning lines a succeeded step logged (see rtest.run.diagnose)
    warning_lines: list[str] = Field(default_factory=list)  # the first of them, bounded
    host: str | None = None  # where it ran: the docker engine's host name, or the swarm node's hostname
    host_id: str | None = None


class RunReport(BaseModel):
    run_id: str
    pipeline_success: bool
    steps: dict[str, StepResult]
    skipped_nodes: dict[str, str] = Field(default_factory=dict)
    run_dir: str | None = None
    started_at: float | None = None
    duration_s: float | None = None
    execution_order: list[str] = Field(default_factory=list)
    interrupted: bool = False
    # node -> setting name -> (value, where it came from): the StepSettings the run used
    settings: dict[str, dict[str, tuple[Any, str]]] = Field(default_factory=dict)
    plan_warnings: list[PlanWarning] = Field(
        default_factory=list
    )  # the plan's guesses and gaps, carried into every report
