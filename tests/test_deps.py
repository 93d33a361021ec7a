"""Per-step dependencies (rtest.deps): requirement sets with sources, offline wheelhouses, dependency images.

Hermetic: the packages are tiny pure-Python ones these tests build into wheels themselves, so no
package index is needed; one test (marked ``index``) fetches a real package and skips only when no
index answers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cli_helpers import rtest_here
from pipelines import raised_message, write_python_pipeline
from rtest.deps.requirements import DependencyError
from rtest.deps.resolve import collect, decisions
from rtest.deps.runtime import DepsOptions, prepare_dependencies
from rtest.deps.scan import scan_script
from rtest.deps.wheelbuild import build_pure_wheel
from rtest.plan.builder import build_plan, load_pipeline_inputs
from rtest.plan.userspec import UserSpec
from rtest.run.diagnose import failure_reason

OUT = "/opt/ml/processing/output/out"


def make_wheel(folder: Path, name: str, version: str, body: str = "", modules: dict[str, str] | None = None) -> Path:
    """A real wheel of a package named ``name`` (import name: dashes become underscores), with ``modules`` beside
    its ``__init__``."""
    module = folder / "src" / f"{name}-{version}" / name.replace("-", "_")
    module.mkdir(parents=True, exist_ok=True)
    (module / "__init__.py").write_text(f"VERSION = {version!r}\nBUILT_FOR = {str(folder)!r}\n{body}")  # unique bytes per test
    for file_name, text in (modules or {}).items():
        (module / file_name).write_text(text)
    return build_pure_wheel(module, name, version, folder / "wheels")


def run_with_deps(plan, workdir: Path, deps: DepsOptions | bool = True, cache: bool = True):
    """What `rtest sandbox run` and the factory do: dependency images first, then the run in them."""
    from rtest.plan.settings import CommandLine
    from rtest.run.backends.docker import DockerBackend
    from rtest.run.engine import RunOptions
    from rtest.session import run_and_report

    engine = DockerBackend()
    prepared = prepare_dependencies(plan, workdir, engine.images, deps)
    return run_and_report(plan, RunOptions(workdir=workdir), settings=CommandLine(cache=cache), formats=(),
                          backend=engine, deps=prepared)


def plan_of(paths: dict[str, Path], user: UserSpec | None = None):
    return build_plan(load_pipeline_inputs(str(paths["dag"]), paths["config"], [paths["interfaces"]]), user or UserSpec())


def add_framework_requirements(paths: dict[str, Path], node: str, requirements: dict[str, str]) -> Path:
    interface = paths["interfaces"] / f"{node}.step.yaml"
    doc = yaml.safe_load(interface.read_text())
    doc["contract"]["framework_requirements"] = requirements
    interface.write_text(yaml.safe_dump(doc, sort_keys=False))
    return interface


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), start=1) if text in line)


# ---------------------------------------------------------------- reading sources (no engine)

HELPER = '''
import subprocess, sys

def install(packages, quiet=True):
    cmd = [sys.executable, "-m", "pip", "install", "--index-url", "https://example.invalid/simple", *packages]
    subprocess.check_call(cmd)
'''
SCRIPT = '''
import os
from helpers import install

USE_SECURE_PYPI = os.environ.get("USE_SECURE_PYPI", "false") == "true"
REQUIRED = [
    "tinyfmt==1.0.0",
    "other-pkg>=2,<3",
]

def setup(secure=USE_SECURE_PYPI):
    install(REQUIRED)

for extra in ["loop-pkg==0.1"]:
    os.system("pip install -q " + extra)
os.system("python3 -m pip install --upgrade shell-pkg==4.2")
setup()
print("not an install: pip install fake-pkg")
'''


def test_scan_follows_local_helpers_constants_loops_and_shell_calls(tmp_path):
    (tmp_path / "helpers.py").write_text(HELPER)
    script = tmp_path / "main.py"
    script.write_text(SCRIPT)
    found = scan_script(script, tmp_path)
    specs = {(r.text, Path(r.file).name, r.line) for r in found.requirements}
    assert specs == {("tinyfmt==1.0.0", "main.py", line_of(script, "tinyfmt==1.0.0")),
                     ("other-pkg>=2,<3", "main.py", line_of(script, "other-pkg")),
                     ("shell-pkg==4.2", "main.py", line_of(script, "shell-pkg"))}
    # The index switch is the module-level env read that the installing function's default uses.
    assert [(s.name, s.line) for s in found.switches] == [("USE_SECURE_PYPI", line_of(script, "USE_SECURE_PYPI = "))]


def test_installers_are_followed_through_modules_that_never_name_pip(tmp_path):
    """Only modules naming pip or a known installer are walked: a chain of wrappers is still followed to the end."""
    (tmp_path / "fetching.py").write_text("import subprocess, sys\n\ndef fetch(packages):\n"
                                          "    subprocess.check_call([sys.executable, '-m', 'pip', 'install', *packages])\n")
    (tmp_path / "wrapper.py").write_text("from fetching import fetch\n\ndef prepare(extra):\n"
                                         "    fetch(extra)\n\nfetch(['first-pkg==1'])\n")
    (tmp_path / "unrelated.py").write_text("def prepare_data():\n    return 'no installs here'\n")
    script = tmp_path / "main.py"
    script.write_text("from wrapper import prepare\nimport unrelated\n\nprepare(['second-pkg==2'])\n")
    found = scan_script(script, tmp_path)
    assert {(r.text, Path(r.file).name, r.line) for r in found.requirements} == {
        ("first-pkg==1", "wrapper.py", 6), ("second-pkg==2", "main.py", 4)}


def test_requirement_sources_carry_file_and_line_and_conflicts_name_both(tmp_path):
    p = write_python_pipeline(tmp_path / "p", {"A": {"script": "import tinyfmt\n", "outputs": {"out": OUT}}}, [])
    interface = add_framework_requirements(p, "A", {"tinyfmt": ">=1.0,<2", "plainpkg": None})
    requirements_txt = p["src"] / "A" / "requirements.txt"
    requirements_txt.write_text("# comment\n-i https://example.invalid\nreqpkg==0.3  # pinned\n")
    found = collect(plan_of(p).scripts["A"])
    assert [(r.text, r.origin, Path(r.file).name, r.line) for r in found.requirements] == [
        ("tinyfmt>=1.0,<2", "interface", interface.name, line_of(interface, "tinyfmt")),
        ("plainpkg", "interface", interface.name, line_of(interface, "plainpkg")),
        ("reqpkg==0.3", "requirements.txt", "requirements.txt", 3),
    ]
    (p["src"] / "A" / "main.py").write_text("import subprocess, sys\nsubprocess.run([sys.executable, '-m', 'pip', 'install', 'tinyfmt==2.5'])\n")
    spec = plan_of(p).scripts["A"]
    assert not decisions(spec, collect(spec))[collect(spec).requirements[0]].install  # declared: compared only
    message = raised_message(DependencyError, decisions, spec, collect(spec), True)  # --install-declared
    assert "'tinyfmt==2.5'" in message and "main.py:2" in message
    assert "'tinyfmt>=1.0,<2'" in message and f"{interface}:{line_of(interface, 'tinyfmt')}" in message


def test_factory_requirements_are_checked_at_once_and_reach_the_plan(tmp_path):
    from rtest import InteractiveRuntimeTestingFactory

    p = write_python_pipeline(tmp_path / "p", {"A": {"script": "import tinyfmt\n", "outputs": {"out": OUT}}}, [])
    factory = InteractiveRuntimeTestingFactory(p["dag"], p["config"], workspace_dir=tmp_path / "wd")
    with pytest.raises(ValueError, match="'tinyfmt=1' is not a valid requirement"):
        factory.configure_script_testing("A", requirements=["tinyfmt=1"])
    spec = factory.configure_script_testing("A", requirements=["tinyfmt==1.0.0"])
    assert [r.value for r in spec.requirements] == ["tinyfmt==1.0.0"]
    assert [(r.text, r.origin, r.file) for r in collect(spec).requirements] == [("tinyfmt==1.0.0", "user", "scripts.A.requirements")]


def test_pip_failure_in_a_log_becomes_a_reason_that_says_how_to_add_it(tmp_path):
    log = tmp_path / "log.txt"
    log.write_text("Looking in links: /opt/rtest/wheelhouse\nERROR: Could not find a version that satisfies the requirement "
                   "nosuch==9.9 (from versions: none)\nERROR: No matching distribution found for nosuch==9.9\n")
    reason = failure_reason(None, log.read_text(), "none", "score.py", 1, "Score")
    assert "nosuch==9.9" in reason and "rtest deps --add Score 'nosuch==9.9'" in reason and "scripts.Score.requirements" in reason
    assert "rtest deps --add" not in failure_reason(None, "Traceback ...\nValueError: bad column\n", "none", "score.py", 1, "Score")


def test_deps_add_records_the_requirement_in_the_spec_file(tmp_path):
    p = write_python_pipeline(tmp_path / "p", {"A": {"script": "print(1)\n", "outputs": {"out": OUT}}}, [])
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"version": 1, "pipeline": {"dag": str(p["dag"]), "config": str(p["config"])}}))
    run = lambda *args: rtest_here("deps", *args, cwd=tmp_path)  # noqa: E731
    added = run("--spec", str(spec), "--add", "A", "tinyfmt==1.0.0")
    assert added.returncode == 0, added.stdout + added.stderr
    assert yaml.safe_load(spec.read_text())["scripts"]["A"]["requirements"] == ["tinyfmt==1.0.0"]
    no_spec = run("--dag", str(p["dag"]), "--config", str(p["config"]), "--add", "A", "tinyfmt==1.0.0")
    assert no_spec.returncode == 2 and "requirements: ['tinyfmt==1.0.0']" in no_spec.stdout
    bad = run("--spec", str(spec), "--add", "A", "not a spec!!")
    assert bad.returncode == 2 and "not a valid requirement" in bad.stderr


# ---------------------------------------------------------------- real containers, offline

IMPORTS_TINYFMT = f"""
import pathlib, tinyfmt
pathlib.Path('{OUT}/version.txt').write_text(tinyfmt.VERSION)
"""
INSTALLS_AT_IMPORT = f"""
import pathlib, subprocess, sys
subprocess.check_call([sys.executable, "-m", "pip", "install", "tinyfmt==2.0.0", "otherfmt==0.3"])
import tinyfmt, otherfmt
pathlib.Path('{OUT}/version.txt').write_text(tinyfmt.VERSION + ' ' + otherfmt.VERSION)
"""
INSTALLS_UNDECLARED = """
import os, subprocess, sys
subprocess.check_call([sys.executable, "-m", "pip", "install", os.environ.get("PKG", "undeclared==1.0")])
"""


def _built(calls: list) -> set[str]:
    return {tag for tag, *_ in calls}


@pytest.fixture
def docker_client(docker_client):
    """The engine, and afterwards the removal of the dependency images this test built (their wheels are unique to it)."""
    from rtest.deps.image import dependency_images
    from rtest.run.backends.docker_images import DockerImageStore

    store = DockerImageStore(docker_client)
    before = {tag for image in dependency_images(store) for tag in image["tags"]}
    yield docker_client
    for image in dependency_images(store):
        for tag in set(image["tags"]) - before:
            docker_client.images.remove(tag)


@pytest.mark.docker
def test_interface_and_import_time_requirements_run_offline_and_a_second_run_builds_nothing(tmp_path, docker_client):
    for name, version in (("tinyfmt", "1.0.0"), ("tinyfmt", "2.0.0"), ("otherfmt", "0.3")):
        make_wheel(tmp_path, name, version)
    p = write_python_pipeline(tmp_path / "p", {
        "Declared": {"script": IMPORTS_TINYFMT, "outputs": {"out": OUT}},
        "Installs": {"script": INSTALLS_AT_IMPORT, "outputs": {"out": OUT}},
        "Plain": {"script": "print('no extras')\n", "outputs": {"out": OUT}},
    }, [])
    add_framework_requirements(p, "Declared", {"tinyfmt": "==1.0.0"})
    plan = plan_of(p)
    calls: list = []
    options = lambda: DepsOptions(wheelhouses=[tmp_path / "wheels"], download=False, on_progress=lambda *a: calls.append(a),  # noqa: E731
                                  install_declared=True)  # SageMaker would not install "Declared"'s; --install-declared does

    report = run_with_deps(plan, tmp_path / "wd", options())
    assert report.pipeline_success, {n: r.failure_reason for n, r in report.steps.items()}
    steps = report.steps
    assert (Path(steps["Declared"].outputs["out"]) / "version.txt").read_text() == "1.0.0"
    assert (Path(steps["Installs"].outputs["out"]) / "version.txt").read_text() == "2.0.0 0.3"
    # Two different missing sets on one base image: two dependency images; the plain step keeps its image.
    assert steps["Declared"].image.startswith("rtest/deps:") and steps["Installs"].image.startswith("rtest/deps:")
    assert steps["Declared"].image != steps["Installs"].image and steps["Plain"].image == "rtest/sagemaker-base:py3"
    assert _built(calls) == {steps["Declared"].image, steps["Installs"].image}
    labels = docker_client.images.get(steps["Installs"].image).labels
    assert labels["rtest.kind"] == "deps" and json.loads(labels["rtest.deps.requirements"]) == ["otherfmt==0.3", "tinyfmt==2.0.0"]
    log = Path(steps["Installs"].log_path).read_text()
    assert "Requirement already satisfied: tinyfmt==2.0.0" in log  # the script's own pip ran, offline, and found it there

    calls.clear()
    again = run_with_deps(plan, tmp_path / "wd", options(), cache=False)
    assert again.pipeline_success and calls == []  # nothing built: the tags exist
    assert {n: r.image for n, r in again.steps.items()} == {n: r.image for n, r in steps.items()}
    cached = run_with_deps(plan, tmp_path / "wd", options())
    statuses = {n: (r.status.value, r.failure_reason, r.image) for n, r in cached.steps.items()}
    assert all(status == "cached" for status, _, _ in statuses.values()), statuses


@pytest.mark.docker
def test_an_undeclared_import_time_install_fails_fast_with_a_reason_naming_the_package(tmp_path, docker_client):
    make_wheel(tmp_path, "tinyfmt", "1.0.0")
    p = write_python_pipeline(tmp_path / "p", {"Score": {"script": INSTALLS_UNDECLARED, "outputs": {"out": OUT}}}, [])
    report = run_with_deps(plan_of(p), tmp_path / "wd", DepsOptions(wheelhouses=[tmp_path / "wheels"], download=False))
    result = report.steps["Score"]
    assert result.status.value == "failed" and result.duration_s < 30
    assert "pip could not find undeclared==1.0" in result.failure_reason
    assert "rtest deps --add Score 'undeclared==1.0'" in result.failure_reason


@pytest.mark.docker
def test_an_unsatisfiable_pin_stops_the_run_at_plan_time_with_its_source_line(tmp_path, docker_client):
    make_wheel(tmp_path, "tinyfmt", "1.0.0")
    p = write_python_pipeline(tmp_path / "p", {"A": {"script": IMPORTS_TINYFMT, "kind": "training",
                                                      "outputs": {"model": "/opt/ml/model"}}}, [])
    (p["src"] / "A" / "requirements.txt").write_text("# pinned by the team\ntinyfmt==3.0.0\n")  # the toolkit installs it
    message = raised_message(DependencyError, lambda plan: run_with_deps(plan, tmp_path / "wd",
                             DepsOptions(wheelhouses=[tmp_path / "wheels"], download=False)), plan_of(p))
    assert "'tinyfmt==3.0.0'" in message and f"{p['src'] / 'A' / 'requirements.txt'}:2" in message
    assert "Python 3.9" in message and "Node A" in message
    assert not (tmp_path / "wd" / "runs").exists() or not any((tmp_path / "wd" / "runs").glob("*/A/log.txt"))


@pytest.mark.docker
def test_the_spec_file_wheelhouse_and_requirements_reach_the_run(tmp_path, docker_client):
    """The CLI path: requirements and wheelhouse from a spec file, `rtest deps --format json`, then `sandbox run`."""
    make_wheel(tmp_path, "tinyfmt", "1.0.0")
    p = write_python_pipeline(tmp_path / "p", {"A": {"script": IMPORTS_TINYFMT, "outputs": {"out": OUT}}}, [])
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"version": 1, "wheelhouse": "wheels", "pipeline": {"dag": str(p["dag"]), "config": str(p["config"])},
                                    "scripts": {"A": {"requirements": ["tinyfmt==1.0.0"]}}}))
    cli = lambda *args: subprocess.run([sys.executable, "-m", "rtest.cli.main", *args], capture_output=True, text=True, cwd=tmp_path, timeout=600)  # noqa: E731
    shown = cli("deps", "--spec", str(spec), "--format", "json", "--workdir", str(tmp_path / "wd"))
    assert shown.returncode == 0, shown.stderr
    step = json.loads(shown.stdout)["A"]
    assert step["missing"] == ["tinyfmt==1.0.0"] and step["python"].startswith("3.9")
    assert step["requirements"][0]["origin"] == "user" and step["requirements"][0]["installed"] is None
    ran = cli("sandbox", "run", "--spec", str(spec), "--workdir", str(tmp_path / "wd"))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    no_deps = cli("sandbox", "run", "--spec", str(spec), "--workdir", str(tmp_path / "wd2"), "--no-deps")
    assert no_deps.returncode == 1 and "No module named 'tinyfmt'" in no_deps.stdout


def _index_reachable(tmp_path: Path) -> bool:
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(tmp_path / "probe"),
                           "--timeout", "10", "--retries", "1", "tabulate==0.9.0"], capture_output=True, text=True)
    return done.returncode == 0


@pytest.mark.docker
@pytest.mark.index
def test_a_real_package_is_fetched_from_the_index_on_the_host_and_the_step_runs_offline(tmp_path, docker_client):
    """Needs a package index on the host (PyPI or the pip config's); skips only when none answers."""
    if not _index_reachable(tmp_path):
        pytest.skip("no package index answers from this host (pip download tabulate failed)")
    script = "import pathlib, tabulate\npathlib.Path('/opt/ml/model/t.txt').write_text(tabulate.tabulate([[1, 2]]))\n"
    p = write_python_pipeline(tmp_path / "p", {"A": {"script": script, "kind": "training",  # the toolkit installs it
                                                     "outputs": {"out": "/opt/ml/model"}}}, [])
    (p["src"] / "A" / "requirements.txt").write_text("tabulate==0.9.0\n")
    report = run_with_deps(plan_of(p), tmp_path / "wd")  # network none: the wheel came from the host
    assert report.pipeline_success, report.steps["A"].failure_reason
    assert any((tmp_path / "wd" / "wheelhouse" / "cp39").glob("tabulate-0.9.0-*.whl"))
    import tarfile

    with tarfile.open(Path(report.steps["A"].outputs["out"]) / "model.tar.gz") as packed:
        assert "1  2" in packed.extractfile("t.txt").read().decode()


@pytest.mark.docker
def test_an_image_without_pip_gets_pip_from_the_wheelhouse(tmp_path, docker_client):
    """pip installs itself from its own wheel (run as a zip), then the step's packages; the script's pip works too."""
    import secrets

    import pip

    make_wheel(tmp_path, "tinyfmt", "2.0.0")
    build_pure_wheel(Path(pip.__file__).parent, "pip", pip.__version__, tmp_path / "wheels")  # pip is pure Python
    tag = f"rtest-test/nopip:{secrets.token_hex(4)}"
    stripped = docker_client.containers.run("rtest/sagemaker-base:py3", ["python3", "-m", "pip", "uninstall", "-y", "-q", "pip"],
                                            user="0:0", network_mode="none", detach=True)
    try:
        assert stripped.wait()["StatusCode"] == 0
        stripped.commit(*tag.split(":"))
    finally:
        stripped.remove(force=True)
    try:
        p = write_python_pipeline(tmp_path / "p", {"A": {"script": INSTALLS_AT_IMPORT.replace(', "otherfmt==0.3"', "").replace(
            "import tinyfmt, otherfmt", "import tinyfmt").replace(" + ' ' + otherfmt.VERSION", ""), "outputs": {"out": OUT}}}, [])
        report = run_with_deps(plan_of(p, UserSpec.model_validate({"scripts": {"A": {"image": tag}}})), tmp_path / "wd",
                                DepsOptions(wheelhouses=[tmp_path / "wheels"], download=False))
        result = report.steps["A"]
        assert result.status.value == "succeeded", result.failure_reason
        assert (Path(result.outputs["out"]) / "version.txt").read_text() == "2.0.0"
        assert json.loads(docker_client.images.get(result.image).labels["rtest.deps.requirements"]) == ["pip", "tinyfmt==2.0.0"]
    finally:
        docker_client.images.remove(tag, force=True)


@pytest.mark.docker
def test_a_replaced_distribution_is_deleted_before_pip_and_the_image_ends_as_pips_own_upgrade(tmp_path, docker_client):
    """rtest.deps.replaced deletes what pip replaces (pip's own uninstall copies every file on overlay2): the image
    holds exactly the files that pip's upgrade leaves, a module only the old version had included."""
    from rtest.deps.image import build_dependency_image, dependency_tag
    from rtest.deps.installed import image_info
    from rtest.deps.resolve import probe_cache_dir
    from rtest.run.backends.base import Mount
    from rtest.run.backends.docker_images import DockerImageStore

    old = make_wheel(tmp_path, "tinyrepl", "1.0.0", modules={"old_only.py": "GONE_IN_2 = True\n"})
    new = make_wheel(tmp_path, "tinyrepl", "2.0.0")
    store = DockerImageStore(docker_client)

    def build(base: str, spec: str, wheel: Path, lines: list[str]) -> str:
        info = image_info(store, base, store.image_id(base), probe_cache_dir())
        tag = dependency_tag(info.image_id, [spec], {wheel: wheel.name})
        return build_dependency_image(store, base_ref=base, info=info, tag=tag, specs=[spec], wheels=[wheel],
                                      dirs=[wheel.parent], on_progress=lambda *a: lines.append(a[3]))

    first = build("rtest/sagemaker-base:py3", "tinyrepl==1.0.0", old, [])
    lines: list[str] = []
    upgraded = build(first, "tinyrepl==2.0.0", new, lines)
    assert any(line.startswith("rtest: removed tinyrepl 1.0.0") for line in lines), lines

    listing = "find / -xdev -path '*tinyrepl*' | sort"
    by_pip = store.run_command(first, ["sh", "-c", "python3 -m pip install -q --no-index --find-links /w "
                                       f"tinyrepl==2.0.0 2>/dev/null && {listing}"],
                               user="0:0", mounts=[Mount(host=new.parent, container="/w", read_only=True)],
                               environment={"PIP_BREAK_SYSTEM_PACKAGES": "1"}, stdout_only=True)
    ours = store.run_command(upgraded, ["sh", "-c", f"python3 -c 'import tinyrepl; print(tinyrepl.VERSION)' && {listing}"],
                             stdout_only=True)
    assert by_pip.exit_code == 0 and ours.exit_code == 0, (by_pip.output, ours.output)
    version, *files = ours.output.split()
    assert version == "2.0.0" and files and files == by_pip.output.split()
    assert not [f for f in files if f.endswith("old_only.py") or "tinyrepl-1.0.0" in f]


def test_python_in_framework_requirements_is_the_interpreter_not_a_package():
    """The cursus catalogue writes `python: '>=3.7'`; it is checked against the image, never looked up as a wheel."""
    from rtest.deps.installed import ImageInfo
    from rtest.deps.requirements import parse_requirement

    image = ImageInfo(image_id="sha256:x", python="3.9.2", machine="x86_64", has_pip=True)
    assert image.satisfies(parse_requirement("python>=3.7", "interface", "package.step.yaml", 34)) == "3.9.2"
    message = raised_message(DependencyError, image.satisfies, parse_requirement("python>=3.10", "interface", "p.step.yaml", 3))
    assert "'python>=3.10' (from p.step.yaml:3)" in message and "Python 3.9.2" in message and "--image-map" in message


def test_requirements_only_the_images_python_needs_are_found_from_wheel_metadata(tmp_path):
    """pip on this (3.10+) host skips `x; python_version < "3.10"`; the 3.9 image needs it, so rtest fetches it too."""
    import zipfile

    from rtest.deps.installed import ImageInfo
    from rtest.deps.markers import image_only_requirements

    wheel = tmp_path / "plotlib-1.0-py3-none-any.whl"
    metadata = ("Metadata-Version: 2.1\nName: plotlib\nVersion: 1.0\n"
                "License: a long licence, folded\n         =====\n         \n         1. with a blank-looking line\n"
                'Requires-Dist: importlib-resources>=3.2.0; python_version < "3.10"\n'
                "Requires-Dist: numpy>=1.20\n"
                'Requires-Dist: tomli; python_version >= "3.10"\n'
                'Requires-Dist: pytest; extra == "test"\n\nRequires-Dist: not-a-header\n')
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("plotlib-1.0.dist-info/METADATA", metadata)
    py39 = ImageInfo(image_id="sha256:x", python="3.9.2", machine="x86_64", has_pip=True)
    assert image_only_requirements([wheel], py39) == ["importlib-resources>=3.2.0"]
    present = tmp_path / "importlib_resources-6.0-py3-none-any.whl"
    with zipfile.ZipFile(present, "w") as archive:
        archive.writestr("importlib_resources-6.0.dist-info/METADATA", "Name: importlib-resources\n")
    assert image_only_requirements([wheel, present], py39) == []  # already in the wheelhouse


IMPORT_OR_ABSENT = """
import pathlib, sys
try:
    import tinyfmt
    found = tinyfmt.VERSION
except ImportError:
    found = "absent"
target = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else '{out}')
target.mkdir(parents=True, exist_ok=True)
(target / 'version.txt').write_text(found)
"""


@pytest.mark.docker
def test_only_what_sagemaker_installs_is_installed_and_declared_requirements_are_compared(tmp_path, docker_client):
    """Training: the toolkit installs requirements.txt. A ScriptProcessor step: not (and the reason says so).
    framework_requirements: never installed; an unmet one is a warning with the spec and the image's version."""
    import tarfile

    from rtest.plan.settings import CommandLine
    from rtest.run.backends.docker import DockerBackend
    from rtest.run.engine import RunOptions
    from rtest.session import run_and_report

    make_wheel(tmp_path, "tinyfmt", "1.0.0")
    p = write_python_pipeline(tmp_path / "p", {
        "Train": {"script": IMPORT_OR_ABSENT.format(out="/opt/ml/model"), "kind": "training",
                  "outputs": {"model": "/opt/ml/model"}},
        "Proc": {"script": IMPORT_OR_ABSENT.format(out=OUT), "outputs": {"out": OUT}},
    }, [])
    for node in ("Train", "Proc"):
        (p["src"] / node / "requirements.txt").write_text("tinyfmt==1.0.0\n")
    add_framework_requirements(p, "Proc", {"pip": ">=999"})
    plan = plan_of(p)
    engine = DockerBackend()
    prepared = prepare_dependencies(plan, tmp_path / "wd", engine.images,
                                    DepsOptions(wheelhouses=[tmp_path / "wheels"], download=False))
    train, proc = prepared.steps["Train"], prepared.steps["Proc"]
    assert [r.text for r in train.missing] == ["tinyfmt==1.0.0"] and proc.missing == []
    assert "training toolkit" in train.decisions[train.requirements.requirements[0]].reason
    reasons = {r.text: proc.decisions[r] for r in proc.requirements.requirements}
    assert not reasons["tinyfmt==1.0.0"].install and "ScriptProcessor" in reasons["tinyfmt==1.0.0"].reason
    assert not reasons["pip>=999"].install
    pip_version = proc.info.dists["pip"]
    [warning] = [w for w in prepared.warnings if w.node == "Proc"]
    assert "declares pip>=999" in warning.message and f"has pip {pip_version}" in warning.message
    assert "--install-declared" in warning.message

    report = run_and_report(plan, RunOptions(workdir=tmp_path / "wd"), settings=CommandLine(cache=False), formats=(),
                            backend=engine, deps=prepared)
    assert report.pipeline_success, {n: r.failure_reason for n, r in report.steps.items()}
    with tarfile.open(Path(report.steps["Train"].outputs["model"]) / "model.tar.gz") as packed:
        assert packed.extractfile("version.txt").read().decode() == "1.0.0"
    assert (Path(report.steps["Proc"].outputs["out"]) / "version.txt").read_text() == "absent"
    assert report.steps["Proc"].image == "rtest/sagemaker-base:py3"
    assert any(w.code == "declared-requirement-unmet" and w.node == "Proc" for w in report.plan_warnings)


@pytest.mark.docker
def test_rtest_deps_shows_why_for_every_requirement_and_install_declared_opts_in(tmp_path, docker_client):
    script = "import subprocess, sys\nsubprocess.check_call([sys.executable, '-m', 'pip', 'install', 'undeclared==1.0'])\n"
    p = write_python_pipeline(tmp_path / "p", {"A": {"script": script, "outputs": {"out": OUT}}}, [])
    (p["src"] / "A" / "requirements.txt").write_text("tinyfmt==1.0.0\n")
    add_framework_requirements(p, "A", {"nosuchpkg": ">=1"})
    base = ["deps", "--dag", str(p["dag"]), "--config", str(p["config"]), "--interfaces", str(p["interfaces"]),
            "--format", "json", "--workdir", str(tmp_path / "wd")]
    cli = lambda *args: subprocess.run([sys.executable, "-m", "rtest.cli.main", *base, *args], capture_output=True, text=True, cwd=tmp_path, timeout=600)  # noqa: E731
    shown = cli()
    assert shown.returncode == 0, shown.stderr
    rows = {r["requirement"]: r for r in json.loads(shown.stdout)["A"]["requirements"]}
    assert set(rows) == {"nosuchpkg>=1", "tinyfmt==1.0.0", "undeclared==1.0"}
    assert rows["undeclared==1.0"]["sagemaker_installs"] and "import time" in rows["undeclared==1.0"]["reason"]
    assert not rows["tinyfmt==1.0.0"]["sagemaker_installs"] and "ScriptProcessor" in rows["tinyfmt==1.0.0"]["reason"]
    assert not rows["nosuchpkg>=1"]["sagemaker_installs"] and "never installs" in rows["nosuchpkg>=1"]["reason"]
    assert json.loads(shown.stdout)["A"]["missing"] == ["undeclared==1.0"]
    [warning] = json.loads(shown.stdout)["A"]["warnings"]
    assert "declares nosuchpkg>=1" in warning and "has no nosuchpkg" in warning
    opted = json.loads(cli("--install-declared").stdout)["A"]
    assert sorted(opted["missing"]) == ["nosuchpkg>=1", "undeclared==1.0"] and opted["warnings"] == []
