"""Live per-step status while a run goes on, and the summary table after it."""

from __future__ import annotations

import threading
import time

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from rtest.cli.text import markup_safe, plain
from rtest.run.inference_results import summary as check_summary
from rtest.run.model import RunReport, StepResult, StepStatus

STYLE = {
    StepStatus.PENDING: "dim",
    StepStatus.RUNNING: "bold cyan",
    StepStatus.SUCCEEDED: "green",
    StepStatus.CACHED: "blue",
    StepStatus.FAILED: "bold red",
    StepStatus.UPSTREAM_FAILED: "yellow",
    StepStatus.CANCELLED: "magenta",
    StepStatus.SKIPPED: "dim",
    StepStatus.REUSED: "blue",
}


class LiveStatus:
    """One status line per step; on a terminal it redraws, elsewhere it prints one line per change."""

    def __init__(self, console: Console, order: list[str]) -> None:
        self.console = console
        self.status = {node: StepStatus.PENDING for node in order}
        self.started: dict[str, float] = {}
        self.lock = threading.Lock()
        self.live = (Live(console=console, refresh_per_second=4, get_renderable=self._render, transient=True)
                     if console.is_terminal else None)

    def __enter__(self) -> LiveStatus:
        if self.live:
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live:
            self.live.__exit__(*exc)

    def on(self, event) -> None:
        """Subscriber to a run's events (rtest.run.events): a queued step shows as running."""
        from rtest.run.events import StepFinished, StepQueued

        if isinstance(event, StepQueued):
            self.event(event.node, StepStatus.RUNNING, None)
        elif isinstance(event, StepFinished):
            self.event(event.node, event.result.status, event.result)

    def event(self, node: str, status: StepStatus, result: StepResult | None) -> None:
        with self.lock:
            self.status[node] = status
            if status is StepStatus.RUNNING:
                self.started[node] = time.monotonic()
        if not self.live:
            took = f" in {result.duration_s:.1f}s" if result and status.finished else ""
            took += f" ({check_summary(result.inference_check)})" if result and result.inference_check else ""
            self.console.print(f"[{STYLE[status]}]{status.value:>15}[/] {markup_safe(node)}{took}", highlight=False)

    def _render(self) -> Table:
        table = Table.grid(padding=(0, 2))
        now = time.monotonic()
        with self.lock:
            for node, status in self.status.items():
                running = status is StepStatus.RUNNING and node in self.started
                elapsed = f"{now - self.started[node]:.1f}s" if running else ""
                table.add_row(Text(status.value, style=STYLE[status]), plain(node), elapsed)
        return table


def summary(report: RunReport, tails: dict[str, str]) -> Group:
    table = Table(title=f"run {markup_safe(report.run_id)}", title_justify="left")
    for column in ("step", "status", "duration", "exit", "reason"):
        table.add_column(column, overflow="fold")
    for node, result in report.steps.items():
        reason = (result.failure_reason or "").strip().splitlines()
        table.add_row(  # node names and reasons come from the user's DAG and the step: plain text only
            plain(node),
            Text(result.status.value, style=STYLE[result.status]),
            f"{result.duration_s:.1f}s",
            "" if result.exit_code is None else str(result.exit_code),
            plain(
                reason[-1]
                if reason
                else check_summary(result.inference_check) if result.inference_check
                else (f"{result.warning_count} warning(s) in its log" if result.warning_count else "")
            ),
        )
    parts: list = [table]
    for node, why in report.skipped_nodes.items():
        parts.append(plain(f"skipped {node}: {why}", style="dim"))
    for node, tail in tails.items():
        parts.append(
            Panel(
                plain(tail), title=f"{markup_safe(node)}: last lines of its log", border_style="red", title_align="left"
            )
        )
    return Group(*parts)
