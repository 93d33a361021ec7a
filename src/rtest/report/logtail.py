"""The last lines of a step's log, read without loading the whole file.

Step logs can be gigabytes (a training script printing every batch); reports
and the CLI only ever want the end, so we seek backwards in blocks.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from rtest.textclean import clean

_BLOCK = 8192
DEFAULT_MAX_BYTES = 64 * 1024  # a log with one endless line must not flood a report



def log_tail(path: str | Path | None, lines: int = 50, *, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """Return the last ``lines`` lines of ``path`` ("" when there is no such file).

    At most ``max_bytes`` are read from the end; bytes that are not UTF-8 are
    replaced rather than raising, since logs hold whatever a script printed.
    """
    if path is None or lines <= 0:
        return ""
    try:
        # A step's log is its own text: never follow a link there, never block on a FIFO.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return ""
            data = _read_tail_bytes(handle, lines, max_bytes)
    except OSError:  # missing, a folder, a link, unreadable
        return ""
    text = data.decode("utf-8", errors="replace")
    kept = text.splitlines()[-lines:]
    return "\n".join(kept)


def _read_tail_bytes(handle, lines: int, max_bytes: int) -> bytes:
    end = handle.seek(0, 2)
    start_limit = max(0, end - max_bytes)
    position, chunks, newlines = end, [], 0
    # One newline more than asked: the file's final "\n" ends the last line, it does not start one.
    while position > start_limit and newlines <= lines:
        step = min(_BLOCK, position - start_limit)
        position -= step
        handle.seek(position)
        chunk = handle.read(step)
        chunks.append(chunk)
        newlines += chunk.count(b"\n")
    # A first line cut by the byte cap is kept: a partial line beats nothing for one huge line.
    return b"".join(reversed(chunks))


def strip_ansi(text: str) -> str:
    """Drop terminal control sequences and characters, which render as garbage in XML and HTML."""
    return clean(text)
