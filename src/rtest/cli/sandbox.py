"""`rtest sandbox ...`: run the plan in containers, clean up, build images."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from rtest.cli.common import (
    ConfigOpt,
    DagOpt,
    ExampleOpt,
    ImageMapOpt,
    InputOpt,
    InterfacesOpt,
    SourceRootOpt,
    SpecOpt,
    WorkdirOpt,
    select_pipeline,
)

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
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", min=1, help="Steps run at once. Default: the number of CPUs.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Rerun every step even if nothing changed.")] = False,
    network: Annotated[Optional[str], typer.Option("--network", help="Container network; default none (no network), e.g. bridge.")] = None,
    no_limits: Annotated[bool, typer.Option("--no-limits", help="No CPU/memory limits from the instance type.")] = False,
    timeout: Annotated[Optional[float], typer.Option("--timeout", min=1, help="Max runtime of every step, in seconds.")] = None,
    memory: Annotated[Optional[str], typer.Option("--memory", help="Memory limit of every step, e.g. 512m or 2g (overrides the instance type).")] = None,
    model_folder: Annotated[bool, typer.Option("--model-folder", help="Pass /opt/ml/model on as a folder, not model.tar.gz.")] = False,
    junit: Annotated[Optional[Path], typer.Option("--junit", help="Also write JUnit XML here.")] = None,
    log_format: Annotated[str, typer.Option("--log-format", help="text or json (for machines).")] = "text",
    backend: Annotated[str, typer.Option("--backend", help="Where steps run: docker (the default).")] = "docker",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what the engine does.")] = False,
    # -- rtest serve (issue 11): hand the run to a service instead
    server: Annotated[Optional[str], typer.Option("--server", envvar="RTEST_SERVER", help="Run on an `rtest serve` service at this URL.")] = None,
    token: Annotated[Optional[str], typer.Option("--token", envvar="RTEST_TOKEN", show_default=False, help="The service's bearer token.")] = None,
    upload: Annotated[Optional[bool], typer.Option("--upload/--no-upload", help="Send a bundle (default: only when the service does not share this file system).")] = None,
) -> int:
    """Run every script of the pipeline in containers, in DAG order, and report per step."""
    if server:  # -- rtest serve (issue 11)
        return _run_on_server(server, token, upload, locals())
    from rtest.cli.progress import LiveStatus, summary
    from rtest.logs import configure_logging
    from rtest.plan.builder import build_plan
    from rtest.plan.settings import CommandLine, plan_settings
    from rtest.report.logtail import log_tail
    from rtest.run.engine import RunOptions
    from rtest.session import run_and_report

    configure_logging(log_format, "info" if verbose or log_format == "json" else "warning")
    chosen = select_pipeline(
        dag=dag, config=config, interfaces=interfaces, source_root=source_root, example=example,
        spec=spec, input_flags=inputs, image_flags=image_map, workdir=workdir,
    )
    plan = build_plan(chosen.inputs, chosen.user)
    for note in plan.notes:  # weak or missing wiring: worth knowing before minutes of running
        out.print(f"[yellow]note:[/] {note}", highlight=False)
    flags = CommandLine(timeout_s=timeout, network=network, limits=not no_limits, memory_bytes=_parse_size(memory),
                        cache=not no_cache, pack_model=not model_folder)
    settings = plan_settings(plan, flags)
    formats = {"html": None, **({"junit": junit} if junit else {})}
    cancel = threading.Event()
    restore = _trap_signals(cancel)
    try:
        with LiveStatus(out, plan.execution_order()) as live:
            report = run_and_report(plan, RunOptions(workdir=workdir, jobs=jobs, backend=backend), settings=settings,
                                    formats=formats, subscribers=[live.on], cancel=cancel)
    finally:
        restore()
    tails = {n: log_tail(Path(r.log_path), 20) for n, r in report.steps.items() if r.status.value == "failed" and r.log_path}
    out.print(summary(report, tails))
    out.print(f"Report: {Path(report.run_dir) / 'report.json'}  (HTML: {Path(report.run_dir) / 'report.html'})", highlight=False)
    if report.interrupted:
        out.print("[magenta]Interrupted: running containers were stopped and removed.[/]")
        return 130
    return 0 if report.pipeline_success else 1


def _run_on_server(server: str, token: str | None, upload: bool | None, flags: dict) -> int:
    """The same run on a service: same flags, live progress, reports in the local workdir, exit codes."""
    from rtest.cli.serve_cmd import sandbox_run_remote

    settings = {"timeout_s": flags["timeout"], "network": flags["network"], "limits": not flags["no_limits"],
                "memory_bytes": _parse_size(flags["memory"]), "cache": not flags["no_cache"],
                "pack_model": not flags["model_folder"]}
    cancel = threading.Event()
    restore = _trap_signals(cancel)
    try:
        return sandbox_run_remote(server, token, upload, example=flags["example"], dag=flags["dag"],
                                  config=flags["config"], interfaces=flags["interfaces"],
                                  source_root=flags["source_root"], spec=flags["spec"], inputs=flags["inputs"],
                                  image_map=flags["image_map"], settings=settings, jobs=flags["jobs"],
                                  workdir=flags["workdir"], junit=flags["junit"], cancel=cancel)
    finally:
        restore()


def _parse_size(text: str | None) -> int | None:
    if not text:
        return None
    units = {"k": 2**10, "m": 2**20, "g": 2**30}
    number, unit = (text[:-1], text[-1].lower()) if text[-1].lower() in units else (text, "")
    try:
        return int(float(number) * units.get(unit, 1))
    except ValueError:
        raise typer.BadParameter(f"'{text}' is not a size; write it like 512m or 2g.", param_hint="--memory") from None


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
    run_id: Annotated[Optional[str], typer.Option("--run-id", help="Only this run's containers.")] = None,
    workdir: WorkdirOpt = Path(".rtest"),
    cache: Annotated[bool, typer.Option("--cache", help="Also empty the step cache in the workdir.")] = False,
    backend: Annotated[str, typer.Option("--backend", help="The backend whose containers to remove.")] = "docker",
) -> int:
    """Remove, by label, every container a crashed or interrupted run left behind."""
    from rtest.run.backends import create_backend
    from rtest.run.cache import StepCache
    from rtest.workspace import Workspace

    removed = create_backend(backend).remove_run(run_id)
    out.print(f"Removed {len(removed)} container(s){': ' + ', '.join(removed) if removed else ''}.")
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
