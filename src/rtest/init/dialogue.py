"""`rtest init` in a project folder: show what was found, ask only for the pending inputs, write a spec file.

The spec file's paths are relative to the spec file, so the folder can be shared or moved; the plan is
checked with the answers before the file is written, so a spec init wrote always plans complete.
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from rtest.errors import PlanError
from rtest.init.ask import Asker
from rtest.init.find import Candidate, Found, find_project, project_files
from rtest.plan.userspec import PipelineLocation, UserSpec

SYNTH = "s"  # the answer that asks for synthesized sample data
SAMPLE_SUFFIXES = {".csv", ".parquet", ".json", ".jsonl", ".tsv", ".txt", ".gz", ""}


@dataclass
class Pending:
    node: str
    name: str
    container_path: str
    synthesizable: bool = False
    samples: list[Path] = field(default_factory=list)
    no_synth: str | None = None  # why synthesis is not offered, when a loader feeds the input


def run_init(root: Path, asker: Asker, console: Console, spec_path: Path, workdir: Path) -> Path:
    """The dialogue; returns the spec file written."""
    if spec_path.exists() and not asker.confirm(f"{_shown(spec_path)} exists; write a new one over it?", True):
        raise PlanError(f"`rtest init` left {spec_path} as it was.",
                        hint="Run it with --spec-name OTHER.yaml to write another spec file beside it.")
    found = find_project(root)
    show_found(console, found)
    location = choose_location(found, asker, console, spec_path.parent)
    user = UserSpec(pipeline=location)
    if found.wheelhouses:  # offline installs for the steps' own packages (rtest deps)
        user.wheelhouse = _relative(found.wheelhouses[0].path, spec_path.parent)
        console.print(f"Using the wheelhouse {user.wheelhouse} for the steps' packages.", highlight=False)
    inputs = _load(user, spec_path.parent)
    if adopt_source_maps(inputs, user, console, spec_path.parent):  # before the listing: its warnings are settled
        inputs = _load(user, spec_path.parent)
    from rtest.cli.render import print_discovery

    print_discovery(console, inputs)
    pending = pending_inputs(inputs, user, spec_path.parent, found.root)
    if not pending:
        console.print("Every input is wired or given by the config: nothing to ask.")
    for item in pending:
        answer = ask_input(asker, console, item, spec_path.parent, workdir)
        if answer == SYNTH:
            user.pipeline.synthesize_inputs = True
        else:
            user.for_node(item.node).inputs[item.name] = answer
    check_complete(user, spec_path, workdir)
    write_spec(user, spec_path)
    console.print(f"[green]Wrote {spec_path}[/] (paths relative to it). Run it with: "
                  f"rtest sandbox run --spec {_shown(spec_path)}", highlight=False)
    return spec_path


SEARCHED = re.compile(r"--source-map (?P<prefix>\S+)=(?P<folder>\S+)\.$")


def adopt_source_maps(inputs, user: UserSpec, console: Console, base: Path) -> bool:
    """Source folders discovery found by searching become the spec's ``source_map``, so the spec says
    where the config's paths live here (the warning names the mapping; see rtest.plan.sources)."""
    for warning in inputs.discovery.warnings:
        match = SEARCHED.search(warning.message) if warning.code == "source-dir-searched" else None
        if match and match["prefix"] not in user.pipeline.source_map:
            user.pipeline.source_map[match["prefix"]] = _relative(Path(match["folder"]), base)
    if user.pipeline.source_map:
        for prefix, folder in user.pipeline.source_map.items():
            console.print(f"Mapping the config's {prefix} to {folder} in the spec (source_map).", highlight=False)
    return bool(user.pipeline.source_map)


