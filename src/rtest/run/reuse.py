"""The outputs of steps a partial run does not run, taken from an earlier run of the same workdir.

``--reuse RUN_ID`` names the run; without it the newest earlier run in which the step succeeded (or was
cached) is used. Each output a run step is wired to must be recorded there and still exist; else one
error names every missing one. Earlier reports are read as untrusted files (bounded, no links followed).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from rtest.errors import PlanError
from rtest.plan.model import PipelineTestingSpec
from rtest.run.model import StepResult, StepStatus
from rtest.run.untrusted import read_small_text
from rtest.workspace import Workspace

REPORT_MAX_BYTES = 16 << 20


def reused_results(plan: PipelineTestingSpec, upstream: dict[str, list[str]], workspace: Workspace,
                   reuse_run: str | None, current_run: str) -> dict[str, StepResult]:
    """node -> a REUSED StepResult whose outputs are the earlier run's; raises naming every missing output."""
    runs = [reuse_run] if reuse_run else _earlier_runs(workspace, current_run)
    if reuse_run and not (workspace.run_dir(reuse_run) / "report.json").is_file():
        raise PlanError(f"--reuse {reuse_run}: {workspace.run_dir(reuse_run)}/report.json does not exist; "
                        f"pass the id of an earlier run (a folder under {workspace.runs_dir}).")
    reports = {run: _steps(workspace.run_dir(run)) for run in runs}
    results, problems = {}, []
    for node, consumers in upstream.items():
        wanted = sorted({w.source_output for c in consumers for w in plan.wires_into(c) if w.source_node == node})
        found = next(((run, reports[run][node]) for run in runs if _usable(reports[run].get(node), wanted)), None)
        if found is None:
            where = f"run {reuse_run}" if reuse_run else f"any earlier run in {workspace.runs_dir}"
            names = ", ".join(f"{node}.{name}" for name in wanted) or f"{node}'s outputs"
            problems.append(f"{names} (needed by {', '.join(consumers)}) is not in {where}")
            continue
        run, record = found
        results[node] = StepResult(node=node, status=StepStatus.REUSED, outputs=record["outputs"],
                                   failure_reason=f"not run: outputs reused from run {run}", ended_at=time.time())
    if problems:
        raise PlanError("A partial run needs outputs of steps it does not run: " + "; ".join(problems)
                        + ". Run those steps too, or pass --reuse RUN_ID of a run where they succeeded.")
    return results


def _earlier_runs(workspace: Workspace, current_run: str) -> list[str]:
    """Run ids, newest report first."""
    if not workspace.runs_dir.is_dir():
        return []
    found = []
    for folder in workspace.runs_dir.iterdir():
        report = folder / "report.json"
        if folder.name != current_run and not folder.is_symlink() and report.is_file():
            found.append((report.stat().st_mtime, folder.name))
    return [name for _, name in sorted(found, reverse=True)]


def _steps(run_dir: Path) -> dict[str, dict]:
    try:
        text, _ = read_small_text(run_dir / "report.json", REPORT_MAX_BYTES, shown_as=f"{run_dir.name}/report.json")
        data = json.loads(text or "{}")
    except (OSError, ValueError):
        return {}
    steps = data.get("steps") if isinstance(data, dict) else None
    return {k: v for k, v in steps.items() if isinstance(v, dict)} if isinstance(steps, dict) else {}


def _usable(record: dict | None, wanted: list[str]) -> bool:
    if not record or record.get("status") not in ("succeeded", "cached", "reused"):
        return False
    outputs = record.get("outputs")
    if not isinstance(outputs, dict):
        return False
    return all(isinstance(outputs.get(name), str) and Path(outputs[name]).exists() for name in wanted)
