"""The backend seam: what the runner asks of any engine that runs ONE step's container or job.

A backend never sees the DAG, the plan or the cache. The step executor hands it a
``StepLaunch`` (backend-neutral: image, command, env, mounts of staged folders, limits,
timeout) and gets back a ``StepExit``. Docker implements it today; docs/design.md shows how a
Kubernetes Jobs backend and SageMaker Processing/Training jobs fit the same protocol.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import Field

from rtest.errors import PlanError
from rtest.modelbase import Model

if TYPE_CHECKING:
    from rtest.run.artifacts import Stager
    from rtest.run.backends.images import ImageStore

# Every container or job rtest creates carries these, so clean-up can find it by run.
LABEL_MANAGED = "rtest.managed"
LABEL_RUN_ID = "rtest.run-id"
LABEL_NODE = "rtest.node"
LABEL_USER = "rtest.user"  # uid of who ran rtest


def run_labels(run_id: str, node: str) -> dict[str, str]:
    """The labels of one step's container; the invoking uid scopes `rtest sandbox clean --all` to its own runs."""
    return {LABEL_MANAGED: "1", LABEL_RUN_ID: run_id, LABEL_NODE: node, LABEL_USER: str(os.getuid())}


class Mount(Model):
    """A staged folder (or file) seen by the step at ``container``; where it lives is the stager's business."""

    host: Path
    container: str
    read_only: bool = False


class StepLaunch(Model):
    """Everything needed to start ONE step's container or job; a backend never sees the DAG."""

    run_id: str
    node: str
    name: str  # unique per run, safe as a container or job name
    image: str
    command: list[str]
    environment: dict[str, str] = Field(default_factory=dict)
    mounts: list[Mount] = Field(default_factory=list)
    user: str | None = None  # "uid:gid"
    network: str = "none"  # "none": no network at all; otherwise a network the backend knows by name
    working_dir: str | None = None
    cpus: float | None = None  # CPU limit, in CPUs
    memory_bytes: int | None = None  # memory limit; no swap beyond it
    instance_type: str | None = None  # what the step asked SageMaker for; a cluster backend places by it
    memory_is_users: bool = False  # memory_bytes came from --memory, not the instance type
    pids_limit: int | None = 4096
    timeout_s: float | None = None  # then SIGTERM, and SIGKILL after stop_grace_s
    stop_grace_s: float = 10.0
    max_log_bytes: int | None = None  # the step's log (bootstrap and engine lines) is capped near this

    def with_extras(self, mounts: list[Mount] | tuple[Mount, ...] = (),
                    environment: dict[str, str] | None = None) -> StepLaunch:
        """The launch plus extra mounts and env (e.g. read-only dependencies); clashes are bad input."""
        taken = {m.container for m in self.mounts}
        for mount in mounts:
            if mount.container in taken:
                raise PlanError(f"Node {self.node}: an extra mount wants {mount.container}, which the step "
                                "already uses; mount it at another container path.")
            taken.add(mount.container)
        clash = sorted(set(environment or {}) & set(self.environment))
        if clash:
            raise PlanError(f"Node {self.node}: extra environment variables {', '.join(clash)} are already set "
                            "for the step; rename them.")
        return self.model_copy(update={"mounts": [*self.mounts, *mounts],
                                       "environment": {**self.environment, **(environment or {})}})


class StepExit(Model):
    """What the engine reported about one finished (or abandoned) container."""

    exit_code: int | None
    oom_killed: bool = False
    timed_out: bool = False
    cancelled: bool = False
    engine_error: str | None = None  # the engine failed us mid-step
    removed_outside: bool = False  # engine_error says someone else removed or killed the container
    duration_s: float = 0.0
    peak_memory_bytes: int | None = None
    cpu_time_s: float | None = None
    host: str | None = None  # where the step ran: the engine's host name, or the cluster node's
    host_id: str | None = None


@dataclass
class Handle:
    """A prepared (created, not started) container or job."""

    id: str
    name: str
    launch: StepLaunch
    extra: dict[str, Any] = field(default_factory=dict)  # backend-private state


@runtime_checkable
class Backend(Protocol):
    """One step at a time: prepare, run (start, wait with timeout and cancel, collect), remove."""

    name: str
    # The optional parts (``BackendBase`` gives each its default):
    images: ImageStore | None  # the engine's images (dependency images, builds, listings); None: no images of its own
    stager: Stager | None  # for a backend that cannot see the host's folders; None: the local copy stager

    def preflight(self, run_dir: Path, images: list[str]) -> None:
        """Before any step: what a cluster must prove (every node sees the workdir, has the images)."""

    def total_cpus(self) -> int | None:
        """The CPUs steps share (a cluster's total); None: this machine's."""

    def image_id(self, ref: str) -> str:
        """The image's content id (part of the cache key); raises ImageNotFoundError when missing."""

    def prepare(self, launch: StepLaunch) -> Handle:
        """Create the container or job without starting it, so starting it later is cheap."""

    def run(self, handle: Handle, log_path: Path, cancel: threading.Event) -> StepExit:
        """Start, wait (stop at ``launch.timeout_s`` or when ``cancel`` is set), append engine logs, remove.

        Never raises for what happens to the step: a lost engine is ``StepExit.engine_error``.
        """

    def remove(self, handle: Handle) -> None:
        """Remove a prepared or finished container; quiet when it is already gone."""

    def remove_run(self, run_id: str | None = None, *, uid: int | None = None) -> list[str]:
        """Remove what one run (or, with None, any run of user ``uid``, or of anyone) left behind; returns the names."""

    def network_exists(self, name: str) -> bool:
        """Whether the backend knows the network a step asks for (checked before anything is created)."""


class BackendBase:
    """The defaults of the protocol's optional parts: a backend subclasses this and overrides what it has."""

    images: ImageStore | None = None
    stager: Stager | None = None

    def preflight(self, run_dir: Path, images: list[str]) -> None:
        return None

    def total_cpus(self) -> int | None:
        return None
