"""Propose inputs and outputs for a script with no interface, from its /opt/ml path literals."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from rtest.contract import CHANNEL_ROOT, MODEL_PATH

_PATH_LITERAL = re.compile(r"""["'](/opt/ml/[A-Za-z0-9_./-]*)["']""")
_PROCESSING_INPUT = re.compile(r"^/opt/ml/processing/input/([A-Za-z0-9_.-]+)")
_PROCESSING_OUTPUT = re.compile(r"^/opt/ml/processing/output(?:/([A-Za-z0-9_.-]+))?")
_CHANNEL = re.compile(rf"^{CHANNEL_ROOT}(?:/([A-Za-z0-9_.-]+))?")


@dataclass
class ScannedPaths:
    inputs: dict[str, str] = field(default_factory=dict)  # logical name -> container path
    outputs: dict[str, str] = field(default_factory=dict)


@lru_cache(maxsize=256)
def scan_script_paths(script: Path, job_kind: str) -> ScannedPaths:
    """Read the script's string literals; `/opt/ml/processing/input/code` is the script itself, not data."""
    found = ScannedPaths()
    try:
        text = script.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return found
    for literal in sorted(set(_PATH_LITERAL.findall(text))):
        path = literal.rstrip("/")
        if m := _PROCESSING_INPUT.match(path):
            if m.group(1) != "code":
                found.inputs.setdefault(m.group(1), f"/opt/ml/processing/input/{m.group(1)}")
        elif m := _PROCESSING_OUTPUT.match(path):
            name = m.group(1) or "output"
            found.outputs.setdefault(name, f"/opt/ml/processing/output/{m.group(1)}" if m.group(1) else path)
        elif m := _CHANNEL.match(path):
            name = m.group(1) or "input_path"
            found.inputs.setdefault(name, f"{CHANNEL_ROOT}/{m.group(1)}" if m.group(1) else CHANNEL_ROOT)
        elif path.startswith(MODEL_PATH):
            found.outputs.setdefault("model_output", MODEL_PATH)
        elif path.startswith("/opt/ml/output/data"):
            found.outputs.setdefault("output_data", "/opt/ml/output/data")
    if job_kind == "training" and not found.outputs:
        found.outputs["model_output"] = MODEL_PATH
    return found
