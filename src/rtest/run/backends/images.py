"""The image-store capability of a backend: what rtest asks of the engine about images, never about steps.

``Backend.images`` returns one (or None for a backend with no images of its own, e.g. the tests'
fake). Dependency images (``rtest.deps``), the look-alike builds (``rtest.imagebuild``) and the image
commands (`rtest sandbox images`, `rtest deps`) go through it, so only a backend module talks to its
engine's client. Every method speaks in plain values: refs, ids, labels, host folders, exit codes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Literal, Protocol, runtime_checkable

from rtest.run.backends.base import Mount

LineSink = Callable[[str], None]
Removal = Literal["removed", "missing", "in-use"]


@dataclass(frozen=True)
class ImageRecord:
    """One image as a listing shows it."""

    id: str
    tags: list[str]
    labels: dict[str, str] = field(default_factory=dict)
    size: int | None = None
    created: str | None = None  # the engine's RFC 3339 time


@dataclass(frozen=True)
class CommandRun:
    """How a short command in a container of an image ended: its exit code and its last output."""

    exit_code: int
    output: str


@dataclass(frozen=True)
class Confinement:
    """Limits for a command that runs code rtest did not write (an sdist's build)."""

    memory_bytes: int | None = None
    pids_limit: int | None = None
    drop_privileges: bool = False  # every capability dropped, no-new-privileges


@runtime_checkable
class ImageStore(Protocol):
    """Images of one engine (or a cluster's manager): look up, run a short command in, commit, list, remove, build."""

    def image_id(self, ref: str) -> str:
        """The image's content id; raises ImageNotFoundError when it is missing."""

    def exists(self, ref: str) -> bool:
        ...

    def labels(self, ref: str) -> dict[str, str] | None:
        """The image's labels; None when it is missing."""

    def config(self, ref: str) -> dict:
        """The image's run configuration (``User``, ``Cmd``, ...), as the engine reports it."""

    def run_command(self, ref: str, command: list[str], *, user: str | None = None, mounts: Iterable[Mount] = (),
                    environment: dict[str, str] | None = None, labels: dict[str, str] | None = None,
                    confinement: Confinement | None = None, timeout_s: float | None = None,
                    on_line: LineSink | None = None, stdout_only: bool = False, tail: int | None = None,
                    commit_as: str | None = None, commit_changes: list[str] | None = None) -> CommandRun:
        """Run ``command`` in a new container of ``ref`` with no network, wait (killed after ``timeout_s``:
        exit 124), read its output (``on_line`` per line as it comes; ``tail`` last lines), commit it as
        ``commit_as`` when it exited 0, remove it. Raises ImageNotFoundError when ``ref`` is missing."""

    def list_images(self, label: str) -> list[ImageRecord]:
        """Images carrying ``label`` (``KEY=VALUE``)."""

    def remove_image(self, ref: str) -> Removal:
        """Untag or remove, never forced: an image a container uses stays ("in-use")."""

    def pull(self, ref: str) -> bool:
        """Whether the image could be pulled from its registry."""

    def build(self, context: str, tag: str, buildargs: dict[str, str], labels: dict[str, str] | None,
              on_line: LineSink) -> None:
        """Build ``context``'s Dockerfile as ``tag``; raises ImageError naming the failure."""

    def import_tarball(self, stream: IO[bytes], ref: str, changes: list[str]) -> None:
        """A root file system (a tar stream) as the image ``ref``."""
