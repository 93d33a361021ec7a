"""The service's run registry: SQLite in the workdir (stdlib sqlite3, one file, nothing to install).

Runs (status, submitter, pipeline, timings, the submission to start it again) and their
steps (status, timings, exit code, reason). One connection shared by the service's threads
behind a lock; WAL so readers are never blocked by the run that writes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

RUN_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted", "error")
FINISHED = frozenset({"succeeded", "failed", "cancelled", "interrupted", "error"})
STEP_STATUSES = ("pending", "queued", "running", "succeeded", "cached", "failed", "upstream_failed", "cancelled",
                 "skipped", "reused")  # the last two: partial runs (issue 15)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    status TEXT NOT NULL,
    submitter TEXT,
    pipeline TEXT,
    submitted_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL,
    exit_code INTEGER,
    message TEXT,
    jobs INTEGER,
    request TEXT NOT NULL,
    dag TEXT
);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status, seq);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL REFERENCES runs(id),
    node TEXT NOT NULL,
    position INTEGER NOT NULL,
    status TEXT NOT NULL,
    started_at REAL,
    ended_at REAL,
    duration_s REAL,
    exit_code INTEGER,
    reason TEXT,
    PRIMARY KEY (run_id, node)
);
"""
_RUN_COLUMNS = ("id", "status", "submitter", "pipeline", "submitted_at", "started_at", "ended_at", "exit_code",
                "message", "jobs")


