"""Backends own their images: the protocol's image store and optional parts, on every backend (issue 20)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from rtest.catalog import BASE_IMAGE
from rtest.errors import ImageNotFoundError, OptionError
from rtest.run import backends
from rtest.run.backends import _REGISTRY, create_backend, register_backend
from rtest.run.backends.base import Backend, BackendBase, Mount
from rtest.run.backends.images import ImageStore
from rtest.testing import FakeBackend

SRC = Path(__file__).resolve().parents[1] / "src" / "rtest"
PROTOCOL_PARTS = ("name", "images", "stager", "preflight", "total_cpus", "image_id", "prepare", "run", "remove",
                  "remove_run", "network_exists")


def test_the_fake_backend_satisfies_the_protocol_with_no_image_store():
    backend = FakeBackend()
    assert isinstance(backend, Backend) and all(hasattr(backend, part) for part in PROTOCOL_PARTS)
    assert backend.images is None and backend.stager is None and backend.total_cpus() is None
    assert backend.preflight(Path("/nonexistent"), ["img:1"]) is None


def test_the_swarm_backend_keeps_its_images_on_the_managers_engine():
    from rtest.run.backends.swarm import SwarmBackend
    from test_swarm_contract import NODES, FakeClient, FakeSwarmAPI

    client = FakeClient(FakeSwarmAPI(NODES, []))
    backend = SwarmBackend(client)
    assert isinstance(backend, Backend) and isinstance(backend, BackendBase)
    assert isinstance(backend.images, ImageStore) and backend.images.client is client
    assert backend.images.image_id("img:1") == backend.image_id("img:1") == "sha256:abc"
    assert backend.total_cpus() == 6  # its own: every ready node's CPUs


def test_a_backend_refuses_options_it_does_not_take_before_it_connects(monkeypatch):
    # rtest's own backends only: fakes other tests of this worker registered take any option and would be named
    monkeypatch.setattr(backends, "_REGISTRY", {name: _REGISTRY[name] for name in ("docker", "swarm")})
    made = []
    register_backend("plain-test", lambda: made.append(1) or FakeBackend())
    with pytest.raises(OptionError, match=r"The plain-test backend takes no --registry; drop it or add "
                                          r"--backend swarm\."):
        create_backend("plain-test", registry="host:5000", placement=None)
    assert made == []
    assert isinstance(create_backend("plain-test", registry=None), FakeBackend) and made == [1]


def test_nothing_outside_the_backend_and_its_registry_line_names_swarm_in_code():
    """A second backend is one module plus a registry line: only option help text may name it elsewhere."""
    named = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith(("run/backends/swarm", "cli/", "options.py")):  # the backend; option help and docs
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "swarm" in line.lower() and not (rel == "run/backends/__init__.py" and line.strip().startswith('"swarm"')):
                named.append(f"{rel}:{number}")
    assert named == []


# ---- the Docker backend's store, on the real engine -------------------------------------------------------


@pytest.mark.docker
def test_a_command_in_an_image_reports_its_exit_code_and_output_and_commits_only_on_success(image_store, tmp_path):
    (tmp_path / "in.txt").write_text("from the host\n")
    mounts = [Mount(host=tmp_path, container="/opt/rtest/in", read_only=True)]
    never = f"rtest-test/store:{uuid.uuid4().hex[:8]}"
    failed = image_store.run_command(BASE_IMAGE, ["sh", "-c", "cat /opt/rtest/in/in.txt; echo oops >&2; exit 3"],
                                     mounts=mounts, labels={"rtest.kind": "store-test"}, commit_as=never)
    assert failed.exit_code == 3 and "from the host" in failed.output and "oops" in failed.output
    assert not image_store.exists(never)
    quiet = image_store.run_command(BASE_IMAGE, ["sh", "-c", "echo out; echo err >&2"], stdout_only=True)
    assert quiet.exit_code == 0 and quiet.output.split() == ["out"]
    lines: list[str] = []
    tag = f"rtest-test/store:{uuid.uuid4().hex[:8]}"
    made = image_store.run_command(BASE_IMAGE, ["sh", "-c", "touch /made-here; echo one; echo two"],
                                   user="0:0", on_line=lines.append, tail=1, commit_as=tag,
                                   commit_changes=["LABEL rtest.kind=store-test"])
    try:
        assert made.exit_code == 0 and lines == ["one", "two"] and made.output == "two"
        assert image_store.labels(tag)["rtest.kind"] == "store-test"
        assert tag in {t for image in image_store.list_images("rtest.kind=store-test") for t in image.tags}
        assert image_store.run_command(tag, ["test", "-e", "/made-here"]).exit_code == 0
    finally:
        assert image_store.remove_image(tag) == "removed"
    assert image_store.remove_image(tag) == "missing" and not image_store.exists(tag)


@pytest.mark.docker
def test_a_missing_image_is_one_sentence_from_every_store_call(image_store):
    missing = f"rtest-test/absent:{uuid.uuid4().hex[:8]}"
    for call in (lambda: image_store.image_id(missing), lambda: image_store.config(missing),
                 lambda: image_store.run_command(missing, ["true"])):
        with pytest.raises(ImageNotFoundError, match=missing):
            call()
