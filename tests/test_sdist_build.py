"""Issue 14: a requirement published only as a source distribution is built inside a container, never on
the host. The sdist here carries its own build backend (as an attacker's would): when it runs it writes a
marker into /tmp and records its uid in the wheel it builds. Nothing may appear in the host's /tmp."""

from __future__ import annotations

import io
import os
import secrets
import tarfile
import zipfile
from pathlib import Path

import pytest

from rtest.catalog import BASE_IMAGE
from rtest.deps.installed import image_info
from rtest.deps.requirements import parse_requirement
from rtest.deps.wheelhouse import ensure_wheels, wheelhouse_for

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

BACKEND = '''
import base64, hashlib, os, zipfile

def _mark():
    try:
        with open(MARKER, "w") as handle:
            handle.write(str(os.getuid()))
    except OSError:
        pass

def get_requires_for_build_wheel(config_settings=None):
    _mark()
    return []

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _mark()
    files = {"evilpkg/__init__.py": ("BUILT_BY_UID = %d\\n" % os.getuid()).encode(),
             "evilpkg-0.1.dist-info/METADATA": b"Metadata-Version: 2.1\\nName: evilpkg\\nVersion: 0.1\\n",
             "evilpkg-0.1.dist-info/WHEEL": b"Wheel-Version: 1.0\\nGenerator: t\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"}
    record = ["%s,sha256=%s,%d" % (n, base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b"=").decode(), len(d))
              for n, d in files.items()] + ["evilpkg-0.1.dist-info/RECORD,,"]
    files["evilpkg-0.1.dist-info/RECORD"] = ("\\n".join(record) + "\\n").encode()
    name = "evilpkg-0.1-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as archive:
        for arc, data in files.items():
            archive.writestr(arc, data)
    return name
'''


def _sdist(folder: Path, marker: Path) -> Path:
    members = {
        "evilpkg-0.1/PKG-INFO": "Metadata-Version: 2.1\nName: evilpkg\nVersion: 0.1\n",
        "evilpkg-0.1/pyproject.toml": ('[build-system]\nrequires = []\nbuild-backend = "backend"\n'
                                       'backend-path = ["."]\n'),
        "evilpkg-0.1/backend.py": f"MARKER = {str(marker)!r}\n" + BACKEND,
    }
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / "evilpkg-0.1.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return archive


def test_an_sdist_requirement_is_built_in_a_container_and_runs_nothing_on_the_host(tmp_path, monkeypatch,
                                                                                  image_store):
    marker = Path("/tmp") / f"rtest-sdist-ran-{secrets.token_hex(8)}"
    links = tmp_path / "links"
    _sdist(links, marker)
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))  # the host's pip finds the sdist here, and nowhere else
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    info = image_info(image_store, BASE_IMAGE, image_store.image_id(BASE_IMAGE), tmp_path / "probes")
    house = wheelhouse_for(tmp_path / "wd", info, [], download=True)
    house.store = image_store
    try:
        wheels = ensure_wheels([parse_requirement("evilpkg==0.1", "user", "test")], house, info)
        assert not marker.exists(), "the sdist's build code ran on the host"
    finally:
        marker.unlink(missing_ok=True)
    (wheel,) = [w for w in wheels if w.name.startswith("evilpkg-")]
    assert wheel.parent == house.root
    with zipfile.ZipFile(wheel) as archive:
        built_by = archive.read("evilpkg/__init__.py").decode()
    assert built_by != "BUILT_BY_UID = 0\n"  # built by the container's unprivileged uid, never by root


def test_a_scripts_own_pip_install_of_an_sdist_builds_in_a_container_through_the_cli(tmp_path, docker_client):
    """The same path as a script's `pip install x` found by the CLI's scan: nothing runs on the host, and the
    step then imports the package from its dependency image."""
    import subprocess
    import sys

    from rtest.testing import write_python_pipeline

    marker = Path("/tmp") / f"rtest-sdist-ran-{secrets.token_hex(8)}"
    links = tmp_path / "links"
    _sdist(links, marker)
    script = ("import subprocess, sys\n"
              "subprocess.check_call([sys.executable, '-m', 'pip', 'install', 'evilpkg==0.1'])\n"
              "import evilpkg\nprint('imported, built by uid', evilpkg.BUILT_BY_UID)\n")
    p = write_python_pipeline(tmp_path / "p", {"Installer": {"script": script,
                                                             "outputs": {"out": "/opt/ml/processing/output/out"}}}, [])
    env = {**os.environ, "PIP_FIND_LINKS": str(links), "PIP_NO_INDEX": "1", "COLUMNS": "300"}
    try:
        done = subprocess.run([sys.executable, "-m", "rtest.cli.main", "sandbox", "run", "--dag", str(p["dag"]),
                               "--config", str(p["config"]), "--workdir", str(tmp_path / "wd"), "--no-cache"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=280)
        assert not marker.exists(), "the sdist's build code ran on the host"
    finally:
        marker.unlink(missing_ok=True)
    assert done.returncode == 0, done.stdout + done.stderr
    (log,) = (tmp_path / "wd" / "runs").glob("*/Installer/log.txt")
    assert "imported, built by uid" in log.read_text()
    assert "built by uid 0\n" not in log.read_text()
