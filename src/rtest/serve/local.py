"""What a service leaves on its own machine: its token, its workdir lock, and a note clients find it by.

The token lives in ``<workdir>/serve/token`` (0600). The note, ``<runtime dir>/serve-<port>.json`` (0600,
the folder 0700), tells a CLI client on the same machine the token of the service on that port, so
`rtest sandbox run --server` and `rtest runs` need no --token (as Jupyter's runtime files do). The compose
service runs in a container and cannot leave one: ``compose-<port>.json``, written with compose's ``.env``
(rtest.composeprep), says the same of the published port; it counts while that port answers. The lock
(``<workdir>/serve/lock``, flock) is held for the service's life: a second service on the same workdir
would recover the first one's runs, so it exits 2 instead, naming the first.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

from rtest.errors import RtestError

RUNTIME_ENV = "RTEST_RUNTIME_DIR"


class WorkdirInUseError(RtestError):
    """Another `rtest serve` holds this workdir."""


def write_secret(path: Path, text: str) -> None:
    """Write ``text`` readable by this user only (created 0600; an older file is made 0600 first)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def token_file(workdir: Path) -> Path:
    return Path(workdir) / "serve" / "token"


def runtime_dir() -> Path:
    if os.environ.get(RUNTIME_ENV):
        return Path(os.environ[RUNTIME_ENV])
    base = os.environ.get("XDG_RUNTIME_DIR") or str(Path.home() / ".cache")
    return Path(base) / "rtest"


def _note(port: int, kind: str = "serve") -> Path:
    """``serve-<port>.json`` of an `rtest serve` on this machine, ``compose-<port>.json`` of the compose one."""
    return runtime_dir() / f"{kind}-{port}.json"


def _leave_note(note: Path, data: dict) -> Path:
    note.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_secret(note, json.dumps(data))
    return note


def announce(port: int, token: str | None) -> Path:
    """Leave the note for local clients (removed by ``retract`` when the service stops)."""
    return _leave_note(_note(port), {"pid": os.getpid(), "port": port, "token": token})


def remember_compose(port: int, token: str) -> Path:
    """The note of the compose service on ``port`` (its token is the one compose's ``.env`` gives it)."""
    return _leave_note(_note(port, "compose"), {"port": port, "token": token, "by": "docker compose"})


def retract(port: int) -> None:
    note = _note(port)
    try:
        if json.loads(note.read_text()).get("pid") == os.getpid():
            note.unlink()
    except (OSError, ValueError):
        pass


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _live(note: Path) -> dict | None:
    """The note's data when its service is up: a process note whose pid lives, a compose note whose port
    answers. A process note whose service was killed before it could take it back is removed."""
    try:
        data = json.loads(note.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("port"), int):
        return None
    if note.name.startswith("compose-"):
        return data if _answers(data["port"]) else None
    if _alive(data.get("pid")):
        return data
    note.unlink(missing_ok=True)
    return None


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return True
    except OSError:
        return False


def local_token(url: str) -> str | None:
    """The token of the live service this machine runs at ``url`` (a loopback URL), if it left a note."""
    parts = urlsplit(url)
    if (parts.hostname or "") not in ("127.0.0.1", "localhost", "::1") or parts.port is None:
        return None
    for kind in ("serve", "compose"):  # only this port's notes: a client call reads no others
        data = _live(_note(parts.port, kind))
        if data is not None:
            return data.get("token")
    return None


def local_services() -> list[str]:
    """URLs of the live services on this machine (their notes), for `rtest runs` without --server."""
    notes = [*runtime_dir().glob("serve-*.json"), *runtime_dir().glob("compose-*.json")]
    return sorted({f"http://127.0.0.1:{data['port']}" for data in map(_live, notes) if data is not None})


def hold_workdir(workdir: Path, port: int) -> int:
    """Take the workdir's lock for this process's life (the descriptor is returned, never closed), or raise."""
    lock = Path(workdir) / "serve" / "lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_holder(fd)
        os.close(fd)
        raise WorkdirInUseError(
            f"Another rtest serve (PID {holder.get('pid', '?')}, port {holder.get('port', '?')}) already uses the "
            f"workdir {workdir}; stop it first, or give this one another --workdir.") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({"pid": os.getpid(), "port": port}).encode(), 0)
    return fd


def _read_holder(fd: int) -> dict:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
