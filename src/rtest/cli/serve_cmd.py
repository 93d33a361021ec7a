"""`rtest serve`, `rtest runs ...`, and `rtest sandbox run --server`: the CLI side of the service."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from rtest.cli.text import plain
from rtest.errors import RtestError

if TYPE_CHECKING:
    from rtest.cli.progress import LiveStatus
    from rtest.options import LocalFlags, PipelineOptions, RunFlags, ServiceFlags

out = Console()
from rtest.cli.common import MaxLogBytesOpt, ServerOpt, StepUserOpt, TokenOpt  # noqa: E402 - declared once, in rtest.options.ServiceFlags

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
    registry: Annotated[Optional[str], typer.Option("--registry", help=(  # issue 17
        "swarm: push the images runs need to this registry (HOST:PORT)."))] = None,
    step_user: StepUserOpt = None,  # issue 14: the operator's bounds, the same options as a local run's
    max_log_bytes: MaxLogBytesOpt = None,
    # -- issue 14: who may reach the service and what a submission may name (see README, "What the sandbox promises")
    no_token: Annotated[bool, typer.Option("--no-token", help="Loopback only: no token at all (any local program "
                                           "or page reaching the port may run containers).")] = False,
    allowed_host: Annotated[Optional[list[str]], typer.Option(
        "--allowed-host", help="Another Host name to answer to (besides the bound address and localhost); "
                               "repeatable, '*' for any.")] = None,
    allowed_origin: Annotated[Optional[list[str]], typer.Option(
        "--allowed-origin", help="A web origin (https://ci.example) whose pages may call the API (CORS); "
                                 "repeatable.")] = None,
    allow_path: Annotated[Optional[list[Path]], typer.Option(
        "--allow-path", help="A folder whose files submissions may name by path (and export to); repeatable. "
                             "Default: none, only bundles and the example.")] = None,
    allow_code: Annotated[bool, typer.Option("--allow-code", help="Accept module:function DAGs and config classes "
                                             "from submissions (planned in a worker process).")] = False,
    plan_timeout: Annotated[float, typer.Option("--plan-timeout", min=1, help="Seconds a code-naming plan may "
                                                "take before its run fails.")] = 120.0,
    keep_runs: Annotated[Optional[int], typer.Option("--keep-runs", min=0, help="Keep the newest N finished runs; "
                                                     "older ones are removed.")] = None,
    keep_days: Annotated[Optional[float], typer.Option("--keep-days", min=0, help="Remove finished runs older "
                                                       "than D days.")] = None,
    max_upload_bytes: Annotated[int, typer.Option("--max-upload-bytes", min=1, help="Largest bundle upload; a "
                                                  "body is counted as it arrives.")] = 512 << 20,
) -> int:
    """Run rtest as a service: an HTTP API, a web page at /, one pool of step slots for every run."""
    from rtest.logs import configure_logging
    from rtest.serve.server import ServeOptions
    from rtest.serve.server import serve as run_service

    configure_logging("text", "warning")
    from rtest.options import LocalFlags

    bounds = LocalFlags(step_user=step_user, max_log_bytes=max_log_bytes)  # issue 14: as a local run checks them
    options = ServeOptions(host=host, port=port, workdir=workdir, slots=slots, token=token or None, backend=backend,
                           step_user=bounds.step_user, max_log_bytes=bounds.max_log_bytes,
                           no_token=no_token, allowed_hosts=tuple(allowed_host or ()),
                           allowed_origins=tuple(allowed_origin or ()), allow_paths=tuple(allow_path or ()),
                           allow_code=allow_code, plan_timeout_s=plan_timeout, keep_runs=keep_runs,
                           keep_days=keep_days, max_upload=max_upload_bytes, registry=registry)
    return run_service(options, announce=lambda text: out.print(text, highlight=False, soft_wrap=True))


def sandbox_run_remote(pipeline: PipelineOptions, flags: RunFlags, local: LocalFlags, service: ServiceFlags, *,
                       cancel: threading.Event) -> int:
    """`rtest sandbox run --server URL`: the same options, progress, reports and exit codes as a local run.

    The pipeline options travel as ONE user spec (``PipelineOptions.user_spec``, the merge a local run makes),
    the run flags as the request itself (``rtest.options.RunRequest``)."""
    from rtest.cli.preflight import check_interface_dirs
    from rtest.cli.progress import summary
    from rtest.cli.text import markup_safe
    from rtest.options import RunRequest
    from rtest.serve.client import ServiceClient
    from rtest.serve.remote import run_remote

    check_interface_dirs(pipeline.interfaces)  # checked here as a local run checks it: exit 2 before sending
    user = pipeline.user_spec()
    request = RunRequest(**dict(flags), example=pipeline.example)
    server = service.server
    assert server is not None  # run_sandbox sends a run here only with --server
    with ServiceClient(server, service.token) as client:
        view = RemoteView(server)
        try:
            outcome = run_remote(client, spec=user, request=request, workdir=pipeline.workdir, junit=local.junit,
                                 upload=service.upload, on_event=view.on_record, cancel=cancel)
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


class RemoteView:
    """The service's event records, shown as a local run shows its own events: warnings before the run, then
    the live status (fed the typed events, as LiveStatus.on is locally). Every text from the service is
    someone else's: it goes through markup_safe/plain."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.live: LiveStatus | None = None
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
    from rtest.serve.local import local_services

    if not server:  # one service running on this machine: that one
        found = local_services()
        if len(found) != 1:
            raise RtestError("No service given: pass --server URL or set RTEST_SERVER"
                             + (f" ({len(found)} services run on this machine)." if found else "."))
        server = found[0]
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


@runs_app.command("prune")
def prune_runs(server: ServerOpt = None, token: TokenOpt = None,
               keep_runs: Annotated[Optional[int], typer.Option("--keep-runs", min=0,
                                                                help="Keep the newest N finished runs.")] = None,
               keep_days: Annotated[Optional[float], typer.Option("--keep-days", min=0,
                                                                  help="Remove finished runs older than D days.")]
               = None) -> int:
    """Remove the service's old finished runs (registry rows, event logs, run folders)."""
    if keep_runs is None and keep_days is None:
        raise RtestError("Say what to keep: --keep-runs N, --keep-days D, or both.")
    with _client(server, token) as client:
        removed = client.prune(keep_runs, keep_days)
    out.print(plain(f"removed {len(removed)} run(s)"))
    return 0
