"""Planning a submission that names code (``--allow-code``), in a worker process with limits.

A ``module:function`` DAG or config-class modules run the submitter's Python while planning. Run in
the service, `os:abort` would kill it and `signal:pause` would hold it forever; here it runs in a child
process with CPU-time, memory and wall-clock limits. The plan comes back as JSON (never a pickle: the
child runs code we do not trust, so its answer is data), and a child that crashed, was killed or ran out
of time ends the run as ``failed`` with a sentence; the service goes on.

    python -m rtest.serve.plan_worker REQUEST.json   (REQUEST: spec, workdir, result, cpu_s, memory_bytes)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import structlog

from rtest.errors import RtestError

log = structlog.get_logger("rtest.serve")
MEMORY_BYTES = 4 << 30
MAX_RESULT = 64 << 20


class PlanningFailed(RtestError):
    """Planning code named by a submission crashed or ran out of time: the run ends as failed."""

    exit_code = 1
    run_status = "failed"


def plan_in_worker(spec_path: Path, workdir: Path, *, timeout_s: float):
    """The plan of ``spec_path`` made in a child process; PlanError (its message) or PlanningFailed."""
    from rtest.plan.model import PipelineTestingSpec
    from rtest.plan.userspec import load_user_spec

    result = spec_path.with_name("plan-result.json")
    result.unlink(missing_ok=True)
    request = spec_path.with_name("plan-request.json")
    request.write_text(json.dumps({"spec": str(spec_path), "workdir": str(workdir), "result": str(result),
                                   "cpu_s": max(1, int(timeout_s)), "memory_bytes": MEMORY_BYTES,
                                   "service_pid": os.getpid()}))
    argv = [sys.executable, "-m", "rtest.serve.plan_worker", str(request)]
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              timeout=timeout_s, start_new_session=True)
    except subprocess.TimeoutExpired:
        raise PlanningFailed(f"Planning did not finish within {timeout_s:g} s (the DAG function or config classes "
                             "the submission names never returned); the worker was stopped. Fix the code and "
                             "submit again.") from None
    answer = _read_answer(result)
    if done.returncode != 0 or answer is None:
        log.warning("planning worker ended badly", code=done.returncode,
                    stderr=done.stderr[-2000:].decode(errors="replace"))
        raise PlanningFailed(f"Planning crashed ({_how(done.returncode)}) in the code the submission names (its DAG "
                             "function or config classes); the service is unaffected. Fix the code and submit again.")
    if "error" in answer:
        error = RtestError(str(answer["error"]))
        error.exit_code = int(answer.get("exit_code", 2))
        raise error
    return PipelineTestingSpec.model_validate_json(answer["plan"]), load_user_spec(spec_path)


def _read_answer(result: Path) -> dict | None:
    try:
        with result.open("rb") as source:
            data = json.loads(source.read(MAX_RESULT + 1)[:MAX_RESULT])
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and ("plan" in data or "error" in data) else None


def _how(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def _child(request_path: str) -> int:
    from rtest.serve.limits import limit_self

    request = json.loads(Path(request_path).read_text())
    limit_self(request["cpu_s"], request["memory_bytes"], parent=request["service_pid"])
    from rtest.serve.planning import plan_submission
    from rtest.workspace import Workspace

    try:
        plan, _ = plan_submission(Path(request["spec"]), example=False, workspace=Workspace(Path(request["workdir"])),
                                  config_classes=True)  # only ever started under --allow-code
        answer: dict[str, Any] = {"plan": plan.model_dump_json()}
    except RtestError as exc:
        answer = {"error": str(exc), "exit_code": exc.exit_code}
    Path(request["result"]).write_text(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]))
