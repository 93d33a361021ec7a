"""rtest's version, for modules that must not import the package root."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rtest")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+local"
