"""scripts/setup.sh's compose preparation: the .env it writes (the offline build itself was tried by hand:
see the issue 16 report), and what the offline wheelhouse must hold to install rtest from source."""

from __future__ import annotations

import stat
from pathlib import Path

from rtest.composeprep import (
    SERVICE_OFFLINE_BASE,
    WHEELHOUSE_IN_CONTEXT,
    prepare_compose,
    service_requirements,
    update_env_file,
)

REPO = Path(__file__).resolve().parents[1]


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
