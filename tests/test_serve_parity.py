"""A run on `rtest serve` gives what a local `rtest sandbox run` gives: every flag forwarded (by path and in a
bundle), plan warnings shown by the client, --strict refused with exit 2, the steps' own requirements
installed from a wheelhouse with network none. Real service processes on 127.0.0.1; steps are played by
FakeBackend except where marked docker."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from cli_helpers import rtest_here
from rtest.testing import write_python_pipeline
from serve_helpers import running_service, wait_for

OUT = "/opt/ml/processing/output/out"
NEEDS_ENV = {"script": "# reads LABEL_FIELD\n", "outputs": {"out": OUT}, "env": {"required": ["LABEL_FIELD"], "optional": {}}}


def _rtest(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return rtest_here(*args, cwd=cwd, env={"RTEST_SERVER": "", "NO_PROXY": "127.0.0.1", **(env or {})})


def _only_run(workdir: Path) -> Path:
    (run_dir,) = (workdir / "runs").iterdir()
    return run_dir


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-parity")
    with running_service(root / "wd", env={"RTEST_FAKE_STEP_S": "0"}, flags=("--allow-code",)) as svc:
        yield svc


def _moved_sources(tmp_path: Path) -> tuple[dict[str, Path], Path]:
    """A pipeline whose config names dockers/A, while the code lives outside the source root: only a source map
    finds it (the bounded search beneath the root cannot)."""
    paths = write_python_pipeline(tmp_path / "p", {"A": {"script": "print('a')\n", "outputs": {"out": OUT},
                                                         "config": {"source_dir": "dockers/A"}}}, [])
    elsewhere = tmp_path / "elsewhere" / "A"
    elsewhere.parent.mkdir()
    shutil.move(str(paths["src"] / "A"), elsewhere)
    return paths, elsewhere


@pytest.mark.parametrize("upload", ["--no-upload", "--upload"])
def test_a_source_map_run_by_path_and_by_bundle(service, tmp_path, upload):
    paths, elsewhere = _moved_sources(tmp_path)
    base = ("sandbox", "run", "--server", service.url, upload, "--dag", str(paths["dag"]), "--config",
            str(paths["config"]))
    unmapped = _rtest(*base, "--workdir", "w1", cwd=tmp_path)
    mapped = _rtest(*base, "--workdir", "w2", "--source-map", f"dockers/A={elsewhere}", cwd=tmp_path)
    assert unmapped.returncode == 2 and "dockers/A" in unmapped.stderr, unmapped.stderr
    assert mapped.returncode == 0, mapped.stdout + mapped.stderr
    run_id = _only_run(tmp_path / "w2").name
    submission = service.workdir / "serve" / "submissions" / run_id
    if upload == "--upload":  # the target travelled in the bundle, and the spec pointed inside it (the bundle
        wait_for(lambda: not (submission / "bundle").exists())  # itself goes when the run ends; its spec stays)
        spec = json.loads((submission / "spec.json").read_text())
        target = spec["pipeline"]["source_map"]["dockers/A"]
        assert target.startswith("source-map-")
    else:
        spec = json.loads((submission / "spec.json").read_text())
        assert spec["pipeline"]["source_map"] == {"dockers/A": str(elsewhere)}


def test_the_client_shows_plan_warnings_and_strict_exits_2(service, tmp_path):
    paths = write_python_pipeline(tmp_path / "p", {"A": NEEDS_ENV}, [])
    base = ("sandbox", "run", "--server", service.url, "--dag", str(paths["dag"]), "--config", str(paths["config"]))
    warned = _rtest(*base, "--workdir", "w", cwd=tmp_path)
    strict = _rtest(*base, "--workdir", "s", "--strict", cwd=tmp_path)
    assert warned.returncode == 0, warned.stderr
    shown = " ".join(warned.stdout.split())
    assert "warning: A: required environment variable LABEL_FIELD has no value" in shown
    assert shown.index("warning:") < shown.index("succeeded A")  # before the run, as a local run prints it
    report = json.loads((_only_run(tmp_path / "w") / "report.json").read_text())
    assert [w["code"] for w in report["warnings"]] == ["required-value-missing"]
    assert strict.returncode == 2 and "--strict: the plan has 1 warning(s)" in " ".join(strict.stderr.split())
    assert "Traceback" not in strict.stderr


def test_an_unknown_network_exits_2_before_any_step(service, tmp_path):
    paths = write_python_pipeline(tmp_path / "p", {"A": {"script": "x\n", "outputs": {"out": OUT}}}, [])
    done = _rtest("sandbox", "run", "--server", service.url, "--dag", str(paths["dag"]), "--config",
                  str(paths["config"]), "--network", "no-such-net", cwd=tmp_path)
    assert done.returncode == 2 and "--network 'no-such-net' does not exist" in " ".join(done.stderr.split())
    assert "succeeded" not in done.stdout and "running A" not in done.stdout


def test_every_flag_reaches_the_request_or_the_spec(service, tmp_path):
    from rtest.serve.registry import Registry

    paths, elsewhere = _moved_sources(tmp_path)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    done = _rtest("sandbox", "run", "--server", service.url, "--no-upload", "--dag", str(paths["dag"]), "--config",
                  str(paths["config"]), "--workdir", "w", "--source-map", f"dockers/A={elsewhere}",
                  "--config-classes", "json", "--allow-source-outside-root", "--follow-input-links",
                  "--no-deps", "--wheelhouse", str(wheels), "--cache-key", "full", "--max-output-files", "7",
                  "--max-output-bytes", "1m", "--no-cache", "--timeout", "30", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = _only_run(tmp_path / "w").name
    registry = Registry(service.workdir / "serve" / "registry.sqlite")
    try:
        request = registry.request_of(run_id)
    finally:
        registry.close()
    assert (request["no_deps"], request["cache_key"], request["max_output_files"], request["max_output_bytes"]) == (
        True, "full", 7, 1 << 20)  # the request body is rtest.options.RunRequest
    assert request["no_cache"] is True and request["timeout"] == 30
    spec = json.loads((service.workdir / "serve" / "submissions" / run_id / "spec.json").read_text())
    where = spec["pipeline"]
    assert where["config_classes"] == ["json"] and where["allow_source_outside_root"] is True
    assert where["source_map"] == {"dockers/A": str(elsewhere)}
    assert spec["follow_input_links"] is True and spec["wheelhouse"] == str(wheels)


def test_a_bundle_refuses_what_cannot_travel(service, tmp_path):
    """Outside-root sources would resolve on the service's disk; an input link out of its folder is refused as
    locally unless --follow-input-links."""
    paths = write_python_pipeline(tmp_path / "p", {"A": {"script": "x\n", "inputs": {"data": "/opt/ml/processing/input/data"},
                                                         "outputs": {"out": OUT}}}, [])
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "secret.txt").write_text("host file")
    (data / "link").symlink_to(tmp_path / "secret.txt")
    base = ("sandbox", "run", "--server", service.url, "--upload", "--dag", str(paths["dag"]), "--config",
            str(paths["config"]), "--input", f"A.data={data}")
    outside = _rtest(*base, "--allow-source-outside-root", cwd=tmp_path)
    link = _rtest(*base, cwd=tmp_path)
    followed = _rtest(*base, "--follow-input-links", "--workdir", "f", cwd=tmp_path)
    assert outside.returncode == 2 and "cannot travel in a bundle" in " ".join(outside.stderr.split())
    assert link.returncode == 2 and "--follow-input-links" in " ".join(link.stderr.split())
    assert followed.returncode == 0, followed.stderr


def test_the_remote_view_feeds_typed_events_and_never_reads_markup():
    from rich.console import Console

    from rtest.cli import serve_cmd
    from rtest.run.events import StepFinished, StepQueued
    from rtest.run.model import StepResult, StepStatus
    from rtest.serve.eventlog import event_record, typed_event

    result = StepResult(node="A[/b]", status=StepStatus.SUCCEEDED, duration_s=1.5)
    assert typed_event(event_record(StepFinished("A[/b]", result))) == StepFinished("A[/b]", result)
    assert typed_event({"type": "slot", "node": "A"}) is None
    buffer = io.StringIO()
    serve_cmd.out, saved = Console(file=buffer, width=200), serve_cmd.out
    try:
        view = serve_cmd.RemoteView("http://svc[bold]")
        view.on_record({"type": "warning", "message": "A: [red]x[/] missing", "node": "A", "code": "c"})
        view.on_record({"type": "run_started", "run_id": "r1", "nodes": ["A[/b]"], "started_at": 1.0})
        view.on_record(event_record(StepQueued("A[/b]")))
        view.on_record(event_record(StepFinished("A[/b]", result)))
        view.on_record({"type": "warning", "message": "wire [weak]", "node": None})
        view.on_record({"type": "warning", "message": "wire [weak]", "node": None})  # a note, again from the run
        view.close()
    finally:
        serve_cmd.out = saved
    lines = [" ".join(line.split()) for line in buffer.getvalue().splitlines()]
    assert lines == ["warning: A: [red]x[/] missing", "run r1 on http://svc[bold]", "running A[/b]",
                     "succeeded A[/b] in 1.5s", "note: wire [weak]"]


# ---------------------------------------------------------------- real containers


OURS = ("tinyparity", "tinyprune", "rtest-demo-report")  # the packages these tests install


@pytest.fixture
def new_dependency_images(docker_client):
    """Removes the dependency images the test built (new since it began, installing only our packages); an image
    another session builds meanwhile is not ours to remove."""
    from rtest.deps.image import dependency_images
    from rtest.run.backends.docker_images import DockerImageStore

    store = DockerImageStore(docker_client)
    before = {tag for image in dependency_images(store) for tag in image["tags"]}
    yield docker_client
    for image in dependency_images(store):
        if not all(spec.startswith(OURS) for spec in image["requirements"]):
            continue
        for tag in set(image["tags"]) - before:
            docker_client.images.remove(tag)


@pytest.mark.docker
def test_a_step_with_requirements_runs_on_the_service_with_network_none(tmp_path, new_dependency_images):
    from test_deps import make_wheel

    make_wheel(tmp_path, "tinyparity", "1.0.0")
    script = f"import pathlib, tinyparity\npathlib.Path('{OUT}/v.txt').write_text(tinyparity.VERSION)\n"
    paths = write_python_pipeline(tmp_path / "p", {"Needs": {"script": script, "outputs": {"out": OUT}}}, [])
    # A ScriptProcessor installs no requirements.txt (SageMaker's rule): the user's extra requirement is installed.
    (tmp_path / "spec.yaml").write_text("scripts:\n  Needs:\n    requirements: ['tinyparity==1.0.0']\n")
    base = ("sandbox", "run", "--upload", "--dag", str(paths["dag"]), "--config", str(paths["config"]),
            "--spec", str(tmp_path / "spec.yaml"), "--wheelhouse", str(tmp_path / "wheels"), "--no-cache")
    with running_service(tmp_path / "wd", fake=False) as svc:
        done = _rtest(*base, "--server", svc.url, "--workdir", "w", cwd=tmp_path)
        bare = _rtest(*base, "--server", svc.url, "--workdir", "n", "--no-deps", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "built dependency image rtest/deps:" in done.stdout
    run_id = _only_run(tmp_path / "w").name
    report = json.loads((tmp_path / "w" / "runs" / run_id / "report.json").read_text())
    assert report["steps"]["Needs"]["image"].startswith("rtest/deps:")
    output = tmp_path / "wd" / "runs" / run_id / "Needs" / "output" / "out" / "v.txt"
    assert output.read_text() == "1.0.0"
    assert bare.returncode == 1 and "tinyparity" in bare.stdout  # --no-deps reached the service: the image lacks it


@pytest.mark.docker
def test_images_list_and_prune_know_dependency_images(tmp_path, new_dependency_images):
    import uuid

    from rtest.deps.image import build_dependency_image, dependency_tag
    from rtest.deps.installed import image_info
    from rtest.deps.resolve import probe_cache_dir
    from rtest.run.backends.docker_images import DockerImageStore
    from test_deps import make_wheel

    client = new_dependency_images
    store = DockerImageStore(client)
    alias = f"rtest-test/prune-{uuid.uuid4().hex[:10]}"  # a base of our own, so prune --base touches only our image
    client.images.get("rtest/sagemaker-base:py3").tag(alias, "py3")
    try:
        wheel = make_wheel(tmp_path, "tinyprune", "1.0.0")
        info = image_info(store, f"{alias}:py3", store.image_id(f"{alias}:py3"), probe_cache_dir())
        tag = dependency_tag(info.image_id, ["tinyprune==1.0.0"], {wheel: wheel.name})
        build_dependency_image(store, base_ref=f"{alias}:py3", info=info, tag=tag, specs=["tinyprune==1.0.0"],
                               wheels=[wheel], dirs=[wheel.parent])
        listed = _rtest("sandbox", "images", "list", "--format", "json", cwd=tmp_path)
        text = _rtest("sandbox", "images", "list", cwd=tmp_path, env={"COLUMNS": "250"})
        young = _rtest("sandbox", "images", "prune", "--base", f"{alias}:py3", "--older-than", "1", cwd=tmp_path)
        dry = _rtest("sandbox", "images", "prune", "--base", f"{alias}:py3", "--dry-run", cwd=tmp_path)
        still_there = tag in {t for image in client.images.list() for t in image.tags}
        pruned = _rtest("sandbox", "images", "prune", "--base", f"{alias}:py3", cwd=tmp_path)
        gone = tag not in {t for image in client.images.list() for t in image.tags}
    finally:
        client.images.remove(f"{alias}:py3")  # only the alias tag: the look-alike keeps its own
    rows = {t: row for row in json.loads(listed.stdout) for t in row["tags"]}
    assert rows[tag]["kind"] == "deps" and rows[tag]["base"] == f"{alias}:py3"
    assert rows[tag]["requirements"] == ["tinyprune==1.0.0"] and rows[tag]["size"] > 0
    assert rows["rtest/sagemaker-base:py3"]["kind"] == "look-alike"
    assert tag in text.stdout and "tinyprune==1.0.0" in text.stdout
    assert young.returncode == 0 and "Removed 0 dependency image(s)" in young.stdout
    assert dry.returncode == 0 and f"Would remove 1 dependency image(s): {tag}" in dry.stdout and still_there
    assert pruned.returncode == 0 and f"Removed 1 dependency image(s): {tag}" in pruned.stdout and gone


@pytest.mark.docker
def test_the_example_on_the_service_gets_its_own_wheelhouse(tmp_path, new_dependency_images):
    """As `rtest sandbox run --example` locally: its steps with requirements run offline in a dependency image."""
    with running_service(tmp_path / "wd", fake=False) as svc:
        done = _rtest("sandbox", "run", "--server", svc.url, "--example", "--workdir", "w", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((_only_run(tmp_path / "w") / "report.json").read_text())
    needing = {node for node, step in report["steps"].items() if step["image"].startswith("rtest/deps:")}
    assert needing == {"DataQuality_training", "MetricsReport_calibration"}
    assert all(step["status"] == "succeeded" for step in report["steps"].values())
