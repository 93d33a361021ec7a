"""A dependency image: the step's image plus its missing packages, installed offline from the wheelhouse.

Built once per distinct (base image id, resolved wheel set): a container of the base image, with no
network and the wheelhouse mounted read-only, runs ``pip install --no-index --find-links``; the
container is then committed. Unlike a Dockerfile ``COPY`` of the wheels, this leaves no layer of
wheel files behind, so the image grows only by what pip installs. The tag is a content hash, so an
existing tag means the same content and nothing is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from rtest.deps.installed import ImageInfo
from rtest.deps.requirements import DependencyError
from rtest.run.backends.base import Mount

if TYPE_CHECKING:
    from rtest.run.backends.images import ImageStore

REPOSITORY = "rtest/deps"
KIND_LABEL = "rtest.kind"
KIND = "deps"
MOUNT_ROOT = "/opt/rtest/wheelhouse"
_REPLACED = resources.files("rtest.deps").joinpath("replaced.py")
Progress = Callable[[str, int, int, str], None]  # (tag, done, total, what) per pip line


def dependency_tag(base_id: str, specs: list[str], wheels: dict[Path, str]) -> str:
    """Same base, same specs, same wheel contents -> same tag (the digests come from the wheelhouse's memo)."""
    material = json.dumps(
        {"base": base_id, "specs": sorted(specs), "wheels": sorted((w.name, d) for w, d in wheels.items())}
    )
    return f"{REPOSITORY}:{hashlib.sha256(material.encode()).hexdigest()[:16]}"


def wheel_mounts(dirs: list[Path]) -> list[Mount]:
    """Each host folder read-only at /opt/rtest/wheelhouse, /opt/rtest/wheelhouse-1, ..."""
    return [Mount(host=d, container=container_dir(i), read_only=True) for i, d in enumerate(dirs) if d.is_dir()]


def container_dir(index: int) -> str:
    return MOUNT_ROOT if index == 0 else f"{MOUNT_ROOT}-{index}"


def build_dependency_image(store: ImageStore, *, base_ref: str, info: ImageInfo, tag: str, specs: list[str],
                           wheels: list[Path], dirs: list[Path], on_progress: Progress | None = None) -> str:
    """Install ``specs`` into a container of ``base_ref`` from ``dirs`` only, and commit it as ``tag``."""
    mounts = wheel_mounts(dirs)
    links = " ".join(f"--find-links {m.container}" for m in mounts)
    pip = "python3 -m pip" if info.has_pip else f"python3 {_pip_wheel(wheels, [m.host for m in mounts])}/pip"
    quoted = " ".join("'" + s.replace("'", "'\\''") + "'" for s in specs)
    command = _install_command(pip, f"--no-index {links} --no-cache-dir --disable-pip-version-check {quoted}")
    total = len(wheels) + 1
    done = 0

    def progress(line: str) -> None:
        nonlocal done
        if line.startswith(("Processing ", "Collecting ", "Requirement already satisfied")):
            done = min(done + 1, total - 1)
        if on_progress:
            on_progress(tag, done, total, line.strip()[:80])

    ran = store.run_command(base_ref, ["sh", "-c", command, "sh", _REPLACED.read_text()], user="0:0", mounts=mounts,
                            labels={KIND_LABEL: "deps-build"}, environment={"PIP_BREAK_SYSTEM_PACKAGES": "1"},
                            on_line=progress, tail=40, commit_as=tag,
                            commit_changes=_restore_config(store, base_ref, specs, info))
    if ran.exit_code != 0:
        tail = " | ".join(line.strip() for line in ran.output.splitlines()[-3:])
        raise DependencyError(
            f"Installing {', '.join(specs)} into {base_ref} failed (pip exit {ran.exit_code}): {tail}",
            hint="Check the pins with `rtest deps`, or pass a folder of wheels with --wheelhouse.",
        )
    if on_progress:
        on_progress(tag, total, total, "done")
    return tag


def _install_command(pip: str, arguments: str) -> str:
    """pip install, after rtest.deps.replaced has deleted what pip would replace (``$1`` is that module's source):
    pip's own uninstall copies every file on overlay2. A pip without ``--dry-run --report`` (before 22.2), or any
    failure on that way, leaves the uninstall to pip. The report is removed: it must not be committed."""
    report = "/tmp/rtest-pip-report.json"
    return (f"{pip} install --dry-run --quiet --report {report} {arguments} >/dev/null 2>&1"
            f" && python3 -c \"$1\" {report};"
            f" {pip} install --progress-bar off {arguments}; status=$?; rm -f {report}; exit $status")


def _restore_config(store: ImageStore, base_ref: str, specs: list[str], info: ImageInfo) -> list[str]:
    """The committed image keeps the base's command and user, plus labels saying what it is."""
    config = store.config(base_ref)
    changes = [
        f"LABEL {KIND_LABEL}={KIND}",
        f"LABEL rtest.deps.base={json.dumps(base_ref)}",
        f"LABEL rtest.deps.base-id={info.image_id}",
        f"LABEL rtest.deps.requirements={json.dumps(json.dumps(sorted(specs)))}",
        f"USER {config.get('User') or 'root'}",
    ]
    changes.append(f"CMD {json.dumps(config['Cmd'])}" if config.get("Cmd") else "CMD []")
    return changes


def _pip_wheel(wheels: list[Path], dirs: list[Path]) -> str:
    """An image without pip installs with pip's own wheel, run as a zip (pip supports this)."""
    wheel = next((w for w in wheels if w.name.startswith("pip-") and w.parent in dirs), None)
    if wheel is None:
        raise DependencyError(
            "The image has no pip and the wheelhouse has no pip wheel; add 'pip' to the step's requirements."
        )
    return f"{container_dir(dirs.index(wheel.parent))}/{wheel.name}"


def dependency_images(store: ImageStore) -> list[dict]:
    """Every dependency image rtest built (label rtest.kind=deps): for `rtest sandbox images list/prune`."""
    return [{"id": image.id, "tags": image.tags, "base": image.labels.get("rtest.deps.base"),
             "requirements": json.loads(image.labels.get("rtest.deps.requirements") or "[]"),
             "size": image.size, "created": image.created}
            for image in store.list_images(f"{KIND_LABEL}={KIND}")]


def prune_dependency_images(store: ImageStore, keep: Collection[str] = frozenset(), *,
                            older_than_s: float | None = None, dry_run: bool = False) -> tuple[list[str], list[str]]:
    """Remove dependency images whose tags are not in ``keep`` (and, with ``older_than_s``, built longer ago
    than that); returns (removed, kept because a container uses them). ``dry_run``: what would be removed."""
    import time

    removed, in_use = [], []
    for image in dependency_images(store):
        if older_than_s is not None and time.time() - _created_s(image["created"]) < older_than_s:
            continue
        for tag in image["tags"] or [image["id"]]:
            if tag in keep:
                continue
            outcome = "removed" if dry_run else store.remove_image(tag)  # never forced: an image in use stays
            if outcome == "removed":
                removed.append(tag)
            elif outcome == "in-use":  # kept, and listed again next time; "missing": removed meanwhile by someone
                in_use.append(tag)
    return removed, in_use


def _created_s(created: str | None) -> float:
    """Docker's RFC 3339 'Created' (nanoseconds, Z) as epoch seconds; unknown counts as old."""
    from datetime import datetime

    if not created:
        return 0.0
    head = created.rstrip("Z").split(".")[0]
    return datetime.fromisoformat(head + "+00:00").timestamp()
