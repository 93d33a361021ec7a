"""`rtest sandbox ...`: run the plan in containers, clean up, build images."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from rtest.cli.common import (
    AllowOutsideOpt,
    BackendOpt,
    CacheKeyOpt,
    ConfigClassesOpt,
    ConfigOpt,
    DagOpt,
    ExampleOpt,
    FollowLinksOpt,
    FrameworkPythonOpt,
    FromOpt,
    ImageMapOpt,
    InputOpt,
    InstallDeclaredOpt,
    InterfacesOpt,
    JobsOpt,
    JunitOpt,
    KeepGoingOpt,
    LogFormatOpt,
    MaxLogBytesOpt,
    MaxOutputBytesOpt,
    MaxOutputFilesOpt,
    MemoryOpt,
    ModelFolderOpt,
    NetworkOpt,
    NoCacheOpt,
    NoConfigClassesOpt,
    NoDepsOpt,
    NoLimitsOpt,
    OnlyOpt,
    PlacementOpt,
    RegistryOpt,
    ReuseOpt,
    RowsOpt,
    SeedOpt,
    ServerOpt,
    SkipOpt,
    SourceMapOpt,
    SourceRootOpt,
    SpecOpt,
    StepUserOpt,
    StrictOpt,
    SynthesizeInputsOpt,
    TimeoutOpt,
    TokenOpt,
    UploadOpt,
    VerboseOpt,
    WheelhouseOpt,
    WorkdirOpt,
    option,  # for run options declared here: Annotated[T, option(RunFlags, "name")]
)
from rtest.errors import OptionError
from rtest.options import CacheKey, LocalFlags, PipelineOptions, RunFlags, ServiceFlags

sandbox_app = typer.Typer(help="Run scripts in SageMaker-like containers.", no_args_is_help=True)
out = Console()


@sandbox_app.command("run")
def run(
    ctx: typer.Context,
    dag: DagOpt = None,
    config: ConfigOpt = None,
    interfaces: InterfacesOpt = None,
    source_root: SourceRootOpt = None,
    inputs: InputOpt = None,
    spec: SpecOpt = None,
    image_map: ImageMapOpt = None,
    workdir: WorkdirOpt = Path(".rtest"),
    example: ExampleOpt = False,
    source_map: SourceMapOpt = None,
    config_classes: ConfigClassesOpt = None,
    framework_python: FrameworkPythonOpt = None,  # issue 15: where the config classes run
    no_config_classes: NoConfigClassesOpt = False,
    allow_source_outside_root: AllowOutsideOpt = False,
    strict: StrictOpt = False,
    follow_input_links: FollowLinksOpt = False,
    wheelhouse: WheelhouseOpt = None,
    jobs: JobsOpt = None,
    no_cache: NoCacheOpt = False,
    cache_key: CacheKeyOpt = CacheKey.imports,
    no_deps: NoDepsOpt = False,
    network: NetworkOpt = None,
    no_limits: NoLimitsOpt = False,
    timeout: TimeoutOpt = None,
    memory: MemoryOpt = None,
    model_folder: ModelFolderOpt = False,
    max_output_files: MaxOutputFilesOpt = None,
    max_output_bytes: MaxOutputBytesOpt = None,
    only: OnlyOpt = None,  # issue 15: partial runs and SageMaker's install rules
    skip: SkipOpt = None,
    from_node: FromOpt = None,
    reuse: ReuseOpt = None,
    keep_going: KeepGoingOpt = False,
    install_declared: InstallDeclaredOpt = False,
    skip_inference_check: Annotated[bool, option(RunFlags, "skip_inference_check")] = False,  # issue 21
    # -- a new run option: its field in rtest.options.RunFlags and one line here, e.g.
    #    `name: Annotated[T, option(RunFlags, "name")] = default` (docs/design.md, "Options")
    junit: JunitOpt = None,
    log_format: LogFormatOpt = "text",
    backend: BackendOpt = "docker",
    registry: RegistryOpt = None,  # issue 17: swarm
    placement: PlacementOpt = None,
    verbose: VerboseOpt = False,
    step_user: StepUserOpt = None,  # issue 14: never root; how much log a step keeps
    max_log_bytes: MaxLogBytesOpt = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    upload: UploadOpt = None,
    synthesize_inputs: SynthesizeInputsOpt = False,  # issue 19: synthesized sample inputs
    rows: RowsOpt = None,
    seed: SeedOpt = None,
) -> int:
    """Run every script of the pipeline in containers, in DAG order, and report per step."""
    from rtest.cli.common import options_from

    return run_sandbox(options_from(ctx, PipelineOptions), options_from(ctx, RunFlags), options_from(ctx, LocalFlags),
                       options_from(ctx, ServiceFlags))


def run_sandbox(pipeline: PipelineOptions, flags: RunFlags, local: LocalFlags, service: ServiceFlags) -> int:
    """`rtest sandbox run` with its options as models: on a service, or here through the one run path."""
    if service.server and (pipeline.framework_python or pipeline.no_config_classes):  # -- issue 15
        raise OptionError("--framework-python and --no-config-classes are about this machine's planning; a service "
                          "plans with the framework installed where it runs. Drop them, or run without --server.")
    if service.server and pipeline.synthesize_inputs:  # -- issue 19: synthesis writes into the local workdir
        raise OptionError("--synthesize-inputs runs locally only; write the inputs with `rtest data synth` and "
                          "pass them with --input to run on a service.")
    if service.server and (local.step_user or local.max_log_bytes):  # issue 14: the operator's, not a submission's
        raise OptionError("--step-user and --max-log-bytes are set by the service's operator "
                          "(`rtest serve --step-user/--max-log-bytes`), not by a run sent with --server; drop them.")
    if service.server and (local.backend != "docker" or local.registry or local.placement):  # issue 17
        raise OptionError("--backend, --registry and --placement choose where a local run's steps go; a service runs "
                          "on its own backend (`rtest serve --backend swarm`). Drop them, or run without --server.")
    if service.server:  # -- rtest serve (issue 11)
        return _run_on_server(pipeline, flags, local, service)
    # a local run's modules only now: a client of a service never pays for them (issue 18)
    from rtest.cli import preflight
    from rtest.cli.common import load_pipeline
    from rtest.cli.progress import ConsoleObserver, summary
    from rtest.cli.text import markup_safe
    from rtest.logs import configure_logging
    from rtest.report.logtail import log_tail
    from rtest.session import run_request

    configure_logging(local.log_format, "info" if local.verbose or local.log_format == "json" else "warning")
    preflight.check_junit(local.junit)
    workdir = pipeline.workdir
    preflight.check_workdir(workdir, create=False)

    def planner():
        chosen = load_pipeline(pipeline)
        plan = chosen.plan(workdir)
        preflight.check_workdir(workdir, create=True)  # only now: a refused plan leaves no workdir behind
        return plan, chosen.user

    cancel = threading.Event()
    report = run_request(planner, flags, local, workdir=workdir, observer=ConsoleObserver(out, cancel),
                         cancel=cancel)
    run_id = report.run_id
    tails = {n: log_tail(Path(r.log_path), 20) for n, r in report.steps.items()
             if r.status.value == "failed" and r.log_path}
    out.print(summary(report, tails))
    run_dir = markup_safe(report.run_dir)
    out.print(f"Report: {run_dir}/report.json  (HTML: {run_dir}/report.html)", highlight=False)
    if any((r.failure_reason or "").startswith("container engine error") for r in report.steps.values()):
        out.print("[yellow]The container engine failed during the run; if containers remain, "
                  f"`rtest sandbox clean --run-id {run_id}` removes them.[/]")
    if report.interrupted:
        out.print("[magenta]Interrupted: running containers were stopped and removed "
                  f"(check with `rtest sandbox clean --run-id {run_id}`).[/]")
        return 130
    return 0 if report.pipeline_success else 1


def _run_on_server(pipeline: PipelineOptions, flags: RunFlags, local: LocalFlags, service: ServiceFlags) -> int:
    """The same run on a service: every option forwarded (cli/serve_cmd.py), live progress, reports, exit codes."""
    from rtest.cli.interrupt import trapped
    from rtest.cli.serve_cmd import sandbox_run_remote

    cancel = threading.Event()
    with trapped(cancel):
        return sandbox_run_remote(pipeline, flags, local, service, cancel=cancel)


@sandbox_app.command("clean")
def clean(
    run_id: Annotated[Optional[str], typer.Option("--run-id", help=(
        "Remove this run's containers (the id printed when it started)."))] = None,
    all_runs: Annotated[bool, typer.Option("--all", help="Remove the containers of all your rtest runs.")] = False,
    all_users: Annotated[bool, typer.Option("--all-users", help=(
        "With --all: every user's rtest containers on this engine."))] = False,
    workdir: WorkdirOpt = Path(".rtest"),
    cache: Annotated[bool, typer.Option("--cache", help="Also empty the step cache in the workdir.")] = False,
    backend: Annotated[str, typer.Option("--backend", help="The backend whose containers to remove.")] = "docker",
) -> int:
    """Remove, by label, the containers a crashed or interrupted run left behind: --run-id ID, or --all."""
    import os

    from rtest.cli.preflight import OptionError, check_run_id
    from rtest.cli.text import markup_safe
    from rtest.run.backends import create_backend
    from rtest.run.cache import StepCache
    from rtest.workspace import Workspace

    if run_id is not None and (all_runs or all_users):
        raise OptionError("Pass either --run-id ID or --all, not both.")
    if all_users and not all_runs:
        raise OptionError("--all-users goes with --all: `rtest sandbox clean --all --all-users`.")
    if run_id is None and not all_runs and not cache:  # an engine is shared: never guess which containers to remove
        raise OptionError("Say which containers to remove: --run-id ID (printed when the run started; "
                          "also its folder under <workdir>/runs), or --all for all of your runs.")
    if run_id is not None or all_runs:
        scope = {"run_id": check_run_id(run_id)} if run_id is not None else {"uid": None if all_users else os.getuid()}
        removed = create_backend(backend).remove_run(**scope)  # a swarm's services go with their containers
        out.print(f"Removed {len(removed)} container(s){': ' + markup_safe(', '.join(removed)) if removed else ''}.")
    if cache:
        cleared = StepCache(Workspace(workdir).cache_dir).clear()
        out.print(f"Removed {cleared} cache entr{'y' if cleared == 1 else 'ies'}.")
    return 0


def _mount_images() -> None:
    try:
        from rtest.cli.images_cmd import images_app
    except ImportError:  # pragma: no cover - only while the images command is being written
        return
    sandbox_app.add_typer(images_app, name="images")


_mount_images()

__all__ = ["sandbox_app"]
