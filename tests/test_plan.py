"""Discovery, resolution, wiring and plan validation on real pipeline folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines import write_pipeline
from rtest.errors import DiscoveryError, PlanError
from rtest.plan.builder import build_plan, draft_plan, load_pipeline_inputs, plan_problems
from rtest.plan.model import Source
from rtest.plan.userspec import UserSpec, parse_input_flags


@pytest.fixture
def pipeline(tmp_path: Path) -> dict[str, Path]:
    return write_pipeline(tmp_path)


def _inputs(p):
    return load_pipeline_inputs(p["dag"], p["config"], [p["interfaces"]])


def test_discovery_lists_scripts_and_skips_with_reasons(pipeline):
    found = _inputs(pipeline).discovery
    assert list(found.scripts) == ["Preprocess_training", "Preprocess_calibration", "Train", "Evaluate"]
    assert "RegisterModel" in found.skipped["Register"] and "not a Processing or Training job" in found.skipped["Register"]
    assert "DataLoad" in found.skipped["DataLoading_training"]
    assert found.scripts["Train"].job_kind == "training"
    # two nodes, one script, tested separately
    assert found.scripts["Preprocess_training"].script_path == found.scripts["Preprocess_calibration"].script_path


def test_node_without_config_is_skipped_not_a_crash(tmp_path):
    p = write_pipeline(tmp_path)
    dag = json.loads(p["dag"].read_text())
    dag["nodes"].append("Orphan")
    p["dag"].write_text(json.dumps(dag))
    found = _inputs(p).discovery
    assert found.skipped["Orphan"].startswith("no config")


def test_no_entry_point_is_skipped(tmp_path):
    p = write_pipeline(tmp_path, extra_specific={"Loose": {"__model_type__": "LooseConfig"}})
    dag = json.loads(p["dag"].read_text())
    dag["nodes"].append("Loose")
    p["dag"].write_text(json.dumps(dag))
    assert _inputs(p).discovery.skipped["Loose"].startswith("no entry point")


def test_missing_script_is_an_error_naming_node_and_paths(tmp_path):
    p = write_pipeline(tmp_path, drop_scripts=("evaluate.py",))
    with pytest.raises(DiscoveryError) as err:
        _inputs(p)
    message = str(err.value)
    assert "node 'Evaluate'" in message and "processing_entry_point='evaluate.py'" in message
    assert str(tmp_path / "code" / "scripts" / "evaluate.py") in message and "--source-root" in message


def test_source_root_resolves_relative_source_dirs(tmp_path):
    p = write_pipeline(tmp_path / "project")
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    config = moved / "config.json"
    config.write_text(p["config"].read_text())
    with pytest.raises(DiscoveryError):
        load_pipeline_inputs(p["dag"], config, [p["interfaces"]])
    inputs = load_pipeline_inputs(p["dag"], config, [p["interfaces"]], source_root=tmp_path / "project")
    assert inputs.discovery.scripts["Train"].source_dir == tmp_path / "project" / "code"


def test_spec_values_carry_their_sources(pipeline):
    plan = draft_plan(_inputs(pipeline))
    pre = plan.scripts["Preprocess_training"]
    assert pre.environment["LABEL_FIELD"].value == "is_fraud"
    assert (pre.environment["LABEL_FIELD"].source, pre.environment["LABEL_FIELD"].field) == (Source.CONFIG, "label_field")
    assert (pre.environment["TRAIN_RATIO"].value, pre.environment["TRAIN_RATIO"].field) == ("0.8", "train_ratio")
    assert pre.environment["OUTPUT_FORMAT"].source == Source.INTERFACE
    assert pre.argv() == ["--job_type", "training"]
    assert pre.instance_type.value == "ml.m5.large" and pre.instance_type.field == "processing_instance_type_small"
    assert (pre.framework.value, pre.framework_version.value) == ("sklearn", "1.2-1")
    assert pre.image.value == "rtest/sagemaker-scikit-learn:1.2-1-cpu-py3"
    assert plan.scripts["Preprocess_calibration"].argv() == ["--job_type", "calibration"]
    train = plan.scripts["Train"]
    assert train.hyperparameter_values() == {"label_name": "is_fraud", "max_depth": 6, "fields": ["a", "b"]}
    assert train.image.value == "rtest/sagemaker-xgboost:1.7-1" and train.framework_version.field == "framework_version"
    assert plan.scripts["Evaluate"].image.value == "rtest/sagemaker-base:py3"


def test_wiring_by_alias_and_weak_optional_match_is_reported_not_wired(pipeline):
    plan = draft_plan(_inputs(pipeline))
    described = {w.describe() for w in plan.wires}
    assert "Preprocess_training.processed_data -> Train.input_path (alias)" in described
    assert "Train.model_output -> Evaluate.model_input (alias)" in described
    assert not any(w.target_input == "baseline" for w in plan.wires)
    assert any("Evaluate.baseline was NOT wired" in note and "weak semantic match" in note for note in plan.notes)


def test_missing_required_inputs_name_every_one_and_how_to_supply(pipeline):
    with pytest.raises(PlanError) as err:
        build_plan(_inputs(pipeline))
    message = str(err.value)
    assert "Preprocess_training.DATA (/opt/ml/processing/input/data)" in message
    assert "Preprocess_calibration.DATA" in message
    assert "--input NODE.NAME=PATH" in message and "--spec" in message


def test_user_inputs_complete_the_plan(pipeline):
    data = str(pipeline["data"])
    user = parse_input_flags([f"Preprocess_training.DATA={data}", f"Preprocess_calibration.DATA={data}"])
    plan = build_plan(_inputs(pipeline), user)
    assert plan.scripts["Preprocess_training"].inputs["DATA"].host_path.source == Source.USER
    assert plan.execution_order() == ["Preprocess_training", "Preprocess_calibration", "Train", "Evaluate"]


def test_nonexistent_user_path_is_a_problem(pipeline, tmp_path):
    user = parse_input_flags([f"Preprocess_training.DATA={tmp_path / 'nope'}"])
    problems = plan_problems(draft_plan(_inputs(pipeline), user))
    assert any("path does not exist" in p.message and p.node == "Preprocess_training" for p in problems)


def test_unknown_node_and_input_in_overrides_are_clear_errors(pipeline):
    with pytest.raises(PlanError, match="Script 'Nope' not found in validated scripts; valid names are: Evaluate, Preprocess_calibration"):
        draft_plan(_inputs(pipeline), parse_input_flags(["Nope.DATA=/tmp"]))
    with pytest.raises(PlanError, match="Node 'Train' has no input 'DATAX'; its inputs are: input_path"):
        draft_plan(_inputs(pipeline), parse_input_flags(["Train.DATAX=/tmp"]))
    with pytest.raises(PlanError, match="is skipped"):
        draft_plan(_inputs(pipeline), parse_input_flags(["Register.x=/tmp"]))


def test_bad_input_flag_says_the_form():
    with pytest.raises(PlanError, match="NODE.NAME=PATH"):
        parse_input_flags(["Preprocess_training=./data"])


def test_user_env_override_wins_and_is_marked(pipeline):
    user = UserSpec.model_validate({"scripts": {"Preprocess_training": {"environment": {"LABEL_FIELD": "target"}}}})
    spec = draft_plan(_inputs(pipeline), user).scripts["Preprocess_training"]
    assert spec.env()["LABEL_FIELD"] == "target" and spec.environment["LABEL_FIELD"].source == Source.USER


def test_script_without_interface_gets_paths_from_its_literals(tmp_path):
    p = write_pipeline(tmp_path)
    (p["interfaces"] / "evaluate.step.yaml").unlink()
    (tmp_path / "code" / "scripts" / "evaluate.py").write_text(
        "MODEL = '/opt/ml/processing/input/model'\nOUT = '/opt/ml/processing/output/metrics/'\nCODE='/opt/ml/processing/input/code'\n"
    )
    spec = draft_plan(_inputs(p)).scripts["Evaluate"]
    assert {n: i.container_path for n, i in spec.inputs.items()} == {"model": "/opt/ml/processing/input/model"}
    assert {n: o.container_path for n, o in spec.outputs.items()} == {"metrics": "/opt/ml/processing/output/metrics"}
    assert spec.interface_file is None


def test_script_without_interface_or_literals_requires_user_paths(tmp_path):
    p = write_pipeline(tmp_path)
    (p["interfaces"] / "evaluate.step.yaml").unlink()
    problems = plan_problems(draft_plan(_inputs(p)))
    assert any(pr.node == "Evaluate" and "name its inputs and outputs" in pr.message for pr in problems)
    named = draft_plan(_inputs(p), parse_input_flags([f"Evaluate.model={p['data']}"])).scripts["Evaluate"]
    assert named.inputs["model"].container_path == "/opt/ml/processing/input/model"


def test_plan_round_trips_through_json(pipeline):
    plan = draft_plan(_inputs(pipeline))
    again = type(plan).model_validate_json(plan.model_dump_json())
    assert again == plan  # every spec, source, wire and note survives, not just the order
    assert again.scripts["Train"].hyperparameters["max_depth"].source == Source.CONFIG


def test_clashing_or_relative_container_paths_are_plan_problems(tmp_path):
    import yaml

    p = write_pipeline(tmp_path)
    iface_path = p["interfaces"] / "evaluate.step.yaml"
    iface = yaml.safe_load(iface_path.read_text())
    iface["contract"]["inputs"]["baseline"]["path"] = "/opt/ml/processing/input/model/"
    iface["contract"]["outputs"]["metrics"]["path"] = "metrics"
    iface_path.write_text(yaml.safe_dump(iface))
    messages = [pr.message for pr in plan_problems(draft_plan(_inputs(p))) if pr.node == "Evaluate"]
    assert any("share the container path /opt/ml/processing/input/model" in m for m in messages)
    assert any("relative container path 'metrics'" in m for m in messages)
