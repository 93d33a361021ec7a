"""rtest's version, for modules that must not import the package root.

A literal (pyproject.toml reads it: `[tool.hatch.version]`), not importlib.metadata, which alone took
30 ms of every `rtest --version`.
"""

from __future__ import annotations

__version__ = "0.1.0"
