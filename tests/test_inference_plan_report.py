"""The inference check in the plan (which registration nodes get one, and with what) and in the reports."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from rtest.example import example_dir
from rtest.plan.builder import draft_plan, load_pipeline_inputs
from rtest.plan.inference_check import TURNED_OFF, skip_inference_checks
from rtest.plan.model import PipelineTestingSpec
from rtest.report.html import render_report_html
from rtest.report.json_report import read_report_json, write_report_json
from rtest.report.junit import write_junit
from rtest.run.model import InferenceCheckResult, RunReport, SampleResult, StepResult, StepStatus


def _plan(root: Path | None = None) -> PipelineTestingSpec:
    root = root or example_dir()
    return draft_plan(load_pipeline_inputs(str(root / "dag.json"), root / "config.json", [root / "interfaces"]))


def test_the_example_registration_is_planned_as_an_inference_check():
    plan = _plan()
    spec = plan.scripts["Registration"]
    assert spec.job_kind == "inference-check" and "Registration" not in plan.skipped
    assert (spec.framework.value, spec.framework.describe()) == ("xgboost", "config:framework")
    assert spec.image.value == "rtest/sagemaker-xgboost:1.7-1"  # the serving image is the training framework's
    env = spec.env()
    assert env["SAGEMAKER_PROGRAM"] == "inference_handler.py"
    assert env["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    assert env["RTEST_INFERENCE_CONTENT_TYPES"] == "text/csv,application/json"
    assert env["RTEST_INFERENCE_ACCEPT_TYPES"] == "application/json"
    assert json.loads(env["RTEST_INFERENCE_OUTPUTS"]) == [["raw_score", "NUMERIC"], ["calibrated_score", "NUMERIC"]]
    assert spec.environment["RTEST_INFERENCE_OUTPUTS"].describe() == \
        "config:source_model_inference_output_variable_list"
    assert {(w.source_node, w.target_input) for w in plan.wires_into("Registration")} == {
        ("Package", "packaged_model"), ("Payload", "payload_sample")}


def test_a_registration_without_payload_samples_is_skipped_saying_so(example_copy):
    dag = json.loads((example_copy / "dag.json").read_text())
    dag["dag"]["edges"].remove(["Payload", "Registration"])
    (example_copy / "dag.json").write_text(json.dumps(dag))
    plan = _plan(example_copy)
    assert "Registration" not in plan.scripts
    assert plan.skipped["Registration"] == ("no inference check: no upstream step or --input feeds its payload "
                                            "samples (payload_sample)")
    assert not any(w.target_node == "Registration" for w in plan.wires)


def test_skip_inference_check_skips_every_check():
    plan = skip_inference_checks(_plan())
    assert plan.skipped["Registration"] == TURNED_OFF and "Registration" not in plan.scripts
    assert "Package" in plan.scripts and "Payload" in plan.scripts


def _report_with_check(tmp_path: Path) -> RunReport:
    check = InferenceCheckResult(
        handler="inference_handler.py", handler_from="archive", model_loaded=True, load_s=0.4,
        functions={"model_fn": "handler", "input_fn": "handler", "predict_fn": "handler", "output_fn": "handler"},
        samples=[SampleResult(file="payload_application_json.json", content_type="application/json",
                              accept="application/json", status="answered", latency_ms=12.5),
                 SampleResult(file="payload_text_csv.csv", content_type="text/csv", accept="application/json",
                              status="failed", latency_ms=None,
                              failure="sample payload_text_csv.csv (text/csv -> application/json): input_fn raised "
                                      "ValueError: <no csv> (inference_handler.py line 41)")],
        failures=["sample payload_text_csv.csv (text/csv -> application/json): input_fn raised ValueError: <no csv> "
                  "(inference_handler.py line 41)"])
    log = tmp_path / "log.txt"
    log.write_text("[inference-check] ...\n")
    steps = {"Package": StepResult(node="Package", status=StepStatus.SUCCEEDED, exit_code=0, duration_s=1.0),
             "Registration": StepResult(node="Registration", status=StepStatus.FAILED, exit_code=1, duration_s=2.0,
                                        failure_reason="inference check: " + check.failures[0], log_path=str(log),
                                        inference_check=check)}
    return RunReport(run_id="r1", pipeline_success=False, steps=steps, execution_order=["Package", "Registration"])


def test_report_json_carries_the_samples_and_reads_back(tmp_path):
    report = _report_with_check(tmp_path)
    path = write_report_json(report, tmp_path / "report.json")
    step = json.loads(path.read_text())["steps"]["Registration"]
    assert step["kind"] == "inference-check" and step["answered"] == 1 and len(step["samples"]) == 2
    assert step["samples"][0]["latency_ms"] == 12.5 and "input_fn raised ValueError" in step["samples"][1]["failure"]
    assert "kind" not in json.loads(path.read_text())["steps"]["Package"]
    again = read_report_json(path).steps["Registration"].inference_check
    assert again == report.steps["Registration"].inference_check


def test_junit_has_one_case_per_sample(tmp_path):
    root = ET.parse(write_junit(_report_with_check(tmp_path), tmp_path / "junit.xml")).getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(cases) == {"Package", "Registration[payload_application_json.json application/json -> application/json]",
                          "Registration[payload_text_csv.csv text/csv -> application/json]"}
    failed = cases["Registration[payload_text_csv.csv text/csv -> application/json]"].find("failure")
    assert "input_fn raised ValueError: <no csv>" in failed.get("message")
    assert root.get("tests") == "3" and root.get("failures") == "1"


def test_junit_keeps_the_step_case_when_the_model_did_not_load(tmp_path):
    report = _report_with_check(tmp_path)
    check = report.steps["Registration"].inference_check
    check.samples, check.model_loaded, check.failures = [], False, ["model_fn raised OSError: no model"]
    root = ET.parse(write_junit(report, tmp_path / "junit.xml")).getroot()
    assert [c.get("name") for c in root.iter("testcase")] == ["Package", "Registration"]


def test_html_shows_a_table_of_samples(tmp_path):
    page = render_report_html(_report_with_check(tmp_path), _plan())
    assert "<h4>Inference check</h4>" in page and "1/2 samples answered, median 12 ms" in page
    assert "payload_text_csv.csv" in page and "12.5 ms" in page
    assert "&lt;no csv&gt;" in page and "<no csv>" not in page  # the handler's words are escaped


def _edit_registration(example_copy: Path, **fields) -> None:
    config_path = example_copy / "config.json"
    config = json.loads(config_path.read_text())
    registration = config["configuration"]["specific"]["Registration"]
    for name, value in fields.items():
        registration.pop(name) if value is None else registration.__setitem__(name, value)
    config_path.write_text(json.dumps(config))


def test_a_registration_without_a_handler_is_skipped_as_before(example_copy):
    _edit_registration(example_copy, inference_entry_point=None)
    plan = _plan(example_copy)
    assert "Registration" not in plan.scripts and plan.skipped["Registration"].startswith("no entry point")


def test_a_handler_missing_from_disk_skips_the_check_and_plans_the_rest(example_copy):
    _edit_registration(example_copy, inference_entry_point="gone_handler.py")
    plan = _plan(example_copy)
    assert plan.skipped["Registration"].startswith(
        "no inference check: its handler inference_entry_point='gone_handler.py' is not on disk (searched: ")
    assert "Package" in plan.scripts and "Payload" in plan.scripts


def _schema(*pairs: tuple[str, str]) -> dict:
    """cursus's variable_schema, written beside the variable list when it saves a registration config."""
    return {"input": {"variables": []}, "output": {"variables": [{"name": n, "type": t} for n, t in pairs]}}


