"""The image store of a Docker engine: the Docker backend's, and a cluster backend's on its manager."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import IO

import docker
from docker.errors import APIError, ImageNotFound, NotFound
from docker.utils import parse_repository_tag

from rtest.catalog import missing_image_message
from rtest.errors import ImageError, ImageNotFoundError
from rtest.run.backends.base import Mount
from rtest.run.backends.images import CommandRun, Confinement, ImageRecord, LineSink, Removal


class DockerImageStore:
    """``ImageStore`` over a docker client; the client is the backend's, so both talk to one engine."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client

    def image_id(self, ref: str) -> str:
        try:
            return self.client.api.inspect_image(ref)["Id"]
        except ImageNotFound as exc:
            raise ImageNotFoundError(missing_image_message(ref)) from exc

    def exists(self, ref: str) -> bool:
        return self.labels(ref) is not None

    def labels(self, ref: str) -> dict[str, str] | None:
        try:
            return self.client.images.get(ref).labels or {}
        except ImageNotFound:
            return None

    def config(self, ref: str) -> dict:
        try:
            return self.client.api.inspect_image(ref).get("Config") or {}
        except ImageNotFound as exc:
            raise ImageNotFoundError(missing_image_message(ref)) from exc

    def run_command(self, ref: str, command: list[str], *, user: str | None = None, mounts: Iterable[Mount] = (),
                    environment: dict[str, str] | None = None, labels: dict[str, str] | None = None,
                    confinement: Confinement | None = None, timeout_s: float | None = None,
                    on_line: LineSink | None = None, stdout_only: bool = False, tail: int | None = None,
                    commit_as: str | None = None, commit_changes: list[str] | None = None) -> CommandRun:
        options: dict = {"network_mode": "none", "labels": labels or {}, "environment": environment or {},
                         "volumes": {str(m.host): {"bind": m.container, "mode": "ro" if m.read_only else "rw"}
                                     for m in mounts}}
        if user is not None:
            options["user"] = user
        if confinement is not None:
            options.update(network_disabled=True, pids_limit=confinement.pids_limit, mem_limit=confinement.memory_bytes)
            if confinement.drop_privileges:
                options.update(cap_drop=["ALL"], security_opt=["no-new-privileges"])
        try:
            container = self.client.containers.create(ref, command, **options)
        except ImageNotFound as exc:
            raise ImageNotFoundError(missing_image_message(ref)) from exc
        try:
            container.start()
            streamed = _follow(container, on_line, tail or 40) if on_line is not None else None
            try:
                status = container.wait(timeout=timeout_s).get("StatusCode", 1)
            except Exception:  # noqa: BLE001 - the engine's read timeout: a command that hangs has failed
                if timeout_s is None:
                    raise
                container.kill()
                status = 124
            lines = tail if tail is not None else "all"
            output = streamed if streamed is not None else container.logs(
                stdout=True, stderr=not stdout_only, tail=lines).decode("utf-8", "replace")
            if commit_as and status == 0:
                repository, tag = parse_repository_tag(commit_as)
                container.commit(repository=repository, tag=tag, changes=commit_changes or [])
        finally:
            container.remove(force=True)
        return CommandRun(exit_code=status, output=output)

    def list_images(self, label: str) -> list[ImageRecord]:
        return [ImageRecord(id=image.id, tags=list(image.tags), labels=dict(image.labels or {}),
                            size=image.attrs.get("Size"), created=image.attrs.get("Created"))
                for image in self.client.images.list(filters={"label": label})]

    def remove_image(self, ref: str) -> Removal:
        try:
            self.client.images.remove(ref)  # never forced
        except NotFound:  # removed meanwhile by someone else
            return "missing"
        except APIError:  # in use by a container
            return "in-use"
        return "removed"

    def pull(self, ref: str) -> bool:
        try:
            self.client.images.pull(ref)  # the SDK splits the ref (a registry's port, a digest, no tag: latest)
        except Exception:  # noqa: BLE001 - any registry failure means: not pullable
            return False
        return True

    def build(self, context: str, tag: str, buildargs: dict[str, str], labels: dict[str, str] | None,
              on_line: LineSink) -> None:
        try:
            for chunk in self.client.api.build(path=context, tag=tag, buildargs=buildargs, rm=True, labels=labels,
                                               forcerm=True, pull=False, decode=True):
                if "error" in chunk:
                    raise ImageError(f"Building {tag} failed: {chunk['error'].strip()}; see the build log above.")
                on_line(chunk.get("stream", ""))
        except APIError as exc:
            raise ImageError(f"Building {tag} failed: {exc.explanation or exc}; see the build log above.") from exc

    def import_tarball(self, stream: IO[bytes], ref: str, changes: list[str]) -> None:
        repository, tag = parse_repository_tag(ref)
        self.client.api.import_image_from_stream(stream, repository=repository, tag=tag, changes=changes)


def _follow(container, on_line: LineSink, keep: int) -> str:
    """Every output line to ``on_line`` as it comes; the last ``keep`` lines kept."""
    lines: deque[str] = deque(maxlen=keep)
    for raw in container.logs(stream=True, follow=True):
        for line in raw.decode("utf-8", "replace").splitlines():
            lines.append(line)
            on_line(line)
    return "\n".join(lines)
