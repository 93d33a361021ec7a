"""Long answers: a run's events as server-sent events, and a step's log, tailed and followed."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator

from rtest.serve import files
from rtest.serve.eventlog import END
from rtest.serve.registry import FINISHED

POLL_S = 0.02  # a stat and a small read of one file (the registry is asked only once the run is not active):
# cheap, and a step's end, or the run's, reaches a follower within 20 ms (issue 18: it was 50)
LOG_POLL_S = 0.05  # a followed log asks the registry whether its step is done at each quiet poll: kept at 50 ms
KEEPALIVE_S = 15.0


async def sse(manager, run_id: str, after: int) -> AsyncIterator[str]:
    """Every event of the run from index ``after`` on (the SSE id), ending with ``run_ended``."""
    offset, index, quiet = 0, 0, 0.0
    while True:
        records, offset = manager.events.read_from(run_id, offset)
        for record in records:
            index += 1
            if index > after:
                yield f"id: {index}\nevent: {record['type']}\ndata: {json.dumps(record)}\n\n"
            if record["type"] == END:
                return
        if not records:
            active = run_id in manager.active  # an active run is not finished: no registry query while it runs
            run = None if active else manager.registry.run(run_id)
            if not active and (run is None or run["status"] in FINISHED):
                records, offset = manager.events.read_from(run_id, offset)
                if not records:  # finished and nothing more will come
                    return
                continue
            quiet += POLL_S
            if quiet >= KEEPALIVE_S:
                quiet = 0.0
                yield ": keep-alive\n\n"
            await asyncio.sleep(POLL_S)
        else:
            quiet = 0.0


async def follow_log(manager, run_id: str, node: str, fd: int | None, offset: int) -> AsyncIterator[bytes]:
    """The log from ``offset`` on, then whatever is appended, until the step has finished."""
    path_parts = (node, "log.txt")
    try:
        while True:
            if fd is None:  # the step has not written its log yet
                try:
                    fd = files.open_under(manager.workspace.run_dir(run_id), "/".join(path_parts))
                except files.NotServable:
                    fd = None
            chunk = files.read_range(fd, offset, files.CHUNK) if fd is not None else b""
            if chunk:
                offset += len(chunk)
                yield chunk
                continue
            if _step_done(manager, run_id, node):
                if fd is not None and files.read_range(fd, offset, 1):
                    continue
                return
            await asyncio.sleep(LOG_POLL_S)
    finally:
        if fd is not None:
            os.close(fd)


def _step_done(manager, run_id: str, node: str) -> bool:
    run = manager.registry.run(run_id)
    if run is None or run["status"] in FINISHED:
        return True
    step = next((s for s in manager.registry.steps(run_id) if s["node"] == node), None)
    return step is not None and step["status"] not in ("pending", "queued", "running")
