"""Mistakes that used to pass in silence (issue 16 point 3): each shows a message naming the file and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pipelines import raised_message, write_pipeline
from rtest.cli.main import main
from rtest.errors import InterfaceError, PlanError
from rtest.plan.builder import build_plan, draft_plan, load_pipeline_inputs
from rtest.plan.userspec import load_user_spec, parse_input_flags
from rtest.testing import write_python_pipeline


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    captured = capsys.readouterr()
    return exited.value.code, captured.out, " ".join(captured.err.split())  # rich wraps long lines


def _edit_interface(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def _split_fit(root: Path, *, split_outputs: dict, fit_inputs: dict, interfaces: bool = True) -> dict[str, Path]:
    split = "import os\nos.makedirs('/opt/ml/processing/output/splits', exist_ok=True)\n"
    fit = "print(open('/opt/ml/processing/input/train_data/x').read())\n"
    steps = {"Split": {"script": split, "outputs": split_outputs}, "Fit": {"script": fit, "inputs": fit_inputs}}
    p = write_python_pipeline(root, steps, [("Split", "Fit")])
    if not interfaces:
        for f in p["interfaces"].iterdir():
            f.unlink()
    return p


def test_interface_step_type_that_matches_no_config_class_is_a_warning_naming_the_file(tmp_path, capsys):
    p = write_pipeline(tmp_path)
    _edit_interface(p["interfaces"] / "evaluate.step.yaml", lambda d: d.update(step_type="Evaluation"))
    code, out, _ = _cli(capsys, "discover", "--dag", str(p["dag"]), "--config", str(p["config"]),
                        "--interfaces", str(p["interfaces"]), "--format", "json")
    assert code == 0
    (warning,) = [w for w in json.loads(out)["warnings"] if w["code"] == "interface-step-type-mismatch"]
    assert warning["message"] == (
        "Evaluate: no interface has step_type 'Evaluate' (from its config class EvaluateConfig), so its inputs and "
        f"outputs come from a scan of its script; {p['interfaces'] / 'evaluate.step.yaml'} declares step_type "
        "'Evaluation', which no config class matches. If that file is this step's, set step_type: Evaluate in it "
        "(or registry.config_class: EvaluateConfig).")
    # A name not alike at all, in a small folder of the user's own: every unused file is named.
    _edit_interface(p["interfaces"] / "evaluate.step.yaml", lambda d: d.update(step_type="Metrics"))
    inputs = load_pipeline_inputs(p["dag"], p["config"], [p["interfaces"]])
    (warning,) = [w for w in inputs.discovery.warnings if w.code == "interface-step-type-mismatch"]
    assert f"no config class matches {p['interfaces'] / 'evaluate.step.yaml'} (step_type 'Metrics')" in warning.message


def test_misspelt_sagemaker_step_type_is_an_error_with_did_you_mean(tmp_path, capsys):
    p = write_pipeline(tmp_path)
    path = p["interfaces"] / "evaluate.step.yaml"
    _edit_interface(path, lambda d: d["registry"].update(sagemaker_step_type="Procesing"))
    message = raised_message(InterfaceError, load_pipeline_inputs, p["dag"], p["config"], [p["interfaces"]])
    assert message == (f"interface {path}: registry.sagemaker_step_type 'Procesing' is not a SageMaker step type; "
                       "did you mean 'Processing'? Fix it in that file (as written, node Evaluate would be skipped "
                       "as not a script).")
    code, _, err = _cli(capsys, "discover", "--dag", str(p["dag"]), "--config", str(p["config"]))
    assert code == 2 and "did you mean 'Processing'?" in err
    # A step type that is no typo of a runnable one is skipped as before, with its reason.
    _edit_interface(path, lambda d: d["registry"].update(sagemaker_step_type="Lambda"))
    inputs = load_pipeline_inputs(p["dag"], p["config"], [p["interfaces"]])
    assert inputs.discovery.skipped["Evaluate"].startswith("not a Processing or Training job (Lambda)")


def test_unwired_input_names_the_edge_the_upstream_outputs_and_the_alias_to_add(tmp_path):
    p = _split_fit(tmp_path, split_outputs={"splits": "/opt/ml/processing/output/splits"},
                   fit_inputs={"train_data": "/opt/ml/processing/input/train_data"})
    inputs = load_pipeline_inputs(p["dag"], p["config"], [p["interfaces"]])
    message = raised_message(PlanError, build_plan, inputs)
    assert message.startswith(
        "The plan is incomplete: Fit.train_data (/opt/ml/processing/input/train_data) has no path, and edge "
        "Split -> Fit exists, but no output of Split is named or aliased 'train_data' (its outputs: splits); "
        f"add aliases: [train_data] to one of them under spec.outputs in {p['interfaces'] / 'Split.step.yaml'}.")


def test_schema_warnings_show_in_discover_and_in_the_incomplete_plan_error(tmp_path, capsys):
    p = _split_fit(tmp_path, split_outputs={"splits": "/opt/ml/processing/output/splits"},
                   fit_inputs={"train_data": "/opt/ml/processing/input/train_data"})
    path = p["interfaces"] / "Split.step.yaml"
    _edit_interface(path, lambda d: d["spec"].update(outputs={"splits": {"alises": ["train_data"]}}))
    code, out, _ = _cli(capsys, "discover", "--dag", str(p["dag"]), "--config", str(p["config"]), "--format", "json")
    assert code == 0
    typo = [w["message"] for w in json.loads(out)["warnings"] if "alises" in w["message"]]
    assert typo and "did you mean 'aliases'?" in typo[0] and str(path) in typo[0]
    message = raised_message(PlanError, build_plan, load_pipeline_inputs(p["dag"], p["config"]))
    assert "The plan is incomplete: Fit.train_data" in message
    assert f"Interface warnings that may be the cause: {typo[0]}" in message


def test_script_scan_steps_are_wired_along_dag_edges(tmp_path):
    # Different names: the one output upstream feeds the one unfed input, with a note saying so.
    p = _split_fit(tmp_path / "a", split_outputs={"splits": "/opt/ml/processing/output/splits"},
                   fit_inputs={"train_data": "/opt/ml/processing/input/train_data"}, interfaces=False)
    plan = draft_plan(load_pipeline_inputs(p["dag"], p["config"], [p["interfaces"]]))
    assert [w.describe() for w in plan.wires] == ["Split.splits -> Fit.train_data (edge)"]
    assert any("along the DAG edge Split -> Fit" in note for note in plan.notes)
    # Names alike but for case and separators: wired by name.
    split = tmp_path / "b" / "src" / "Split" / "main.py"
    q = _split_fit(tmp_path / "b", split_outputs={}, fit_inputs={}, interfaces=False)
    split.write_text("import os\nos.makedirs('/opt/ml/processing/output/train-data')\n"
                     "os.makedirs('/opt/ml/processing/output/extra')\n")
    plan = draft_plan(load_pipeline_inputs(q["dag"], q["config"], [q["interfaces"]]))
    assert [w.describe() for w in plan.wires] == ["Split.train-data -> Fit.train_data (name)"]


def test_spec_entries_for_nodes_outside_the_dag_are_a_warning_naming_the_spec(tmp_path):
    p = write_pipeline(tmp_path)
    spec = tmp_path / "team-spec.yaml"
    spec.write_text(yaml.safe_dump({"scripts": {
        "Preprocess_training": {"inputs": {"DATA": str(p["data"])}},
        "Preprocess_calibration": {"inputs": {"DATA": str(p["data"])}},
        "Backtest": {"environment": {"WINDOW": 7}}}}))
    plan = build_plan(load_pipeline_inputs(p["dag"], p["config"], [p["interfaces"]]), load_user_spec(spec))
    (warning,) = [w for w in plan.warnings if w.code == "spec-node-outside-dag"]
    assert warning.message == (f"spec file {spec} has settings for Backtest, which the DAG does not have; they are "
                               f"ignored. Remove them from spec file {spec}, or use the DAG they were written for.")
    # The same node named on the command line (not in the file) is still an error.
    with pytest.raises(PlanError, match="Script 'Stress' not found"):
        build_plan(load_pipeline_inputs(p["dag"], p["config"], [p["interfaces"]]),
                   load_user_spec(spec).merged_with(parse_input_flags([f"Stress.DATA={p['data']}"])))


def test_requirements_shows_what_feeds_each_input_and_says_when_it_copies_the_example(tmp_path, capsys):
    p = write_pipeline(tmp_path / "p")
    base = ["--dag", str(p["dag"]), "--config", str(p["config"]), "--interfaces", str(p["interfaces"])]
    from rich.console import Console

    from rtest.cli import render
    from rtest.factory import InteractiveRuntimeTestingFactory

    factory = InteractiveRuntimeTestingFactory(p["dag"], p["config"], interface_dirs=[p["interfaces"]])
    wide = Console(width=250, record=True)
    render.print_requirements(wide, factory.get_script_testing_requirements("Train"))
    render.print_requirements(wide, factory.get_script_testing_requirements("Preprocess_calibration"))
    text = wide.export_text()
    assert "<- -" not in text
    assert ("/opt/ml/input/data <- output Preprocess_training.processed_data (wired along the DAG edge) "
            "│ wire:Preprocess_training.processed_data") in text
    assert "/opt/ml/processing/input/data <- MISSING: give --input Preprocess_calibration.DATA=PATH" in text
    assert "/opt/ml/processing/input/signature <- nothing (optional)" in text
    code, _, _ = _cli(capsys, "requirements", *base, "Train")
    assert code == 0
    workdir = tmp_path / "wd"
    code, _, err = _cli(capsys, "requirements", "--example", "--workdir", str(workdir), "Train")
    said = (f"Copied the bundled example to {workdir.resolve() / 'example'} and wrote its sample "
            f"data to {workdir.resolve() / 'example-data'}; --workdir puts them elsewhere.")
    assert code == 0 and err.replace(" ", "") == said.replace(" ", "")  # rich may fold a long path mid-word
    code, _, err = _cli(capsys, "requirements", "--example", "--workdir", str(workdir), "Train")
    assert code == 0 and err == ""  # said once, when it made them
