"""`rtest data synth NODE.INPUT --out DIR` (the synthesized plan of `sandbox run --synthesize-inputs` is
rtest.options.Selection.plan)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from rtest.cli.common import (
    AllowOutsideOpt,
    ConfigClassesOpt,
    ConfigOpt,
    DagOpt,
    FrameworkPythonOpt,
    InterfacesOpt,
    NoConfigClassesOpt,
    RowsOpt,
    SeedOpt,
    SourceMapOpt,
    SourceRootOpt,
    SpecOpt,
    WorkdirOpt,
    select_pipeline,
)

data_app = typer.Typer(help="Sample data for a pipeline's inputs.", no_args_is_help=True)
out = Console()


def synth_options(user, rows: int | None, seed: int | None):
    """Flags over the spec file's ``pipeline.rows`` / ``pipeline.seed`` over the defaults."""
    from rtest.synth.apply import SynthOptions

    defaults = SynthOptions()
    spec = user.pipeline
    return SynthOptions(rows=rows or spec.rows or defaults.rows,
                        seed=seed if seed is not None else spec.seed if spec.seed is not None else defaults.seed)


@data_app.command("synth")
def synth(
    target: Annotated[str, typer.Argument(help="NODE.INPUT, e.g. TabularPreprocessing_training.DATA")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the input's files into.")],
    dag: DagOpt = None,
    config: ConfigOpt = None,
    interfaces: InterfacesOpt = None,
    source_root: SourceRootOpt = None,
    spec: SpecOpt = None,
    source_map: SourceMapOpt = None,
    config_classes: ConfigClassesOpt = None,
    framework_python: FrameworkPythonOpt = None,
    no_config_classes: NoConfigClassesOpt = False,
    allow_source_outside_root: AllowOutsideOpt = False,
    workdir: WorkdirOpt = Path(".rtest"),
    rows: RowsOpt = None,
    seed: SeedOpt = None,
) -> int:
    """Write the sample data one input would get under --synthesize-inputs, for inspection."""
    import shutil

    from rtest.cli.text import markup_safe
    from rtest.errors import PlanError
    from rtest.plan.builder import draft_plan
    from rtest.synth.apply import describe, synthesize_pending_inputs

    node, dot, name = target.rpartition(".")
    if not dot or not node or not name:
        raise PlanError(f"'{target}' is not NODE.INPUT; write it like TabularPreprocessing_training.DATA.")
    chosen = select_pipeline(dag=dag, config=config, interfaces=interfaces, source_root=source_root, example=False,
                             spec=spec, workdir=workdir, source_map_flags=source_map, config_classes=config_classes,
                             framework_python=framework_python, no_config_classes=no_config_classes,
                             allow_source_outside_root=allow_source_outside_root)
    plan = draft_plan(chosen.inputs, chosen.user)
    if node not in plan.scripts or name not in plan.scripts[node].inputs:
        known = ", ".join(f"{n}.{i}" for n, s in plan.scripts.items() for i in s.inputs) or "none"
        raise PlanError(f"{target} is not an input of a script node; inputs are: {known}.")
    synthesize_pending_inputs(plan, chosen.inputs, Path(workdir).expanduser().resolve() / "synth",
                              synth_options(chosen.user, rows, seed))
    item = next((s for s in plan.synthesized if (s.node, s.input) == (node, name)), None)
    if item is None:
        raise PlanError(f"{target} is not fed by a skipped data-loading step (or already has a path or an "
                        "upstream script), so there is nothing to synthesize for it.")
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(item.path, out_dir, dirs_exist_ok=True)
    out.print(markup_safe(describe(item)), highlight=False)
    out.print(f"Columns: {markup_safe(', '.join(f'{c}:{t}' for c, t in item.columns))}", highlight=False)
    for row in item.preview[:3]:
        out.print(markup_safe(" | ".join(row)), highlight=False)
    out.print(f"Wrote {markup_safe(out_dir)}", highlight=False)
    return 0
