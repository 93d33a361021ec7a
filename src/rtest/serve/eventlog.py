"""A run's events as the service keeps them: one JSON line each, in ``<workdir>/serve/events/<run>.jsonl``.

The file is the source for server-sent events, so a client can follow a run from its
start, resume after a dropped connection, or read a run of an earlier service process.
Every line carries ``seq``, one counter across all runs of this process (slot events are
numbered under the slot pool's lock, so counting concurrent steps from them is exact).
The last line of every run is ``run_ended``.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from pathlib import Path
from typing import Any

from rtest.run.events import (
    Event,
    RunFinished,
    RunStarted,
    RunWarning,
    StepCreated,
    StepFinished,
    StepQueued,
    StepStarted,
)

END = "run_ended"
MAX_LINE = 1 << 20  # a line longer than this is not ours: stop reading rather than buffer it


def event_record(event: Event) -> dict[str, Any]:
    """A typed run event as JSON (types in snake case, as the API documents them)."""
    if isinstance(event, RunStarted):
        return {"type": "run_started", "run_id": event.run_id, "nodes": event.nodes, "started_at": event.started_at}
    if isinstance(event, (StepQueued, StepCreated, StepStarted)):
        kind = {StepQueued: "step_queued", StepCreated: "step_created", StepStarted: "step_started"}[type(event)]
        return {"type": kind, "node": event.node}
    if isinstance(event, StepFinished):
        return {"type": "step_finished", "node": event.node, "result": event.result.model_dump(mode="json")}
    if isinstance(event, RunWarning):
        return {"type": "warning", "message": event.message, "node": event.node}
    if isinstance(event, RunFinished):
        report = event.report
        return {"type": "run_finished", "pipeline_success": report.pipeline_success,
                "interrupted": report.interrupted, "duration_s": report.duration_s,
                "steps": {node: result.status.value for node, result in report.steps.items()}}
    return {"type": type(event).__name__}


def typed_event(record: dict[str, Any]) -> Event | None:
    """A record as a client reads it back: the typed event it was made from (None: not a run event, e.g. slots)."""
    from rtest.run.model import StepResult

    kind = record.get("type")
    steps: dict[str, type[StepQueued | StepCreated | StepStarted]] = {
        "step_queued": StepQueued, "step_created": StepCreated, "step_started": StepStarted}
    if kind == "run_started":
        return RunStarted(run_id=record["run_id"], run_dir=Path(), nodes=list(record["nodes"]),
                          started_at=record.get("started_at") or 0.0)
    if kind in steps:
        return steps[kind](record["node"])
    if kind == "step_finished":
        return StepFinished(record["node"], StepResult.model_validate(record["result"]))
    if kind == "warning":
        return RunWarning(str(record.get("message", "")), record.get("node"))
    return None


class EventLog:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def path(self, run_id: str) -> Path:
        return self.folder / f"{run_id}.jsonl"

    def append(self, run_id: str, record: dict[str, Any]) -> None:
        with self._lock:
            line = json.dumps({"seq": next(self._seq), "time": time.time(), **record}) + "\n"
            with self.path(run_id).open("a", encoding="utf-8") as out:
                out.write(line)

    def reset(self, run_id: str) -> None:
        with self._lock:
            self.path(run_id).unlink(missing_ok=True)

    def read_from(self, run_id: str, offset: int) -> tuple[list[dict[str, Any]], int]:
        """Complete lines after byte ``offset``; returns them and the offset after the last one."""
        path = self.path(run_id)
        try:
            with path.open("rb") as source:
                source.seek(offset)
                chunk = source.read(MAX_LINE * 4)
        except FileNotFoundError:
            return [], offset
        end = chunk.rfind(b"\n") + 1
        records = [json.loads(line) for line in chunk[:end].splitlines() if line.strip()]
        return records, offset + end

    def all(self, run_id: str) -> list[dict[str, Any]]:
        records, offset, out = None, 0, []
        while records != []:
            records, offset = self.read_from(run_id, offset)
            out += records
        return out
