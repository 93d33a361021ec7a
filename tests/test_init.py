"""`rtest init` driven as a script drives it: answers on stdin, one per line; the spec it writes is run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cli_helpers import rtest_here
from pipelines import write_pipeline
from test_synth import TRAIN_HYPER, loader_config


def rtest(*args: str, cwd: Path, answers: str = "", env: dict | None = None, timeout: int = 120, child=False):
    """The real command, answers piped to its stdin (as a script or CI would); in a child process with ``child``
    (when its start-up is the point: what is importable there)."""
    if not child:
        done = rtest_here(*args, cwd=cwd, input=answers, env={"COLUMNS": "200", **(env or {})})
        return done.returncode, done.stdout, done.stderr
    done = subprocess.run([sys.executable, "-m", "rtest.cli.main", *args], cwd=cwd, input=answers, text=True,
                          capture_output=True, timeout=timeout, env={**os.environ, "COLUMNS": "200", **(env or {})})
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def example_project(tmp_path: Path) -> Path:
    """The bundled example as a user's project: a copy with its wheelhouse and a folder of sample data."""
    from rtest.example import example_paths, generate_example_inputs

    root = tmp_path / "project"
    example_paths(copy_to=root)
    generate_example_inputs(root / "sample_data", rows=200)
    return root


def test_init_on_the_example_offers_the_samples_and_writes_a_relative_spec(example_project, tmp_path):
    code, out, err = rtest("init", "--no-run", cwd=example_project, answers="nowhere/at/all\n\n\n")
    assert code == 0, err
    assert "found DAG: dag.json (12 nodes, 12 with a step config)" in out
    assert "found wheelhouse: wheelhouse" in out
    assert "Skipped nodes (2)" in out and "DataLoading_training" in out
    assert "nowhere/at/all does not exist" in out  # a wrong answer is refused and asked again
    spec = yaml.safe_load((example_project / "rtest-spec.yaml").read_text())
    assert spec["pipeline"] == {"dag": "dag.json", "config": "config.json", "interfaces": ["interfaces"],
                                "source_root": "."}
    assert spec["scripts"] == {"Preprocess_training": {"inputs": {"DATA": "sample_data/training/data"}},
                               "Preprocess_calibration": {"inputs": {"DATA": "sample_data/calibration/data"}}}
    assert spec["wheelhouse"] == "wheelhouse"
    code, out, err = rtest("init", "--no-run", cwd=example_project, answers="n\n")  # a spec is never lost silently
    assert code == 2 and "left" in err and "rtest-spec.yaml as it was" in err
    moved = shutil.move(str(example_project), str(tmp_path / "moved"))  # relative paths: the folder travels
    code, out, err = rtest("plan", "--spec", "rtest-spec.yaml", cwd=Path(moved))
    assert code == 0, err


def test_synthesis_is_offered_only_where_the_config_can_make_the_data(tmp_path):
    paths = write_pipeline(tmp_path, extra_specific={"DataLoading_training": loader_config(),
                                                     "Train": {"hyperparameters": TRAIN_HYPER}})
    shutil.rmtree(paths["data"])  # no sample to offer: only synthesis, and for calibration nothing at all
    (tmp_path / "calib.csv").write_text("a,b,is_fraud\n1,2,0\n")
    code, out, err = rtest("init", "--no-run", cwd=tmp_path, answers="s\ns\ncalib.csv\n")
    assert code == 0, err
    assert "or 's' to synthesize sample data from the config" in out
    assert "cannot synthesize it (no skipped data-loading step delivers it); give a path" in out
    spec = yaml.safe_load((tmp_path / "rtest-spec.yaml").read_text())
    assert spec["pipeline"]["synthesize_inputs"] is True
    assert spec["scripts"] == {"Preprocess_calibration": {"inputs": {"DATA": "calib.csv"}}}


