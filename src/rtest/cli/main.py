"""The `rtest` command. The only place an RtestError becomes coloured text and an exit code."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from rtest.cli.common import (
    AllowOutsideOpt,
    ConfigClassesOpt,
    ConfigOpt,
    DagOpt,
    ExampleOpt,
    FollowLinksOpt,
    FormatOpt,
    FrameworkPythonOpt,
    ImageMapOpt,
    InputOpt,
    InterfacesOpt,
    NoConfigClassesOpt,
    RowsOpt,
    SeedOpt,
    SourceMapOpt,
    SourceRootOpt,
    SpecOpt,
    StrictOpt,
    SynthesizeInputsOpt,
    WorkdirOpt,
    load_pipeline,
    options_from,
)
from rtest.errors import RtestError
from rtest.options import PipelineOptions
from rtest.version import __version__

app = typer.Typer(
    name="rtest",
    help="Run a SageMaker pipeline's real scripts locally, in SageMaker-shaped containers, in DAG order.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        out.print(f"rtest {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = None,
) -> None:
    """rtest: find a pipeline's path typos and missing env vars in seconds, locally."""


def _example_not_copied_yet(example: bool, workdir: Path) -> bool:
    from rtest.workspace import Workspace

    return example and not Workspace(workdir).example_dir.exists()


def _say_example_copied(fresh: bool, workdir: Path) -> None:
    """A command that makes a folder in the user's current directory says so (on stderr: stdout may be JSON)."""
    if fresh:
        from rtest.workspace import Workspace

        where = Workspace(workdir)
        err.print(f"Copied the bundled example to {where.example_dir} and wrote its sample data to "
                  f"{where.example_data_dir}; --workdir puts them elsewhere.", highlight=False, markup=False)


@app.command()
def discover(
    ctx: typer.Context,
    dag: DagOpt = None,
    config: ConfigOpt = None,
    interfaces: InterfacesOpt = None,
    source_root: SourceRootOpt = None,
    example: ExampleOpt = False,
    fmt: FormatOpt = "text",
    workdir: WorkdirOpt = Path(".rtest"),
    source_map: SourceMapOpt = None,
    allow_source_outside_root: AllowOutsideOpt = False,
) -> None:
    """List the DAG nodes that run a script, and every skipped node with its reason."""
    from rtest.cli import render

    options = options_from(ctx, PipelineOptions)
    chosen = load_pipeline(options, generate_example_data=False)
    if fmt == "json":
        print(render.dumps(render.discovery_json(chosen.inputs)))
    else:
        render.print_discovery(out, chosen.inputs)


@app.command()
def requirements(
    ctx: typer.Context,
    node: Annotated[str, typer.Argument(help="The DAG node whose script to describe.")],
    dag: DagOpt = None,
    config: ConfigOpt = None,
    interfaces: InterfacesOpt = None,
    source_root: SourceRootOpt = None,
    example: ExampleOpt = False,
    spec: SpecOpt = None,
    inputs: InputOpt = None,
    fmt: FormatOpt = "text",
    workdir: WorkdirOpt = Path(".rtest"),
    source_map: SourceMapOpt = None,
    config_classes: ConfigClassesOpt = None,
    framework_python: FrameworkPythonOpt = None,
    no_config_classes: NoConfigClassesOpt = False,
    allow_source_outside_root: AllowOutsideOpt = False,
    follow_input_links: FollowLinksOpt = False,
) -> None:
    """Show one script's inputs, outputs, env vars and arguments, each with its source."""
    from rtest.cli import render
    from rtest.factory import InteractiveRuntimeTestingFactory

    fresh_example = _example_not_copied_yet(example, workdir)
    options = options_from(ctx, PipelineOptions)
    chosen = load_pipeline(options)
    _say_example_copied(fresh_example, workdir)
    factory = InteractiveRuntimeTestingFactory.from_inputs(chosen.inputs, chosen.user, workspace_dir=workdir)
    try:
        needs = factory.get_script_testing_requirements(node)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="NODE") from exc
    if fmt == "json":
        print(render.dumps(needs))
    else:
        render.print_requirements(out, needs)


@app.command()
def plan(
    ctx: typer.Context,
    dag: DagOpt = None,
    config: ConfigOpt = None,
    interfaces: InterfacesOpt = None,
    source_root: SourceRootOpt = None,
    example: ExampleOpt = False,
    spec: SpecOpt = None,
    inputs: InputOpt = None,
    image_map: ImageMapOpt = None,
    fmt: FormatOpt = "text",
    workdir: WorkdirOpt = Path(".rtest"),
    source_map: SourceMapOpt = None,
    config_classes: ConfigClassesOpt = None,
    framework_python: FrameworkPythonOpt = None,
    no_config_classes: NoConfigClassesOpt = False,
    allow_source_outside_root: AllowOutsideOpt = False,
    strict: StrictOpt = False,
    follow_input_links: FollowLinksOpt = False,
    show_class_logs: Annotated[  # how `plan` prints (as --format), not an option of the pipeline
        bool, typer.Option("--verbose", "-v", help="Also show what the framework's config classes logged.")
    ] = False,
    synthesize_inputs: SynthesizeInputsOpt = False,  # issue 19
    rows: RowsOpt = None,
    seed: SeedOpt = None,
) -> None:
    """Show every execution spec and wire, without running anything. Fails if the plan is incomplete."""
    from rtest.cli import render
    from rtest.cli.progress import print_synthesized

    options = options_from(ctx, PipelineOptions)
    built = load_pipeline(options).plan(workdir)
    print_synthesized(err if fmt == "json" else out, built)  # issue 19
    if fmt == "json":
        print(render.dumps(render.plan_json(built)))
    else:
        render.print_plan(out, built, verbose=show_class_logs)


def _mount_subcommands() -> None:
    from rtest.cli.sandbox import sandbox_app

    app.add_typer(sandbox_app, name="sandbox")
    from rtest.cli.deps_cmd import deps

    app.command("deps")(deps)
    from rtest.cli.serve_cmd import runs_app, serve  # rtest serve (issue 11)

    app.command("serve")(serve)
    app.add_typer(runs_app, name="runs")
    from rtest.cli.data_cmd import data_app  # synthesized sample inputs (issue 19)

    app.add_typer(data_app, name="data")
    from rtest.cli.init_cmd import init  # rtest init (issue 16)

    app.command("init")(init)


_mount_subcommands()


def main(argv: list[str] | None = None) -> int:
    """Entry point: usage errors and RtestErrors exit with one sentence, never a traceback."""
    try:
        result = _command().main(args=argv, prog_name="rtest", standalone_mode=False)
    except RtestError as exc:
        from rtest.cli.text import markup_safe  # messages quote names and paths: never markup, never escape codes

        err.print(f"[bold red]Error:[/] {markup_safe(exc)}", highlight=False, soft_wrap=True)
        return _exit(exc.exit_code)
    except KeyboardInterrupt:  # before a run started: nothing to stop or remove
        err.print("[red]Interrupted.[/]")
        return _exit(130)
    except Exception as exc:
        # Usage errors: typer raises its vendored click's exceptions, older typers click's own.
        if type(exc).__name__ == "Abort":
            err.print("[red]Aborted.[/]")
            return _exit(130)
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show(file=sys.stderr)
            return _exit(exc.exit_code)
        raise
    return _exit(result if isinstance(result, int) else 0)


@functools.cache
def _command():
    """The click command tree, built once per process: typer rebuilds it (~20 ms) on every call otherwise."""
    return typer.main.get_command(app)


def _exit(code: int) -> int:
    sys.exit(code)


if __name__ == "__main__":
    main()
