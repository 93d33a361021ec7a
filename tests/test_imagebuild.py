"""The look-alike images: how they are built (pure logic, real pip) and what the built ones hold."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
import zipfile
from pathlib import Path

import pytest

from rtest import imagebuild
from rtest.catalog import BASE_IMAGE, IMAGE_CATALOG, IMAGE_DIRS
from rtest.errors import ImageError

SKLEARN_IMAGE = IMAGE_CATALOG[("sklearn", "1.2-1")]
XGBOOST_IMAGE = IMAGE_CATALOG[("xgboost", "1.7-1")]
SKLEARN_STACK = {"sklearn": "1.2.1", "pandas": "1.1.3", "numpy": "1.24.1", "scipy": "1.8.0"}
PRINT_VERSIONS = (
    "import json, sys, importlib; mods = sys.argv[1:]; "
    "print(json.dumps({'python': list(sys.version_info[:2]), "
    "**{m: importlib.import_module(m).__version__ for m in mods}}))"
)


def make_wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    """A minimal but valid pure-Python wheel, enough for pip to resolve against."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"__version__ = '{version}'\n",
        f"{dist}/METADATA": "Metadata-Version: 2.1\nName: {}\nVersion: {}\n{}".format(
            name, version, "".join(f"Requires-Dist: {r}\n" for r in requires)),
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join(record + [f"{dist}/RECORD,,"]) + "\n"
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


@pytest.fixture
def wheelhouse(tmp_path: Path) -> Path:
    folder = tmp_path / "wheels"
    folder.mkdir()
    make_wheel(folder, "alpha", "1.0", ("beta>=2",))
    make_wheel(folder, "beta", "2.1")
    make_wheel(folder, "gamma", "3.0")
    return folder


def requirements(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / f"req-{uuid.uuid4().hex[:6]}.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


# --- which images, which path --------------------------------------------------------------

def test_select_images_keeps_catalog_order_and_accepts_folders_or_tags():
    assert imagebuild.select_images(None) == list(IMAGE_DIRS)
    assert imagebuild.select_images(["xgboost", BASE_IMAGE]) == [BASE_IMAGE, XGBOOST_IMAGE]
    with pytest.raises(ImageError, match=r"Unknown image 'torch'.*base, sklearn, xgboost"):
        imagebuild.select_images(["torch"])


class FakeStore:
    """The part of an image store the build logic asks: which images exist, their labels, a pull."""

    def __init__(self, local: set[str] | dict[str, dict] = frozenset(), pull_works: bool = False) -> None:
        self.local = local if isinstance(local, dict) else {ref: {} for ref in local}
        self.pull_works, self.pulled = pull_works, []

    def labels(self, ref: str) -> dict | None:
        return self.local.get(ref)

    def exists(self, ref: str) -> bool:
        return ref in self.local

    def pull(self, ref: str) -> bool:
        self.pulled.append(ref)
        return self.pull_works


def test_explicit_choice_never_asks_the_engine():
    store = FakeStore()
    assert imagebuild.choose_offline(True, store) is True
    assert imagebuild.choose_offline(False, store) is False
    assert store.pulled == []


@pytest.mark.parametrize(
    ("local", "pull_works", "expected_offline", "expected_pulls"),
    [
        ({imagebuild.PUBLIC_BASE_IMAGE}, False, False, 0),  # present locally: online, no pull
        (set(), True, False, 1),  # pullable: online
        (set(), False, True, 1),  # neither: offline
    ],
)
def test_automatic_choice_goes_offline_only_without_the_public_base(local, pull_works, expected_offline, expected_pulls):
    store = FakeStore(local, pull_works)
    assert imagebuild.choose_offline(None, store) is expected_offline
    assert len(store.pulled) == expected_pulls


@pytest.mark.docker
def test_the_store_tells_present_from_absent(image_store):
    assert image_store.exists(BASE_IMAGE) and image_store.labels(BASE_IMAGE)["rtest.image"] == "1"
    missing = f"rtest-test/absent:{uuid.uuid4().hex[:8]}"
    assert not image_store.exists(missing) and image_store.labels(missing) is None


def test_needs_build_rebuilds_only_missing_or_stale_rtest_images():
    key = f"{imagebuild.RECIPE_LABEL}.sklearn"
    current = imagebuild.recipe_digest("sklearn")
    lines: list[str] = []
    assert imagebuild.needs_build(FakeStore(), SKLEARN_IMAGE, lines.append)
    assert not imagebuild.needs_build(FakeStore({SKLEARN_IMAGE: {}}), SKLEARN_IMAGE, lines.append)  # built by hand
    assert not imagebuild.needs_build(FakeStore({SKLEARN_IMAGE: {key: current}}), SKLEARN_IMAGE, lines.append)
    assert lines == []
    # a label inherited from the base image is not this image's recipe
    inherited = {f"{imagebuild.RECIPE_LABEL}.base": "0" * 16}
    assert not imagebuild.needs_build(FakeStore({SKLEARN_IMAGE: inherited}), SKLEARN_IMAGE, lines.append)
    assert imagebuild.needs_build(FakeStore({SKLEARN_IMAGE: {key: "0" * 16}}), SKLEARN_IMAGE, lines.append)
    assert lines == [f"{SKLEARN_IMAGE} was built from an older recipe; rebuilding"]


def test_recipe_digest_changes_with_the_pins(tmp_path, monkeypatch):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "Dockerfile").write_text("FROM x\n")
    (tmp_path / "a" / "requirements.txt").write_text("numpy==1.24.1\n")
    (tmp_path / "b" / "requirements.txt").write_text("numpy==1.24.2\n")
    monkeypatch.setattr(imagebuild, "images_root", lambda: tmp_path)
    assert imagebuild.recipe_digest("a") != imagebuild.recipe_digest("b")
    assert imagebuild.recipe_digest("a") == imagebuild.recipe_digest("a")


