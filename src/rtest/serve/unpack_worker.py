"""Unpacking an uploaded bundle in a child process: ``python -m rtest.serve.unpack_worker ARCHIVE TARGET``.

The service starts one per upload, with CPU-time and memory limits, so a hostile archive costs this
process, never the service. It imports only the tar checks (no pydantic, no planner, no asyncio):
every upload pays for its start. Exit 3 with one sentence on stderr when the archive is refused.
"""

from __future__ import annotations

import sys
from pathlib import Path

UNPACK_CPU_S = 60
UNPACK_MEMORY = 1 << 30


def main(archive: str, target: str) -> int:
    from rtest.serve.bundle import MAX_BYTES, MAX_FILES, BundleError, unpack
    from rtest.serve.limits import limit_self

    limit_self(UNPACK_CPU_S, UNPACK_MEMORY)
    try:
        unpack(Path(archive), Path(target), max_bytes=MAX_BYTES, max_files=MAX_FILES)
    except BundleError as exc:
        print(str(exc).replace(str(Path(target).parent), "<submission>"), file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
