"""scripts/setup.sh's compose preparation: the .env it writes (the offline build itself was tried by hand:
see the issue 16 report), and what the offline wheelhouse must hold to install rtest from source."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from rtest.composeprep import (
    SERVICE_OFFLINE_BASE,
    WHEELHOUSE_IN_CONTEXT,
    prepare_compose,
    service_requirements,
    update_env_file,
)
from rtest.serve.local import local_services, local_token

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path, monkeypatch):
    """The client notes go to the test's own folder, never the user's ~/.cache/rtest."""
    monkeypatch.setenv("RTEST_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.delenv("RTEST_PORT", raising=False)
    return tmp_path / "runtime"


def test_the_compose_token_reaches_local_clients_while_its_port_answers(tmp_path, runtime_dir):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    env = tmp_path / ".env"
    env.write_text(f"RTEST_PORT={port}\nRTEST_TOKEN=composed\n")
    update_env_file(env, {}, print)
    assert local_token(f"http://127.0.0.1:{port}") is None  # nothing listens yet: compose is down
    listener.listen()
    try:
        assert local_token(f"http://127.0.0.1:{port}") == "composed"
        assert local_token(f"http://localhost:{port}/") == "composed"
        assert f"http://127.0.0.1:{port}" in local_services()  # `rtest runs` finds it with no --server
        assert local_token(f"http://10.1.2.3:{port}") is None  # only loopback URLs get a note's token
    finally:
        listener.close()
    assert stat.S_IMODE((runtime_dir / f"compose-{port}.json").stat().st_mode) == 0o600


def test_env_file_keeps_the_users_lines_and_its_token(tmp_path):
    env = tmp_path / ".env"
    env.write_text("RTEST_PORT=9090\nRTEST_TOKEN=kept\nRTEST_PYTHON_IMAGE=old\n")
    update_env_file(env, {"RTEST_PYTHON_IMAGE": SERVICE_OFFLINE_BASE, "RTEST_WHEELHOUSE": WHEELHOUSE_IN_CONTEXT}, print)
    lines = env.read_text().splitlines()
    assert lines == ["RTEST_PORT=9090", "RTEST_TOKEN=kept", f"RTEST_PYTHON_IMAGE={SERVICE_OFFLINE_BASE}",
                     f"RTEST_WHEELHOUSE={WHEELHOUSE_IN_CONTEXT}"]
    assert stat.S_IMODE(env.stat().st_mode) == 0o600  # it holds the service token


def test_online_writes_only_a_fresh_token_once(tmp_path):
    (tmp_path / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text())
    logged: list[str] = []
    assert prepare_compose(tmp_path, offline=False, store=object(), log=logged.append) == {}
    first = (tmp_path / ".env").read_text()
    assert first.startswith("RTEST_TOKEN=") and len(first.strip().split("=", 1)[1]) == 32
    prepare_compose(tmp_path, offline=False, store=object(), log=logged.append)
    assert (tmp_path / ".env").read_text() == first
    assert any("python:3.11-slim-bookworm (online)" in line for line in logged)


def test_the_offline_wheelhouse_covers_rtest_and_its_build_backend():
    wanted = service_requirements(REPO)
    names = {w.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip().lower() for w in wanted}
    assert {"pip", "hatchling", "fastapi", "pydantic", "docker"} <= names