def test_missing_image_message_names_the_image_and_the_command():
    ours = imagebuild.missing_image_message(SKLEARN_IMAGE)
    assert SKLEARN_IMAGE in ours and "`rtest sandbox images build`" in ours and "--offline" in ours
    assert ours.endswith(".") and ours.count(". ") == 0  # one sentence
    foreign = imagebuild.missing_image_message("123.dkr.ecr.us-east-1.amazonaws.com/x:1")
    assert "--image-map KIND:VERSION=IMAGE" in foreign and "images build" not in foreign and "docker pull" not in foreign
    stand_in = imagebuild.missing_image_message("rtest/sagemaker-pytorch:2.1.0")  # no look-alike: never a pull of an rtest tag
    assert "--image-map pytorch:2.1.0=IMAGE" in stand_in and "docker pull" not in stand_in and "images build" not in stand_in


def test_build_args_add_the_wheelhouse_only_offline():
    assert imagebuild.build_args("b:1", offline=False) == {"BASE_IMAGE": "b:1"}
    assert imagebuild.build_args("b:1", offline=True) == {"BASE_IMAGE": "b:1", "WHEELHOUSE": imagebuild.CONTEXT_WHEELHOUSE}


def test_missing_debootstrap_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(imagebuild.shutil, "which", lambda name: None)
    with pytest.raises(ImageError, match=r"apt-get install debootstrap"):
        imagebuild.make_debian_root(tmp_path / "root", print)
    assert not (tmp_path / "root").exists()


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RTEST_CACHE_DIR", str(tmp_path))
    assert imagebuild.default_cache_dir() == tmp_path
    monkeypatch.delenv("RTEST_CACHE_DIR")
    assert imagebuild.default_cache_dir() == Path.home() / ".cache" / "rtest"


# --- the Dockerfiles and their pins -----------------------------------------------------------

def pins(folder: str) -> dict[str, str]:
    text = imagebuild.requirements_file(folder).read_text()
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", text, re.M))


def test_images_root_holds_every_catalog_dockerfile():
    root = imagebuild.images_root()
    for folder in IMAGE_DIRS.values():
        assert (root / folder / "Dockerfile").is_file()
        assert (root / folder / "requirements.txt").is_file()


