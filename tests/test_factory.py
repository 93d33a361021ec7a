"""The Python factory API end to end (planning side; running is in test_sandbox_run.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines import write_pipeline
from rtest import InteractiveRuntimeTestingFactory


@pytest.fixture
def pipeline(tmp_path: Path) -> dict[str, Path]:
    return write_pipeline(tmp_path)


@pytest.fixture
def factory(pipeline, tmp_path) -> InteractiveRuntimeTestingFactory:
    return InteractiveRuntimeTestingFactory(pipeline["dag"], pipeline["config"], interface_dirs=[pipeline["interfaces"]],
                                            workspace_dir=tmp_path / ".rtest")


def test_scripts_pending_and_auto_configured(factory):
    assert factory.get_scripts_requiring_testing() == ["Preprocess_training", "Preprocess_calibration", "Train", "Evaluate"]
    assert factory.get_pending_script_configurations() == ["Preprocess_training", "Preprocess_calibration"]
    summary = factory.get_testing_factory_summary()
    assert summary["auto_configured"] == ["Evaluate", "Train"] and summary["ready_to_execute"] is False
    assert summary["total_scripts"] == 4 and "Register" in summary["skipped_nodes"]


def test_requirements_show_paths_and_sources(factory):
    needs = factory.get_script_testing_requirements("Preprocess_training")
    data = next(i for i in needs["expected_inputs"] if i["name"] == "DATA")
    assert data == {"name": "DATA", "container_path": "/opt/ml/processing/input/data", "required": True,
                    "current_path": None, "source": None, "field": None, "wire": None}
    label = next(e for e in needs["environment_variables"] if e["name"] == "LABEL_FIELD")
    assert label == {"name": "LABEL_FIELD", "default_value": "is_fraud", "source": "config", "field": "label_field",
                     "required": True}
    ratio = next(e for e in needs["environment_variables"] if e["name"] == "OUTPUT_FORMAT")
    assert (ratio["source"], ratio["field"], ratio["required"]) == ("interface", "env_vars.optional.OUTPUT_FORMAT", False)
    assert needs["job_arguments"] == [{"name": "--job_type", "default_value": "training", "source": "config",
                                       "field": "job_type", "required": True}]
    assert needs["step_name"] == "Preprocess_training" and needs["source_dir"] == str(Path(needs["script_path"]).parent)
    train = factory.get_script_testing_requirements("Train")
    assert (train["expected_inputs"][0]["source"], train["expected_inputs"][0]["field"]) == (
        "wire", "Preprocess_training.processed_data")


def test_unknown_script_lists_valid_names(factory):
    with pytest.raises(ValueError, match=r"Script 'Nope' not found in validated scripts\. Valid scripts: Evaluate, Preprocess_calibration"):
        factory.get_script_testing_requirements("Nope")
    with pytest.raises(ValueError, match="Script 'Register' not found in validated scripts .*RegisterModel"):
        factory.configure_script_testing("Register", expected_inputs={})


def test_configure_validates_at_once_and_lists_every_problem(factory, tmp_path):
    with pytest.raises(ValueError) as err:
        factory.configure_script_testing("Preprocess_training", expected_inputs={"SIGNATURE": tmp_path / "missing"})
    message = str(err.value)
    assert "path does not exist" in message and "Preprocess_training.DATA" in message and "has no upstream script" in message
    assert factory.get_pending_script_configurations() == ["Preprocess_training", "Preprocess_calibration"]  # unchanged


def test_configure_then_save_and_reload_spec(factory, pipeline, tmp_path):
    factory.configure_script_testing("Preprocess_training", expected_inputs={"DATA": pipeline["data"]},
                                     environment_variables={"OUTPUT_FORMAT": "PARQUET"})
    factory.configure_script_testing("Preprocess_calibration", expected_inputs={"DATA": pipeline["data"]})
    summary = factory.get_testing_factory_summary()
    assert summary["ready_to_execute"] and summary["manually_configured"] == ["Preprocess_calibration", "Preprocess_training"]
    plan = factory.complete_plan()
    assert plan.scripts["Preprocess_training"].env()["OUTPUT_FORMAT"] == "PARQUET"
    for suffix in (".yaml", ".json"):
        saved = factory.save_spec(tmp_path / f"spec{suffix}")
        again = InteractiveRuntimeTestingFactory.from_spec(saved, workspace_dir=tmp_path / ".rtest")
        assert again.get_pending_script_configurations() == []
        assert again.complete_plan().scripts["Preprocess_training"].env() == plan.scripts["Preprocess_training"].env()


def test_dag_may_be_a_digraph(pipeline, tmp_path):
    import networkx as nx  # here, not at the top: collecting the module on every worker should not pay for it

    graph = nx.DiGraph([("Preprocess_training", "Train"), ("Train", "Evaluate")])
    factory = InteractiveRuntimeTestingFactory(graph, pipeline["config"], interface_dirs=[pipeline["interfaces"]])
    assert factory.get_scripts_requiring_testing() == ["Preprocess_training", "Train", "Evaluate"]


def test_saved_spec_drives_the_cli_alone(factory, pipeline, tmp_path, capsys):
    import json

    from rtest.cli.main import main

    factory.configure_script_testing("Preprocess_training", expected_inputs={"DATA": pipeline["data"]})
    factory.configure_script_testing("Preprocess_calibration", expected_inputs={"DATA": pipeline["data"]})
    saved = factory.save_spec(tmp_path / "elsewhere" / "rtest-spec.yaml")
    with pytest.raises(SystemExit) as exited:
        main(["plan", "--spec", str(saved), "--format", "json", "--workdir", str(tmp_path / "wd")])
    assert exited.value.code == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["problems"] == [] and plan["scripts"]["Preprocess_training"]["inputs"]["DATA"]["host_path"]["source"] == "user"


def test_saved_spec_paths_are_relative_so_the_project_can_move(tmp_path):
    import shutil

    project = tmp_path / "project"
    pipeline = write_pipeline(project)
    factory = InteractiveRuntimeTestingFactory(pipeline["dag"], pipeline["config"], interface_dirs=[pipeline["interfaces"]],
                                               workspace_dir=tmp_path / ".rtest")
    factory.configure_script_testing("Preprocess_training", expected_inputs={"DATA": pipeline["data"]})
    saved = factory.save_spec(project / "specs" / "rtest-spec.yaml")
    text = saved.read_text()
    assert str(tmp_path) not in text and "../data" in text and "../config.json" in text
    moved = shutil.move(str(project), str(tmp_path / "moved"))
    again = InteractiveRuntimeTestingFactory.from_spec(Path(moved) / "specs" / "rtest-spec.yaml",
                                                       workspace_dir=tmp_path / ".rtest")
    data = again.get_script_testing_requirements("Preprocess_training")["expected_inputs"]
    assert next(i for i in data if i["name"] == "DATA")["current_path"] == str(Path(moved) / "data")
