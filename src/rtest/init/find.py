"""Which DAG, config, interface folders and wheelhouse a project folder holds, and which files were passed over.

Nothing found here is run: files are only parsed (JSON/YAML), and the framework's own catalogue is located
with ``importlib.util.find_spec``, which finds a package without importing it.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

from rtest.errors import RtestError

SKIP_DIRS = {".git", ".venv", "venv", "node_modules", ".rtest", "__pycache__", ".tox", ".mypy_cache", "build", "dist"}
MAX_DEPTH = 5
MAX_FILES = 5000
MAX_SHARED_DAGS = 5  # a bounded walk: `rtest init` in a home folder must still answer at once
DATA_SUFFIXES = (".json", ".yaml", ".yml")
FRAMEWORKS = ("cursus",)  # packages whose interface catalogue and shared DAGs are offered when importable


@dataclass
class Candidate:
    path: Path
    detail: str  # what it holds, for the listing ("12 nodes", "9 step configs", "10 interface files")
    score: int = 0  # higher is a better guess (a DAG: how many of its nodes the config has)
    framework: bool = False  # from the installed framework, not the project


@dataclass
class Found:
    root: Path
    dags: list[Candidate] = field(default_factory=list)
    configs: list[Candidate] = field(default_factory=list)
    interfaces: list[Candidate] = field(default_factory=list)
    wheelhouses: list[Candidate] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # file, why it is not used


def project_files(root: Path) -> list[Path]:
    """Files under ``root``, shallow first, bounded in depth and count, never following links out."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        depth = len(Path(folder).relative_to(root).parts)
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith(".") and depth < MAX_DEPTH)
        found += [Path(folder) / name for name in sorted(files)]
        if len(found) >= MAX_FILES:
            break
    return sorted(found, key=lambda p: (len(p.relative_to(root).parts), str(p)))


def find_project(root: Path) -> Found:
    from rtest.inputs.config import load_pipeline_config
    from rtest.inputs.dag import load_dag

    root = root.resolve()
    found = Found(root)
    files = project_files(root)
    step_names: set[str] = set()
    for path in files:
        if path.suffix != ".json" or "config" not in f"{path.parent.name}/{path.name}".lower():
            continue
        try:
            config = load_pipeline_config(path)
        except RtestError as exc:
            found.skipped.append((path, f"not a pipeline config ({_first_sentence(exc)})"))
            continue
        found.configs.append(Candidate(path, f"{len(config.step_names())} step configs"))
        step_names.update(config.step_names())
    dag_files = [p for p in files if p.suffix in DATA_SUFFIXES and "dag" in p.name.lower()]
    for path in dag_files + framework_files("pipeline_catalog/shared_dags", "*.dag.json"):
        try:
            dag = load_dag(str(path))
        except RtestError as exc:
            found.skipped.append((path, f"not a DAG ({_first_sentence(exc)})"))
            continue
        matched = len(set(dag.nodes) & step_names)
        found.dags.append(Candidate(path, f"{len(dag.nodes)} nodes, {matched} with a step config", score=matched,
                                    framework=not path.is_relative_to(root)))
    found.dags.sort(key=lambda c: (-c.score, c.framework, len(str(c.path))))
    shared = [c for c in found.dags if c.framework]
    kept = [c for c in shared if c.score > 0][:MAX_SHARED_DAGS]
    if len(shared) > len(kept):  # the catalogue has dozens: offer the few that fit this config best
        found.skipped.append((shared[0].path.parent.parent, f"{len(shared) - len(kept)} more shared DAGs of the "
                                                             "framework, with fewer of the config's steps"))
    found.dags = [c for c in found.dags if not c.framework or c in kept]
    folders: dict[Path, int] = {}
    for path in files:
        if path.name.endswith(".step.yaml"):
            folders[path.parent] = folders.get(path.parent, 0) + 1
    found.interfaces = [Candidate(folder, f"{count} interface files") for folder, count in folders.items()]
    catalogue = framework_folder("steps/interfaces")
    if catalogue is not None and catalogue not in folders:
        count = len(list(catalogue.glob("*.step.yaml")))
        found.interfaces.append(Candidate(catalogue, f"{count} interface files (the installed framework's catalogue)",
                                          framework=True))
    wheel_folders = {p.parent for p in files if p.suffix == ".whl"}
    found.wheelhouses = [Candidate(folder, f"{len(list(folder.glob('*.whl')))} wheels")
                         for folder in sorted(wheel_folders)]
    return found


def framework_folder(relative: str) -> Path | None:
    """``relative`` inside the first importable framework package, located without importing it."""
    for name in FRAMEWORKS:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        for location in (spec.submodule_search_locations or []) if spec else []:
            folder = Path(location) / relative
            if folder.is_dir():
                return folder.resolve()
    return None


def framework_files(relative: str, pattern: str) -> list[Path]:
    folder = framework_folder(relative)
    return sorted(folder.rglob(pattern)) if folder is not None else []


def _first_sentence(exc: Exception) -> str:
    text = str(exc).split(". ")[0].rstrip(".")
    return text if len(text) < 160 else text[:157] + "..."
