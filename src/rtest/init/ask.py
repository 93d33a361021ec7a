"""Questions and answers for `rtest init`: a terminal with path completion, or one answer per line on stdin.

Every answer is validated at once; a refused answer says why and the question is asked again (from a
script, the next line is the next try). At the end of stdin a question takes its default, or stops init
with an error naming the question when it has none.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Callable
from typing import IO

from rich.console import Console

from rtest.errors import PlanError

# An answer check: the value to keep, or a sentence saying why it was refused.
Check = Callable[[str], "tuple[str | None, str | None]"]
MAX_TRIES = 20  # a script that keeps sending wrong answers stops instead of looping


class Asker:
    def __init__(self, console: Console, stream: IO[str] | None = None, *, terminal: bool | None = None) -> None:
        self.console = console
        self.stream = stream or sys.stdin
        self.terminal = self.stream.isatty() if terminal is None else terminal
        if self.terminal:
            _enable_path_completion()

    def ask(self, question: str, *, default: str | None = None, check: Check | None = None) -> str:
        shown = f"{question} [{default}]" if default else question
        for _ in range(MAX_TRIES):
            answer = self._read(shown)
            if answer is None:  # end of stdin
                if default is None:
                    raise PlanError(f"`rtest init` needed an answer to '{question}' but standard input ended.",
                                    hint="Give one answer per line, in the order the questions are asked.")
                answer = default
            answer = answer.strip() or (default or "")
            if not answer:
                self.console.print("  [red]an answer is needed here[/]", highlight=False)
                continue
            if check is None:
                return answer
            kept, refused = check(answer)
            if refused is None and kept is not None:
                return kept
            self.console.print(f"  [red]{_escape(refused or 'not a valid answer')}[/]", highlight=False)
        raise PlanError(f"`rtest init` got {MAX_TRIES} refused answers to '{question}'; stopping.")

    def confirm(self, question: str, default: bool = True) -> bool:
        def yes_no(text: str):
            lowered = text.lower()
            if lowered in ("y", "yes"):
                return "y", None
            if lowered in ("n", "no"):
                return "n", None
            return None, "answer y or n"
        return self.ask(question, default="y" if default else "n", check=yes_no) == "y"

    def choose(self, question: str, options: list[str], default: int = 1) -> int:
        """A 1-based pick from ``options`` (listed), returned 0-based."""
        for number, text in enumerate(options, 1):
            self.console.print(f"  {number}. {_escape(text)}", highlight=False)

        def pick(text: str):
            if text.isdigit() and 1 <= int(text) <= len(options):
                return text, None
            return None, f"answer a number from 1 to {len(options)}"
        return int(self.ask(question, default=str(default), check=pick)) - 1

    def _read(self, prompt: str) -> str | None:
        if self.terminal:
            try:
                return input(f"{prompt}: ")
            except EOFError:
                return None
        self.console.print(f"{_escape(prompt)}: ", end="", highlight=False)
        line = self.stream.readline()
        if not line:
            self.console.print("")
            return None
        self.console.print(_escape(line.rstrip("\n")), highlight=False)  # echo, so a transcript reads as a dialogue
        return line.rstrip("\n")


def _escape(text: str) -> str:
    from rtest.cli.text import markup_safe

    return markup_safe(text)


def _enable_path_completion() -> None:
    """Tab completes file and folder names where the terminal's readline allows it."""
    try:
        import readline
    except ImportError:  # no readline (some builds): plain input still works
        return

    def complete(text: str, state: int) -> str | None:
        matches = [m + ("/" if os.path.isdir(m) else "") for m in glob.glob(os.path.expanduser(text) + "*")]
        return sorted(matches)[state] if state < len(matches) else None

    readline.set_completer_delims(" \t\n")
    readline.set_completer(complete)
    readline.parse_and_bind("tab: complete")
