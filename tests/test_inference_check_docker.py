"""The example's Registration as an inference check in real containers, with its handler broken on purpose."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rtest.example import example_paths

pytestmark = pytest.mark.docker

HANDLER = "dockers/fraud_model/scripts/inference_handler.py"


def _run(workdir: Path, *flags: str) -> tuple[subprocess.CompletedProcess, dict]:
    result = subprocess.run([sys.executable, "-m", "rtest.cli.main", "sandbox", "run", "--example", "--workdir",
                             str(workdir), *flags], capture_output=True, text=True, cwd=workdir.parent, timeout=900)
    report_path = max((workdir / "runs").glob("*/report.json"), key=lambda p: p.stat().st_mtime)
    return result, json.loads(report_path.read_text())


def test_a_broken_handler_fails_the_check_with_sentences_and_nothing_else(tmp_path, docker_client):
    workdir = tmp_path / "wd"
    copy = example_paths(copy_to=workdir / "example").source_root  # --example reuses this copy, edits and all
    handler = copy / HANDLER
    text = handler.read_text()
    broken = text.replace('    if content_type == "text/csv":\n',
                          '    if content_type == "text/csv":\n        raise ValueError("CSV is not supported")\n')
    broken = broken.replace('{"raw_score": float(s), "calibrated_score"', '{"raw_score": float(s), "calibrated"')
    assert broken.count("CSV is not supported") == 1 and '"calibrated"' in broken
    handler.write_text(broken)
    line = broken.splitlines().index('        raise ValueError("CSV is not supported")') + 1

    result, report = _run(workdir)
    assert result.returncode == 1, result.stdout + result.stderr
    steps = report["steps"]
    assert {n: s["status"] for n, s in steps.items() if n != "Registration"} == {
        n: "succeeded" for n in steps if n != "Registration"}
    check = steps["Registration"]
    assert check["status"] == "failed" and check["kind"] == "inference-check" and check["model_loaded"]
    failures = {s["file"]: s["failure"] for s in check["samples"]}
    assert failures["payload_text_csv.csv"] == (
        "sample payload_text_csv.csv (text/csv -> application/json): input_fn raised ValueError: CSV is not "
        f"supported (inference_handler.py line {line})")
    assert failures["payload_application_json.json"] == (
        "sample payload_application_json.json (application/json -> application/json): output variable "
        "'calibrated_score' is missing from the answer (it has: calibrated, raw_score)")
    assert check["failure_reason"].startswith("inference check: sample payload_")
    assert check["answered"] == 0 and all(s["latency_ms"] is None or s["latency_ms"] > 0 for s in check["samples"])

    result, report = _run(workdir, "--skip-inference-check")  # turned off: the rest is cached and passes
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Registration" not in report["steps"]
    assert report["skipped_nodes"]["Registration"].startswith("inference check turned off (--skip-inference-check)")


def test_the_toolkit_defaults_with_numpy_in_the_serving_image(tmp_path, docker_client):
    """Only model_fn and predict_fn: the default input_fn gives numpy arrays, the default output_fn encodes them."""
    import os

    from test_inference_check import BOOTSTRAP, EXECUTOR, CheckJob

    job = CheckJob(tmp_path)
    (job.payloads / "rows.csv").write_text("1.5,2\n3,4\n")
    (job.payloads / "rows.json").write_text("[[1.5, 2], [3, 4]]")
    job.package("def model_fn(model_dir):\n    return 2.0\n\n"
                "def predict_fn(data, model):\n    return data.sum(axis=1) * model\n")
    env = job.environment(content_types="text/csv,application/json", accepts="application/json,text/csv",
                          outputs=[])
    docker_client.containers.run(
        "rtest/sagemaker-xgboost:1.7-1", ["python3", str(BOOTSTRAP)], environment=env, remove=True,
        network_mode="none", user=f"{os.getuid()}:{os.getgid()}",
        volumes={str(tmp_path): {"bind": str(tmp_path), "mode": "rw"}, str(EXECUTOR): {"bind": str(EXECUTOR), "mode": "ro"}})
    results = json.loads((job.ml / "output" / "inference_check.json").read_text())
    assert results["failures"] == [], job.log.read_text()
    assert results["functions"]["input_fn"] == results["functions"]["output_fn"] == "toolkit default"
    assert [(s["file"], s["accept"], s["status"]) for s in results["samples"]] == [
        ("rows.csv", "application/json", "answered"), ("rows.csv", "text/csv", "answered"),
        ("rows.json", "application/json", "answered"), ("rows.json", "text/csv", "answered")]
