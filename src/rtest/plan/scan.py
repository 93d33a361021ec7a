"""Propose inputs and outputs for a script with no interface, from its /opt/ml path literals.

Each job kind reads the literals it knows (rtest.jobs: processing input/output folders,
training channels, the model folder, ...), tried in registration order, whatever the
step's own kind: a literal means the same path in every container.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from rtest import jobs

_PATH_LITERAL = re.compile(r"""["'](/opt/ml/[A-Za-z0-9_./-]*)["']""")


@dataclass
class ScannedPaths:
    inputs: dict[str, str] = field(default_factory=dict)  # logical name -> container path
    outputs: dict[str, str] = field(default_factory=dict)


@lru_cache(maxsize=256)
def scan_script_paths(script: Path, job_kind: str) -> ScannedPaths:
    """Read the script's string literals; a kind's defaults (training's model) stand when none names an output."""
    found = ScannedPaths()
    try:
        text = script.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return found
    kinds = jobs.all_kinds()
    for literal in sorted(set(_PATH_LITERAL.findall(text))):
        path = literal.rstrip("/")
        scanned = next((s for kind in kinds if (s := kind.scan_literal(path)) is not None), None)
        if scanned is not None:
            side = found.inputs if scanned.direction == "input" else found.outputs
            side.setdefault(scanned.name, scanned.container_path)
    if not found.outputs:
        found.outputs.update(jobs.get(job_kind).default_outputs)
    return found
