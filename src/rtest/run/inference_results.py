"""The inference check's results file, read as untrusted output: bounded, validated, capped.

The check's container (executor/inference_check.py) writes ``/opt/ml/output/inference_check.json``
(``sm_output/`` on the host); the step's result carries it, and a cache entry keeps it so a cached
check still shows its samples.
"""

from __future__ import annotations

import json
import statistics
from typing import Any

from pydantic import ValidationError

from rtest.jobs.base import SM_OUTPUT_PATH
from rtest.jobs.inference import RESULTS_FILE
from rtest.run.layout import StepFolders
from rtest.run.model import InferenceCheckResult
from rtest.run.untrusted import read_small_text

MAX_RESULTS_BYTES = 1024 * 1024
MAX_SAMPLES = 500
MAX_TEXT = 1000  # characters of one failure sentence
CACHE_META_KEY = "inference_check"


def read_inference_results(folders: StepFolders) -> InferenceCheckResult | None:
    """The check's results, or None when the container wrote none (it crashed, timed out) or wrote nonsense."""
    text, _ = read_small_text(folders.sm_output_dir / RESULTS_FILE, MAX_RESULTS_BYTES,
                              shown_as=f"{SM_OUTPUT_PATH}/{RESULTS_FILE}")
    try:
        return from_value(json.loads(text)) if text else None
    except ValueError:
        return None


def from_value(value: Any) -> InferenceCheckResult | None:
    """A results dict (from the container or a cache entry) as the model, cut to size; None if it does not fit."""
    if not isinstance(value, dict):
        return None
    try:
        result = InferenceCheckResult.model_validate(value)
    except ValidationError:
        return None
    result.samples = result.samples[:MAX_SAMPLES]
    result.failures = [f[:MAX_TEXT] for f in result.failures[:MAX_SAMPLES]]
    for sample in result.samples:
        sample.failure = sample.failure[:MAX_TEXT] if sample.failure else None
    return result


def summary(result: InferenceCheckResult) -> str:
    """``2/2 samples answered, median 37 ms``: the line the live view and the HTML report show."""
    latencies = [s.latency_ms for s in result.samples if s.latency_ms is not None]
    median = f", median {statistics.median(latencies):.0f} ms" if latencies else ""
    loaded = "" if result.model_loaded else "model not loaded; "
    return f"{loaded}{result.answered}/{result.sent} samples answered{median}"
