"""Step logs are capped: the first and the last half of the cap are kept, with one line saying what was dropped.

The bootstrap caps what the script prints as it runs (executor/bootstrap.py, RTEST_MAX_LOG_BYTES), so a
step printing gigabytes never fills the disk. But the log file is the step's to write (it is
mounted at /opt/rtest/log.txt), so the host caps it again after the step, the same way: what
a report, the service or a cache entry reads is never more than the cap.
"""

from __future__ import annotations

import os
from pathlib import Path

from rtest.run.untrusted import open_regular

DEFAULT_MAX_LOG_BYTES = 64 * 2**20
NOTE_SLACK = 512  # the dropped-bytes line itself: a log capped by the bootstrap is not capped twice
_CHUNK = 1 << 20


def dropped_line(dropped: int, cap: int) -> bytes:
    """Same words as the bootstrap's (executor/bootstrap.py dropped_note)."""
    return (f"\n[rtest] ... {dropped:,} bytes of output dropped here: the log keeps its first and last "
            f"{cap // 2:,} bytes (--max-log-bytes {cap:,}) ...\n").encode()


def cap_log(path: Path, max_bytes: int | None) -> int:
    """Cut the log at path to its head and tail when it is over max_bytes; returns the bytes dropped (0: unchanged).

    Called after the container is gone; the log is opened without following a link or blocking.
    """
    if not max_bytes or not path.exists():
        return 0
    scratch = path.with_name(f".{path.name}.capped")
    try:
        with open_regular(path, "the step's log") as (fd, st):
            if st.st_size <= max_bytes + NOTE_SLACK:
                return 0
            head, tail = max_bytes - max_bytes // 2, max_bytes // 2
            dropped = st.st_size - head - tail
            out = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            try:
                _copy_range(fd, out, 0, head)
                os.write(out, dropped_line(dropped, max_bytes))
                _copy_range(fd, out, st.st_size - tail, tail)
            finally:
                os.close(out)
        os.replace(scratch, path)
    finally:
        scratch.unlink(missing_ok=True)
    return dropped


def _copy_range(src: int, dst: int, offset: int, count: int) -> None:
    while count > 0:
        chunk = os.pread(src, min(count, _CHUNK), offset)
        if not chunk:
            return
        os.write(dst, chunk)
        offset, count = offset + len(chunk), count - len(chunk)
