"""Text from outside rtest (a step's log and failure reason, node and file names) made safe to show.

Two dangers: rich reads ``[...]`` as markup (``Hop[/x]`` raises MarkupError, and
``[upstream, downstream]`` silently vanishes), and a terminal obeys escape
sequences (set the title, clear the screen, rewrite earlier lines). Every string
that did not come from rtest itself goes through ``clean`` before a terminal
and through ``markup_safe`` before a rich markup string.
"""

from __future__ import annotations

import re

from rich.markup import escape
from rich.text import Text

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


def markup_safe(text: object) -> str:
    """``text`` cleaned and escaped, to embed in a rich markup string."""
    return escape(clean(text))


def plain(text: object, style: str = "") -> Text:
    """A rich Text cell that is never read as markup."""
    return Text(clean(text), style=style)
