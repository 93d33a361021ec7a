"""One exception family for everything a user can fix.

Each message is a finished sentence naming the file, node or field at fault and
what to do about it. Only the CLI turns these into coloured output and exit
codes; library callers catch ``RtestError``.
"""

from __future__ import annotations


class RtestError(Exception):
    """Base of every error rtest raises on purpose. ``str(err)`` is user-ready."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} {self.hint}"


class DagError(RtestError):
    """The DAG file or object is malformed, cyclic or inconsistent."""


class ConfigError(RtestError):
    """The pipeline config cannot be read or is inconsistent."""


class ConfigNotFoundError(ConfigError, FileNotFoundError):
    """The config file is not there: an RtestError for rtest's callers, a FileNotFoundError for Python's."""


class DagNotFoundError(DagError, FileNotFoundError):
    """The DAG file is not there (see ConfigNotFoundError)."""


class InterfaceError(RtestError):
    """A step interface file is malformed."""


class DiscoveryError(RtestError):
    """A node names a script that cannot be found."""


class PlanError(RtestError):
    """The plan cannot be completed (missing inputs, bad overrides)."""


class SpecFileError(RtestError):
    """A user spec file (YAML/JSON) is malformed."""


class SpecFileNotFoundError(SpecFileError, FileNotFoundError):
    """The spec file is not there (see ConfigNotFoundError)."""


class ReportError(RtestError):
    """A report file cannot be read back."""


class ImageError(RtestError):
    """An image is missing or cannot be built."""


class EngineUnavailableError(RtestError):
    """No container engine answers."""

    exit_code = 3


class ImageNotFoundError(ImageError):
    """A step's image is not present in the engine."""


class UntrustedOutputError(RtestError):
    """What a step left behind breaks rtest's rules for untrusted files (links out, FIFOs, caps); the step fails."""

    exit_code = 1


class RunFaultError(RtestError):
    """The host failed rtest during a run (disk full, workdir removed); the run ends with exit 1."""

    exit_code = 1
