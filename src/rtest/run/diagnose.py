"""Why a step failed, in one line, and what a successful step warned about.

The reason is the exception line of the last traceback (``ModuleNotFoundError:
No module named 'x'``), not whatever line happened to come last. A failure that
shows the script reaching for the network while the step runs with network
``none`` says so, with the two ways out. A step that succeeded while logging
warnings gets their count and (a bounded number of) their lines.

The log is the script's own output: untrusted. It is read from its end, at most
``MAX_LOG_BYTES``, never following a link and never blocking on a FIFO.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from rtest.run.untrusted import read_small_text
from rtest.textclean import clean

MAX_LOG_BYTES = 64 * 1024
PIP_NOT_FOUND = re.compile(
    r"(?:No matching distribution found for|Could not find a version that satisfies the requirement) ([^\s(]+)"
)
MAX_WARNING_LINES = 20
MAX_LINE_CHARS = 300
TRACEBACK_HEADER = "Traceback (most recent call last):"
FRAME_LINE = re.compile(r'^  File "', re.M)
RTEST_NOTE = "[rtest] "  # the bootstrap's own lines in the log
BOOTSTRAP_FALLBACK = re.compile(r"^Script \S+ exited with code -?\d+")

# A Python exception line: a (dotted) class name, optionally ": message". SyntaxError and friends included.
EXCEPTION_LINE = re.compile(
    r"^(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt|Warning|Failure|Timeout)\b(?::.*)?$"
)
# What a script reaching for the network leaves behind: pip, DNS, sockets, urllib, requests, boto3.
NETWORK_SIGNS = re.compile(
    r"Retrying \(Retry\(total=|Could not find a version that satisfies|No matching distribution found"
    r"|Temporary failure in name resolution|Name or service not known|Network is unreachable"
    r"|Failed to establish a new "
    r"connection|urllib\.error\.URLError|urllib3\.exceptions\.\w*(?:Connection|NameResolution)\w*"
    r"|requests\.exceptions\.ConnectionError|ConnectionError: |EndpointConnectionError|Could not connect to the "
    r"endpoint URL"
)
# A Python warning ("x.py:3: FutureWarning: ...", "UserWarning: ...") or a WARNING log line.
WARNING_LINE = re.compile(
    r"\b[A-Z]\w*Warning: |^WARNING\b|^\S*\s*-?\s*WARNING\s*[-:]|\[WARNING\]|\bWARNING:|\s-\s+WARNING\s+-\s"
)  # the last: "%(asctime)s - %(name)s - %(levelname)s - %(message)s", the format scripts' logging.basicConfig use
# pip's own notices when a script installs packages as root: the tool talking, not the script (issue 15.6).
PIP_NOTICE = re.compile(r"^WARNING: (?:Running pip as the 'root' user|You are using pip version|The directory '.*' "
                        r"or its parent directory is not owned|The scripts? .* (?:is|are) installed in )")


@dataclass(frozen=True)
class Warnings:
    count: int = 0
    lines: list[str] = field(default_factory=list)  # the first MAX_WARNING_LINES, each cut at MAX_LINE_CHARS


def read_log_tail(path: Path | str, max_bytes: int = MAX_LOG_BYTES) -> str:
    """The end of a log file as text; "" when it is missing, not a regular file, or a link."""
    text, _ = read_small_text(Path(path), max_bytes, shown_as="the step's log", tail=True)
    return clean(text or "")


def exception_line(text: str) -> str | None:
    """The exception line of the LAST traceback in ``text`` (the one that ended the script), else None.

    Read from the last frame line on, so a traceback whose head was cut off still gives it.
    """
    frames = [m.start() for m in FRAME_LINE.finditer(text)]
    start = max(text.rfind(TRACEBACK_HEADER), frames[-1] if frames else -1)
    if start < 0:
        return None
    for line in text[start:].splitlines()[1:]:
        if line.strip() and not line[:1].isspace():  # frames and code lines are indented; the exception is not
            return line.strip()[:MAX_LINE_CHARS] if EXCEPTION_LINE.match(line.strip()) else None
    return None


def network_attempt(text: str) -> str | None:
    """The first line showing the script tried to reach the network, else None."""
    for line in text.splitlines():
        if NETWORK_SIGNS.search(line) and not line.startswith(RTEST_NOTE):
            return line.strip()[:MAX_LINE_CHARS]
    return None


def network_hint(attempt: str) -> str:
    return (f"it tried to reach the network ({attempt}) but the step runs with network none; pass --network bridge, "
            "or give the step its packages with `rtest deps` so it needs none")


def failure_reason(failure_text: str | None, log_text: str, network: str, entry_point: str, exit_code: int | None,
                   node: str = "NODE") -> str:
    """One line: the script's own failure text, else the exception line, else the exit code; plus a hint when
    pip found no wheel or the script tried to reach the network."""
    written = (failure_text or "").strip()
    traceback = TRACEBACK_HEADER in written or FRAME_LINE.search(written) is not None
    if written and not traceback and not BOOTSTRAP_FALLBACK.match(written.lstrip(".")):
        reason = written  # the script wrote its own reason: its words win
    else:
        reason = exception_line(written) or exception_line(log_text) or _exit_and_last_line(
            written, log_text, entry_point, exit_code)
    if network != "none":
        return reason
    missing = PIP_NOT_FOUND.search(log_text)
    pip_offline = "Looking in links" in log_text and "Retrying (Retry(" not in log_text  # rtest's wheelhouse only
    attempt = network_attempt(log_text) or network_attempt(written)
    if missing and pip_offline:  # an install the dependency scan could not see
        package = missing.group(1).strip("'\"")
        return (f"pip could not find {package} in the step's wheelhouse (a step has no package index); add it with "
                f"`rtest deps --add {node} '{package}'` or under scripts.{node}.requirements in the spec file "
                f"({reason.rstrip('.')})")
    if attempt:
        return f"{reason.rstrip('.')}; {network_hint(attempt)}"
    return reason


def _exit_and_last_line(written: str, log_text: str, entry_point: str, exit_code: int | None) -> str:
    """No traceback: the exit code, and the last line the script printed (usually its own complaint)."""
    first = written.splitlines()[0].split("; last lines")[0] if written else ""
    head = first or f"script {entry_point} exited with code {exit_code}"
    printed = [line.strip() for line in log_text.splitlines() if line.strip() and not line.startswith(RTEST_NOTE)]
    return f"{head}: {printed[-1][:MAX_LINE_CHARS]}" if printed else head


def warnings_in(log_text: str) -> Warnings:
    """Warning lines a step logged (Python warnings, WARNING log records), counted and bounded."""
    found = [
        line.strip() for line in log_text.splitlines()
        if WARNING_LINE.search(line) and not line.startswith(RTEST_NOTE) and not PIP_NOTICE.match(line.strip())
    ]
    return Warnings(count=len(found), lines=[line[:MAX_LINE_CHARS] for line in found[:MAX_WARNING_LINES]])
