"""Following the ONE task of a step's service, from pending to a verdict (a StepExit) or None (still going).

Swarm keeps task state on the manager: where the task was placed, whether a node rejected it
(no such image), its container's exit code. What Swarm does not say on its own, this says: a
task pending because no node could EVER take it fails within seconds with the reason, and a
task whose node stopped answering fails naming the node instead of hanging until Swarm orphans
it (hours later).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from docker.errors import NotFound

from rtest.run.backends.base import Handle, StepExit
from rtest.run.backends.swarm_placement import unplaceable_reason

if TYPE_CHECKING:
    from rtest.run.backends.swarm import SwarmBackend

TERMINAL = {"complete", "failed", "rejected", "shutdown", "orphaned", "remove"}
UNSCHEDULED = {"new", "pending"}
PLACED = {"assigned", "accepted", "preparing", "ready", "starting"}  # on a node, not running yet
NODE_LOST = {"down", "disconnected", "unknown"}
NODE_CHECK_S = 1.0
GONE_AFTER_STOP_S = 15.0  # after removing the service, how long its task may take to go away


class TaskWatch:
    def __init__(self, backend: SwarmBackend, handle: Handle) -> None:
        self.backend, self.handle = backend, handle
        self.ran = False  # the task's container started: its logs are worth reading
        self.node_lost = False  # its node stopped answering: asking for its logs would hang
        self.host: str | None = None
        self.host_id: str | None = None
        self._created = time.monotonic()
        self._last_node_check = 0.0
        self._last_status: dict = {}
        self._stopped_at: float | None = None

    def stopping(self) -> None:
        """The backend removed the service (cancel, timeout): wait only for its task to go away."""
        self._stopped_at = self._stopped_at or time.monotonic()

    def poll(self) -> StepExit | None:
        try:
            tasks = self.backend.api.tasks(filters={"service": self.handle.id})
        except NotFound:  # the service is gone (we removed it), and so are its tasks
            tasks = []
        if not tasks:
            if self._stopped_at is not None:  # removed, and its container is gone on its node
                return self._exit(self._container_exit())
            return None
        task = max(tasks, key=lambda t: t.get("CreatedAt", ""))
        status = task.get("Status") or {}
        self._last_status = status
        state = status.get("State", "new")
        self._note_node(task.get("NodeID"))
        if self._stopped_at is not None:
            if state in TERMINAL or time.monotonic() - self._stopped_at > GONE_AFTER_STOP_S:
                return self._exit(self._container_exit())
            return None
        if state in TERMINAL:
            return self._verdict(state, status)
        if state == "running":
            self.ran = True
            return self._node_lost()
        if state in PLACED:  # a node lost before its task started would leave it 'assigned' for ever
            return self._node_lost()
        if state in UNSCHEDULED and time.monotonic() - self._created > self.backend.pending_grace_s:
            return self._never_placed(status)
        return None

    # ---- verdicts -------------------------------------------------------------------------------
    def _verdict(self, state: str, status: dict) -> StepExit:
        self.ran = self.ran or bool((status.get("ContainerStatus") or {}).get("ContainerID"))
        code = self._container_exit()
        error = (status.get("Err") or "").strip()
        where = f"node {self.host}" if self.host else "the swarm"
        if state == "complete":
            return self._exit(0 if code is None else code)
        if state == "failed" and code is not None:
            return self._exit(code)
        if state == "rejected":
            return self._exit(None, f"{where} rejected the step: {error or 'no reason given'}")
        if state == "orphaned":
            return self._exit(None, f"{where} was lost while the step ran; its task was orphaned")
        if state in ("shutdown", "remove"):
            return self._exit(code, "the step's service was removed by something outside rtest")
        return self._exit(code, f"{where} failed the step: {error or state}")

    def _never_placed(self, status: dict) -> StepExit | None:
        placement = self.handle.extra["placement"]
        reason = unplaceable_reason(placement, self.backend.nodes())
        if reason is None:
            return None  # some node could take it once it is free: queueing, not a fault
        said = (status.get("Err") or status.get("Message") or "").strip()
        return self._exit(None, reason + (f" (Swarm: {said})" if said else ""))

    def _node_lost(self) -> StepExit | None:
        now = time.monotonic()
        if not self.host_id or now - self._last_node_check < NODE_CHECK_S:
            return None
        self._last_node_check = now
        node = self.backend.api.inspect_node(self.host_id)
        state = (node.get("Status") or {}).get("State", "unknown")
        if state in NODE_LOST:
            self.node_lost = True
            self.backend.terminate(self.handle)
            when = "while the step ran" if self.ran else "before the step started"
            return self._exit(None, f"node {self.host} stopped answering {when} (node state '{state}'); "
                                    "its container's fate is unknown, and the step is failed")
        return None

    def _container_exit(self) -> int | None:
        code = (self._last_status.get("ContainerStatus") or {}).get("ExitCode")
        return int(code) if code is not None else None

    def _note_node(self, node_id: str | None) -> None:
        if node_id and node_id != self.host_id:
            self.host_id = node_id
            try:
                description = self.backend.api.inspect_node(node_id).get("Description") or {}
                self.host = description.get("Hostname", node_id[:12])
            except Exception:  # a node that vanished from the list still names itself by id
                self.host = node_id[:12]

    def _exit(self, code: int | None, engine_error: str | None = None) -> StepExit:
        return StepExit(exit_code=code, engine_error=engine_error, host=self.host, host_id=self.host_id)
