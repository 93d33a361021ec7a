"""`rtest sandbox run` and the factory's run, in real containers."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from pipelines import write_python_pipeline
from rtest import InteractiveRuntimeTestingFactory

pytestmark = pytest.mark.docker

READ_WRITE = """
import os, pathlib, sys
src = pathlib.Path('/opt/ml/processing/input/data')
out = pathlib.Path('/opt/ml/processing/output/result')
text = ''.join(p.read_text() for p in sorted(src.iterdir()) if p.is_file())
for p in [p for p in src.iterdir() if p.is_file()]:  # in place, same inode: a hard-linked or mounted input would leak this
    p.write_text('overwritten by the script')
(src / 'scribble.txt').write_text('scripts may write into their inputs')
(out / 'result.txt').write_text(os.environ.get('TAG', '') + text)
"""
CRASH = """
import sys
def load(path):
    raise ValueError('column is_fraud missing from ' + path)
load('/opt/ml/processing/input/data/train.csv')
"""
CONSUME = """
import pathlib
text = (pathlib.Path('/opt/ml/processing/input/result') / 'result.txt').read_text()
(pathlib.Path('/opt/ml/processing/input/result') / 'result.txt').write_text('overwritten by the consumer')
(pathlib.Path('/opt/ml/processing/output/final') / 'final.txt').write_text(text.upper())
"""


def rtest_containers(docker_client, run_id: str) -> list:
    return docker_client.containers.list(all=True, filters={"label": f"rtest.run-id={run_id}"})


def _branchy(root: Path, crash: bool) -> dict[str, Path]:
    step = lambda script, ins, outs: {"script": script, "inputs": ins, "outputs": outs}  # noqa: E731
    steps = {
        "A": step(CRASH if crash else READ_WRITE, {"DATA": "/opt/ml/processing/input/data"}, {"result": "/opt/ml/processing/output/result"}),
        "B": step(CONSUME, {"result": "/opt/ml/processing/input/result"}, {"final": "/opt/ml/processing/output/final"}),
        "C": step(READ_WRITE, {"DATA": "/opt/ml/processing/input/data"}, {"result": "/opt/ml/processing/output/result"}),
    }
    return write_python_pipeline(root, steps, [("A", "B")])


def _run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rtest.cli.main", "sandbox", "run", *args], capture_output=True, text=True, cwd=cwd, timeout=900)


def _digest(folder: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() + p.name.encode() for p in sorted(folder.rglob("*")) if p.is_file())).hexdigest()


def test_crash_fails_step_skips_consumers_runs_other_branch(tmp_path, docker_client):
    p = _branchy(tmp_path / "pipe", crash=True)
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("a,is_fraud\n1,0\n")
    before = _digest(data)
    result = _run_cli(["--dag", str(p["dag"]), "--config", str(p["config"]), "--input", f"A.DATA={data}",
                       "--input", f"C.DATA={data}", "--workdir", str(tmp_path / "wd"), "--no-cache"], tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(next((tmp_path / "wd" / "runs").glob("*/report.json")).read_text())
    steps = report["steps"]
    assert report["pipeline_success"] is False
    assert steps["A"]["status"] == "failed" and steps["A"]["exit_code"] == 1
    # the reason is the exception line; the whole traceback stays in the step's failure file and log
    assert steps["A"]["failure_reason"] == "ValueError: column is_fraud missing from /opt/ml/processing/input/data/train.csv"
    assert "Traceback (most recent call last)" in (Path(steps["A"]["log_path"]).parent / "sm_output" / "failure").read_text()
    assert steps["B"]["status"] == "upstream_failed" and steps["C"]["status"] == "succeeded"
    assert "ValueError" in result.stdout  # the summary shows the reason and the log tail
    assert _digest(data) == before and not (data / "scribble.txt").exists()
    assert rtest_containers(docker_client, report["run_id"]) == []


def test_outputs_flow_downstream_and_report_is_complete(tmp_path, docker_client):
    p = _branchy(tmp_path / "pipe", crash=False)
    data = tmp_path / "data"
    data.mkdir()
    (data / "rows.csv").write_text("x\n")
    result = _run_cli(["--dag", str(p["dag"]), "--config", str(p["config"]), "--input", f"A.DATA={data}",
                       "--input", f"C.DATA={data}", "--workdir", str(tmp_path / "wd"), "--log-format", "json"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]  # every log line is JSON
    assert {(e["event"], e.get("node")) for e in events} >= {("step finished", "A"), ("step finished", "B"), ("run finished", None)}
    report = json.loads(next((tmp_path / "wd" / "runs").glob("*/report.json")).read_text())
    final = Path(report["steps"]["B"]["outputs"]["final"]) / "final.txt"
    assert final.read_text() == "X\n"
    # B wrote into its input: the producer's output (which other consumers and the cache share) is unchanged.
    assert (Path(report["steps"]["A"]["outputs"]["result"]) / "result.txt").read_text() == "x\n"
    assert (data / "rows.csv").read_text() == "x\n" and not (data / "scribble.txt").exists()
    for step in report["steps"].values():
        assert set(step) >= {"status", "exit_code", "duration_s", "image", "outputs", "log_path", "failure_reason"}
        assert step["image"] == "rtest/sagemaker-base:py3" and Path(step["log_path"]).is_file()
    assert rtest_containers(docker_client, report["run_id"]) == []


def test_example_end_to_end_through_the_cli(tmp_path, docker_client):
    result = _run_cli(["--example", "--workdir", str(tmp_path / "wd"), "--no-cache"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(next((tmp_path / "wd" / "runs").glob("*/report.json")).read_text())
    assert report["pipeline_success"] and all(s["status"] == "succeeded" for s in report["steps"].values())
    assert any(n.startswith("DataLoading") for n in report["skipped_nodes"])
    registration = report["steps"]["Registration"]  # the inference check served the packaged model its payloads
    assert registration["kind"] == "inference-check" and registration["answered"] == len(registration["samples"]) == 2
    run_dir = Path(report["run_dir"])
    consumers = [n for n in report["steps"] if n != "Train" and any((run_dir / n / "input").rglob("model.tar.gz"))]
    assert len(consumers) >= 3, consumers  # evaluation, packaging and payload got the packed model
    archive = next((run_dir / consumers[0] / "input").rglob("model.tar.gz"))
    with tarfile.open(archive) as tar:
        assert {"xgboost-model", "feature_columns.json"} <= set(tar.getnames()), tar.getnames()
    assert rtest_containers(docker_client, report["run_id"]) == []


def test_factory_runs_the_same_engine(tmp_path, docker_client):
    p = _branchy(tmp_path / "pipe", crash=False)
    data = tmp_path / "data"
    data.mkdir()
    (data / "rows.csv").write_text("y\n")
    factory = InteractiveRuntimeTestingFactory(p["dag"], p["config"], workspace_dir=tmp_path / "wd")
    assert factory.get_pending_script_configurations() == ["A", "C"]
    factory.configure_script_testing("A", expected_inputs={"DATA": data}, environment_variables={"TAG": "t:"})
    factory.configure_script_testing("C", expected_inputs={"DATA": data}, expected_outputs={"result": tmp_path / "exported"})
    outcome = factory.execute_dag_guided_testing()
    assert outcome["pipeline_success"] is True
    assert outcome["execution_order"] == ["A", "B", "C"]
    info = outcome["interactive_factory_info"]
    assert (info["total_scripts"], info["manually_configured"], info["auto_configured"]) == (3, 2, 1)
    assert set(info["script_configurations"]) == {"A", "B", "C"}
    assert outcome["script_results"]["B"]["status"] == "succeeded"
    # A's environment_variables reached its container, and A's output reached B.
    assert (Path(outcome["script_results"]["B"]["outputs"]["final"]) / "final.txt").read_text() == "T:Y\n"
    assert (tmp_path / "exported" / "result.txt").read_text() == "y\n"
    assert rtest_containers(docker_client, outcome["run_id"]) == []


def test_missing_image_stops_the_run_before_any_step(tmp_path, docker_client):
    p = _branchy(tmp_path / "pipe", crash=False)
    data = tmp_path / "data"
    data.mkdir()
    result = _run_cli(["--dag", str(p["dag"]), "--config", str(p["config"]), "--input", f"A.DATA={data}", "--input", f"C.DATA={data}",
                       "--image-map", "python:3=rtest/no-such-image:1", "--workdir", str(tmp_path / "wd")], tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert "Image rtest/no-such-image:1 is not in the local Docker engine" in message and "--image-map" in message
    assert "Traceback" not in message and not list((tmp_path / "wd" / "runs").glob("*/A/log.txt"))


TRAIN = """
import json, os, pathlib
model = pathlib.Path(os.environ['SM_MODEL_DIR'])
(model / 'weights.json').write_text(json.dumps({'depth': os.environ['SM_HP_MAX_DEPTH']}))
"""
USE_MODEL = """
import os, pathlib, tarfile
src = pathlib.Path('/opt/ml/processing/input/model_input')
out = pathlib.Path('/opt/ml/processing/output/seen')
(out / 'listing.txt').write_text(','.join(sorted(p.name for p in src.iterdir())))
"""


@pytest.mark.parametrize("pack", [True, False])
def test_training_model_reaches_consumers_packed_or_as_a_folder(tmp_path, docker_client, pack):
    from rtest.plan.builder import build_plan, load_pipeline_inputs
    from rtest.plan.settings import CommandLine
    from rtest.run.engine import RunOptions, run_pipeline

    steps = {
        "Fit": {"script": TRAIN, "kind": "training", "outputs": {"model_output": "/opt/ml/model"},
                "aliases": {"model_output": ["model_input"]}, "config": {"hyperparameters": {"max_depth": 3}}},
        "Use": {"script": USE_MODEL, "inputs": {"model_input": "/opt/ml/processing/input/model_input"},
                "outputs": {"seen": "/opt/ml/processing/output/seen"}},
    }
    p = write_python_pipeline(tmp_path / "pipe", steps, [("Fit", "Use")])
    plan = build_plan(load_pipeline_inputs(p["dag"], p["config"], [p["interfaces"]]))
    report = run_pipeline(plan, RunOptions(workdir=tmp_path / "wd"), settings=CommandLine(pack_model=pack))
    assert report.pipeline_success, report.steps["Fit"].failure_reason
    listing = (Path(report.steps["Use"].outputs["seen"]) / "listing.txt").read_text()
    assert listing == ("model.tar.gz" if pack else "weights.json")
    if pack:
        with tarfile.open(Path(report.steps["Fit"].outputs["model_output"]) / "model.tar.gz") as tar:
            assert tar.getnames() == ["weights.json"]
            assert tar.extractfile("weights.json").read() == b'{"depth": "3"}'
