"""One machine-wide pool of step slots, shared by every run of the service.

Steps ask for a slot in the order they become ready, whatever run they belong to (first
come, first served); a run's own ``jobs`` limit still applies inside the runner. A waiting
step gives up when its run is cancelled. ``on_change`` is called under the pool's lock, so
what it records (the service's slot events) is in the true order of acquire and release.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass
from typing import Callable

SlotChange = Callable[[str, str, bool, int], None]  # (run_id, node, acquired, slots in use after)


@dataclass
class _Waiter:
    run_id: str
    node: str
    ticket: int
    granted: bool = False


class SlotPool:
    def __init__(self, size: int, on_change: SlotChange | None = None) -> None:
        self.size = max(1, size)
        self.on_change = on_change or (lambda run_id, node, acquired, in_use: None)
        self.in_use = 0
        self.peak = 0
        self.holders: list[tuple[str, str]] = []
        self._queue: deque[_Waiter] = deque()
        self._tickets = itertools.count(1)
        self._cond = threading.Condition()

    def acquire(self, run_id: str, node: str, cancel: threading.Event) -> bool:
        """Wait for a slot in arrival order; False if ``cancel`` is set first."""
        with self._cond:
            waiter = _Waiter(run_id, node, next(self._tickets))
            self._queue.append(waiter)
            self._grant()
            while not waiter.granted:
                if cancel.is_set():
                    self._queue.remove(waiter)
                    self._grant()
                    return False
                self._cond.wait(timeout=0.2)  # cancel is an Event of its own: look at it now and then
            return True

    def release(self, run_id: str, node: str) -> None:
        with self._cond:
            self.holders.remove((run_id, node))
            self.in_use -= 1
            self.on_change(run_id, node, False, self.in_use)
            self._grant()

    def _grant(self) -> None:
        while self._queue and self.in_use < self.size:
            waiter = self._queue.popleft()
            waiter.granted = True
            self.in_use += 1
            self.peak = max(self.peak, self.in_use)
            self.holders.append((waiter.run_id, waiter.node))
            self.on_change(waiter.run_id, waiter.node, True, self.in_use)
        self._cond.notify_all()

    def queue_length(self) -> int:
        with self._cond:
            return len(self._queue)

    def queue_position(self, run_id: str) -> int | None:
        """1 for the run whose step is next in line; None when no step of the run waits."""
        with self._cond:
            for position, waiter in enumerate(self._queue, start=1):
                if waiter.run_id == run_id:
                    return position
        return None

    def snapshot(self) -> dict:
        with self._cond:
            return {"slots": self.size, "in_use": self.in_use, "peak": self.peak,
                    "holders": [{"run_id": r, "node": n} for r, n in self.holders],
                    "queue": [{"run_id": w.run_id, "node": w.node} for w in self._queue]}

    def for_run(self, run_id: str) -> RunSlots:
        return RunSlots(self, run_id)


@dataclass(frozen=True)
class RunSlots:
    """The runner's view of the pool: acquire/release around each step (see rtest.run.runner.SlotLimiter)."""

    pool: SlotPool
    run_id: str

    def acquire(self, node: str, cancel: threading.Event) -> bool:
        return self.pool.acquire(self.run_id, node, cancel)

    def release(self, node: str) -> None:
        self.pool.release(self.run_id, node)
