"""Sizes as users write them (512m, 2g, 100g) and the step user: --memory, --max-output-bytes, --max-log-bytes,
--step-user, each refused in one sentence."""

from __future__ import annotations

import re

from rtest.errors import OptionError

MIN_MEMORY_BYTES = 6 * 2**20  # Docker refuses a memory limit below 6 MiB; anything smaller is a typo, not a limit
MAX_MEMORY_BYTES = 2**50  # a PiB: beyond that the number is a typo
_SIZE = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[kmgt]?)(?:i?b)?", re.IGNORECASE)
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_memory(text: str | None) -> int | None:
    """``--memory 512m`` -> bytes; None when not given."""
    if text is None:
        return None
    found = _SIZE.fullmatch(text.strip())
    if not found:
        raise OptionError(f"--memory {text!r} is not a size; write it like 512m or 2g.")
    size = float(found["number"]) * _UNITS[found["unit"].lower()]
    if not size < MAX_MEMORY_BYTES:  # also inf, from a number too long for a float
        raise OptionError(f"--memory {text[:40]!r} is larger than any machine's memory; write it like 512m or 2g.")
    nbytes = int(size)
    if nbytes < MIN_MEMORY_BYTES:
        raise OptionError(
            f"--memory {text!r} is {nbytes} bytes, below the 6m a container needs to start; write it like 512m or 2g."
        )
    return nbytes


def parse_output_bytes(text: str) -> int:
    found = _SIZE.fullmatch(text.strip())
    if not found or float(found["number"]) * _UNITS[found["unit"].lower()] < 1:
        raise OptionError(f"--max-output-bytes {text[:40]!r} is not a size; write it like 500m or 100g.")
    return int(min(float(found["number"]) * _UNITS[found["unit"].lower()], 2**62))


def parse_log_bytes(text: str) -> int:
    """--max-log-bytes: at least 4 KiB, so a traceback still fits."""
    found = _SIZE.fullmatch(text.strip())
    size = float(found["number"]) * _UNITS[found["unit"].lower()] if found else 0
    if not 4096 <= size < MAX_MEMORY_BYTES:
        raise OptionError(f"--max-log-bytes {text[:40]!r} is not a size of at least 4k; write it like 64m or 1g.")
    return int(size)


_STEP_USER = re.compile(r"(?P<uid>\d{1,10}):(?P<gid>\d{1,10})")


def parse_step_user(text: str) -> str:
    """--step-user UID:GID, numeric, never root: steps never run as uid 0."""
    found = _STEP_USER.fullmatch(text.strip())
    if not found or max(int(found["uid"]), int(found["gid"])) >= 2**32 - 1:
        raise OptionError(f"--step-user {text[:40]!r} is not UID:GID; write it like 65534:65534 (numbers, "
                          "as the image may not know your names).")
    if int(found["uid"]) == 0:
        raise OptionError("--step-user 0:... would run steps as root, which rtest never does; "
                          "choose an unprivileged uid such as 65534:65534.")
    return f"{int(found['uid'])}:{int(found['gid'])}"
