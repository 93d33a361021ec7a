"""Host-side wheels for an image's Python: ``<workdir>/wheelhouse/<py-tag>/``, plus the user's folders.

Filling uses ``pip download --only-binary=:all: --python-version X --platform P`` run with the host's
own pip configuration (a corporate index, certificates and proxies work as they do for the user).
A package with no wheel at all is fetched as a source archive and built inside a container of the
step's image (deps/sdistbuild.py: never on the host), accepted only when the result is pure Python.
Resolving (which wheels satisfy a set, dependencies included) is a dry-run install against the
folders alone; its answer is kept on disk, keyed by the folders' listing.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from rtest.deps.installed import ImageInfo
from rtest.deps.markers import image_only_requirements
from rtest.deps.requirements import DependencyError, Requirement

MAX_MARKER_ROUNDS = 5  # each round adds a layer of dependencies that only the image's Python needs
NOT_FOUND = re.compile(r"No matching distribution found for ([^\s;]+)")
CONFLICT = re.compile(r"(?:Cannot install|conflict is caused by)[^\n]*", re.IGNORECASE)


@dataclass
class Wheelhouse:
    root: Path  # rtest's own, per Python tag; steps see it read-only
    user_dirs: list[Path] = field(default_factory=list)  # --wheelhouse / the spec file's wheelhouse
    download: bool = True  # False: fully offline, the folders are all there is
    store: Any = None  # the image store that builds source distributions (never the host); None: no sdist builds

    @property
    def dirs(self) -> list[Path]:
        return [self.root, *self.user_dirs]


def wheelhouse_for(workdir: Path, info: ImageInfo, user_dirs: list[Path] | None, download: bool = True,
                   store: Any = None) -> Wheelhouse:
    root = Path(workdir).resolve() / "wheelhouse" / info.python_tag
    root.mkdir(parents=True, exist_ok=True)
    return Wheelhouse(root=root, user_dirs=[Path(d).resolve() for d in user_dirs or []], download=download,
                      store=store)


def ensure_wheels(reqs: list[Requirement], house: Wheelhouse, info: ImageInfo) -> dict[Path, str]:
    """Wheel file -> sha256, for the wheels (dependencies included) that install ``reqs`` on the image's Python.

    Downloads when the folders lack some and downloading is allowed."""
    specs = sorted({r.text for r in reqs})
    if not specs:
        return {}
    found, failure = resolve_wheels(specs, house, info)
    if found is None and house.download:
        _download(specs, house, info)
        found, failure = resolve_wheels(specs, house, info)
    for _ in range(MAX_MARKER_ROUNDS):  # the host's pip skipped what only the image's Python needs
        extra = image_only_requirements(list(found or []), info) if found is not None else []
        if not extra:
            break
        specs = sorted({*specs, *extra})
        found, failure = resolve_wheels(specs, house, info)  # the folders may hold them already (a rerun)
        if found is None and house.download:
            _download(extra, house, info)
            found, failure = resolve_wheels(specs, house, info)
    if found is None:
        raise _unsatisfiable(reqs, failure, house, info)
    return found


def resolve_wheels(specs: list[str], house: Wheelhouse, info: ImageInfo) -> tuple[dict[Path, str] | None, str]:
    """A dry-run install against the folders alone; the answer (with each wheel's digest) is kept,
    keyed by their listing."""
    memo = house.root / ".resolved" / f"{_memo_key(specs, house, info)}.json"
    try:
        found = {Path(p): digest for p, digest in json.loads(memo.read_text())}
        if all(p.is_file() for p in found):
            return found, ""
    except (OSError, ValueError, TypeError):
        pass
    with tempfile.TemporaryDirectory(prefix="rtest-resolve-") as scratch:
        report = Path(scratch) / "report.json"
        links = [arg for d in house.dirs if d.is_dir() for arg in ("--find-links", str(d))]
        done = _pip(
            [
                "install",
                "--isolated",
                "--dry-run",
                "--ignore-installed",
                "--quiet",
                "--target",
                str(Path(scratch) / "t"),
                "--report",
                str(report),
                *_target(info),
                "--no-index",
                *links,
                *specs,
            ]
        )
        if done.returncode != 0 or not report.is_file():
            return None, done.stderr
        paths = [
            Path(unquote(urlparse(item["download_info"]["url"]).path))
            for item in json.loads(report.read_text()).get("install", [])
        ]
    found = {
        path: _sha256(path) for path in paths
    }  # content, so the same wheel in another workdir gives the same image
    memo.parent.mkdir(exist_ok=True)
    memo.write_text(json.dumps([[str(p), d] for p, d in found.items()]))
    return found, ""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _memo_key(specs: list[str], house: Wheelhouse, info: ImageInfo) -> str:
    listing = sorted((str(d), e.name, e.stat().st_size) for d in house.dirs if d.is_dir() for e in _entries(d))
    material = json.dumps([specs, info.python_minor, info.platform, listing])
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def _entries(folder: Path):
    import os

    return [e for e in os.scandir(folder) if e.name.endswith((".whl", ".tar.gz", ".zip"))]


def _target(info: ImageInfo) -> list[str]:
    return ["--python-version", info.python_minor, "--platform", info.platform, "--only-binary=:all:"]


def _download(specs: list[str], house: Wheelhouse, info: ImageInfo) -> None:
    """Wheels for the set in one go; if that fails, one spec at a time, building pure-Python sdists."""
    links = [arg for d in house.user_dirs if d.is_dir() for arg in ("--find-links", str(d))]
    if _pip(["download", "--quiet", "-d", str(house.root), *_target(info), *links, *specs]).returncode == 0:
        return
    for spec in specs:
        if _pip(["download", "--quiet", "-d", str(house.root), *_target(info), *links, spec]).returncode != 0:
            _build_pure(spec, house, info)


def _build_pure(spec: str, house: Wheelhouse, info: ImageInfo) -> None:
    """A package published only as an sdist: built in a container, never on the host; kept if pure Python."""
    from rtest.deps.sdistbuild import build_sdist

    def fetch_build_deps(specs: list[str]) -> None:  # wheels only: nothing of them runs on the host
        _pip(["download", "--quiet", "-d", str(house.root), *_target(info), *specs])

    build_sdist(spec, house.store, info, house.dirs, house.root, fetch_build_deps=fetch_build_deps)


def _unsatisfiable(reqs: list[Requirement], failure: str, house: Wheelhouse, info: ImageInfo) -> DependencyError:
    from packaging.utils import canonicalize_name

    missing = NOT_FOUND.search(failure or "")
    culprit = None
    if missing:
        name = canonicalize_name(re.split(r"[<>=!~\[ ]", missing.group(1))[0])
        culprit = next((r for r in reqs if r.name == name), None)
        what = (
            f"'{culprit.text}' (from {culprit.where})"
            if culprit
            else f"'{missing.group(1)}', a dependency of {', '.join(r.text for r in reqs)}"
        )
        reason = f"has no wheel for Python {info.python_minor} ({info.platform}) in {_places(house)}"
    else:
        conflict = CONFLICT.search(failure or "")
        what = "; ".join(f"'{r.text}' (from {r.where})" for r in reqs)
        reason = (f"cannot be installed together on Python {info.python_minor}"
                  + (f": pip says {conflict.group(0).strip()}" if conflict else f": {_last_line(failure)}"))
    hint = ("Change the pin, or put a wheel for that Python into a folder passed with --wheelhouse."
            if not house.download else "Change the pin, or check your pip index settings (pip config list).")
    return DependencyError(f"Requirement {what} {reason}.", hint=hint)


def _places(house: Wheelhouse) -> str:
    where = ", ".join(str(d) for d in house.dirs)
    return where + (" or your package index" if house.download else "")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "pip gave no reason"


def _pip(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args], capture_output=True, text=True
    )
