"""Reading and copying what a step left behind: untrusted input to the host.

A step's script can leave anything in its outputs: a symlink to a host file
(``/etc/shadow``), a FIFO that blocks ``open()`` for good, a link to
``/dev/zero`` that reads for ever, link loops (``a -> .``), a million files,
names that are not UTF-8. Every host-side walk, copy or read of a step's files
goes through here, with one set of rules for staging, packing, the cache and
exports:

- walk with ``lstat`` and never follow a link. A link is kept, as a link made
  relative, only when it resolves inside the same tree to a regular file or to a
  folder that does not contain the link itself; any other link is refused;
- FIFOs, sockets and device files are refused;
- the number of entries and the bytes per tree are capped;
- files are opened ``O_NOFOLLOW | O_NONBLOCK`` and checked with ``fstat``.

A tree is checked completely before anything is copied, so a refused output
copies nothing. Names that are not UTF-8 are copied byte for byte.
"""

from __future__ import annotations

import errno
import os
import stat
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from rtest.errors import UntrustedOutputError
from rtest.run import holes

DEFAULT_MAX_FILES = 200_000  # entries (files, folders, links) per output
DEFAULT_MAX_BYTES = 50 * 2**30  # bytes of regular files per output
MAX_DEPTH = 128  # deeper trees only come from runaway scripts, and break PATH_MAX on copy
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_CHUNK = 1 << 20


@dataclass(frozen=True)
class OutputLimits:
    max_files: int | None = DEFAULT_MAX_FILES  # None: no cap (trees rtest already checked)
    max_bytes: int | None = DEFAULT_MAX_BYTES


UNCAPPED = OutputLimits(None, None)


@dataclass(frozen=True)
class Entry:
    rel: str  # relative to the tree's root, "/"-separated; "" when the root is one file
    kind: str  # "dir", "file" or "link"
    size: int = 0
    mode: int = 0o644
    link_target: str = ""  # for links: the target, re-pointed relative to the link's folder


@dataclass
class Tree:
    root: Path
    entries: list[Entry] = field(default_factory=list)
    nbytes: int = 0


def shown(name: str, limit: int = 200) -> str:
    """A name as safe text for a message: undecodable bytes and control characters escaped, length bounded."""
    text = os.fsencode(name).decode("utf-8", "backslashreplace")
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[:limit] + "..."


def kind_of(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "FIFO (named pipe)"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"), (stat.S_ISLNK, "symlink"),
                       (stat.S_ISDIR, "folder"), (stat.S_ISREG, "file")):
        if test(mode):
            return name
    return "special file"


def walk(root: Path, budget: int | None = None) -> Iterator[tuple[str, os.stat_result]]:
    """Every entry under root as (relative path, lstat), parents first, names sorted; links are not entered.

    Iterative, so neither depth nor loops can recurse; it applies no policy (see scan_tree). With a
    budget it stops listing after budget + 1 entries, so a folder of ten million files is not read
    whole: the caller must treat more than budget entries as an error.
    """
    stack, seen = [""], 0
    while stack:
        rel = stack.pop()
        children = []
        with os.scandir(os.path.join(root, rel) if rel else root) as listing:
            for entry in listing:
                children.append((entry.name, entry.stat(follow_symlinks=False)))
                if budget is not None and seen + len(children) > budget:
                    break
        children.sort()
        seen += len(children)
        folders = []
        for name, st in children:
            child = f"{rel}/{name}" if rel else name
            yield child, st
            if stat.S_ISDIR(st.st_mode):
                folders.append(child)
        stack.extend(reversed(folders))  # popped back in sorted order


