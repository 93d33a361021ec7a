"""Build the SageMaker look-alike images from ``images/<name>/Dockerfile``.

Online, each Dockerfile starts from a public python slim image and pip installs
from the index. Offline (no registry, as on CI), a debootstrap Debian root is
imported as the base image and every wheel comes from a host wheelhouse that is
downloaded once into the cache folder; each image's build context then holds
only the wheels that image needs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from rtest.catalog import BASE_IMAGE, BUILD_COMMAND, IMAGE_DIRS, missing_image_message  # noqa: F401 - re-exported
from rtest.errors import EngineUnavailableError, ImageError

if TYPE_CHECKING:
    from rtest.run.backends.images import ImageStore

PUBLIC_BASE_IMAGE = "python:3.9-slim-bullseye"
OFFLINE_BASE_IMAGE = "rtest/debian-bullseye-python:offline"
DEBIAN_SUITE = "bullseye"  # Debian 11 ships Python 3.9, like SageMaker's scikit-learn 1.2-1 image
DEBIAN_PACKAGES = "python3,python3-distutils"
# Where a Dockerfile's install stage finds the context's wheels/ folder.
CONTEXT_WHEELHOUSE = "/tmp/rtest-wheels"
WHEEL_TARGET = ["--python-version", "3.9", "--implementation", "cp",
                "--platform", "manylinux2014_x86_64", "--only-binary=:all:"]
# Label prefix (one key per images/ folder, so labels a child inherits from the base never
# match) holding a digest of the Dockerfile + requirements.txt the image was built from.
RECIPE_LABEL = "rtest.recipe"

Log = Callable[[str], None]
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def images_root() -> Path:
    """The folder holding ``<name>/Dockerfile``: inside an installed wheel, else the repo's ``images/``."""
    packaged = Path(str(resources.files("rtest") / "_images"))
    if (packaged / "base" / "Dockerfile").is_file():
        return packaged
    source = Path(__file__).resolve().parents[2] / "images"
    if (source / "base" / "Dockerfile").is_file():
        return source
    raise ImageError(f"The image Dockerfiles are missing (looked in {packaged} and {source}); reinstall rtest.")


def default_cache_dir() -> Path:
    return Path(os.environ.get("RTEST_CACHE_DIR") or Path.home() / ".cache" / "rtest")


def select_images(names: Iterable[str] | None) -> list[str]:
    """Tags to build, in catalog order (base first); a name is a tag or an ``images/`` folder name."""
    if not names:
        return list(IMAGE_DIRS)
    by_dir = {folder: tag for tag, folder in IMAGE_DIRS.items()}
    wanted = set()
    for name in names:
        tag = name if name in IMAGE_DIRS else by_dir.get(name)
        if tag is None:
            known = ", ".join(sorted(by_dir))
            raise ImageError(f"Unknown image '{name}'; pick one of {known} (or their tags).")
        wanted.add(tag)
    return [tag for tag in IMAGE_DIRS if tag in wanted]


def choose_offline(offline: bool | None, store: ImageStore, public: str = PUBLIC_BASE_IMAGE) -> bool:
    """Offline when asked, or when the ``public`` base image is neither local nor pullable."""
    if offline is not None:
        return offline
    return not (store.exists(public) or store.pull(public))


def build_images(names: Iterable[str] | None = None, *, offline: bool | None = None,
                 cache_dir: Path | None = None, store: ImageStore | None = None, force: bool = False,
                 log: Log = print) -> list[str]:
    """Build the catalog images (base first); returns the tags built now (existing ones are skipped)."""
    store = store or _connect()
    tags = select_images(names)
    todo = [tag for tag in tags if force or needs_build(store, tag, log)]
    for tag in sorted(set(tags) - set(todo), key=tags.index):
        log(f"{tag} exists; skipping (use --force to rebuild)")
    if todo and todo[0] != BASE_IMAGE and not store.exists(BASE_IMAGE):
        todo.insert(0, BASE_IMAGE)  # the other images build FROM the base
    if not todo:
        return []
    offline = choose_offline(offline, store)
    cache_dir = Path(cache_dir or default_cache_dir())
    log(f"Building {', '.join(todo)} ({'offline' if offline else 'online'}; cache {cache_dir})")
    wheels: dict[str, list[Path]] = {}
    if offline:
        ensure_offline_base(store, cache_dir, log)
        wheels = ensure_wheelhouse(cache_dir / "wheels", [IMAGE_DIRS[tag] for tag in todo], log)
    for tag in todo:
        folder = IMAGE_DIRS[tag]
        base = (OFFLINE_BASE_IMAGE if offline else PUBLIC_BASE_IMAGE) if tag == BASE_IMAGE else BASE_IMAGE
        _timed(log, f"image {tag}", lambda: _build_one(store, tag, folder, base, wheels.get(folder), cache_dir, log))  # noqa: B023 - runs now
    return todo


