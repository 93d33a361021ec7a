"""Text a step wrote (log lines, failure reasons) or a user named (nodes, files), without control sequences.

A terminal obeys escape sequences (set the title, clear the screen, rewrite earlier
lines) and XML/HTML readers choke on control characters, so every layer that shows
such text (the CLI, the reports, the failure diagnosis) cleans it here first.
"""

from __future__ import annotations

import re

# OSC (ESC ] ... BEL or ESC \), CSI (ESC [ params final), other two-byte ESC sequences,
# then any single C0 control but tab and newline, DEL, and the C1 controls (U+0080-U+009F, 8-bit CSI among them).
_CONTROL = re.compile(
    r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b\[[0-?]*[ -/]*[@-~]?"
    r"|\x1b[ -~]?"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
    r"|[\ud800-\udfff]"  # lone surrogates (a "\ud800" in a JSON file): a UTF-8 terminal stream cannot even encode them
)


def clean(text: object) -> str:
    """``text`` without terminal control sequences or control characters (tab and newline stay)."""
    return _CONTROL.sub("", str(text))
