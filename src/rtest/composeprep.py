"""Make `docker compose up -d` work as written, online or offline (issue 16 point 5).

docker-compose.yml builds rtest's own image FROM ``${RTEST_PYTHON_IMAGE}`` (a public python
image by default). With no container registry, setup calls :func:`prepare_compose`, which
makes the same kind of offline base as `rtest sandbox images build --offline` (a debootstrap
Debian root imported as an image; bookworm here, since rtest needs Python >= 3.10), fills
``./wheels`` with the wheels rtest needs for that Python, and writes both into ``./.env``,
which compose reads by itself. It also puts a generated service token into ``.env``, because
the service listens beyond loopback inside its container and refuses to start without one.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import tomllib

from rtest.errors import ImageError
from rtest.imagebuild import (
    Log,
    _connect,
    _timed,
    choose_offline,
    default_cache_dir,
    ensure_offline_base,
)

if TYPE_CHECKING:
    from rtest.run.backends.images import ImageStore

SERVICE_PUBLIC_BASE = "python:3.11-slim-bookworm"  # the compose file's default
SERVICE_OFFLINE_BASE = "rtest/debian-bookworm-python:offline"
SERVICE_SUITE = "bookworm"  # Debian 12 ships Python 3.11
WHEELHOUSE_IN_CONTEXT = "/src/wheels"  # the Dockerfile copies the context to /src
SERVICE_WHEEL_TARGET = ["--python-version", "3.11", "--implementation", "cp",
                        "--platform", "manylinux2014_x86_64", "--only-binary=:all:"]


def prepare_compose(repo: Path, offline: bool | None = None, cache_dir: Path | None = None,
                    store: ImageStore | None = None, log: Log = print) -> dict[str, str]:
    """Write ``repo/.env`` so `docker compose up -d` builds and starts; returns the values written."""
    store = store or _connect()
    offline = choose_offline(offline, store, public=SERVICE_PUBLIC_BASE)
    values: dict[str, str] = {}
    if offline:
        cache_dir = Path(cache_dir or default_cache_dir())
        ensure_offline_base(store, cache_dir, log, image=SERVICE_OFFLINE_BASE, suite=SERVICE_SUITE,
                            packages="python3")
        _timed(log, "service wheelhouse", lambda: download_service_wheels(repo, repo / "wheels", log))
        values = {"RTEST_PYTHON_IMAGE": SERVICE_OFFLINE_BASE, "RTEST_WHEELHOUSE": WHEELHOUSE_IN_CONTEXT}
    log(f"compose builds FROM {values.get('RTEST_PYTHON_IMAGE', SERVICE_PUBLIC_BASE)}"
        f" ({'offline' if offline else 'online'})")
    update_env_file(repo / ".env", values, log)
    return values


def service_requirements(repo: Path) -> list[str]:
    """rtest's own dependencies, plus what installing it from source needs (pip, its build backend)."""
    project = tomllib.loads((repo / "pyproject.toml").read_text())
    return [*project["project"]["dependencies"], *project["build-system"]["requires"], "pip"]


def download_service_wheels(repo: Path, wheelhouse: Path, log: Log) -> None:
    wheelhouse.mkdir(parents=True, exist_ok=True)
    log(f"downloading Python 3.11 wheels for rtest into {wheelhouse}")
    command = [sys.executable, "-m", "pip", "download", "-q", "-d", str(wheelhouse), *SERVICE_WHEEL_TARGET,
               *service_requirements(repo)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise ImageError(f"pip could not download rtest's wheels into {wheelhouse} ({last[0]}); check access to"
                         " your package index.")


def update_env_file(path: Path, values: dict[str, str], log: Log) -> None:
    """Set ``values`` in compose's .env, keeping other lines; add a service token once, and leave the note
    that lets this machine's `rtest` clients use it with no --token (rtest.serve.local)."""
    from rtest.serve.local import remember_compose

    lines = path.read_text().splitlines() if path.is_file() else []
    kept = [line for line in lines if line.split("=", 1)[0].strip() not in values]
    if not any(line.startswith("RTEST_TOKEN=") for line in kept):
        kept.append(f"RTEST_TOKEN={secrets.token_hex(16)}")
        log(f"wrote a service token into {path} (RTEST_TOKEN)")
    kept += [f"{key}={value}" for key, value in values.items()]
    path.write_text("\n".join(kept) + "\n")
    path.chmod(0o600)
    settings = dict(line.split("=", 1) for line in kept if "=" in line and not line.lstrip().startswith("#"))
    port = os.environ.get("RTEST_PORT") or settings.get("RTEST_PORT") or "8080"  # as docker-compose.yml reads it
    if port.isdigit():
        remember_compose(int(port), settings["RTEST_TOKEN"])


def main(argv: list[str] | None = None) -> int:
    """`python -m rtest.composeprep [--offline|--online] [REPO]`, as scripts/setup.sh calls it."""
    args = list(sys.argv[1:] if argv is None else argv)
    offline = True if "--offline" in args else False if "--online" in args else None
    folders = [arg for arg in args if not arg.startswith("--")]
    repo = Path(folders[0] if folders else ".").resolve()
    try:
        prepare_compose(repo, offline)
    except ImageError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
