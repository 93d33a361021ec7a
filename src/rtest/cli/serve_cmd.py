"""`rtest serve`, `rtest runs ...`, and `rtest sandbox run --server`: the CLI side of the service."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from rtest.cli.text import plain
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
    backend: Annotated[str, typer.Option("--backend", help=(
        "Where steps run: docker (the default) or swarm (slots default to the cluster's CPUs)."))] = "docker",
    registry: Annotated[Optional[str], typer.Option("--registry", help=(
        "swarm: push the images runs need to this registry (HOST:PORT).") )] = None,
) -> int:
    """Run rtest as a service: an HTTP API, a web page at /, one pool of step slots for every run."""
    from rtest.logs import configure_logging
    from rtest.serve.server import ServeOptions, serve as run_service

    configure_logging("text", "warning")
    options = ServeOptions(host=host, port=port, workdir=workdir, slots=slots, token=token or None, backend=backend,
                           registry=registry)
    return run_service(options, announce=lambda text: out.print(text, highlight=False))


def sandbox_run_remote(url: str, token: str | None, upload: bool | None, *, flags: dict[str, Any],
                       cancel: threading.Event) -> int:
    """`rtest sandbox run --server URL`: the same arguments, progress, reports and exit codes as a local run.

    ``flags``: the parameters of `rtest sandbox run`. Pipeline-level ones travel in the user spec (as a spec
    file would hold them), per-run ones in the request; see ``remote_request``."""
    from rtest.cli.progress import summary
    from rtest.cli.text import markup_safe
    from rtest.serve.client import ServiceClient
    from rtest.serve.remote import run_remote

    user, settings, options = remote_request(flags)
    with ServiceClient(url, token) as client:
        view = RemoteView(url)
        try:
            outcome = run_remote(client, spec=user, example=flags["example"], settings=settings, jobs=flags["jobs"],
                                 workdir=flags["workdir"], junit=flags["junit"], upload=upload, on_event=view.on_record,
                                 cancel=cancel, options=options)
        finally:
            view.close()
        if outcome.status == "error":
            raise RemoteRunError(outcome.message or f"Run {outcome.run_id} could not start.", outcome.exit_code)
        if outcome.report:
            tails = {node: b"".join(client.log(outcome.run_id, node, tail=20)).decode(errors="replace")
                     for node, r in outcome.report.steps.items() if r.status.value == "failed"}
            out.print(summary(outcome.report, tails))
        run_dir = markup_safe(outcome.run_dir)
        out.print(f"Report: {run_dir}/report.json  (HTML: {run_dir}/report.html)", highlight=False)
    if outcome.exit_code == 130:
        out.print("[magenta]Interrupted: the service stopped the run and removed its containers.[/]")
    return outcome.exit_code


def remote_request(flags: dict[str, Any]) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """`rtest sandbox run`'s flags as (user spec, RunSettings, the RunRequest's per-run fields), checked here
    as a local run checks them, so a bad flag exits 2 before anything is sent."""
    from rtest.cli import preflight
    from rtest.cli.preflight import check_interface_dirs
    from rtest.serve.remote import spec_from_flags

    check_interface_dirs(flags["interfaces"])
    settings = {"timeout_s": flags["timeout"], "network": flags["network"], "limits": not flags["no_limits"],
                "memory_bytes": preflight.parse_memory(flags["memory"]), "cache": not flags["no_cache"],
                "pack_model": not flags["model_folder"]}
    options = {"deps": not flags["no_deps"], "cache_key": getattr(flags["cache_key"], "value", flags["cache_key"]),
               **preflight.output_caps(flags["max_output_files"], flags["max_output_bytes"])}
    user = spec_from_flags(dag=flags["dag"], config=flags["config"], interfaces=flags["interfaces"],
                           source_root=flags["source_root"], spec=flags["spec"], inputs=flags["inputs"],
                           image_map=flags["image_map"], source_map=flags["source_map"],
                           config_classes=flags["config_classes"], allow_outside=flags["allow_outside"],
                           strict=flags["strict"], follow_input_links=flags["follow_input_links"],
                           wheelhouse=flags["wheelhouse"])
    return user, settings, options


class RemoteView:
    """The service's event records, shown as a local run shows its own events: warnings before the run, then
    the live status (fed the typed events, as LiveStatus.on is locally). Every text from the service is
    someone else's: it goes through markup_safe/plain."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.live = None
        self.said: set[str] = set()  # plan notes come before the run and again from it: each is shown once

    def on_record(self, record: dict) -> None:
        from rtest.cli.progress import LiveStatus
        from rtest.cli.text import markup_safe
        from rtest.run.events import RunStarted, RunWarning
        from rtest.serve.eventlog import typed_event

        kind = record.get("type")
        event = typed_event(record)
        if isinstance(event, RunStarted):
            out.print(f"run {markup_safe(event.run_id)} on {markup_safe(self.url)}", highlight=False)
            self.live = LiveStatus(out, event.nodes).__enter__()  # left in close()
        elif isinstance(event, RunWarning) and event.message not in self.said:  # plan warnings have a code, notes not
            self.said.add(event.message)
            label = "[bold yellow]warning:[/]" if record.get("code") else "[yellow]note:[/]"
            out.print(f"{label} {markup_safe(event.message)}", highlight=False)
        elif kind == "deps_built":
            out.print(f"built dependency image {markup_safe(record.get('image'))}", highlight=False)
        elif event is not None and self.live is not None:
            self.live.on(event)

    def close(self) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)
            self.live = None


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
        table.add_row(
            *(plain(cell) for cell in (run["id"], run["status"], run["pipeline"] or "", run["submitter"] or "", took))
        )
    out.print(table)
    return 0


@runs_app.command("show")
def show_run(run_id: str, server: ServerOpt = None, token: TokenOpt = None) -> int:
    """One run: status, queue position and every step."""
    with _client(server, token) as client:
        run = client.run(run_id)
    where = f", queue position {run['queue_position']}" if run.get("queue_position") else ""
    out.print(plain(f"run {run['id']}: {run['status']}{where} ({run['pipeline']}, by {run['submitter']})"))
    if run.get("message"):
        out.print(plain(run["message"]))
    table = Table()
    for column in ("step", "status", "duration", "exit", "reason"):
        table.add_column(column, overflow="fold")
    for step in run["steps"]:
        took = f"{step['duration_s']:.1f}s" if step["duration_s"] is not None else ""
        reason = (step["reason"] or "").strip().splitlines()
        table.add_row(plain(step["node"]), plain(step["status"]), took,
                      "" if step["exit_code"] is None else str(step["exit_code"]), plain(reason[-1] if reason else ""))
    out.print(table)
    return 0


@runs_app.command("cancel")
def cancel_run(run_id: str, server: ServerOpt = None, token: TokenOpt = None) -> int:
    """Ask the service to stop a queued or running run."""
    with _client(server, token) as client:
        done = client.cancel(run_id)
    out.print(plain(f"run {run_id}: {'cancelling' if done else 'already finished'}"))
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
