"""rtest: run a SageMaker pipeline's real scripts locally, in SageMaker-shaped containers."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rtest")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+local"

from rtest.errors import RtestError  # noqa: E402


def __getattr__(name: str):
    # Imported lazily so `rtest --version` and discovery stay fast.
    if name == "InteractiveRuntimeTestingFactory":
        from rtest.factory import InteractiveRuntimeTestingFactory

        return InteractiveRuntimeTestingFactory
    raise AttributeError(name)


__all__ = ["InteractiveRuntimeTestingFactory", "RtestError", "__version__"]
