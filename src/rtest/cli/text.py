"""Text from outside rtest (a step's log and failure reason, node and file names) made safe to show.

Two dangers: rich reads ``[...]`` as markup (``Hop[/x]`` raises MarkupError, and
``[upstream, downstream]`` silently vanishes), and a terminal obeys escape
sequences (set the title, clear the screen, rewrite earlier lines). Every string
that did not come from rtest itself goes through ``clean`` before a terminal
and through ``markup_safe`` before a rich markup string.
"""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text

from rtest.textclean import clean  # noqa: F401  (re-exported for the CLI)


def markup_safe(text: object) -> str:
    """``text`` cleaned and escaped, to embed in a rich markup string."""
    return escape(clean(text))


def plain(text: object, style: str = "") -> Text:
    """A rich Text cell that is never read as markup."""
    return Text(clean(text), style=style)
