"""structlog set-up: human-readable by default, JSON lines for machines."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from structlog.typing import EventDict, Processor

_quiet_default = False  # True while the only set-up is the factory's silent one


def configure_logging(fmt: str = "text", level: str = "warning") -> None:
    global _quiet_default
    _quiet_default = False
    if fmt == "json":
        renderer: Processor = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.format_exc_info if fmt == "json" else structlog.dev.set_exc_info,
            *([] if fmt == "json" else [_clean_for_terminal]),  # JSON escapes control characters itself
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), logging.WARNING)),
        logger_factory=_StderrLogger,
        cache_logger_on_first_use=False,
    )


def ensure_logging() -> None:
    """The default set-up, unless a command already chose one (`sandbox run --log-format json`)."""
    if not structlog.is_configured() or _quiet_default:
        configure_logging()


def quiet_unless_configured() -> None:
    """The factory's set-up: in a notebook or script no log lines appear unless the caller asked for them
    (by calling ``configure_logging(level="info")`` first); outcomes come back as values instead."""
    global _quiet_default
    if not structlog.is_configured():
        configure_logging(level="critical")
        _quiet_default = True


class _StderrLogger:
    """Prints to whatever sys.stderr is at the moment of the call, never a stream bound at set-up
    (an embedding program, or a test harness, may swap and close stderr between runs)."""

    def __init__(self, *args: object) -> None:
        pass

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


def _clean_for_terminal(logger: Any, method: str, event_dict: EventDict) -> EventDict:  # noqa: ARG001 - structlog's processor signature
    """Log values quote step output (reasons, names): no escape sequences may reach the terminal."""
    from rtest.textclean import clean

    return {key: clean(value) if isinstance(value, str) else value for key, value in event_dict.items()}
