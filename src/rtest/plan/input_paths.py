"""The user's input paths: checked at plan time, copied at run time by one walker that obeys the same rules.

A user input is trusted (the user chose it), but what it may reach is not:
``/`` or a folder holding rtest's own workdir would copy the host or copy the
copy into itself, a FIFO blocks the copy forever, and a symlink inside the folder
can point anywhere. So an input must be a regular file or a folder; inside a
folder, a symlink is followed only when its target stays inside that folder,
unless the user passes ``--follow-input-links``; a link that loops is refused.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rtest.errors import PlanError

FOLLOW_HINT = (
    "pass --follow-input-links (or follow_input_links: true in the spec file) to copy link targets outside the folder"
)

# Kernel file systems: files that block on read (/proc/kmsg) or never end; never user data.
VIRTUAL_ROOTS = (Path("/proc"), Path("/sys"), Path("/dev"))
# A folder reached through links more often than this is a link bomb (2 links per level, 2^depth copies), not data.
MAX_FOLDER_VISITS = 16
_SPECIAL = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class InputPathError(PlanError):
    """An input path rtest will not read from."""


def special_kind(mode: int) -> str | None:
    """'a FIFO', 'a socket', ... for a file that is neither a regular file, a folder nor a link."""
    return next((name for test, name in _SPECIAL if test(mode)), None)


def absolute_path(value: str | Path, base: Path | None = None) -> str:
    """``value`` made absolute (links resolved where they resolve); a looping path stays as written,
    for the check to name."""
    if "\x00" in str(value):  # "~user\0" would reach the password database and raise ValueError there
        raise InputPathError(f"path {str(value)!r} holds a NUL character, which no file name can have")
    try:
        path = (base or Path.cwd()) / Path(value).expanduser()
    except RuntimeError:  # "~name" of a user who does not exist
        raise InputPathError(
            f"path {value} starts with ~ but no such user's home folder exists; write the path out"
        ) from None
    try:
        return str(path.resolve())
    except (OSError, RuntimeError, ValueError):  # a symlink loop (RuntimeError before Python 3.13), a NUL byte
        return os.path.abspath(path)


def input_path_problem(
    path: str | Path, *, follow_links: bool = False, workdir: str | Path | None = None
) -> str | None:
    """Why rtest refuses this input path, as a sentence fragment; None when it may be copied."""
    try:
        _check_input(Path(path), follow_links=follow_links, workdir=workdir)
    except InputPathError as exc:
        return str(exc)
    return None


def copy_user_input(source: Path, target_dir: Path, *, follow_links: bool = False) -> None:
    """Copy a user's file into target_dir, or a folder's contents into it, by the rules above.

    The rules are checked again while copying: the files may have changed since the plan was made.
    """
    source = Path(source)
    _check_top(source, workdir=None)
    root = source.resolve()
    target_dir.mkdir(parents=True, exist_ok=True)
    destination = target_dir.resolve()
    if _is_within(destination, root):
        raise InputPathError(
            f"input {source} holds the folder it would be copied to ({target_dir}); it would copy itself into itself"
        )
    if root.is_dir():
        _Walk(root, follow_links, guard=destination).folder(root, target_dir, (_dir_id(root),))
    else:
        shutil.copy2(root, target_dir / source.name)


def _check_input(path: Path, *, follow_links: bool, workdir: str | Path | None) -> None:
    _check_top(path, workdir=workdir)
    root = path.resolve()
    if root.is_dir():
        guard = Path(workdir).expanduser().resolve() if workdir is not None else None
        _Walk(root, follow_links, guard=guard).folder(root, None, (_dir_id(root),))


def _check_top(path: Path, *, workdir: str | Path | None) -> None:
    if "\x00" in str(path):
        raise InputPathError(f"path {str(path)!r} holds a NUL character, which no file name can have")
    try:
        resolved = path.resolve(strict=True)
        mode = resolved.stat().st_mode
    except FileNotFoundError:
        raise InputPathError(f"path does not exist: {path}") from None
    except ValueError:  # a character the file system encoding cannot hold (a lone surrogate from a JSON file)
        raise InputPathError(f"path {str(path)!r} is not a valid file name on this system") from None
    except (
        OSError,
        RuntimeError,
    ) as exc:  # a loop in the path itself (RuntimeError before Python 3.13), or no permission
        if isinstance(exc, RuntimeError) or exc.errno == errno.ELOOP:
            raise InputPathError(f"path {path} is a symlink loop; point at the data itself") from None
        raise InputPathError(f"path {path} cannot be read ({_why(exc)})") from None
    if resolved == Path(resolved.anchor):
        raise InputPathError(
            f"path {path} is the file system root; rtest will not copy the whole host, point at a data folder"
        )
    if any(_is_within(resolved, virtual) for virtual in VIRTUAL_ROOTS):
        raise InputPathError(
            f"path {path} is in the kernel's {_virtual_of(resolved)} file system, not data; point at a data folder"
        )
    if workdir is not None:
        home = Path(workdir).expanduser().resolve()
        if _is_within(home, resolved):
            raise InputPathError(f"path {path} holds rtest's workdir {home}, so the copy would copy itself; "
                                 "point at a data folder outside it, or pass --workdir somewhere else")
    kind = special_kind(mode)
    if kind:
        raise InputPathError(
            f"path {path} is {kind}, not a file or folder; rtest copies only regular files and folders"
        )


@dataclass
class _Walk:
    """One walk over an input folder: its rules and what it has seen."""

    root: Path
    follow_links: bool
    guard: Path | None  # where the copy goes (the workdir): no followed link may lead into it
    entered: Counter = field(default_factory=Counter)  # folder id -> times entered, to stop link bombs

    def folder(self, folder: Path, copy_to: Path | None, above: tuple[tuple[int, int], ...]) -> None:
        """Check (and copy, when copy_to is set) one folder; ``above`` holds the folders above it, to spot loops."""
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            raise InputPathError(f"folder {folder} in input {self.root} cannot be read ({_why(exc)})") from None
        for entry in entries:
            path = Path(entry.path)
            target, mode = self._look(entry, path)
            destination = copy_to / entry.name if copy_to is not None else None
            if stat.S_ISDIR(mode):
                ident = self._enter(path, target, above)
                if destination is not None:
                    destination.mkdir(exist_ok=True)
                self.folder(target, destination, (*above, ident))
            elif destination is not None:
                shutil.copy2(target, destination)

    def _look(self, entry: os.DirEntry, path: Path) -> tuple[Path, int]:
        try:
            target = _link_target(path, self.root, self.follow_links) if entry.is_symlink() else path
            mode = target.stat().st_mode if entry.is_symlink() else entry.stat(follow_symlinks=False).st_mode
        except OSError as exc:  # gone or unreadable since the folder was listed
            raise InputPathError(f"input {self.root} holds {path}, which cannot be read ({_why(exc)})") from None
        kind = special_kind(mode)
        if kind:
            raise InputPathError(
                f"input {self.root} holds {path}, which is {kind}; rtest copies only regular files and folders"
            )
        return target, mode

    def _enter(self, path: Path, target: Path, above: tuple[tuple[int, int], ...]) -> tuple[int, int]:
        ident = _dir_id(target)
        if ident in above:
            raise InputPathError(
                f"input {self.root} holds a symlink loop at {path} (it leads back to a folder above it); "
                "remove the link"
            )
        if target != path and self.guard is not None and _is_within(self.guard, target):
            raise InputPathError(
                f"input {self.root} holds a symlink {path} -> {target}, which holds rtest's workdir; "
                "the copy would copy itself"
            )
        self.entered[ident] += 1
        if self.entered[ident] > MAX_FOLDER_VISITS:  # links fanning out level after level: exponential without a loop
            raise InputPathError(
                f"input {self.root} reaches folder {target} through links more than {MAX_FOLDER_VISITS} times "
                f"(last via {path}); rtest stops a link bomb, replace the links with the data"
            )
        return ident


def _link_target(link: Path, root: Path, follow_links: bool) -> Path:
    try:
        target = link.resolve(strict=True)
    except FileNotFoundError:
        raise InputPathError(
            f"input {root} holds a symlink {link} -> {os.readlink(link)} whose target does not exist; remove the link"
        ) from None
    except (OSError, RuntimeError):
        raise InputPathError(f"input {root} holds a symlink loop at {link}; remove the link") from None
    if target == Path(target.anchor) or any(_is_within(target, virtual) for virtual in VIRTUAL_ROOTS):
        raise InputPathError(
            f"input {root} holds a symlink {link} -> {target}; rtest never copies the file system root or "
            "the kernel's /proc, /sys and /dev, even with --follow-input-links"
        )
    if not follow_links and not _is_within(target, root):
        raise InputPathError(f"input {root} holds a symlink {link} -> {target} that points outside the input folder; "
                             f"rtest does not follow links out of an input unless you {FOLLOW_HINT}")
    return target


def _virtual_of(path: Path) -> str:
    return next(str(v) for v in VIRTUAL_ROOTS if _is_within(path, v))


def _dir_id(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_dev, info.st_ino


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _why(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