@pytest.mark.parametrize("folder", sorted(IMAGE_DIRS.values()))
def test_dockerfile_shape(folder):
    text = (imagebuild.images_root() / folder / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=python:3.9-slim-bullseye" in text
    assert 'rtest.image="1"' in text
    assert "ARG WHEELHOUSE=" in text and imagebuild.CONTEXT_WHEELHOUSE in text
    assert "bootstrap" not in text.replace("executor bootstrap is NOT baked in", "")
    labelled = dict(re.findall(r'rtest\.versions\.([a-z0-9-]+)="([^"]+)"', text))
    required = pins(folder)
    assert labelled == {name: required[name] for name in labelled}  # labels never drift from the pins


def test_pins_match_the_sagemaker_images():
    sklearn, xgboost = pins("sklearn"), pins("xgboost")
    expected = {"scikit-learn": "1.2.1", "numpy": "1.24.1", "pandas": "1.1.3", "scipy": "1.8.0"}
    assert {k: sklearn[k] for k in expected} == expected
    assert {k: xgboost[k] for k in expected} == expected
    assert xgboost["xgboost"] == "1.7.4" and "pyarrow" in xgboost


# --- wheel selection (real pip, tiny wheels) -----------------------------------------------

@pytest.mark.process  # real pip resolves
def test_resolve_wheels_picks_the_dependency_closure_only(tmp_path, wheelhouse):
    chosen = imagebuild.resolve_wheels(requirements(tmp_path, "alpha==1.0"), wheelhouse)
    assert sorted(p.name for p in chosen) == ["alpha-1.0-py3-none-any.whl", "beta-2.1-py3-none-any.whl"]


@pytest.mark.process  # real pip resolves
def test_resolve_wheels_reports_a_gap(tmp_path, wheelhouse):
    (wheelhouse / "beta-2.1-py3-none-any.whl").unlink()
    assert imagebuild.resolve_wheels(requirements(tmp_path, "alpha==1.0"), wheelhouse) is None
    assert imagebuild.resolve_wheels(requirements(tmp_path, "gamma==9.9"), wheelhouse) is None


def test_wheels_outside_the_wheelhouse_do_not_count(tmp_path, wheelhouse):
    stray = tmp_path / "stray.whl"
    stray.write_bytes(b"")
    report = {"install": [{"download_info": {"url": stray.as_uri()}}]}
    assert imagebuild.wheels_in_report(report, wheelhouse) is None


@pytest.mark.process  # real pip resolves
def test_ensure_wheelhouse_downloads_only_when_a_wheel_is_missing(tmp_path, wheelhouse, monkeypatch):
    reqs = {"one": requirements(tmp_path, "alpha==1.0"), "two": requirements(tmp_path, "gamma")}
    monkeypatch.setattr(imagebuild, "requirements_file", lambda folder: reqs[folder])
    downloads = []
    beta = (wheelhouse / "beta-2.1-py3-none-any.whl").read_bytes()

    def fake_download(target: Path, folders, log):  # stands in for the network
        downloads.append(list(folders))
        (target / "beta-2.1-py3-none-any.whl").write_bytes(beta)

    monkeypatch.setattr(imagebuild, "download_wheels", fake_download)
    first = imagebuild.ensure_wheelhouse(wheelhouse, ["one", "two"], lambda line: None)
    assert downloads == [] and [p.name for p in first["two"]] == ["gamma-3.0-py3-none-any.whl"]

    (wheelhouse / "beta-2.1-py3-none-any.whl").unlink()
    second = imagebuild.ensure_wheelhouse(wheelhouse, ["one", "two"], lambda line: None)
    assert downloads == [["one", "two"]]
    assert sorted(p.name for p in second["one"]) == ["alpha-1.0-py3-none-any.whl", "beta-2.1-py3-none-any.whl"]


@pytest.mark.process  # real pip resolves
def test_ensure_wheelhouse_fails_in_one_sentence_when_download_does_not_help(tmp_path, wheelhouse, monkeypatch):
    monkeypatch.setattr(imagebuild, "requirements_file", lambda folder: requirements(tmp_path, "delta==1"))
    monkeypatch.setattr(imagebuild, "download_wheels", lambda *args: None)
    with pytest.raises(ImageError, match=r"still lacks wheels for sklearn"):
        imagebuild.ensure_wheelhouse(wheelhouse, ["sklearn"], lambda line: None)


def test_stage_context_hardlinks_only_the_chosen_wheels(tmp_path, wheelhouse):
    source = imagebuild.images_root() / "sklearn"
    chosen = [wheelhouse / "gamma-3.0-py3-none-any.whl"]
    context = imagebuild.stage_context(source, chosen, tmp_path / "ctx")
    assert (context / "Dockerfile").read_text() == (source / "Dockerfile").read_text()
    assert [p.name for p in (context / "wheels").iterdir()] == ["gamma-3.0-py3-none-any.whl"]
    assert (context / "wheels" / chosen[0].name).stat().st_ino == chosen[0].stat().st_ino


# --- the built images -------------------------------------------------------------------------

def run_python(client, image: str, *modules: str) -> dict:
    from rtest.imagebuild import missing_image_message

    assert client.images.list(name=image), missing_image_message(image)
    output = client.containers.run(image, ["python3", "-c", PRINT_VERSIONS, *modules], remove=True, network_disabled=True)
    return json.loads(output.decode().strip().splitlines()[-1])


@pytest.mark.docker
def test_sklearn_image_holds_the_sagemaker_versions(docker_client):
    found = run_python(docker_client, SKLEARN_IMAGE, *SKLEARN_STACK)
    assert tuple(found.pop("python")) >= (3, 8)
    assert found == SKLEARN_STACK


@pytest.mark.docker
def test_xgboost_image_holds_xgboost_and_the_sklearn_stack(docker_client):
    found = run_python(docker_client, XGBOOST_IMAGE, "xgboost", "pyarrow", *SKLEARN_STACK)
    assert tuple(found.pop("python")) >= (3, 8)
    assert found.pop("xgboost") == "1.7.4"
    assert found.pop("pyarrow") == pins("xgboost")["pyarrow"]
    assert found == SKLEARN_STACK


@pytest.mark.docker
def test_base_image_is_python_and_pip_only(docker_client):
    assert tuple(run_python(docker_client, BASE_IMAGE)["python"]) >= (3, 8)
    script = "python --version && python3 -m pip --version && ! python3 -c 'import numpy' 2>/dev/null && test ! -e /opt/rtest"
    docker_client.containers.run(BASE_IMAGE, ["sh", "-c", script], remove=True, network_disabled=True)


@pytest.mark.docker
@pytest.mark.parametrize("tag", list(IMAGE_DIRS))
def test_images_are_labelled_with_their_pins(docker_client, tag):
    labels = docker_client.images.get(tag).labels
    assert labels["rtest.image"] == "1"
    folder = IMAGE_DIRS[tag]
    recorded = {key.removeprefix("rtest.versions."): value for key, value in labels.items() if key.startswith("rtest.versions.")}
    assert recorded == {name: version for name, version in pins(folder).items() if name in recorded}
    dockerfile = (imagebuild.images_root() / folder / "Dockerfile").read_text()
    assert recorded == dict(re.findall(r'rtest\.versions\.([a-z0-9-]+)="([^"]+)"', dockerfile))  # none dropped by the build
    if folder != "base":
        assert recorded["scikit-learn"] == "1.2.1"
    # so `images build` can tell a stale image from a current one on a reused CI machine
    assert labels[f"{imagebuild.RECIPE_LABEL}.{folder}"] == imagebuild.recipe_digest(folder)


@pytest.mark.docker
def test_build_images_skips_present_images_without_building(image_store):
    lines: list[str] = []
    for tag in IMAGE_DIRS:
        assert image_store.exists(tag), imagebuild.missing_image_message(tag)
    assert imagebuild.build_images(offline=True, store=image_store, log=lines.append) == []
    assert lines == [f"{tag} exists; skipping (use --force to rebuild)" for tag in IMAGE_DIRS]


@pytest.mark.docker
def test_a_failing_build_becomes_one_sentence(image_store, tmp_path):
    (tmp_path / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nRUN echo about to fail && exit 3\n")
    tag = f"rtest-test/failing:{uuid.uuid4().hex[:8]}"
    lines: list[str] = []
    with pytest.raises(ImageError, match=rf"Building {re.escape(tag)} failed: .*returned a non-zero code: 3"):
        imagebuild._stream_build(image_store, str(tmp_path), tag, {}, lines.append)
    assert any("about to fail" in line for line in lines)
    assert not image_store.exists(tag)


SCRIPT_IMPORTS = ("pyarrow", "matplotlib", "boto3")
PLOT_AND_PARQUET = (
    "import io, matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt, pandas as pd; "
    "plt.plot([0, 1], [1, 0]); plt.savefig(io.BytesIO(), format='png'); "
    "frame = pd.DataFrame({'a': [1, 2]}); buffer = io.BytesIO(); frame.to_parquet(buffer); "
    "print(pd.read_parquet(io.BytesIO(buffer.getvalue()))['a'].sum())"
)


@pytest.mark.docker
@pytest.mark.parametrize(("image", "folder"), [(SKLEARN_IMAGE, "sklearn"), (XGBOOST_IMAGE, "xgboost")])
def test_look_alikes_carry_what_real_scripts_import(docker_client, image, folder):
    """The real images carry pyarrow, matplotlib and boto3; without them a script fails for the wrong reason."""
    found = run_python(docker_client, image, *SCRIPT_IMPORTS)
    assert {m: found[m] for m in SCRIPT_IMPORTS} == {m: pins(folder)[m] for m in SCRIPT_IMPORTS}
    output = docker_client.containers.run(image, ["python3", "-c", PLOT_AND_PARQUET], remove=True, network_disabled=True,
                                          environment={"MPLCONFIGDIR": "/tmp"})
    assert output.decode().strip().splitlines()[-1] == "3"  # a plot saved and a parquet round trip, offline