class Registry:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(steps)")}
            if "host" not in columns:  # a registry from before steps recorded where they ran
                self._db.execute("ALTER TABLE steps ADD COLUMN host TEXT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _exec(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # ---- runs ----------------------------------------------------------------------------
    def add_run(self, run_id: str, request: dict[str, Any], *, submitter: str, pipeline: str, jobs: int | None) -> None:
        self._exec("INSERT INTO runs (id, status, submitter, pipeline, submitted_at, jobs, request) "
                   "VALUES (?, 'queued', ?, ?, ?, ?, ?)",
                   (run_id, submitter, pipeline, time.time(), jobs, json.dumps(request)))

    def set_run(self, run_id: str, **fields: Any) -> None:
        unknown = set(fields) - set(_RUN_COLUMNS) - {"dag"}
        if unknown:
            raise KeyError(f"not run columns: {unknown}")
        names = ", ".join(f"{name} = ?" for name in fields)
        self._exec(f"UPDATE runs SET {names} WHERE id = ?", (*fields.values(), run_id))

    def run(self, run_id: str) -> dict[str, Any] | None:
        rows = self._exec(f"SELECT {', '.join(_RUN_COLUMNS)}, dag FROM runs WHERE id = ?", (run_id,))
        if not rows:
            return None
        run = _run_dict(rows[0])
        run["dag"] = json.loads(rows[0]["dag"]) if rows[0]["dag"] else None
        return run

    def request_of(self, run_id: str) -> dict[str, Any]:
        return json.loads(self._exec("SELECT request FROM runs WHERE id = ?", (run_id,))[0]["request"])

    def runs(self, *, status: str | None = None, limit: int = 50, offset: int = 0,
             pipeline: str | None = None) -> tuple[list[dict], int]:
        """Newest first; returns (page, total matching)."""
        terms = [(name, value) for name, value in (("status", status), ("pipeline", pipeline)) if value]
        where = ("WHERE " + " AND ".join(f"{name} = ?" for name, _ in terms)) if terms else ""
        args = tuple(value for _, value in terms)
        total = self._exec(f"SELECT COUNT(*) AS n FROM runs {where}", args)[0]["n"]
        rows = self._exec(f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs {where} ORDER BY seq DESC LIMIT ? OFFSET ?",
                          (*args, limit, offset))
        return [_run_dict(row) for row in rows], total

    # -- the web page (issue 16): steps done/total per run, pipelines to filter by, the previous run
    def step_counts(self, run_ids: list[str]) -> dict[str, tuple[int, int]]:
        """run id -> (finished steps, all steps)."""
        if not run_ids:
            return {}
        marks = ", ".join("?" * len(run_ids))
        rows = self._exec(f"SELECT run_id, SUM(status NOT IN ('pending', 'queued', 'running')) AS done, COUNT(*) AS n "
                          f"FROM steps WHERE run_id IN ({marks}) GROUP BY run_id", tuple(run_ids))
        return {row["run_id"]: (row["done"] or 0, row["n"]) for row in rows}

    def pipelines(self) -> list[str]:
        return [row["pipeline"] for row in self._exec("SELECT DISTINCT pipeline FROM runs WHERE pipeline IS NOT NULL "
                                                      "ORDER BY pipeline")]

    def previous_run(self, run_id: str) -> dict[str, Any] | None:
        """The newest earlier run of the same pipeline that got past planning."""
        rows = self._exec(f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs WHERE pipeline = (SELECT pipeline FROM runs "
                          "WHERE id = ?) AND seq < (SELECT seq FROM runs WHERE id = ?) AND status NOT IN "
                          "('queued', 'running', 'error') ORDER BY seq DESC LIMIT 1", (run_id, run_id))
        return _run_dict(rows[0]) if rows else None

    def run_ids_with_status(self, status: str) -> list[str]:
        return [row["id"] for row in self._exec("SELECT id FROM runs WHERE status = ? ORDER BY seq", (status,))]

    # -- retention (issue 14)
    def finished_runs(self) -> list[tuple[str, float]]:
        """(id, when it ended or was submitted) of every finished run, newest first."""
        marks = ", ".join("?" for _ in FINISHED)
        rows = self._exec(f"SELECT id, COALESCE(ended_at, submitted_at) AS t FROM runs WHERE status IN ({marks}) "
                          "ORDER BY seq DESC", tuple(sorted(FINISHED)))
        return [(row["id"], row["t"]) for row in rows]

    def delete_run(self, run_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM steps WHERE run_id = ?", (run_id,))
            self._db.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    def count_runs_by_status(self) -> dict[str, int]:
        return {row["status"]: row["n"] for row in self._exec("SELECT status, COUNT(*) AS n FROM runs GROUP BY status")}

    # ---- steps -----------------------------------------------------------------------------
    def set_steps(self, run_id: str, nodes: list[str]) -> None:
        with self._lock:
            self._db.execute("DELETE FROM steps WHERE run_id = ?", (run_id,))
            self._db.executemany("INSERT INTO steps (run_id, node, position, status) VALUES (?, ?, ?, 'pending')",
                                 [(run_id, node, i) for i, node in enumerate(nodes)])

    def set_step(self, run_id: str, node: str, **fields: Any) -> None:
        names = ", ".join(f"{name} = ?" for name in fields)
        self._exec(f"UPDATE steps SET {names} WHERE run_id = ? AND node = ?", (*fields.values(), run_id, node))

    def steps(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._exec("SELECT node, status, started_at, ended_at, duration_s, exit_code, reason, host FROM steps "
                          "WHERE run_id = ? ORDER BY position", (run_id,))
        return [dict(row) for row in rows]

    def finish_open_steps(self, run_id: str, status: str, reason: str) -> None:
        self._exec("UPDATE steps SET status = ?, reason = ? WHERE run_id = ? AND status IN ('pending', 'queued', "
                   "'running')", (status, reason, run_id))

    def count_steps_by_status(self) -> dict[str, int]:
        rows = self._exec("SELECT status, COUNT(*) AS n FROM steps GROUP BY status")
        return {row["status"]: row["n"] for row in rows}


def _run_dict(row: sqlite3.Row) -> dict[str, Any]:
    run = {name: row[name] for name in _RUN_COLUMNS}
    started, ended = run["started_at"], run["ended_at"]
    run["duration_s"] = round(ended - started, 3) if started and ended else None
    return run
