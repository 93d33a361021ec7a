"""The cache follows what the step really runs: its script, the modules it imports, files it names."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from rtest.run.source_digest import source_digest, step_files

EXAMPLE_SCRIPTS = Path(__file__).parents[1] / "src" / "rtest" / "example" / "pipeline" / "dockers" / "fraud_model"


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


SHARED_FOLDER = {
    "scripts/train.py": """\
        import json, os
        import helpers.io
        from features import encode
        from features.scaling import scale
        from . import nothing_here_relative_to_a_script
        plugin = __import__("importlib").import_module("plugins.extra")
        CONFIG = open("config/columns.json").read()
        HYPER = "/opt/ml/code/hyperparams/hp.json"
        NOT_A_FILE = "hello world"
    """,
    "scripts/evaluate.py": "import numpy\nprint('evaluate')\n",
    "scripts/helpers/__init__.py": "",
    "scripts/helpers/io.py": "from .formats import CSV\nfrom ..features import encode\n",
    "scripts/helpers/formats.py": "CSV = 'csv'\n",
    "scripts/helpers/unused.py": "X = 1\n",
    "features/__init__.py": "from .encode import encode\n",
    "features/encode.py": "def encode(x):\n    return x\n",
    "features/scaling.py": "def scale(x):\n    return x\n",
    "features/unused.py": "",
    "plugins/extra.py": "",
    "scripts/config/columns.json": "[]",
    "hyperparams/hp.json": "{}",
    "data/big.csv": "a,b\n",
    "requirements.txt": "pandas==1.1.3\n",
    "scripts/requirements-dev.txt": "pytest\n",
}


def test_the_files_a_script_runs_are_found_by_parsing(tmp_path):
    root = write(tmp_path / "src", SHARED_FOLDER)
    assert step_files(root, "scripts/train.py") == [
        "features/__init__.py", "features/encode.py", "features/scaling.py",
        "hyperparams/hp.json", "plugins/extra.py", "requirements.txt",
        "scripts/config/columns.json", "scripts/helpers/__init__.py", "scripts/helpers/formats.py", "scripts/helpers/io.py",
        "scripts/requirements-dev.txt", "scripts/train.py",
    ]
    assert step_files(root, "scripts/evaluate.py") == ["requirements.txt", "scripts/evaluate.py", "scripts/requirements-dev.txt"]


def test_nothing_is_run_while_parsing(tmp_path):
    root = write(tmp_path / "src", {"main.py": "import side\n", "side.py": "open('ran', 'w').write('x')\n"})
    assert step_files(root, "main.py") == ["main.py", "side.py"]
    assert not (root / "ran").exists() and not Path("ran").exists()


def test_the_digest_changes_with_the_scripts_files_only(tmp_path):
    root = write(tmp_path / "src", SHARED_FOLDER)
    before = {name: source_digest(root, name) for name in ("scripts/train.py", "scripts/evaluate.py")}
    full_before = source_digest(root, "scripts/train.py", full=True)
    with open(root / "scripts" / "evaluate.py", "a") as handle:
        handle.write("# a comment\n")
    assert source_digest(root, "scripts/train.py") == before["scripts/train.py"]
    assert source_digest(root, "scripts/evaluate.py") != before["scripts/evaluate.py"]
    assert source_digest(root, "scripts/train.py", full=True) != full_before  # --cache-key full: today's behaviour
    (root / "features" / "scaling.py").write_text("def scale(x):\n    return 2 * x\n")
    assert source_digest(root, "scripts/train.py") != before["scripts/train.py"]
    (root / "data" / "big.csv").write_text("changed\n")  # named nowhere: not part of any step
    after = source_digest(root, "scripts/train.py")
    assert source_digest(root, "scripts/train.py") == after


def test_a_file_outside_the_folder_or_a_broken_script_does_not_break_it(tmp_path):
    outside = write(tmp_path / "elsewhere", {"secret.py": "X = 1\n"})
    root = write(tmp_path / "src", {"main.py": f"import sys\nDATA = '../elsewhere/secret.py'\nP = '{outside}/secret.py'\n", "bad.py": "def (:\n"})
    assert step_files(root, "main.py") == ["main.py"]
    assert step_files(root, "bad.py") == ["bad.py"]
    assert step_files(root, "../elsewhere/secret.py") is None


def test_the_examples_shared_scripts_folder(tmp_path):
    """Real scripts: the packaging step copies the inference handler it names; the others stand alone."""
    scripts = EXAMPLE_SCRIPTS / "scripts"
    assert step_files(scripts, "package.py") == ["inference_handler.py", "package.py"]
    assert step_files(scripts, "preprocess.py") == ["preprocess.py"]
    assert step_files(EXAMPLE_SCRIPTS, "train.py") == ["train.py"]


# --- real containers: edit one of two scripts sharing a folder --------------------------------

PRODUCER = """\
import pathlib
from common import VALUE
out = pathlib.Path('/opt/ml/processing/output/out')
(out / 'value.txt').write_text(VALUE)
"""
CONSUMER = """\
import pathlib
text = pathlib.Path('/opt/ml/processing/input/data/value.txt').read_text()
(pathlib.Path('/opt/ml/processing/output/out') / 'copy.txt').write_text(text)
"""
OTHER = "import pathlib\n(pathlib.Path('/opt/ml/processing/output/out') / 'b.txt').write_text('b')\n"


def shared_folder_pipeline(root: Path) -> dict[str, Path]:
    from rtest.testing import write_python_pipeline

    out = {"out": "/opt/ml/processing/output/out"}
    steps = {
        "Produce": {"script": PRODUCER, "outputs": out, "aliases": {"out": ["data"]}},
        "Consume": {"script": CONSUMER, "inputs": {"data": "/opt/ml/processing/input/data"}, "outputs": out},
        "Other": {"script": OTHER, "outputs": out},
    }
    paths = write_python_pipeline(root, steps, [("Produce", "Consume")])
    shared = write(root / "shared", {"produce.py": PRODUCER, "consume.py": CONSUMER, "other.py": OTHER, "common.py": "VALUE = 'one'\n"})
    config = json.loads(paths["config"].read_text())
    for node, script in (("Produce", "produce.py"), ("Consume", "consume.py"), ("Other", "other.py")):
        config["configuration"]["specific"][node].update(source_dir="shared", processing_entry_point=script)
    paths["config"].write_text(json.dumps(config))
    paths["shared"] = shared
    return paths


@pytest.mark.docker
def test_editing_one_script_of_a_shared_folder_reruns_only_its_step_and_consumers(tmp_path, docker_client):
    from rtest.plan.builder import build_plan, load_pipeline_inputs
    from rtest.run.engine import RunOptions, run_pipeline

    p = shared_folder_pipeline(tmp_path / "pipe")

    def run(cache_key: str = "imports") -> dict[str, str]:
        plan = build_plan(load_pipeline_inputs(p["dag"], p["config"], [p["interfaces"]]))
        report = run_pipeline(plan, RunOptions(workdir=tmp_path / "wd", cache_key=cache_key))
        return {node: result.status.value for node, result in report.steps.items()}

    assert run() == {"Produce": "succeeded", "Consume": "succeeded", "Other": "succeeded"}
    with open(p["shared"] / "other.py", "a") as handle:
        handle.write("# only a comment\n")
    assert run() == {"Produce": "cached", "Consume": "cached", "Other": "succeeded"}
    (p["shared"] / "common.py").write_text("VALUE = 'two'\n")  # imported by Produce only
    assert run() == {"Produce": "succeeded", "Consume": "succeeded", "Other": "cached"}
    # By time, not name: two runs in one second have ids that sort by their random suffix.
    consumed = sorted((tmp_path / "wd" / "runs").glob("*/Consume/output/out/copy.txt"),
                      key=lambda f: f.stat().st_mtime_ns)
    assert consumed[-1].read_text() == "two"
    everything = {"Produce": "succeeded", "Consume": "succeeded", "Other": "succeeded"}
    assert run("full") == everything
    with open(p["shared"] / "other.py", "a") as handle:
        handle.write("# another comment\n")
    assert run("full") == everything  # --cache-key full: any file of the folder reruns every step, as before


def test_cache_key_option_takes_imports_or_full_only(capsys):
    from rtest.cli.main import main

    with pytest.raises(SystemExit) as exited:
        main(["sandbox", "run", "--example", "--cache-key", "folder"])
    assert exited.value.code == 2
    error = " ".join(capsys.readouterr().err.replace("│", " ").split())
    assert "Invalid value for '--cache-key'" in error and "'folder' is not one of 'imports', 'full'" in error
