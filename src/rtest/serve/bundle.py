"""Bundles: a pipeline and its inputs as one tar.gz, for a service that does not share our file system.

``pack`` (client side) copies every file a run needs under one root and writes ``spec.json``
(a user spec whose paths are relative to the root). ``unpack`` (service side) treats the
archive as hostile: only regular files and folders, no absolute names, no ``..``, no links of
any kind, bounded size and file count; it extracts into a fresh folder and removes it whole
on the first bad member, so nothing is ever written outside.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import tarfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, overload

from rtest.errors import RtestError

if TYPE_CHECKING:  # the unpacking worker imports this module and needs neither pydantic nor the planner
    from rtest.plan.userspec import UserSpec

SPEC_NAME = "spec.json"
MAX_BYTES = 1 << 30  # unpacked
MAX_FILES = 20_000
MAX_META = 64 << 10  # a pax or GNU long-name header larger than this is refused before tarfile parses it
_META_KINDS = {b"x": "pax header", b"g": "global pax header", b"L": "GNU long name", b"K": "GNU long link name"}
SKIP_DIRS = {".git", ".rtest", ".venv", "__pycache__", "node_modules"}
OUTSIDE_ROOT = ("--allow-source-outside-root cannot travel in a bundle: the config's outside folders are on this "
                "machine, not in the bundle; map them with --source-map FROM=TO (the targets are packed), or submit "
                "by path to a service that shares this file system.")


class BundleError(RtestError):
    """An uploaded bundle is unsafe or too large (the service answers 400)."""


# ---- client side ---------------------------------------------------------------------------


class _Packer:
    def __init__(self, tar: tarfile.TarFile, skip: set[Path]) -> None:
        self.tar, self.skip = tar, skip
        self.roots: dict[Path, str] = {}  # packed host path -> its name in the bundle

    @overload
    def place(self, path: str, name: str) -> str: ...
    @overload
    def place(self, path: None, name: str) -> None: ...
    @overload
    def place(self, path: str | None, name: str) -> str | None: ...

    def place(self, path: str | None, name: str) -> str | None:
        """Pack ``path`` (once) and return where it is in the bundle."""
        if path is None:
            return None
        host = Path(path).resolve()
        for root, packed in self.roots.items():
            if host == root or root in host.parents:
                return str(PurePosixPath(packed, host.relative_to(root).as_posix()))
        if not host.exists():
            raise BundleError(f"{host} does not exist, so it cannot be uploaded; check the path.")
        arcname = f"{name}-{len(self.roots)}/{host.name}"
        self.tar.add(str(host), arcname=arcname, filter=self._filter)
        self.roots[host] = arcname
        return arcname

    def _filter(self, info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        parts = PurePosixPath(info.name).parts
        if any(part in SKIP_DIRS for part in parts):
            return None
        return info if info.isfile() or info.isdir() else None  # links are packed as what they point at


def pack(spec: UserSpec, target: Path, *, skip: tuple[Path, ...] = ()) -> Path:
    """Write ``target`` (tar.gz) with every path ``spec`` names; ``spec`` holds absolute paths."""
    from rtest.plan.input_paths import input_path_problem

    relative = spec.model_copy(deep=True)
    where = relative.pipeline
    default_interfaces = Path(where.config).resolve().parent / "interfaces" if where.config else None
    if not where.interfaces and default_interfaces and default_interfaces.is_dir():
        where.interfaces = [str(default_interfaces)]  # the default must travel along with the config
    with tarfile.open(target, "w:gz", dereference=True) as tar:
        packer = _Packer(tar, {p.resolve() for p in skip})
        source_root = where.source_root or (str(Path(where.config).resolve().parent) if where.config else None)
        where.source_root = packer.place(source_root, "source")  # default: sources resolve against the config's folder
        where.config = packer.place(where.config, "config")
        if where.dag and ":" in where.dag and not Path(where.dag).exists():
            raise BundleError(f"The DAG '{where.dag}' is a Python function; a bundle can only carry a DAG file.")
        where.dag = packer.place(where.dag, "dag")
        where.interfaces = [packer.place(d, "interfaces") for d in where.interfaces]
        if where.allow_source_outside_root:
            raise BundleError(OUTSIDE_ROOT)
        where.source_map = {prefix: packer.place(d, "source-map") for prefix, d in where.source_map.items()}
        relative.wheelhouse = packer.place(relative.wheelhouse, "wheelhouse")
        for node, overrides in relative.scripts.items():
            for path in overrides.inputs.values():  # the local run's rule for links in an input folder, before packing
                problem = input_path_problem(path, follow_links=relative.follow_input_links)
                if problem:
                    raise BundleError(f"{node}: {problem}")
            overrides.inputs = {k: packer.place(v, f"input-{node}-{k}") for k, v in overrides.inputs.items()}
            overrides.outputs = {}  # exports go to the service's disk: download them from the run instead
        text = json.dumps(relative.model_dump(mode="json")).encode()
        info = tarfile.TarInfo(SPEC_NAME)
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))
    return target


# ---- service side ----------------------------------------------------------------------------


def unpack(archive: Path, target: Path, *, max_bytes: int = MAX_BYTES, max_files: int = MAX_FILES) -> Path:
    """Extract ``archive`` into the new folder ``target``, or raise BundleError and leave no trace."""
    partial = target.with_name(target.name + ".partial")
    partial.mkdir(parents=True)
    try:
        _extract(archive, partial, max_bytes, max_files)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    partial.rename(target)
    return target


def check_headers(archive: Path, *, max_meta: int = MAX_META, max_bytes: int = MAX_BYTES,
                  max_files: int = MAX_FILES) -> None:
    """Walk the tar headers ourselves, before ``tarfile`` does: CPython's pax parsing is quadratic in the header's
    size (CVE-2024-6232), so a long pax or GNU long-name header is refused here, in time linear in the bundle."""
    try:
        with gzip.open(archive, "rb") as stream:
            _walk_headers(stream, max_meta, max_bytes, max_files)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise BundleError(f"The bundle is not a readable tar.gz: {exc}.") from None


def _walk_headers(stream, max_meta: int, max_bytes: int, max_files: int) -> None:
    total, entries, position = 0, 0, 0
    while True:
        header = stream.read(512)
        if len(header) < 512 or header == bytes(512):
            return  # the end (tarfile itself reports a truncated archive)
        try:
            size = tarfile.nti(header[124:136])  # type: ignore[attr-defined]  # tarfile's own parser; typeshed omits it
        except (tarfile.InvalidHeaderError, ValueError):  # type: ignore[attr-defined]
            raise BundleError(f"The bundle is damaged: bad size field in the tar header at byte {position}.") from None
        kind = header[156:157]
        if size < 0 or (kind in _META_KINDS and size > max_meta):
            what = _META_KINDS.get(kind, "header")
            raise BundleError(f"The bundle has a {what} of {size} bytes (more than {max_meta}); pack it with "
                              "rtest (`rtest sandbox run --server URL --upload`) or with shorter names.")
        entries += 1
        total += size
        if entries > max_files * 2 or total > max_bytes + max_files * max_meta:
            raise BundleError("The bundle is too large; leave out what the run does not need.")
        skip = (size + 511) // 512 * 512
        position += 512 + skip
        while skip:
            got = len(stream.read(min(skip, 1 << 20)))
            if not got:
                return
            skip -= got


def _extract(archive: Path, root: Path, max_bytes: int, max_files: int) -> None:
    check_headers(archive, max_bytes=max_bytes, max_files=max_files)
    total = files = 0
    try:
        tar = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise BundleError(f"The bundle is not a readable tar.gz: {exc}.") from None
    with tar:
        try:
            for member in tar:
                files += 1
                if files > max_files:
                    raise BundleError(f"The bundle has more than {max_files} entries; leave out what the run "
                                      "does not need.")
                target = _safe_target(root, member)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                total += member.size
                if total > max_bytes:
                    raise BundleError(f"The bundle unpacks to more than {max_bytes} bytes; leave out what the run "
                                      "does not need.")
                _write_member(tar, member, target)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise BundleError(f"The bundle is damaged: {exc}.") from None


def _safe_target(root: Path, member: tarfile.TarInfo) -> Path:
    name = PurePosixPath(member.name)
    if member.issym() or member.islnk():
        raise BundleError(f"The bundle entry '{member.name}' is a link; links are not accepted, pack the file itself.")
    if not (member.isfile() or member.isdir()):
        raise BundleError(f"The bundle entry '{member.name}' is not a file or folder.")
    if name.is_absolute() or member.name.startswith(("/", "\\")) or ".." in name.parts or "\\" in member.name:
        raise BundleError(f"The bundle entry '{member.name}' points outside the bundle; use relative names only.")
    parts = [part for part in name.parts if part not in ("", ".")]
    if not parts:
        raise BundleError(f"The bundle entry '{member.name}' has no name.")
    return root.joinpath(*parts)


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)  # every folder under root is ours: no links exist
    source = tar.extractfile(member)
    if source is None:  # not a regular file: the listing check let only regular files and folders through
        raise BundleError(f"The bundle's '{member.name}' is not a regular file.")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(target, flags, 0o644)
    except FileExistsError:
        raise BundleError(f"The bundle holds '{member.name}' twice.") from None
    with os.fdopen(fd, "wb") as out, source:
        shutil.copyfileobj(source, out, 1 << 20)


def load_bundle_spec(root: Path) -> UserSpec:
    """The bundle's spec, every path checked to stay inside the bundle."""
    from rtest.plan.userspec import load_user_spec
    from rtest.serve.policy import named_paths

    spec = load_user_spec(root / SPEC_NAME)

    where, real_root = spec.pipeline, root.resolve()
    if where.allow_source_outside_root:  # it would reach the service's own folders, not the submitter's
        raise BundleError(OUTSIDE_ROOT)
    if where.dag and ":" in where.dag:
        raise BundleError("A bundle's DAG must be a file in the bundle, not a Python function.")
    for path in named_paths(spec):
        resolved = Path(path).resolve()
        if resolved != real_root and real_root not in resolved.parents:
            raise BundleError(f"The bundle's spec names '{path}', outside the bundle; use paths inside it.")
    return spec
