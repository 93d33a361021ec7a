"""How long the service keeps what runs leave behind.

An upload is needed only while its run goes on: when the run ends its submission folder is removed
(the report, logs and outputs are in the run folder, which is what the report and the API link to).
Finished runs themselves (registry rows, event log, run folder) are kept until ``--keep-runs N``
(the newest N finished runs stay) or ``--keep-days D`` says otherwise; `rtest runs prune` asks for
a pass with other numbers. Queued and running runs are never pruned.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass

import structlog

log = structlog.get_logger("rtest.serve")


@dataclass(frozen=True)
class Retention:
    keep_runs: int | None = None
    keep_days: float | None = None

    def apply(self, manager) -> list[str]:
        if self.keep_runs is None and self.keep_days is None:
            return []
        return prune(manager, keep_runs=self.keep_runs, keep_days=self.keep_days)


def after_run(manager, run_id: str) -> None:
    """A finished run's upload goes (its report and outputs stay in the run folder), then old runs go."""
    try:
        release_submission(manager, run_id)
        manager.retention.apply(manager)
    except Exception:  # noqa: BLE001 - housekeeping must never end the service
        log.exception("retention failed", run_id=run_id)


def release_submission(manager, run_id: str) -> None:
    """The run's unpacked bundle goes once the run has ended; its spec.json stays beside it as the record of what
    was submitted (small; it goes with the run when the run is pruned)."""
    folder = manager.submission_dir(run_id)
    spec = folder / "bundle" / "spec.json"
    if spec.is_file() and not spec.is_symlink():
        spec.replace(folder / "spec.json")
    shutil.rmtree(folder / "bundle", ignore_errors=True)


def prune(manager, *, keep_runs: int | None = None, keep_days: float | None = None) -> list[str]:
    """Remove finished runs beyond the newest ``keep_runs`` or older than ``keep_days``; returns their ids."""
    cutoff = time.time() - keep_days * 86400 if keep_days is not None else None
    finished = manager.registry.finished_runs()
    doomed = [run_id for index, (run_id, when) in enumerate(finished)
              if (keep_runs is not None and index >= keep_runs) or (cutoff is not None and when < cutoff)]
    for run_id in doomed:
        if run_id in manager.active:  # ended in the registry, its thread not yet gone: next time
            continue
        manager.registry.delete_run(run_id)
        manager.events.path(run_id).unlink(missing_ok=True)
        shutil.rmtree(manager.submission_dir(run_id), ignore_errors=True)
        shutil.rmtree(manager.workspace.run_dir(run_id), ignore_errors=True)  # rmtree never follows links
    if doomed:
        log.info("runs pruned", count=len(doomed))
    return doomed
