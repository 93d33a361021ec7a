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
    max_output_files: Annotated[Optional[int], typer.Option("--max-output-files", min=1, help="Most files and folders one step output may hold (default 200000); more fails the step.")] = None,
    max_output_bytes: Annotated[Optional[str], typer.Option("--max-output-bytes", help="Most bytes one step output may hold, e.g. 100g (default 50g); more fails the step.")] = None,
    junit: Annotated[Optional[Path], typer.Option("--junit", help="Also write JUnit XML here.")] = None,
    log_format: Annotated[str, typer.Option("--log-format", help="text or json (for machines).")] = "text",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what the engine does.")] = False,
) -> int:
    """Run every script of the pipeline in containers, in DAG order, and report per step."""
    from rtest.cli.progress import LiveStatus, summary
    from rtest.logs import configure_logging
    from rtest.plan.builder import build_plan
    from rtest.report.logtail import log_tail
    from rtest.run.engine import run_pipeline

    configure_logging(log_format, "info" if verbose or log_format == "json" else "warning")
    chosen = select_pipeline(
        dag=dag, config=config, interfaces=interfaces, source_root=source_root, example=example,
        spec=spec, input_flags=inputs, image_flags=image_map, workdir=workdir,
    )
    plan = build_plan(chosen.inputs, chosen.user)
    for note in plan.notes:  # weak or missing wiring: worth knowing before minutes of running
        out.print(f"[yellow]note:[/] {note}", highlight=False)
    cancel = threading.Event()
    restore = _trap_signals(cancel)
    try:
        with LiveStatus(out, plan.execution_order()) as live:
            report = run_pipeline(
                plan, workdir=workdir, jobs=jobs, use_cache=not no_cache, network=network, limits=not no_limits,
                timeout_s=timeout, memory_bytes=_parse_size(memory), pack_model=not model_folder, on_event=live.event, cancel=cancel, junit_path=junit,
                max_output_files=max_output_files, max_output_bytes=_parse_size(max_output_bytes, "--max-output-bytes"),
            )
    finally:
        restore()
    tails = {n: log_tail(Path(r.log_path), 20) for n, r in report.steps.items() if r.status.value == "failed" and r.log_path}
    out.print(summary(report, tails))
    out.print(f"Report: {Path(report.run_dir) / 'report.json'}  (HTML: {Path(report.run_dir) / 'report.html'})", highlight=False)
    if report.interrupted:
        out.print("[magenta]Interrupted: running containers were stopped and removed.[/]")
        return 130
    return 0 if report.pipeline_success else 1


def _parse_size(text: str | None, option: str = "--memory") -> int | None:
    if not text:
        return None
    units = {"k": 2**10, "m": 2**20, "g": 2**30}
    number, unit = (text[:-1], text[-1].lower()) if text[-1].lower() in units else (text, "")
    try:
        return int(float(number) * units.get(unit, 1))
    except ValueError:
        raise typer.BadParameter(f"'{text}' is not a size; write it like 512m or 2g.", param_hint=option) from None


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
) -> int:
    """Remove, by label, every container a crashed or interrupted run left behind."""
    from rtest.run.cache import StepCache
    from rtest.run.docker_backend import DockerBackend

    removed = DockerBackend().remove_labelled(run_id)
    out.print(f"Removed {len(removed)} container(s){': ' + ', '.join(removed) if removed else ''}.")
    if cache:
        cleared = StepCache(Path(workdir).resolve() / "cache").clear()
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
