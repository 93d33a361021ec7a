"""Live per-step status while a run goes on, and the summary table after it."""

from __future__ import annotations

import threading
import time

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from rtest.run.model import RunReport, StepResult, StepStatus

STYLE = {
    StepStatus.PENDING: "dim",
    StepStatus.RUNNING: "bold cyan",
    StepStatus.SUCCEEDED: "green",
    StepStatus.CACHED: "blue",
    StepStatus.FAILED: "bold red",
    StepStatus.UPSTREAM_FAILED: "yellow",
    StepStatus.CANCELLED: "magenta",
}


class LiveStatus:
    """One status line per step; on a terminal it redraws, elsewhere it prints one line per change."""

    def __init__(self, console: Console, order: list[str]) -> None:
        self.console = console
        self.status = {node: StepStatus.PENDING for node in order}
        self.started: dict[str, float] = {}
        self.lock = threading.Lock()
        self.live = Live(console=console, refresh_per_second=4, get_renderable=self._render, transient=True) if console.is_terminal else None

    def __enter__(self) -> LiveStatus:
        if self.live:
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live:
            self.live.__exit__(*exc)

    def event(self, node: str, status: StepStatus, result: StepResult | None) -> None:
        with self.lock:
            self.status[node] = status
            if status is StepStatus.RUNNING:
                self.started[node] = time.monotonic()
        if not self.live:
            took = f" in {result.duration_s:.1f}s" if result and status.finished else ""
            self.console.print(f"[{STYLE[status]}]{status.value:>15}[/] {node}{took}", highlight=False)

    def _render(self) -> Table:
        table = Table.grid(padding=(0, 2))
        now = time.monotonic()
        with self.lock:
            for node, status in self.status.items():
                elapsed = f"{now - self.started[node]:.1f}s" if status is StepStatus.RUNNING and node in self.started else ""
                table.add_row(Text(status.value, style=STYLE[status]), node, elapsed)
        return table


def summary(report: RunReport, tails: dict[str, str]) -> Group:
    table = Table(title=f"run {report.run_id}", title_justify="left")
    for column in ("step", "status", "duration", "exit", "reason"):
        table.add_column(column, overflow="fold")
    for node, result in report.steps.items():
        reason = (result.failure_reason or "").strip().splitlines()
        table.add_row(
            node,
            Text(result.status.value, style=STYLE[result.status]),
            f"{result.duration_s:.1f}s",
            "" if result.exit_code is None else str(result.exit_code),
            reason[-1] if reason else (f"{result.warning_count} warning(s) in its log" if result.warning_count else ""),
        )
    parts: list = [table]
    for node, why in report.skipped_nodes.items():
        parts.append(Text(f"skipped {node}: {why}", style="dim"))
    for node, tail in tails.items():
        parts.append(Panel(Text(tail), title=f"{node}: last lines of its log", border_style="red", title_align="left"))
    return Group(*parts)
