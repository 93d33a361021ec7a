"""The CLI as a user meets it: output, one-sentence errors, exit codes, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import rtest_here
from pipelines import write_pipeline
from rtest.cli.main import main


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


@pytest.fixture
def pipeline(tmp_path: Path) -> dict[str, Path]:
    return write_pipeline(tmp_path)


def _base(p) -> list[str]:
    return ["--dag", str(p["dag"]), "--config", str(p["config"]), "--interfaces", str(p["interfaces"])]


def test_discover_json(capsys, pipeline):
    code, out, _ = run_cli(capsys, "discover", *_base(pipeline), "--format", "json")
    data = json.loads(out)
    assert code == 0
    assert [s["node"] for s in data["scripts"]] == ["Preprocess_training", "Preprocess_calibration", "Train", "Evaluate"]
    assert set(data["scripts"][0]) == {"node", "script_name", "entry_point", "job_kind", "script_path"}
    assert {s["node"] for s in data["skipped"]} == {"DataLoading_training", "Register"}


def test_discover_text_defaults_interfaces_next_to_config(capsys, pipeline):
    code, out, _ = run_cli(capsys, "discover", "--dag", str(pipeline["dag"]), "--config", str(pipeline["config"]))
    assert code == 0 and "Preprocess_calibration" in out and "RegisterModel" in out


def test_missing_config_is_one_sentence_exit_2(capsys, pipeline, tmp_path):
    code, out, err = run_cli(capsys, "discover", "--dag", str(pipeline["dag"]), "--config", str(tmp_path / "none.json"))
    assert code == 2 and f"Configuration file not found: {tmp_path / 'none.json'}" in err and "Traceback" not in err + out


def test_plan_incomplete_exit_2_names_inputs(capsys, pipeline):
    code, _, err = run_cli(capsys, "plan", *_base(pipeline))
    assert code == 2 and "Preprocess_training.DATA" in err and "--input NODE.NAME=PATH" in err.replace("\n", " ")


def test_plan_json_with_inputs(capsys, pipeline):
    data = str(pipeline["data"])
    code, out, _ = run_cli(capsys, "plan", *_base(pipeline), "--input", f"Preprocess_training.DATA={data}",
                           "--input", f"Preprocess_calibration.DATA={data}", "--format", "json")
    plan = json.loads(out)
    assert code == 0 and plan["execution_order"][-1] == "Evaluate" and plan["problems"] == []
    assert plan["scripts"]["Train"]["hyperparameters"]["max_depth"] == {"value": 6, "source": "config", "field": "hyperparameters.max_depth"}


def test_an_instance_type_rtest_guesses_is_a_plan_note_not_a_log_line(pipeline):
    """An instance type rtest has to guess limits for is said once, in the plan (JSON stays parseable)."""
    config = json.loads(pipeline["config"].read_text())
    config["configuration"]["specific"]["Train"]["training_instance_type"] = "ml.m5.12xlarge"
    pipeline["config"].write_text(json.dumps(config))
    data = str(pipeline["data"])
    done = rtest_here("plan", *_base(pipeline), "--input", f"Preprocess_training.DATA={data}",
                      "--input", f"Preprocess_calibration.DATA={data}", "--format", "json", cwd=Path.cwd())
    assert done.returncode == 0 and "ml.m5.12xlarge" not in done.stderr  # quiet: no log line on every plan ...
    plan = json.loads(done.stdout)
    assert plan["scripts"]["Train"]["instance_type"]["value"] == "ml.m5.12xlarge"
    assert [n for n in plan["notes"] if "ml.m5.12xlarge" in n] == [  # ... but one note in the plan
        "instance type ml.m5.12xlarge is not in rtest's table; its limits (48 vCPUs, 192 GiB, capped at this machine) "
        "are derived from its name"]


def test_plan_image_map_points_at_real_images(capsys, pipeline):
    data = str(pipeline["data"])
    real = "123456789012.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
    code, out, _ = run_cli(capsys, "plan", *_base(pipeline), "--input", f"Preprocess_training.DATA={data}",
                           "--input", f"Preprocess_calibration.DATA={data}", "--image-map", f"xgboost:1.7-1={real}", "--format", "json")
    assert code == 0 and json.loads(out)["scripts"]["Train"]["image"]["value"] == real


def test_requirements_command(capsys, pipeline):
    code, out, _ = run_cli(capsys, "requirements", *_base(pipeline), "Preprocess_training", "--format", "json")
    assert code == 0 and json.loads(out)["job_arguments"][0]["name"] == "--job_type"
    code, _, err = run_cli(capsys, "requirements", *_base(pipeline), "Nope")
    assert code == 2 and "not found in validated scripts" in err


def test_usage_error_exit_2_and_version(capsys):
    code, _, err = run_cli(capsys, "discover", "--format", "xml")
    assert code == 2 and "text or json" in err
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.startswith("rtest ")


def test_no_pipeline_given(capsys):
    code, _, err = run_cli(capsys, "discover")
    assert code == 2 and "pass --dag and --config" in err


def test_console_script_example_discover(tmp_path):
    """The installed entry point, as the README runs it."""
    result = subprocess.run([sys.executable, "-m", "rtest.cli.main", "discover", "--example", "--format", "json"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    skipped = {s["node"]: s["reason"] for s in data["skipped"]}
    assert any(n.startswith("DataLoading") for n in skipped) and "Registration" not in skipped
    assert not any(s["node"].startswith("DataLoading") for s in data["scripts"])
    registration = next(s for s in data["scripts"] if s["node"] == "Registration")  # runs as an inference check
    assert registration["job_kind"] == "inference-check", registration
    assert not (tmp_path / ".rtest").exists()  # discovery writes nothing
