"""Shared fixtures. Docker tests never skip: with no engine they fail, loudly."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

# The fast tier (docs/development.md) runs with HYPOTHESIS_PROFILE=fast: property tests try a tenth of their examples
# (tests/properties.py). CI and a plain `pytest` use the default profile and every test's own count.
settings.register_profile("fast", max_examples=20)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# pytest-xdist workers start with COLUMNS=80 in their environment, and a rich console created at import keeps the
# width it saw then: a command run in-process (tests/cli_helpers.py) would wrap at 80 whatever its test asks for.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.pop("COLUMNS", None)

# Services started by tests (some killed on purpose, so they leave their note behind) and compose preparation
# write client notes (rtest.serve.local): into the session's own folder, never the user's ~/.cache/rtest.
os.environ["RTEST_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="rtest-test-runtime-")

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


@pytest.fixture(scope="session")
def swarm_lab(docker_client):
    """The two-node lab swarm (scripts/swarm_lab.sh): the one already up (`.ci/run` brings it up), or one
    this session starts (as root) and takes down at its end. Its environment: RTEST_LAB_REGISTRY,
    RTEST_LAB_WORKER_HOST, RTEST_LAB_WORKER_NAME. A lab that cannot start fails the tests, never skips them."""
    import os
    import subprocess

    lab = REPO_ROOT / "scripts" / "swarm_lab.sh"
    was_up = docker_client.info()["Swarm"]["LocalNodeState"] == "active"
    if not was_up and os.geteuid() != 0:
        pytest.fail("The swarm tests need root to start the lab (`sudo bash scripts/swarm_lab.sh up`), or the lab up.")
    done = subprocess.run(["bash", str(lab), "up"], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.fail(f"The lab swarm did not start: {done.stderr.strip()[-2000:]}")
    env = dict(line.split("=", 1) for line in done.stdout.split())
    try:
        yield env
    finally:
        if not was_up:
            subprocess.run(["bash", str(lab), "down"], capture_output=True, timeout=180)
