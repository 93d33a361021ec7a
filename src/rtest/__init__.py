"""rtest: run a SageMaker pipeline's real scripts locally, in SageMaker-shaped containers."""

from __future__ import annotations

from rtest.errors import RtestError
from rtest.version import __version__


def __getattr__(name: str):
    # Imported lazily so `rtest --version` and discovery stay fast.
    if name == "InteractiveRuntimeTestingFactory":
        from rtest.factory import InteractiveRuntimeTestingFactory

        return InteractiveRuntimeTestingFactory
    raise AttributeError(name)


__all__ = ["InteractiveRuntimeTestingFactory", "RtestError", "__version__"]