def recipe_digest(folder: str) -> str:
    recipe = images_root() / folder
    digest = hashlib.sha256()
    for name in ("Dockerfile", "requirements.txt"):
        digest.update((recipe / name).read_bytes())
    return digest.hexdigest()[:16]


def recipe_label(folder: str) -> dict[str, str]:
    return {f"{RECIPE_LABEL}.{folder}": recipe_digest(folder)}


def needs_build(store: ImageStore, tag: str, log: Log) -> bool:
    """Missing, or built by rtest from a recipe that has since changed (images built by hand are kept)."""
    labels = store.labels(tag)
    if labels is None:
        return True
    built_from = labels.get(f"{RECIPE_LABEL}.{IMAGE_DIRS[tag]}")
    if built_from is not None and built_from != recipe_digest(IMAGE_DIRS[tag]):
        log(f"{tag} was built from an older recipe; rebuilding")
        return True
    return False


def _connect() -> ImageStore:
    from rtest.run.backends import image_store

    try:
        return image_store()
    except EngineUnavailableError as exc:
        raise EngineUnavailableError(exc.message, hint=f"{exc.hint or ''} Then retry `{BUILD_COMMAND}`.".strip()
                                     ) from exc


def _timed(log: Log, what: str, step: Callable[[], object]):
    started = time.monotonic()
    result = step()
    log(f"{what}: {time.monotonic() - started:.1f} s")
    return result


# --- offline base: a debootstrap root imported as an image -------------------------------

def ensure_offline_base(store: ImageStore, cache_dir: Path, log: Log, image: str = OFFLINE_BASE_IMAGE,
                        suite: str = DEBIAN_SUITE, packages: str = DEBIAN_PACKAGES) -> None:
    """``image`` made from a debootstrap root of ``suite`` (kept in the cache), unless the engine has it."""
    if store.exists(image):
        log(f"{image} exists; reusing it")
        return
    root = cache_dir / f"{suite}-root"
    if not (root / "usr" / "bin" / "python3").is_file():
        _timed(log, f"debootstrap {suite}", lambda: make_debian_root(root, log, suite=suite, packages=packages))
    _timed(log, f"import {image}", lambda: import_root(store, root, image))


def make_debian_root(root: Path, log: Log, suite: str = DEBIAN_SUITE, packages: str = DEBIAN_PACKAGES) -> None:
    """Debootstrap into ``<root>.partial`` and rename, so an interrupted run never looks finished."""
    if shutil.which("debootstrap") is None:
        raise ImageError("Offline image builds need debootstrap; install it with `apt-get install debootstrap`.")
    if os.geteuid() != 0:
        raise ImageError(f"debootstrap must run as root to create {root}; rerun `{BUILD_COMMAND} --offline` with sudo.")
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    log(f"debootstrap {suite} into {root} (about a minute)")
    command = ["debootstrap", "--variant=minbase", f"--include={packages}", suite, str(partial)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ImageError(f"debootstrap {suite} failed ({last[0]}); check network access to the Debian mirror.")
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)


def import_root(store: ImageStore, root: Path, ref: str) -> None:
    tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    stream = tar.stdout
    assert stream is not None  # stdout=PIPE
    try:
        store.import_tarball(stream, ref, changes=['CMD ["python3"]'])
    finally:
        stream.close()
        tar_rc = tar.wait()
    if tar_rc != 0 or not store.exists(ref):
        raise ImageError(f"Importing {root} as {ref} failed; delete {root} and rerun `{BUILD_COMMAND} --offline`.")


# --- offline wheels: one host wheelhouse, a per-image selection --------------------------

def requirements_file(folder: str) -> Path:
    return images_root() / folder / "requirements.txt"


