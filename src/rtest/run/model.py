"""Run-time values: what a step did, and what a run did (the launch description is in backends/base.py).

Outcomes are values: a failed script is a StepResult with a reason, not an
exception. Exceptions are kept for infrastructure (no engine, missing image).
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import Field

from rtest.modelbase import Model
from rtest.plan.model import PlanWarning, SynthesizedInput


class StepStatus(str, Enum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    CACHED = "cached"
    FAILED = "failed"
    UPSTREAM_FAILED = "upstream_failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"  # a partial run does not run it (--only/--skip/--from) and no run step needs it
    REUSED = "reused"  # a partial run does not run it; its outputs come from an earlier run

    @property
    def ok(self) -> bool:
        return self in (StepStatus.SUCCEEDED, StepStatus.CACHED, StepStatus.SKIPPED, StepStatus.REUSED)

    @property
    def finished(self) -> bool:
        return self not in (StepStatus.PENDING, StepStatus.RUNNING)


class SampleResult(Model):
    """One payload sample sent to the inference handler (see rtest.jobs.inference)."""

    file: str
    content_type: str
    accept: str | None = None
    status: str  # answered | failed | not-sent
    latency_ms: float | None = None
    failure: str | None = None


class InferenceCheckResult(Model):
    """What the inference check found: the model loaded, each sample's answer, each failure as a sentence."""

    handler: str | None = None
    handler_from: str | None = None  # "archive", or the source folder when the archive lacks the handler
    functions: dict[str, str] = Field(default_factory=dict)  # model_fn -> "handler" | "toolkit default"
    model_loaded: bool = False
    load_s: float | None = None
    samples: list[SampleResult] = Field(default_factory=list)
    failures: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @property
    def answered(self) -> int:
        return sum(1 for s in self.samples if s.status == "answered")

    @property
    def sent(self) -> int:
        return sum(1 for s in self.samples if s.status != "not-sent")


class StepResult(Model):
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
    inference_check: InferenceCheckResult | None = None  # a step of the inference-check kind: its samples
    host: str | None = None  # where it ran: the engine's host name, or the cluster node's hostname
    host_id: str | None = None


class RunReport(Model):
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
    synthesized_inputs: list[SynthesizedInput] = Field(default_factory=list)  # sample data made (issue 19)
