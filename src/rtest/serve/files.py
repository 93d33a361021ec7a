"""Reading what a run wrote, for the API: strictly under the run's own folder, never through a link.

Everything in a run folder was written by untrusted scripts. Paths are walked one component
at a time with ``O_NOFOLLOW`` relative to the parent's descriptor, so a link anywhere on the
way is refused (not followed), and files are opened non-blocking so a FIFO cannot hang us.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

CHUNK = 64 * 1024


class NotServable(Exception):
    """The path is outside the run, a link, missing, or not a regular file or folder."""


def open_under(root: Path, relative: str) -> int:
    """A descriptor for ``root/relative`` (a file or a folder); raises NotServable."""
    parts = PurePosixPath(relative).parts if relative else ()
    if any(part in ("..", "") or "\\" in part for part in parts) or relative.startswith("/"):
        raise NotServable(f"'{relative}' is not a path inside the run")
    parts = tuple(part for part in parts if part != ".")
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        raise NotServable("the run has no folder") from exc
    try:
        for part in parts[:-1]:
            nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = nxt
        if parts:
            nxt = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
            os.close(fd)
            fd = nxt
    except OSError as exc:
        os.close(fd)
        raise NotServable(f"'{relative}' is missing or a link") from exc
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        os.close(fd)
        raise NotServable(f"'{relative}' is not a regular file")
    return fd


def is_dir(fd: int) -> bool:
    return stat.S_ISDIR(os.fstat(fd).st_mode)


def listing(fd: int) -> list[dict]:
    """The entries of an open folder (links shown as links, never followed)."""
    entries = []
    for name in sorted(os.listdir(fd))[:10_000]:
        info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        kind = "dir" if stat.S_ISDIR(info.st_mode) else "file" if stat.S_ISREG(info.st_mode) else "other"
        entries.append({"name": name, "type": kind, "size": info.st_size if kind == "file" else None})
    os.close(fd)
    return entries


def read_range(fd: int, offset: int, limit: int) -> bytes:
    """At most ``limit`` bytes from ``offset``; closes nothing."""
    return os.pread(fd, limit, offset)


def stream(fd: int) -> Iterator[bytes]:
    try:
        while chunk := os.read(fd, CHUNK):
            yield chunk
    finally:
        os.close(fd)


def tail_offset(fd: int, lines: int, window: int = CHUNK * 4) -> int:
    """Where the last ``lines`` lines start, looking back at most ``window`` bytes."""
    size = os.fstat(fd).st_size
    start = max(0, size - window)
    data = os.pread(fd, size - start, start)
    cut = len(data)
    for _ in range(lines + (1 if data.endswith(b"\n") else 0)):
        cut = data.rfind(b"\n", 0, cut)
        if cut < 0:
            return start
    return start + cut + 1
