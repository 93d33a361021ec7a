"""Run-time values: what a backend is asked to launch, and what a step did.

Outcomes are values: a failed script is a StepResult with a reason, not an
exception. Exceptions are kept for infrastructure (no engine, missing image).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from pydantic import BaseModel, Field


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


class Mount(BaseModel):
    host: Path
    container: str
    read_only: bool = False


class StepLaunch(BaseModel):
    """Everything needed to start ONE container; a backend never sees the DAG."""

    name: str  # container name, unique per run
    image: str
    command: list[str]
    environment: dict[str, str] = Field(default_factory=dict)
    mounts: list[Mount] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    user: str | None = None  # "uid:gid"
    network: str = "none"
    working_dir: str | None = None
    nano_cpus: int | None = None
    mem_limit_bytes: int | None = None
    pids_limit: int | None = 4096
    timeout_s: float | None = None
    stop_grace_s: float = 10.0


class StepExit(BaseModel):
    """What the engine reported about one finished (or abandoned) container."""

    exit_code: int | None
    oom_killed: bool = False
    timed_out: bool = False
    cancelled: bool = False
    engine_error: str | None = None  # the engine failed us mid-step
    duration_s: float = 0.0
    peak_memory_bytes: int | None = None
    cpu_time_s: float | None = None


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
