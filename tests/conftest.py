"""Shared fixtures. Docker tests never skip: with no engine they fail, loudly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def docker_client():
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # the marker promises a real engine; say so instead of skipping
        pytest.fail(f"Docker tests need a running engine (start dockerd, see .ci/run): {exc}")
    return client


@pytest.fixture(scope="session")
def image_store(docker_client):
    """The Docker backend's image store over the session's client (what `backend.images` is)."""
    from rtest.run.backends.docker_images import DockerImageStore

    return DockerImageStore(docker_client)


@pytest.fixture
def example_copy(tmp_path: Path) -> Path:
    """A private copy of the bundled example, so tests may edit it."""
    from rtest.example import example_dir

    target = tmp_path / "example"
    shutil.copytree(example_dir(), target)
    return target
