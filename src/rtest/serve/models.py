"""The API's response shapes (they make the OpenAPI schema in docs/serve-openapi.json)."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict

from rtest.modelbase import Model


class ServiceModel(Model):
    # FastAPI wraps each body and response model in an adapter of its own when the service starts: deferring buys a
    # long-running service nothing, and a deferred model makes pydantic warn about the adapter's alias.
    model_config = ConfigDict(defer_build=False)


class Health(ServiceModel):
    """Open to anyone: only that the service is up, and its version."""

    status: str
    version: str


class ServiceInfo(ServiceModel):
    """For token holders (GET /api/service)."""

    version: str
    workdir: str
    server_id: str  # also in <workdir>/serve/server-id: a client that can read it shares our file system
    slots: int


class Submitted(ServiceModel):
    id: str
    url: str


class StepRow(ServiceModel):
    node: str
    status: str
    started_at: float | None = None
    ended_at: float | None = None
    duration_s: float | None = None
    exit_code: int | None = None
    reason: str | None = None
    host: str | None = None  # where it ran: the engine's host name, or a cluster node's


class RunRow(ServiceModel):
    id: str
    status: str
    submitter: str | None = None
    pipeline: str | None = None
    submitted_at: float
    started_at: float | None = None
    ended_at: float | None = None
    duration_s: float | None = None
    exit_code: int | None = None
    message: str | None = None
    jobs: int | None = None
    steps_done: int | None = None  # finished steps (any outcome), for the runs list
    steps_total: int | None = None


class RunPage(ServiceModel):
    runs: list[RunRow]
    total: int
    limit: int
    offset: int
    pipelines: list[str] = []  # every pipeline with a run, for the page's filter


class RunChanges(ServiceModel):
    """A run against the previous run of the same pipeline (``previous`` None: its first run)."""

    run: str
    previous: str | None
    pipeline: str | None
    summary: str
    steps: list[dict[str, Any]]  # node, change (newly failing, fixed, slower, faster, added, removed), durations
    scripts: list[dict[str, Any]]  # node, script, changed: script_digest / source_digest
    values: list[dict[str, Any]]  # node, key ("env LABEL_FIELD", "hyperparameter eta"), before, after


class RunDetail(RunRow):
    queue_position: int | None = None  # 1: a step of this run is next in line for a slot
    steps: list[StepRow]
    dag: dict[str, Any] | None = None


class SlotState(ServiceModel):
    slots: int
    in_use: int
    peak: int
    holders: list[dict[str, str]]
    queue: list[dict[str, str]]


class RunView(ServiceModel):
    """What the web page redraws: the DAG and the timeline as SVG, the warnings so far."""

    dag_svg: str
    timeline_svg: str
    warnings: list[str]
    status: str


class PathStat(ServiceModel):
    exists: bool
    size: int | None = None
    mtime_ns: int | None = None
