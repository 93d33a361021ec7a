"""Copying a file's data and not its holes: a 2 GiB sparse output stays a few blocks per consumer's copy.

``data_ranges`` finds the parts that hold data with SEEK_DATA/SEEK_HOLE (a file system without them is
read whole); ``copy_range`` copies one part to the same offset of the copy, in the kernel
(copy_file_range, or sendfile where that is refused). The caller truncates the copy to the file's size,
which leaves a trailing hole a hole.
"""

from __future__ import annotations

import errno
import os
from typing import Iterator


def data_ranges(fd: int, size: int, st: os.stat_result) -> Iterator[tuple[int, int]]:
    """(start, end) of the parts of a file that hold data; one range for a file without holes."""
    if st.st_blocks * 512 >= size:  # fully allocated: no hole worth looking for
        yield 0, size
        return
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # nothing but a hole to the end
                return
            yield offset, size  # no SEEK_DATA on this file system: copy it all
            return
        if start >= size:
            return
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        yield start, end
        offset = end


def copy_range(src: int, dst: int, offset: int, count: int) -> None:
    """count bytes of src from offset to the same offset of dst (the kernel copies; sendfile where it cannot)."""
    os.lseek(dst, offset, os.SEEK_SET)
    while count > 0:
        try:
            sent = os.copy_file_range(src, dst, min(count, 1 << 30), offset)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            sent = os.sendfile(dst, src, offset, min(count, 1 << 30))
        if sent == 0:
            return
        offset, count = offset + sent, count - sent