def write_spec(user: UserSpec, path: Path) -> None:
    """Only what init set (a short file to read and share), in the spec format `--spec` loads."""
    import yaml

    data = {"version": user.version, **user.model_dump(mode="json", exclude_defaults=True)}
    path.write_text("# Written by `rtest init`; paths are relative to this file.\n"
                    + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def show_found(console: Console, found: Found) -> None:
    console.print(f"[bold]Looking in {found.root}[/]", highlight=False)
    for title, items in (("DAG", found.dags), ("config", found.configs), ("interfaces", found.interfaces),
                         ("wheelhouse", found.wheelhouses)):
        for item in items:
            console.print(f"  found {title}: {_shown(item.path)} ({item.detail})", highlight=False)
        if not items:
            console.print(f"  no {title} found", highlight=False)
    for path, why in found.skipped:
        console.print(f"  [dim]passed over {_shown(path)}: {why}[/]", highlight=False)


def choose_location(found: Found, asker: Asker, console: Console, base: Path) -> PipelineLocation:
    config = _pick(found.configs, "config", asker, console)
    dag = _pick(found.dags, "DAG", asker, console)
    interfaces = found.interfaces
    if len(interfaces) > 1:  # the project's own folders come first; the framework catalogue last
        picked = _pick(interfaces, "interface folder", asker, console)
        interfaces = [picked] + [c for c in interfaces if c is not picked and c.framework]
    location = PipelineLocation(dag=_relative(dag.path, base), config=_relative(config.path, base),
                                interfaces=[_relative(c.path, base) for c in interfaces],
                                source_root=_relative(found.root, base))
    return location


def _pick(items: list[Candidate], what: str, asker: Asker, console: Console) -> Candidate:
    if not items:
        raise PlanError(f"`rtest init` found no {what} under the project folder.",
                        hint="Run it in the folder that holds the pipeline, or start one with `rtest init --new DIR`.")
    if len(items) == 1:
        return items[0]
    index = asker.choose(f"Which {what}?", [f"{_shown(c.path)} ({c.detail})" for c in items])
    return items[index]


def pending_inputs(inputs, user: UserSpec, base: Path, root: Path) -> list[Pending]:
    """Required inputs that nothing feeds: no wire, no config path, no user path."""
    from rtest.plan.builder import draft_plan, plan_problems

    plan = draft_plan(inputs, _absolute(user, base))
    can_synth = importlib.util.find_spec("numpy") is not None and importlib.util.find_spec("pyarrow") is not None
    from rtest.synth.apply import loader_feeding, synthesis_problem

    files = project_files(root)
    out = []
    for problem in plan_problems(plan):
        if not problem.field.startswith("inputs."):
            continue
        name = problem.field.split(".", 1)[1]
        spec = plan.scripts[problem.node].inputs.get(name)
        if spec is None or spec.host_path is not None:
            continue
        feeding = loader_feeding(plan, inputs, problem.node, name) if can_synth else None
        why_not = synthesis_problem(plan, inputs, feeding[0]) if feeding is not None else None
        if feeding is None and not can_synth:
            why_not = "synthesis needs numpy and pyarrow on the host: pip install 'rtest[synth]'"
        out.append(Pending(problem.node, name, spec.container_path, feeding is not None and why_not is None,
                           find_samples(files, problem.node, name), why_not))
    return out


def find_samples(files: list[Path], node: str, name: str) -> list[Path]:
    """Folders or files in the project named like the input (``data``, ``train.csv`` for DATA), those whose
    path also carries the node's job type (``training``) first."""
    wanted = name.lower()
    seen: set[Path] = set()
    for path in files:
        for candidate in [path, *path.parents]:
            if candidate.stem.lower() == wanted and candidate.suffix in SAMPLE_SUFFIXES:
                seen.add(candidate)
    job = node.rsplit("_", 1)[-1].lower() if "_" in node else ""
    return sorted(seen, key=lambda p: (job not in str(p).lower(), len(p.parts), str(p)))[:3]


def ask_input(asker: Asker, console: Console, item: Pending, base: Path, workdir: Path) -> str:
    from rtest.plan.input_paths import input_path_problem

    console.print(f"\n[bold]{item.node}.{item.name}[/] is read from {item.container_path}; nothing upstream "
                  "delivers it.", highlight=False)
    default = _relative(item.samples[0], base) if item.samples else (SYNTH if item.synthesizable else None)
    if item.samples:
        console.print(f"  found a sample: {', '.join(_shown(p) for p in item.samples)}", highlight=False)
    hint = "a file or folder" + (f", or '{SYNTH}' to synthesize sample data from the config"
                                 if item.synthesizable else "")

    def check(text: str):
        if text == SYNTH:
            why_not = item.no_synth or "no skipped data-loading step delivers it"
            return (SYNTH, None) if item.synthesizable else (None, f"cannot synthesize it ({why_not}); give a path")
        path = (base / Path(text).expanduser()).resolve()
        if not path.exists():
            return None, f"{path} does not exist"
        problem = input_path_problem(path, workdir=workdir.resolve())
        return (None, problem) if problem else (_relative(path, base), None)

    return asker.ask(f"  Path for {item.node}.{item.name} ({hint})", default=default, check=check)


def check_complete(user: UserSpec, spec_path: Path, workdir: Path) -> None:
    """The plan with these answers must be complete; synthesis is tried for real (numpy/pyarrow on the host)."""
    from rtest.plan.builder import build_plan

    absolute = _absolute(user, spec_path.parent)
    inputs = _load(user, spec_path.parent)
    if user.pipeline.synthesize_inputs:
        from rtest.cli.data_cmd import synth_options
        from rtest.synth.apply import build_synthesized_plan

        build_synthesized_plan(inputs, absolute, workdir, synth_options(absolute, None, None))
    else:
        build_plan(inputs, absolute, workdir)


def _load(user: UserSpec, base: Path):
    from rtest.plan.location import load_located

    return load_located(_absolute(user, base))


def _absolute(user: UserSpec, base: Path) -> UserSpec:
    """The spec as it will load from ``base`` (relative paths resolve against the spec file's folder)."""
    from rtest.plan.userspec import _absolutize

    return _absolutize(user.model_copy(deep=True), base.resolve())


def _relative(path: Path, base: Path) -> str:
    """Relative to the spec's folder when inside it (the project travels with its spec); else absolute
    (the installed framework's catalogue, data elsewhere on this machine)."""
    path, base = Path(path).resolve(), base.resolve()
    return os.path.relpath(path, base) if path.is_relative_to(base) else str(path)


def _shown(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        return str(path)