def scan_tree(root: Path, label: str, limits: OutputLimits = OutputLimits()) -> Tree:
    """Check a step's output (folder or single file) against the rules above; raises UntrustedOutputError."""
    st = os.lstat(root)
    if stat.S_ISREG(st.st_mode):
        _check_bytes(label, st.st_size, limits)
        return Tree(root, [Entry("", "file", st.st_size, st.st_mode)], st.st_size)
    if not stat.S_ISDIR(st.st_mode):
        raise UntrustedOutputError(f"{label} at {shown(str(root))} is a {kind_of(st.st_mode)}, not a file or folder; "
                                   "rtest copies only regular files and folders out of a step.")
    tree, real_root = Tree(root), os.path.realpath(root)
    for rel, st in walk(root, limits.max_files):
        if limits.max_files is not None and len(tree.entries) >= limits.max_files:
            raise UntrustedOutputError(
                f"{label} holds more than {limits.max_files:,} files and folders; rtest stops there so a runaway step "
                "cannot fill the disk. If the output really is that large, raise the cap with --max-output-files.")
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            if rel.count("/") >= MAX_DEPTH:
                raise UntrustedOutputError(f"{label} nests folders more than {MAX_DEPTH} levels deep "
                                           f"(at {shown(rel)}); rtest refuses trees that deep.")
            tree.entries.append(Entry(rel, "dir", mode=mode))
        elif stat.S_ISREG(mode):
            tree.nbytes += st.st_size
            _check_bytes(label, tree.nbytes, limits)
            tree.entries.append(Entry(rel, "file", st.st_size, mode))
        elif stat.S_ISLNK(mode):
            tree.entries.append(_checked_link(root, real_root, rel, label))
        else:
            raise UntrustedOutputError(
                f"{label} holds a {kind_of(mode)} at {shown(rel)}; rtest copies only regular files, folders and links "
                "inside the output, and refuses FIFOs, sockets and device files.")
    return tree


def _check_bytes(label: str, nbytes: int, limits: OutputLimits) -> None:
    if limits.max_bytes is not None and nbytes > limits.max_bytes:
        raise UntrustedOutputError(
            f"{label} holds more than {_size(limits.max_bytes)} of files; rtest stops there so a runaway step cannot "
            "fill the disk. If the output really is that large, raise the cap with --max-output-bytes.")


def _checked_link(root: Path, real_root: str, rel: str, label: str) -> Entry:
    """A link that stays inside the tree, re-pointed relative; anything else is refused."""
    target = os.readlink(os.path.join(root, rel))
    where = os.path.join(real_root, rel)  # every folder on the way is real: the walk entered no link
    said = f"{label} holds a symlink {shown(rel)} -> {shown(target)}"
    resolved = os.path.realpath(where)  # lstat and readlink only: nothing is opened
    if not _inside(resolved, real_root):
        raise UntrustedOutputError(f"{said} that points outside the output; "
                                   "rtest does not follow links out of a step's output.")
    try:
        mode = os.lstat(resolved).st_mode
    except OSError:
        mode = None
    if mode is None or stat.S_ISLNK(mode):
        raise UntrustedOutputError(f"{said} that points at nothing or loops; "
                                   "rtest keeps only links to a file or folder in the output.")
    if stat.S_ISDIR(mode) and _inside(where, resolved):
        raise UntrustedOutputError(f"{said} that loops back into its own folder; "
                                   "rtest refuses link loops in a step's output.")
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise UntrustedOutputError(f"{said} that points at a {kind_of(mode)}; "
                                   "rtest keeps only links to a file or folder in the output.")
    return Entry(rel, "link", link_target=os.path.relpath(resolved, os.path.dirname(where)))


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


# ---- copying a checked tree ----------------------------------------------------------------


def copy_tree(tree: Tree, target: Path, *, hard_link: bool = False) -> None:
    """Copy a checked tree's contents into the folder target (a single-file tree lands as target/<name>).

    hard_link: link files instead of copying them where the file system allows (cache entries).
    """
    target.mkdir(parents=True, exist_ok=True)
    if not hard_link:
        _check_free_space(target, tree.nbytes)
    for entry in tree.entries:
        source = os.path.join(tree.root, entry.rel) if entry.rel else str(tree.root)
        dest = os.path.join(target, entry.rel or tree.root.name)
        if entry.kind == "dir":
            os.makedirs(dest, mode=0o755, exist_ok=True)
        elif entry.kind == "link":
            _replace(dest)
            os.symlink(entry.link_target, dest)
        elif not (hard_link and _hard_link(source, dest)):
            copy_file(source, dest)