def test_output_variables_take_the_schemas_order_as_cursus_saves_the_list_sorted(example_copy):
    """cursus writes config.json with sorted keys: the {name: type} list comes back alphabetical, while its
    variable_schema keeps the author's order, the order of a headerless CSV answer's columns (real atoz)."""
    _edit_registration(example_copy, source_model_inference_output_variable_list={
        "calibrated-score": "NUMERIC", "custom-output-label": "TEXT", "legacy-score": "NUMERIC"},
        variable_schema=_schema(("legacy-score", "NUMERIC"), ("calibrated-score", "NUMERIC"),
                                ("custom-output-label", "TEXT")))
    spec = _plan(example_copy).scripts["Registration"]
    assert json.loads(spec.env()["RTEST_INFERENCE_OUTPUTS"]) == [
        ["legacy-score", "NUMERIC"], ["calibrated-score", "NUMERIC"], ["custom-output-label", "TEXT"]]
    assert spec.environment["RTEST_INFERENCE_OUTPUTS"].describe() == (
        "config:source_model_inference_output_variable_list (in variable_schema.output's order)")


def test_a_schema_naming_other_variables_than_the_list_is_ignored(example_copy):
    """The list decides which variables there are; a schema left stale by a hand edit does not order them."""
    _edit_registration(example_copy, variable_schema=_schema(("calibrated_score", "NUMERIC"), ("old", "TEXT")))
    spec = _plan(example_copy).scripts["Registration"]
    assert json.loads(spec.env()["RTEST_INFERENCE_OUTPUTS"]) == [["raw_score", "NUMERIC"],
                                                                 ["calibrated_score", "NUMERIC"]]
    assert spec.environment["RTEST_INFERENCE_OUTPUTS"].describe() == \
        "config:source_model_inference_output_variable_list"
    _edit_registration(example_copy, source_model_inference_output_variable_list=None,
                       variable_schema=_schema(("calibrated_score", "NUMERIC"), ("raw_score", "NUMERIC")))
    spec = _plan(example_copy).scripts["Registration"]  # a schema alone still says what to check
    assert json.loads(spec.env()["RTEST_INFERENCE_OUTPUTS"]) == [["calibrated_score", "NUMERIC"],
                                                                 ["raw_score", "NUMERIC"]]
    assert spec.environment["RTEST_INFERENCE_OUTPUTS"].describe() == "config:variable_schema.output.variables"
