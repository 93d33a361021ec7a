"""report.json: the machine-readable record of one run.

The shape is a documented contract (CI scripts parse it), so it is built field
by field here rather than dumped from the pydantic model, whose fields may grow.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rtest.errors import ReportError
from rtest.run.model import InferenceCheckResult, RunReport, StepResult

REPORT_FILE_NAME = "report.json"
INFERENCE_CHECK_KIND = "inference-check"  # steps[NODE].kind of an inference check

STEP_FIELDS = (
    "status",
    "exit_code",
    "duration_s",
    "image",
    "outputs",
    "log_path",
    "failure_reason",
    "peak_memory_bytes",
    "cpu_time_s",
    "started_at",
    "ended_at",
    "cache_key",
    "warning_count",
    "warning_lines",
    "host",
    "host_id",
)



def report_to_dict(report: RunReport) -> dict[str, Any]:
    """The documented report.json shape of ``report``."""
    return {
        "run_id": report.run_id,
        "run_dir": report.run_dir,
        "pipeline_success": report.pipeline_success,
        "steps": {node: _step_to_dict(result) for node, result in report.steps.items()},
        "skipped_nodes": dict(report.skipped_nodes),
        "execution_order": list(report.execution_order),
        "started_at": report.started_at,
        "duration_s": report.duration_s,
        "interrupted": report.interrupted,
        "warnings": [w.model_dump(mode="json") for w in report.plan_warnings],  # {node, code, message, subject}
        **({"synthesized_inputs": [s.model_dump(mode="json") for s in report.synthesized_inputs]}
           if report.synthesized_inputs else {}),  # issue 19: which inputs are sample data, from what
    }


def _step_to_dict(result: StepResult) -> dict[str, Any]:
    data = result.model_dump(mode="json")
    step = {name: data[name] for name in STEP_FIELDS}
    check = result.inference_check
    if check is not None:  # kind, samples (each with latency and failure), answered, the check's failures
        step.update(kind=INFERENCE_CHECK_KIND, answered=check.answered, **data["inference_check"])
    return step


def _inference_check_from(fields: dict[str, Any]) -> dict[str, Any]:
    """A step record of report.json back in StepResult's shape (the inference check's fields nested again)."""
    if fields.get("kind") != INFERENCE_CHECK_KIND:
        return fields
    nested = set(InferenceCheckResult.model_fields)
    check = {key: value for key, value in fields.items() if key in nested}
    return {**{k: v for k, v in fields.items() if k not in nested}, "inference_check": check}


def write_report_json(report: RunReport, path: Path) -> Path:
    """Write ``report`` to ``path`` atomically: readers see the old file or the new one, never half."""
    path = Path(path)
    text = json.dumps(report_to_dict(report), indent=2, sort_keys=False) + "\n"
    write_text_atomically(path, text)
    return path


def write_text_atomically(path: Path, text: str) -> None:
    """Readers (a CI job, a browser) see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temp file lives in the target folder so os.replace never crosses filesystems.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)  # mkstemp makes 0600; a report is meant to be shared
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def read_report_json(path: Path) -> RunReport:
    """Load a report.json written by ``write_report_json``; ``run_dir`` is the file's folder."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"No run report at {path}; run the pipeline first or pass the run folder.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"The run report {path} is not valid JSON ({exc}); re-run to regenerate it.") from None
    return report_from_dict(data, source=path)


def report_from_dict(data: Any, *, source: Path) -> RunReport:
    if not isinstance(data, dict) or not isinstance(data.get("steps"), dict):
        raise ReportError(f"The run report {source} has no 'steps' object; it was not written by rtest.")
    steps = {
        node: {"node": node, **_inference_check_from(fields)} if isinstance(fields, dict) else fields
        for node, fields in data["steps"].items()
    }
    try:
        return RunReport.model_validate(
            {
                **{key: value for key, value in data.items() if key not in ("steps", "warnings")},
                "plan_warnings": data.get("warnings") or [],
                "steps": steps,
                "run_dir": str(source.parent),
            }
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ReportError(f"The run report {source} has a bad field '{where}': {first['msg']}.") from None