@pytest.mark.process
def test_the_framework_catalogue_and_shared_dags_are_found_without_importing_it(tmp_path):
    """A cursus-shaped layout: the config in pipeline_config/, no DAG file in the project, the DAG and the
    interfaces in the installed framework (a package that would fail if it were imported)."""
    project = tmp_path / "atoz"
    paths = write_pipeline(tmp_path / "src")
    (project / "pipeline_config").mkdir(parents=True)
    shutil.copy(paths["config"], project / "pipeline_config" / "config.json")
    shutil.copytree(tmp_path / "src" / "code", project / "code")
    (project / "pipeline_config" / "execute_doc.json").write_text('{"execution": {}}')
    framework = tmp_path / "site" / "cursus"
    (framework / "pipeline_catalog" / "shared_dags" / "demo").mkdir(parents=True)
    (framework / "__init__.py").write_text("raise SystemExit('imported!')\n")
    shutil.copy(paths["dag"], framework / "pipeline_catalog" / "shared_dags" / "demo" / "e2e.dag.json")
    (framework / "pipeline_catalog" / "shared_dags" / "demo" / "tiny.dag.json").write_text(
        json.dumps({"nodes": ["Train"], "edges": []}))
    shutil.copytree(paths["interfaces"], framework / "steps" / "interfaces")
    shutil.copy(paths["data"] / "train.csv", project / "train.csv")
    code, out, err = rtest("init", "--no-run", cwd=project, answers="\ntrain.csv\ntrain.csv\n",
                           env={"PYTHONPATH": str(tmp_path / "site")}, child=True)
    assert code == 0, err
    assert "passed over pipeline_config/execute_doc.json: not a pipeline config" in out
    assert "e2e.dag.json (6 nodes, 6 with a step config)" in out
    assert "(the installed framework's catalogue)" in out
    spec = yaml.safe_load((project / "rtest-spec.yaml").read_text())
    assert spec["pipeline"]["dag"].endswith("e2e.dag.json")  # the best match is the default
    assert spec["pipeline"]["config"] == "pipeline_config/config.json"
    assert spec["pipeline"]["interfaces"][0].endswith("steps/interfaces")


def test_init_with_nothing_to_find_says_what_to_do(tmp_path):
    code, out, err = rtest("init", "--no-run", cwd=tmp_path)
    assert code == 2
    assert "found no config under the project folder" in err and "rtest init --new DIR" in err
    assert "Traceback" not in err


def test_end_of_stdin_with_no_default_names_the_question(tmp_path):
    write_pipeline(tmp_path)
    shutil.rmtree(tmp_path / "data")
    code, out, err = rtest("init", "--no-run", cwd=tmp_path, answers="")
    assert code == 2
    assert "needed an answer to '  Path for Preprocess_training.DATA" in err


def test_new_scaffolds_a_pipeline_that_plans_complete_and_refuses_a_full_folder(tmp_path):
    code, out, err = rtest("init", "--new", "mine", "--no-run", cwd=tmp_path)
    assert code == 0, err
    names = sorted(str(p.relative_to(tmp_path / "mine")) for p in (tmp_path / "mine").rglob("*") if p.is_file())
    assert names == ["config.json", "dag.json", "data/sample.csv", "interfaces/prepare.step.yaml",
                     "interfaces/summarize.step.yaml", "rtest-spec.yaml", "scripts/prepare.py", "scripts/summarize.py"]
    code, out, err = rtest("plan", "--spec", "mine/rtest-spec.yaml", "--strict", cwd=tmp_path)
    assert code == 0, err
    code, out, err = rtest("init", "--new", "mine", "--no-run", cwd=tmp_path)
    assert code == 2 and "already exists and is not an empty folder" in err


@pytest.mark.docker
def test_init_on_the_example_then_run_is_green(example_project, docker_client):
    code, out, err = rtest("init", cwd=example_project, answers="\n\ny\n", timeout=900)
    assert code == 0, out + err
    assert "Run it now? [y]: y" in out
    report = json.loads(next((example_project / ".rtest" / "runs").glob("*/report.json")).read_text())
    assert report["pipeline_success"] is True and len(report["steps"]) == 10  # 9 scripts + the inference check


@pytest.mark.docker
def test_new_pipeline_runs_green(tmp_path, docker_client):
    code, out, err = rtest("init", "--new", "mine", "--run", cwd=tmp_path, timeout=600)
    assert code == 0, out + err
    report = json.loads(next((tmp_path / ".rtest" / "runs").glob("*/report.json")).read_text())
    assert {node: step["status"] for node, step in report["steps"].items()} == {"Prepare": "succeeded",
                                                                                  "Summarize": "succeeded"}
