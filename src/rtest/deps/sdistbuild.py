"""A package published only as a source distribution: fetched as a file on the host, built inside a container.

Building an sdist runs its code (``setup.py``, or a build backend it names, even one shipped inside
it), so it never happens on the host: a requirement names a package, and a package named by a
submission or a script's own ``pip install`` is not the operator's code. The host only finds and
downloads the archive, as data, with ``unearth`` (the index pages and links pip's own configuration
names; no code of the package runs to find it). The wheel is then built by ``pip wheel`` in a
container of the step's image: no network, not root, no capabilities, the archive and the wheelhouse
mounted read-only, an empty output folder the only thing it can write. What it leaves is checked as
any step's output is (run/untrusted) and only a pure-Python wheel is kept.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import structlog
from packaging.requirements import InvalidRequirement, Requirement

from rtest.deps.installed import ImageInfo
from rtest.errors import UntrustedOutputError
from rtest.plan.settings import invoking_user
from rtest.run.backends.base import Mount
from rtest.run.backends.images import Confinement, ImageStore
from rtest.run.ownership import parse_user
from rtest.run.untrusted import OutputLimits, copy_file, scan_tree

log = structlog.get_logger("rtest.deps")

BUILD_TIMEOUT_S = 600
BUILD_REQUIRES = ["setuptools>=40.8.0", "wheel"]  # pip's default for an sdist without pyproject.toml
MISSING = re.compile(r"No matching distribution found for ([^\s;]+)")
_OUTPUT_LIMITS = OutputLimits(max_files=100, max_bytes=2**30)


def pip_sources() -> tuple[list[str], list[str]]:
    """(index URLs, find-links) as the host's pip sees them: its config files and PIP_* variables."""
    listing = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    found: dict[str, dict[str, str]] = {}
    for line in listing.splitlines():
        key, _, raw = line.partition("=")
        scope, _, name = key.rpartition(".")
        found.setdefault(name, {})[scope] = raw.strip().strip("'\"")

    def value(name: str) -> str:
        scopes = found.get(name, {})
        return scopes.get(":env:") or scopes.get("download") or scopes.get("global") or ""

    no_index = value("no-index").lower() in ("1", "true", "yes", "on")
    indexes = [] if no_index else [value("index-url") or "https://pypi.org/simple", *value("extra-index-url").split()]
    return indexes, value("find-links").split()


def fetch_sdist(spec: str, folders: list[Path], target: Path) -> Path | None:
    """Download the best source distribution for ``spec`` into target, from the folders and pip's sources."""
    from unearth import PackageFinder

    try:
        requirement = Requirement(spec)
    except InvalidRequirement:
        return None
    indexes, links = pip_sources()
    finder = PackageFinder(index_urls=indexes, find_links=[*map(str, folders), *links], ignore_compatibility=True)
    matches = [m for m in finder.find_matches(requirement) if not m.link.is_wheel]
    if not matches:
        return None
    target.mkdir(parents=True, exist_ok=True)
    return finder.download(matches[0].link, target)


def build_in_container(store: ImageStore, info: ImageInfo, sdist: Path, wheel_dirs: list[Path], out: Path
                       ) -> tuple[int, str]:
    """``pip wheel`` of the archive in a container of the image; returns (exit status, the log's last lines)."""
    from rtest.deps.image import wheel_mounts

    owner = parse_user(invoking_user())
    out.mkdir(parents=True, exist_ok=True)
    for folder in (sdist.parent, out):
        os.chmod(folder, 0o755)
    if os.getuid() == 0 and owner is not None:
        os.chown(out, *owner)
    wheels = wheel_mounts(wheel_dirs)
    mounts = [Mount(host=sdist.parent, container="/opt/rtest/sdist", read_only=True),
              Mount(host=out, container="/opt/rtest/out"), *wheels]
    links = [arg for mount in wheels for arg in ("--find-links", mount.container)]
    command = ["python3", "-m", "pip", "wheel", "--no-deps", "--no-index", *links, "--no-cache-dir",
               "--disable-pip-version-check", "--progress-bar", "off", "-w", "/opt/rtest/out",
               f"/opt/rtest/sdist/{sdist.name}"]
    ran = store.run_command(info.image_id, command, user=invoking_user(), mounts=mounts,
                            labels={"rtest.kind": "sdist-build"}, environment={"HOME": "/tmp", "PIP_NO_INPUT": "1"},
                            confinement=Confinement(memory_bytes=4 << 30, pids_limit=512, drop_privileges=True),
                            timeout_s=BUILD_TIMEOUT_S, tail=40)
    return ran.exit_code, ran.output


def keep_pure_wheels(out: Path, target: Path) -> list[Path]:
    """The pure-Python wheels the build left, copied into target by the rules for a step's output."""
    try:
        tree = scan_tree(out, "the sdist build's output", _OUTPUT_LIMITS)
    except UntrustedOutputError as exc:
        log.warning("sdist build output refused", reason=str(exc))
        return []
    kept = []
    for entry in tree.entries:
        name = entry.rel
        if entry.kind == "file" and "/" not in name and re.fullmatch(r"[\w.+-]+-none-any\.whl", name):
            dest = target / name
            copy_file(str(out / name), str(dest))
            kept.append(dest)
    return kept


def build_sdist(spec: str, store: ImageStore | None, info: ImageInfo, wheel_dirs: list[Path], target: Path,
                fetch_build_deps=None) -> list[Path]:
    """Fetch the sdist for spec, build it in a container, keep its wheel if pure Python; [] when any step fails.

    ``fetch_build_deps(specs)`` puts wheels of build requirements pip asked for into a wheelhouse folder
    (binary only, so nothing runs): setuptools and wheel first, then whatever the build says it misses.
    """
    if store is None or not info.has_pip:
        return []
    with tempfile.TemporaryDirectory(prefix="rtest-sdist-") as scratch:
        sdist = fetch_sdist(spec, wheel_dirs, Path(scratch) / "sdist")
        if sdist is None:
            return []
        wanted = list(BUILD_REQUIRES)
        for _ in range(4):  # each round may name one more build requirement the wheelhouse lacks
            if fetch_build_deps is not None:
                fetch_build_deps(wanted)
            out = Path(scratch) / "out"
            shutil.rmtree(out, ignore_errors=True)
            status, tail = build_in_container(store, info, sdist, wheel_dirs, out)
            if status == 0:
                return keep_pure_wheels(out, target)
            missing = MISSING.search(tail)
            if not missing or fetch_build_deps is None or missing.group(1) in wanted:
                log.warning("sdist build failed in its container", spec=spec, status=status, log=tail[-2000:])
                return []
            wanted = [missing.group(1)]
    return []
