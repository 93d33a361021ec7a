"""`rtest sandbox ...`: run the plan in containers, clean up, build images."""

from __future__ import annotations

import signal
import threading
from enum import Enum
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
    ImageMapOpt,
    InputOpt,
    InterfacesOpt,
    SourceMapOpt,
    SourceRootOpt,
    SpecOpt,
    StrictOpt,
    WorkdirOpt,
    select_pipeline,
)

class CacheKey(str, Enum):
    imports = "imports"
    full = "full"


sandbox_app = typer.Typer(help="Run scripts in SageMaker-like containers.", no_args_is_help=True)
out = Console()


@sandbox_app.command("run")
def run(
    dag: DagOpt = None,
    config: ConfigOpt = None,
    interfaces: InterfacesOpt = None,
    source_root: SourceRootOpt = None,
    inputs: InputOpt = None,
    spec: SpecOpt = None,
    image_map: ImageMapOpt = None,
    workdir: WorkdirOpt = Path(".rtest"),
    example: ExampleOpt = False,
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", min=1,
                                                help="Steps run at once. Default: the number of CPUs.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Rerun every step even if nothing changed.")] = False,
    cache_key: Annotated[CacheKey, typer.Option("--cache-key", help=(
        "What of the source folder a step's cache key covers: "
        "imports (its script, the modules it imports, files it names, requirements) or full."))] = CacheKey.imports,
    network: Annotated[Optional[str], typer.Option("--network", help="Container network; default none (no network), "
                                                                  "e.g. bridge.")] = None,
    no_limits: Annotated[bool, typer.Option("--no-limits",
                                            help="No CPU/memory limits from the instance type.")] = False,
    timeout: Annotated[Optional[float], typer.Option("--timeout", min=1,
                                                     help="Max runtime of every step, in seconds.")] = None,
    memory: Annotated[Optional[str], typer.Option("--memory", help="Memory limit of every step, e.g. 512m or 2g "
                                                                "(overrides the instance type).")] = None,
    model_folder: Annotated[bool, typer.Option("--model-folder",
                                               help="Pass /opt/ml/model on as a folder, not model.tar.gz.")] = False,
    max_output_files: Annotated[Optional[int], typer.Option("--max-output-files", min=1, help=(
        "Most files and folders one step output may hold (default 200000); more fails the step."))] = None,
    max_output_bytes: Annotated[Optional[str], typer.Option("--max-output-bytes", help=(
        "Most bytes one step output may hold, e.g. 100g (default 50g); more fails the step."))] = None,
    junit: Annotated[Optional[Path], typer.Option("--junit", help="Also write JUnit XML here.")] = None,
    log_format: Annotated[str, typer.Option("--log-format", help="text or json (for machines).")] = "text",
    backend: Annotated[str, typer.Option("--backend", help=(
        "Where steps run: docker (the default) or swarm (the Swarm whose manager DOCKER_HOST is)."))] = "docker",
    # -- swarm backend (issue 17)
    registry: Annotated[Optional[str], typer.Option("--registry", help=(
        "swarm: push the images the plan needs to this registry (HOST:PORT) so every node can pull them."))] = None,
    placement: Annotated[Optional[list[str]], typer.Option("--placement", help=(
        "swarm: a placement constraint, [NODE=]KEY==VALUE (e.g. node.hostname==gpu1); repeatable."))] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what the engine does.")] = False,
    source_map: SourceMapOpt = None,
    config_classes: ConfigClassesOpt = None,
    allow_outside: AllowOutsideOpt = False,
    strict: StrictOpt = False,
    follow_input_links: FollowLinksOpt = False,
    no_deps: Annotated[bool, typer.Option("--no-deps", help="Run steps in their images as they are: "
                                                            "no dependency images, no wheelhouse.")] = False,
    wheelhouse: Annotated[Optional[Path], typer.Option("--wheelhouse", help="Folder of wheels for steps' requirements; "
                                                                           "never use an index.")] = None,
    # -- rtest serve (issue 11): hand the run to a service instead
    server: Annotated[Optional[str], typer.Option("--server", envvar="RTEST_SERVER",
                                                  help="Run on an `rtest serve` service at this URL.")] = None,
    token: Annotated[Optional[str], typer.Option("--token", envvar="RTEST_TOKEN", show_default=False,
                                                 help="The service's bearer token.")] = None,
    upload: Annotated[Optional[bool], typer.Option("--upload/--no-upload", help=(
        "Send a bundle (default: only when the service does not share this file system)."))] = None,
) -> int:
    """Run every script of the pipeline in containers, in DAG order, and report per step."""
    if server:  # -- rtest serve (issue 11)
        return _run_on_server(server, token, upload, locals())
    from rtest.cli import preflight
    from rtest.cli.deps_cmd import deps_for_run
    from rtest.cli.progress import LiveStatus, summary
    from rtest.cli.text import markup_safe
    from rtest.logs import configure_logging
    from rtest.plan.builder import build_plan
    from rtest.plan.settings import CommandLine
    from rtest.report.logtail import log_tail
    from rtest.run.backends import create_backend
    from rtest.run.engine import RunOptions
    from rtest.workspace import new_run_id
    from rtest.session import run_and_report

    configure_logging(preflight.check_log_format(log_format), "info" if verbose or log_format == "json" else "warning")
    memory_bytes = preflight.parse_memory(memory)
    caps = preflight.output_caps(max_output_files, max_output_bytes)
    preflight.check_junit(junit)
    preflight.check_workdir(workdir, create=False)
    chosen = select_pipeline(
        dag=dag, config=config, interfaces=interfaces, source_root=source_root, example=example,
        spec=spec, input_flags=inputs, image_flags=image_map, workdir=workdir,
        source_map_flags=source_map, config_classes=config_classes, allow_source_outside_root=allow_outside,
        strict=strict, follow_input_links=follow_input_links,
    )
    plan = build_plan(chosen.inputs, chosen.user, workdir)
    preflight.check_workdir(workdir, create=True)  # only now: a refused plan leaves no workdir behind
    engine = create_backend(backend, **preflight.backend_options(backend, registry, placement, chosen.user))
    preflight.check_network(engine, network)
    for warning in plan.warnings:  # guessed or missing values: the run may differ from the real pipeline's
        out.print(f"[bold yellow]warning:[/] {markup_safe(warning.message)}", highlight=False)
    for note in plan.notes:  # weak or missing wiring: worth knowing before minutes of running
        out.print(f"[yellow]note:[/] {markup_safe(note)}", highlight=False)
    flags = CommandLine(timeout_s=timeout, network=network, limits=not no_limits, memory_bytes=memory_bytes,
                        cache=not no_cache, pack_model=not model_folder)
    formats = {"html": None, **({"junit": junit} if junit else {})}
    run_id = new_run_id()  # printed now, so a user whose rtest was killed can still clean up this run
    out.print(f"Run {run_id} started; if rtest is killed, `rtest sandbox clean --run-id {run_id}` "
              "removes its containers.", highlight=False)
    homes = wheelhouse or (Path(chosen.user.wheelhouse) if chosen.user.wheelhouse else None)
    deps = deps_for_run(plan, workdir, engine, enabled=not no_deps, wheelhouse=homes, console=out) or None
    cancel = threading.Event()
    restore = _trap_signals(cancel)
    try:
        with LiveStatus(out, plan.execution_order()) as live:
            report = run_and_report(plan, RunOptions(workdir=workdir, jobs=jobs, backend=backend, run_id=run_id,
                                               cache_key=cache_key.value, **caps),
                                    settings=flags, formats=formats, subscribers=[live.on], cancel=cancel,
                                    backend=engine, deps=deps)
    finally:
        restore()
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


def _run_on_server(server: str, token: str | None, upload: bool | None, flags: dict) -> int:
    """The same run on a service: every flag forwarded (cli/serve_cmd.py), live progress, reports, exit codes."""
    from rtest.cli.serve_cmd import sandbox_run_remote

    cancel = threading.Event()
    restore = _trap_signals(cancel)
    try:
        return sandbox_run_remote(server, token, upload, flags=flags, cancel=cancel)
    finally:
        restore()


def _trap_signals(cancel: threading.Event):
    """Ctrl-C and SIGTERM ask the run to stop cleanly; the runner does the stopping."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum, frame):  # noqa: ARG001
        cancel.set()

    for sig in previous:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


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
