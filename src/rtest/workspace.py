"""The workdir's layout, in one place: runs, the step cache and the example's folders.

    <workdir>/runs/<run_id>/       one run: a folder per step, report.json, report.html
    <workdir>/cache/<key>/         step cache entries
    <workdir>/example/             a fresh copy of the bundled example pipeline
    <workdir>/example-data/        the example's generated sample data
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


@dataclass(frozen=True)
class Workspace:
    root: Path

    def __init__(self, workdir: Path | str = ".rtest") -> None:
        object.__setattr__(self, "root", Path(workdir).expanduser().resolve())

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def example_dir(self) -> Path:
        return self.root / "example"

    @property
    def example_data_dir(self) -> Path:
        return self.root / "example-data"
