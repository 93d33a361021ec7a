"""Who owns a step's files, and which mode bits they may keep on the host.

Steps never run as root (plan/settings.invoking_user): when rtest itself runs as uid 0, a
step runs as an unprivileged uid (65534 unless --step-user says otherwise). Its folders are
the host's, made by root, so before the step they are handed to the step's uid (the folders
it writes: outputs, inputs it may change, /opt/ml/output, meta, the log file), and after it
they are handed back to the invoking user, so no file of the run belongs to a uid that other
processes on the host share.

Independently of the user, whatever a step left is swept after it ends: setuid and setgid bits
are stripped (a step's `chmod 4755` copy of a shell must not become a root shell on the host,
nor survive into the cache through a hard link), and device files are removed and fail the
step (no step can make one: CAP_MKNOD is dropped; finding one means something went wrong).

Entries are found by run/untrusted.walk (lstat, links never entered) and changed through an
``O_PATH | O_NOFOLLOW`` descriptor checked to be the inode the walk saw, so a link put in
place of a file is never followed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from rtest.errors import UntrustedOutputError
from rtest.run.untrusted import kind_of, shown, walk

_PRIVILEGE_BITS = stat.S_ISUID | stat.S_ISGID


def parse_user(user: str | None) -> tuple[int, int] | None:
    """"uid:gid" (or "uid") as numbers; None when not numeric (a name only the image knows)."""
    if not user:
        return None
    uid, _, gid = user.partition(":")
    if not uid.isdigit() or (gid and not gid.isdigit()):
        return None
    return int(uid), int(gid or uid)


def handover_owner(user: str | None) -> tuple[int, int] | None:
    """The (uid, gid) a step's folders must belong to before it starts; None when nothing needs changing.

    Only root can give files away, and only a root rtest runs steps as another uid.
    """
    wanted = parse_user(user)
    if os.getuid() != 0 or wanted is None or wanted == (os.getuid(), os.getgid()):
        return None
    return wanted


def hand_over(root: Path, user: str | None) -> None:
    """Before a step: its folders (made by root) become the step user's, so it can write its outputs."""
    owner = handover_owner(user)
    if owner is not None:
        settle(root, owner)


def unreadable_for(user: str | None, paths: list[Path]) -> str | None:
    """A sentence when the step user could not read one of paths (its code folder, its script), else None.

    A root rtest runs steps as another uid; a source folder only root may read (a checkout under /root,
    a temporary folder made 0700) would otherwise fail the step with a bare PermissionError.
    """
    owner = handover_owner(user)
    if owner is None:
        return None
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue  # missing: the bootstrap names what the folder holds
        need = 0o5 if stat.S_ISDIR(st.st_mode) else 0o4
        shift = 6 if st.st_uid == owner[0] else 3 if st.st_gid == owner[1] else 0
        if (st.st_mode >> shift) & need != need:
            return (f"the step runs as {user} (rtest runs as root, and steps never do), which cannot read "
                    f"{shown(str(path))} (mode {stat.S_IMODE(st.st_mode):o}); make it readable to others "
                    "(chmod -R o+rX) or pass --step-user with a uid that can read it")
    return None


def take_back(root: Path, user: str | None) -> None:
    """After a step: no setuid/setgid bit, no device file, and (as root) every file the invoking user's again."""
    settle(root, (os.getuid(), os.getgid()) if handover_owner(user) is not None else None)


def settle(root: Path, owner: tuple[int, int] | None) -> None:
    """Strip setuid/setgid bits under root, remove device files (then raise), and chown to owner when given."""
    try:
        entries = [("", os.lstat(root)), *walk(root)]
    except FileNotFoundError:
        return
    devices = []
    for rel, st in entries:
        path = os.path.join(root, rel) if rel else str(root)
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            os.unlink(path)
            devices.append((rel, st.st_mode))
        elif stat.S_ISLNK(st.st_mode):
            if owner is not None and (st.st_uid, st.st_gid) != owner:
                os.lchown(path, *owner)  # the link itself, never its target
        elif (st.st_mode & _PRIVILEGE_BITS) or (owner is not None and (st.st_uid, st.st_gid) != owner):
            _fix(path, st, owner)
    if devices:
        rel, mode = devices[0]
        raise UntrustedOutputError(
            f"the step left a {kind_of(mode)} at {shown(rel) or shown(str(root))} ({len(devices)} device file(s) in "
            "all); rtest removed them and fails the step, since no step should be able to make one.")


def _fix(path: str, seen: os.stat_result, owner: tuple[int, int] | None) -> None:
    """chown, then chmod without setuid/setgid (chown may clear them anyway), on the very inode the walk saw."""
    try:
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (seen.st_dev, seen.st_ino):
            raise UntrustedOutputError(f"{shown(path)} changed while rtest swept the step's files; "
                                       "was the step's container still running?")
        handle = f"/proc/self/fd/{fd}"  # the inode itself: chmod/chown of an O_PATH descriptor
        if owner is not None and (st.st_uid, st.st_gid) != owner:
            os.chown(handle, *owner)
        mode = stat.S_IMODE(st.st_mode)
        if mode & _PRIVILEGE_BITS:
            os.chmod(handle, mode & ~_PRIVILEGE_BITS)
    finally:
        os.close(fd)
