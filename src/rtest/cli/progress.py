"""Live per-step status while a run goes on, and the summary table after it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from rtest.cli.text import markup_safe, plain
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


def check_summary(check) -> str:
    """The inference check's one line (its module, with the run layout behind it, only when a run has one)."""
    from rtest.run.inference_results import summary as one_line

    return one_line(check)


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


def print_synthesized(console: Console, plan) -> None:
    """What --synthesize-inputs made, and from what (issue 19)."""
    for item in getattr(plan, "synthesized", []):
        from rtest.synth.apply import describe  # only when something was synthesized

        console.print(f"[cyan]synthesized:[/] {markup_safe(describe(item))}", highlight=False)


class ConsoleObserver:
    """`rtest sandbox run`'s view of the one run path (rtest.session.run_request): plan warnings and notes, the
    run id, a progress bar per dependency image, then the live status, with Ctrl-C turned into ``cancel``."""

    def __init__(self, console: Console, cancel: threading.Event) -> None:
        self.console = console
        self.cancel = cancel

    def planned(self, plan) -> None:
        print_synthesized(self.console, plan)
        for warning in plan.warnings:  # guessed or missing values: the run may differ from the real pipeline's
            self.console.print(f"[bold yellow]warning:[/] {markup_safe(warning.message)}", highlight=False)
        for note in plan.notes:  # weak or missing wiring: worth knowing before minutes of running
            self.console.print(f"[yellow]note:[/] {markup_safe(note)}", highlight=False)

    def warning(self, message: str) -> None:
        self.console.print(f"[bold yellow]warning:[/] {markup_safe(message)}", highlight=False)

    def starting(self, run_id: str) -> None:  # printed now, so a user whose rtest was killed can still clean up
        self.console.print(f"Run {run_id} started; if rtest is killed, `rtest sandbox clean --run-id {run_id}` "
                           "removes its containers.", highlight=False)

    @contextmanager
    def deps_progress(self) -> Iterator[Callable[[str, int, int, str], None]]:
        """Bars only once an image is really built: a run whose images are all there never loads rich.progress."""
        bars: Any = None
        tasks: dict[str, Any] = {}
        lock = threading.Lock()  # images are built in parallel: one set of bars

        def progress(tag: str, done: int, total: int, line: str) -> None:
            nonlocal bars
            from rich.markup import escape

            with lock:
                if bars is None:
                    bars = _progress_bars(self.console)
                    bars.start()
                if tag not in tasks:
                    tasks[tag] = bars.add_task("", total=total, tag=tag, line="")
            bars.update(tasks[tag], completed=done, total=total, line=escape(line[:60]))

        try:
            yield progress
        finally:
            if bars is not None:
                bars.stop()

    def deps_built(self, tags: list[str]) -> None:
        """Shown by the progress bars already."""

    @contextmanager
    def running(self, plan) -> Iterator[list]:
        from rtest.cli.interrupt import trapped

        with trapped(self.cancel), LiveStatus(self.console, plan.execution_order()) as live:
            yield [live.on]


def _progress_bars(console: Console) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("[bold]building[/] {task.fields[tag]}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("[dim]{task.fields[line]}"))
    return Progress(*columns, console=console, transient=False)