def _hard_link(source: str, dest: str) -> bool:
    _replace(dest)
    try:
        os.link(source, dest, follow_symlinks=False)
        return True
    except OSError:
        return False  # another file system, or links not allowed: copy instead


def _replace(dest: str) -> None:
    try:
        if not stat.S_ISDIR(os.lstat(dest).st_mode):
            os.unlink(dest)
    except FileNotFoundError:
        pass


def copy_file(source: str, dest: str) -> None:
    """Copy one regular file's bytes, mode bits (no setuid) and times; never follows or blocks; holes stay holes."""
    with open_regular(source) as (fd, st):
        _replace(dest)
        out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, st.st_mode & 0o777)
        try:
            size = st.st_size  # the writer is gone; a file that grows anyway is cut at its checked size
            for start, end in holes.data_ranges(fd, size, st):
                holes.copy_range(fd, out, start, end - start)
            os.ftruncate(out, size)  # a trailing hole
            os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            os.close(out)


@contextmanager
def open_regular(path: str | Path, label: str = "") -> Iterator[tuple[int, os.stat_result]]:
    """(fd, fstat) of a regular file, opened without following a link or blocking on a FIFO."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UntrustedOutputError(f"{label or shown(str(path))} is a {kind_of(st.st_mode)}, not a regular file; "
                                       "rtest does not read it.")
        yield fd, st
    finally:
        os.close(fd)


def _check_free_space(target: Path, nbytes: int) -> None:
    fs = os.statvfs(target)
    if nbytes > fs.f_bavail * fs.f_frsize:
        raise OSError(errno.ENOSPC, f"{_size(nbytes)} to copy, {_size(fs.f_bavail * fs.f_frsize)} free", str(target))


# ---- bounded reads of single files (failure reason, usage) ---------------------------------


def read_small_text(path: Path, max_bytes: int, *, shown_as: str, tail: bool = False) -> tuple[str | None, str | None]:
    """(text, note): at most max_bytes of a regular file (its end when tail); a link, FIFO or device is not opened."""
    try:
        st = os.lstat(path)
    except OSError:
        return None, None
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return None, f"{shown_as} is a symlink -> {shown(target)}, which rtest does not follow; it was ignored"
    if not stat.S_ISREG(st.st_mode):
        return None, f"{shown_as} is a {kind_of(st.st_mode)}, not a regular file; rtest did not read it"
    try:
        with open_regular(path, shown_as) as (fd, st):
            if tail and st.st_size > max_bytes:
                os.lseek(fd, st.st_size - max_bytes, os.SEEK_SET)
            data = _read_at_most(fd, max_bytes)
    except (OSError, UntrustedOutputError):  # replaced between lstat and open
        return None, f"{shown_as} changed while rtest read it; it was ignored"
    return data.decode("utf-8", errors="replace"), None


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks, left = [], limit
    while left > 0:
        chunk = os.read(fd, min(left, _CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# ---- faults while moving files -------------------------------------------------------------


def fault_reason(exc: BaseException, doing: str) -> str:
    """The step failure reason for an error while moving a step's files: a sentence, never a traceback."""
    if isinstance(exc, UntrustedOutputError):
        return str(exc)
    filename = getattr(exc, "filename", None)
    where = f" ({shown(str(filename))})" if filename else ""
    code = getattr(exc, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT):
        return (f"the disk ran out of space while rtest was {doing}{where}; "
                "free space on the disk holding the workdir and rerun.")
    if code == errno.ENOENT:
        return f"a file or folder vanished while rtest was {doing}{where}; was the workdir removed during the run?"
    if code == errno.ENAMETOOLONG:
        return (f"a path is too long for the file system while rtest was {doing}{where}; "
                "shorten the workdir path or the names.")
    return f"rtest failed while {doing}: {getattr(exc, 'strerror', None) or exc}{where}."


def _size(nbytes: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} bytes"
