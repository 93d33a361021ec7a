"""Parsing Python source with ``ast``, one parse at a time in this process.

CPython 3.11 and 3.12 keep the AST constructor's recursion depth in state shared by every thread: two
threads turning source into ``ast`` objects at once (rtest's runner computes the steps' cache keys, and the
dependency scan reads scripts, on worker threads) can fail with ``SystemError: AST constructor recursion
depth mismatch`` (python/cpython#106905), which failed a step here. A parse takes milliseconds; a lock
costs nothing that matters.
"""

from __future__ import annotations

import ast
import threading

_ONE_AT_A_TIME = threading.Lock()


def parse_module(source: str | bytes, filename: str = "<unknown>") -> ast.Module:
    """``ast.parse``; raises what it raises (SyntaxError, ValueError)."""
    with _ONE_AT_A_TIME:
        return ast.parse(source, filename=filename)