def ensure_wheelhouse(wheelhouse: Path, folders: list[str], log: Log) -> dict[str, list[Path]]:
    """Wheels each image folder needs, downloading the pinned set once when any is missing."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    wheelhouse = wheelhouse.resolve()  # pip reports resolved file URLs
    selection = {folder: resolve_wheels(requirements_file(folder), wheelhouse) for folder in folders}
    if all(wheels is not None for wheels in selection.values()):
        log(f"wheelhouse {wheelhouse} has every wheel; reusing it")
        return selection  # type: ignore[return-value]
    _timed(log, "wheelhouse download", lambda: download_wheels(wheelhouse, folders, log))
    selection = {folder: resolve_wheels(requirements_file(folder), wheelhouse) for folder in folders}
    missing = [folder for folder, wheels in selection.items() if wheels is None]
    if missing:
        raise ImageError(f"The wheelhouse {wheelhouse} still lacks wheels for {', '.join(missing)} after"
                         f" downloading; check {requirements_file(missing[0])} and your pip index settings.")
    return selection  # type: ignore[return-value]


def download_wheels(wheelhouse: Path, folders: list[str], log: Log) -> None:
    log(f"downloading Python 3.9 wheels into {wheelhouse}")
    requirements = [arg for folder in folders for arg in ("-r", str(requirements_file(folder)))]
    done = _pip(["download", "-d", str(wheelhouse), *WHEEL_TARGET, *requirements])
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise ImageError(f"pip could not download the image wheels ({last[0]}); check network access to your"
                         f" package index, or copy the wheels into {wheelhouse}.")


def resolve_wheels(requirements: Path, wheelhouse: Path) -> list[Path] | None:
    """The wheel files that satisfy ``requirements`` using only ``wheelhouse``; None when some are missing.

    A dry-run install against the wheelhouse alone resolves the full dependency
    closure for the image's Python, without touching any environment.
    """
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        done = _pip(["install", "--isolated", "--dry-run", "--ignore-installed", "--ignore-requires-python",
                     "--quiet", "--target", str(Path(scratch) / "target"), "--report", str(report), *WHEEL_TARGET,
                     "--no-index", "--find-links", str(wheelhouse), "-r", str(requirements)])
        if done.returncode != 0 or not report.is_file():
            return None
        return wheels_in_report(json.loads(report.read_text()), wheelhouse)


def wheels_in_report(report: dict, wheelhouse: Path) -> list[Path] | None:
    from urllib.parse import unquote, urlparse

    wheels = []
    for item in report.get("install", []):
        path = Path(unquote(urlparse(item["download_info"]["url"]).path))
        if path.parent != wheelhouse or not path.is_file():
            return None
        wheels.append(path)
    return wheels


def _pip(args: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)
    except OSError as exc:
        raise ImageError(f"Could not run pip with {sys.executable} ({exc}); install pip into this Python.") from exc


# --- one image ---------------------------------------------------------------------------

def build_args(base: str, offline: bool) -> dict[str, str]:
    args = {"BASE_IMAGE": base}
    if offline:
        args["WHEELHOUSE"] = CONTEXT_WHEELHOUSE
    return args


def stage_context(source: Path, wheels: list[Path], target: Path) -> Path:
    """A build context: the image folder plus ``wheels/`` (hardlinked when the filesystem allows)."""
    shutil.copytree(source, target)
    (target / "wheels").mkdir()
    for wheel in wheels:
        try:
            os.link(wheel, target / "wheels" / wheel.name)
        except OSError:
            shutil.copy2(wheel, target / "wheels" / wheel.name)
    return target


def _build_one(store: ImageStore, tag: str, folder: str, base: str, wheels: list[Path] | None,
               cache_dir: Path, log: Log) -> None:
    source = images_root() / folder
    log(f"building {tag} from {source / 'Dockerfile'} (BASE_IMAGE={base})")
    if wheels is None:
        _stream_build(store, str(source), tag, build_args(base, offline=False), log, recipe_label(folder))
        return
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix="context-") as scratch:
        context = stage_context(source, wheels, Path(scratch) / folder)
        _stream_build(store, str(context), tag, build_args(base, offline=True), log, recipe_label(folder))


def _stream_build(store: ImageStore, context: str, tag: str, buildargs: dict[str, str], log: Log,
                  labels: dict[str, str] | None = None) -> None:
    def show(chunk: str) -> None:
        line = ANSI_ESCAPE.sub("", chunk).rstrip()
        if line:
            log(f"  {line}")

    store.build(context, tag, buildargs, labels, show)
