"""Shared fixtures. Docker tests never skip: with no engine they fail, loudly."""

from __future__ import annotations

import os
import shutil
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


@pytest.fixture
def example_copy(tmp_path: Path) -> Path:
    """A private copy of the bundled example, so tests may edit it."""
    from rtest.example import example_dir

    target = tmp_path / "example"
    shutil.copytree(example_dir(), target)
    return target
