"""`rtest serve`, `rtest runs ...`, and `rtest sandbox run --server`: the CLI side of the service."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from rtest.errors import RtestError

out = Console()
ServerOpt = Annotated[Optional[str], typer.Option("--server", envvar="RTEST_SERVER",
                                                  help="URL of an `rtest serve` service, e.g. http://127.0.0.1:8080.")]
TokenOpt = Annotated[Optional[str], typer.Option("--token", envvar="RTEST_TOKEN", show_default=False,
                                                 help="Bearer token of the service (or RTEST_TOKEN).")]
runs_app = typer.Typer(help="Runs of an `rtest serve` service.", no_args_is_help=True)


class RemoteRunError(RtestError):
    """A run the service could not start (bad pipeline, no engine): its message and exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on; anything but loopback needs a token.")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535)] = 8080,
    workdir: Annotated[Path, typer.Option("--workdir", help="Runs, cache and the run registry (SQLite).")]
    = Path(".rtest"),
    slots: Annotated[Optional[int], typer.Option("--slots", min=1,
                                                 help="Steps at once across all runs. Default: the number of CPUs.")]
    = None,
    token: TokenOpt = None,
    backend: Annotated[str, typer.Option("--backend", help="Where steps run: docker (the default).")] = "docker",
) -> int:
    """Run rtest as a service: an HTTP API, a web page at /, one pool of step slots for every run."""
    from rtest.logs import configure_logging
    from rtest.serve.server import ServeOptions, serve as run_service

    configure_logging("text", "warning")
    options = ServeOptions(host=host, port=port, workdir=workdir, slots=slots, token=token or None, backend=backend)
    return run_service(options, announce=lambda text: out.print(text, highlight=False))


def sandbox_run_remote(url: str, token: str | None, upload: bool | None, *, example: bool, dag, config, interfaces,
                       source_root, spec, inputs, image_map, settings: dict[str, Any], jobs: int | None,
                       workdir: Path, junit: Path | None, cancel: threading.Event) -> int:
    """`rtest sandbox run --server URL`: the same arguments, progress, reports and exit codes as a local run."""
    from rtest.cli.progress import LiveStatus, summary
    from rtest.run.model import StepResult, StepStatus
    from rtest.serve.client import ServiceClient
    from rtest.serve.remote import run_remote, spec_from_flags

    user = spec_from_flags(dag=dag, config=config, interfaces=interfaces, source_root=source_root, spec=spec,
                           inputs=inputs, image_map=image_map)
    with ServiceClient(url, token) as client:
        live: LiveStatus | None = None

        def on_event(record: dict) -> None:
            nonlocal live
            kind = record.get("type")
            if kind == "run_started":
                out.print(f"run {record['run_id']} on {url}", highlight=False)
                live = LiveStatus(out, record["nodes"]).__enter__()  # left in the finally below
            elif live and kind == "step_queued":
                live.event(record["node"], StepStatus.RUNNING, None)
            elif live and kind == "step_finished":
                result = StepResult.model_validate(record["result"])
                live.event(record["node"], result.status, result)
            elif kind == "warning":
                out.print(f"[yellow]note:[/] {record['message']}", highlight=False)

        try:
            outcome = run_remote(client, spec=user, example=example, settings=settings, jobs=jobs, workdir=workdir,
                                 junit=junit, upload=upload, on_event=on_event, cancel=cancel)
        finally:
            if live is not None:
                live.__exit__(None, None, None)
        if outcome.status == "error":
            raise RemoteRunError(outcome.message or f"Run {outcome.run_id} could not start.", outcome.exit_code)
        if outcome.report:
            tails = {node: b"".join(client.log(outcome.run_id, node, tail=20)).decode(errors="replace")
                     for node, r in outcome.report.steps.items() if r.status.value == "failed"}
            out.print(summary(outcome.report, tails))
        out.print(f"Report: {outcome.run_dir / 'report.json'}  (HTML: {outcome.run_dir / 'report.html'})",
                  highlight=False)
    if outcome.exit_code == 130:
        out.print("[magenta]Interrupted: the service stopped the run and removed its containers.[/]")
    return outcome.exit_code


# ---- rtest runs ----------------------------------------------------------------------------------


def _client(server: str | None, token: str | None):
    from rtest.serve.client import ServiceClient

    if not server:
        raise RtestError("No service given: pass --server URL or set RTEST_SERVER.")
    return ServiceClient(server, token)


@runs_app.command("list")
def list_runs(server: ServerOpt = None, token: TokenOpt = None,
              status: Annotated[Optional[str], typer.Option("--status", help="Only runs with this status.")] = None,
              limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 20,
              offset: Annotated[int, typer.Option("--offset", min=0)] = 0) -> int:
    """The service's runs, newest first."""
    with _client(server, token) as client:
        page = client.runs(status, limit, offset)
    table = Table(title=f"{page['total']} run(s)", title_justify="left")
    for column in ("id", "status", "pipeline", "submitter", "duration"):
        table.add_column(column)
    for run in page["runs"]:
        took = f"{run['duration_s']:.1f}s" if run["duration_s"] is not None else ""
        table.add_row(run["id"], run["status"], run["pipeline"] or "", run["submitter"] or "", took)
    out.print(table)
    return 0


@runs_app.command("show")
def show_run(run_id: str, server: ServerOpt = None, token: TokenOpt = None) -> int:
    """One run: status, queue position and every step."""
    with _client(server, token) as client:
        run = client.run(run_id)
    where = f", queue position {run['queue_position']}" if run.get("queue_position") else ""
    out.print(f"run {run['id']}: {run['status']}{where} ({run['pipeline']}, by {run['submitter']})", highlight=False)
    if run.get("message"):
        out.print(run["message"], highlight=False)
    table = Table()
    for column in ("step", "status", "duration", "exit", "reason"):
        table.add_column(column, overflow="fold")
    for step in run["steps"]:
        took = f"{step['duration_s']:.1f}s" if step["duration_s"] is not None else ""
        reason = (step["reason"] or "").strip().splitlines()
        table.add_row(step["node"], step["status"], took, "" if step["exit_code"] is None else str(step["exit_code"]),
                      reason[-1] if reason else "")
    out.print(table)
    return 0


@runs_app.command("cancel")
def cancel_run(run_id: str, server: ServerOpt = None, token: TokenOpt = None) -> int:
    """Ask the service to stop a queued or running run."""
    with _client(server, token) as client:
        done = client.cancel(run_id)
    out.print(f"run {run_id}: {'cancelling' if done else 'already finished'}", highlight=False)
    return 0


@runs_app.command("logs")
def run_logs(run_id: str, node: str, server: ServerOpt = None, token: TokenOpt = None,
             follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the step ends.")] = False,
             tail: Annotated[Optional[int], typer.Option("--tail", min=1, help="Only the last N lines.")] = None,
             ) -> int:
    """One step's log (stdout and stderr of its script)."""
    with _client(server, token) as client:
        for chunk in client.log(run_id, node, tail=tail, follow=follow):
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
    return 0

