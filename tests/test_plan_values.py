"""Env vars, job arguments and config-fed inputs resolved as the framework resolves them, and the
warnings that make every guess visible. Real pipeline folders; the config classes are a small
framework-shaped package written for these tests (tests/shaped_framework)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pipelines import raised_message
from rtest.cli.main import main
from rtest.errors import PlanError
from rtest.plan.builder import build_plan, draft_plan, load_pipeline_inputs, plan_problems
from rtest.plan.model import Source, format_env_value
from rtest.plan.userspec import UserSpec
from rtest.plan.warnings import name_tokens, plausible_fields


def write(root: Path, steps: dict[str, dict], edges: list[tuple[str, str]] = (), shared: dict | None = None) -> dict:
    """steps[node]: ``contract`` (merged into a processing contract), ``config`` (fields), ``kind``, ``spec``, ``files``."""
    (root / "interfaces").mkdir(parents=True, exist_ok=True)
    specific = {}
    for node, step in steps.items():
        training = step.get("kind") == "training"
        contract = {"entry_point": "main.py", "inputs": {}, "outputs": {"out": {"path": "/opt/ml/processing/output"}}, **step.get("contract", {})}
        iface = {"step_type": node, "registry": {"sagemaker_step_type": "Training" if training else "Processing"},
                 "compute": {"kind": "python"}, "contract": contract, "spec": step.get("spec", {})}
        (root / "interfaces" / f"{node}.step.yaml").write_text(yaml.safe_dump(iface))
        folder = root / "src" / node
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "main.py").write_text("print('hi')\n")
        for rel, text in step.get("files", {}).items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(text)
        entry = "training_entry_point" if training else "processing_entry_point"
        specific[node] = {"__model_type__": f"{node}Config", entry: "main.py", "source_dir": f"src/{node}", **step.get("config", {})}
    config = {"configuration": {"shared": shared or {}, "specific": specific}, "metadata": {}}
    (root / "dag.json").write_text(json.dumps({"nodes": list(steps), "edges": [list(e) for e in edges]}))
    (root / "config.json").write_text(json.dumps(config))
    return {"dag": root / "dag.json", "config": root / "config.json", "interfaces": root / "interfaces", "root": root}


def plan_of(p: dict, user: UserSpec | None = None, **options):
    inputs = load_pipeline_inputs(p["dag"], p["config"], [p["interfaces"]], p["root"], **options)
    return draft_plan(inputs, user)


def codes(plan, node: str | None = None) -> list[str]:
    return [w.code for w in plan.warnings if node is None or w.node == node]


def env_step(optional: dict, required: list | None = None, **config) -> dict:
    return {"contract": {"env_vars": {"required": required or [], "optional": optional}}, "config": config}


# ---- the convention resolver -----------------------------------------------------------------


def test_env_value_comes_from_the_lower_cased_config_field(tmp_path):
    plan = plan_of(write(tmp_path, {"S": env_step({"OUTPUT_FORMAT": "CSV", "MAX_WORKERS": "0"}, output_format="PARQUET")}))
    env = plan.scripts["S"].environment
    assert (env["OUTPUT_FORMAT"].value, env["OUTPUT_FORMAT"].describe()) == ("PARQUET", "config:output_format")
    assert (env["MAX_WORKERS"].value, env["MAX_WORKERS"].describe()) == ("0", "interface:env_vars.optional.MAX_WORKERS")


def test_env_value_falls_back_to_the_hyperparameters_field(tmp_path):
    step = env_step({"LABEL_FIELD": "label"}, hyperparameters={"label_field": "is_fraud", "max_depth": 3})
    env = plan_of(write(tmp_path, {"S": step})).scripts["S"].environment
    assert (env["LABEL_FIELD"].value, env["LABEL_FIELD"].describe()) == ("is_fraud", "config:hyperparameters.label_field")


def test_a_config_field_wins_over_the_hyperparameters(tmp_path):
    step = env_step({"LABEL_FIELD": "label"}, label_field="top", hyperparameters={"label_field": "nested"})
    assert plan_of(write(tmp_path, {"S": step})).scripts["S"].environment["LABEL_FIELD"].value == "top"


@pytest.mark.parametrize(("value", "text"), [
    (False, "false"), (True, "true"), (["a", "b", 3], "a,b,3"), ({"k": 1}, '{"k": 1}'), (0.5, "0.5"), (7, "7"), ("x y", "x y"),
])
def test_values_are_formatted_as_the_framework_formats_them(tmp_path, value, text):
    assert format_env_value(value) == text
    spec = plan_of(write(tmp_path, {"S": env_step({"VALUE": "d"}, value=value)})).scripts["S"]
    assert spec.environment["VALUE"].value == text and spec.env()["VALUE"] == text  # shown as the container gets it


def test_plan_prints_values_exactly_as_the_container_gets_them(tmp_path, capsys):
    p = write(tmp_path, {"S": env_step({"COMPARISON_MODE": "true", "METRICS": ""}, comparison_mode=False, metrics=["auc", "f1"])})
    with pytest.raises(SystemExit) as done:
        main(["plan", "--dag", str(p["dag"]), "--config", str(p["config"]), "--interfaces", str(p["interfaces"]), "--source-root", str(tmp_path)])
    printed = capsys.readouterr().out
    assert done.value.code == 0
    assert "COMPARISON_MODE=false (config:comparison_mode)" in printed and "METRICS=auc,f1" in printed
    assert "False" not in printed


def test_a_name_that_resolves_to_nothing_is_omitted(tmp_path):
    spec = plan_of(write(tmp_path, {"S": env_step({"NO_DEFAULT": None, "WITH_DEFAULT": "d"})})).scripts["S"]
    assert "NO_DEFAULT" not in spec.environment and spec.env() == {"WITH_DEFAULT": "d"}


def test_the_configs_env_map_wins_last(tmp_path):
    step = env_step({"MODE": "a"}, mode="b", env={"MODE": "c", "EXTRA": True})
    env = plan_of(write(tmp_path, {"S": step})).scripts["S"].environment
    assert (env["MODE"].value, env["MODE"].describe(), env["EXTRA"].value) == ("c", "config:env.MODE", "true")


def test_user_env_values_are_formatted_too(tmp_path):
    user = UserSpec.model_validate({"scripts": {"S": {"environment": {"FLAG": False, "LIST": ["a", "b"]}}}})
    spec = plan_of(write(tmp_path, {"S": env_step({"FLAG": "true"})}), user).scripts["S"]
    assert spec.env()["FLAG"] == "false" and spec.env()["LIST"] == "a,b"


# ---- job arguments ------------------------------------------------------------------------------


def test_a_flag_whose_source_field_is_unset_is_omitted_not_an_error(tmp_path):
    args = {"job_arguments": [{"flag": "--job_type", "source": "job_type"}, {"flag": "--verbose"}]}
    p = write(tmp_path, {"Set": {"contract": args, "config": {"job_type": "training"}}, "Unset": {"contract": args}})
    plan = plan_of(p)
    assert plan.scripts["Set"].argv() == ["--job_type", "training", "--verbose"]
    assert plan.scripts["Unset"].argv() == ["--verbose"]
    assert plan_problems(plan) == [] and "required-value-missing" not in codes(plan)


# ---- inputs the config feeds --------------------------------------------------------------------


def test_input_source_overrides_mount_the_configs_resolved_path(tmp_path):
    contract = {"inputs": {"model": {"path": "/opt/ml/processing/input/model", "required": False},
                           "code": {"path": "/opt/ml/processing/input/script", "required": False},
                           "rules": {"path": "/opt/ml/processing/input/rules", "required": False}},
                "input_source_overrides": {"code": "inference_scripts_source", "rules": "resolved_rules_path", "model": "model_dir"}}
    p = write(tmp_path, {"Package": {"contract": contract, "config": {"rules_path": "shared/rules.json", "model_dir": "artifacts"}}},
              shared={"project_root_folder": "proj"})
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "rules.json").write_text("{}")
    (tmp_path / "proj" / "artifacts").mkdir(parents=True)
    inputs = plan_of(p).scripts["Package"].inputs
    # derived attribute: the source folder; resolved_X: field X; a relative path under project_root_folder
    assert inputs["code"].host_path.value == str(tmp_path / "src" / "Package")
    assert inputs["code"].host_path.field == "source_dir (input_source_overrides: inference_scripts_source)"
    assert inputs["rules"].host_path.value == str(tmp_path / "shared" / "rules.json")
    assert inputs["model"].host_path.value == str(tmp_path / "proj" / "artifacts")


def test_an_override_input_that_cannot_resolve_is_unmounted_with_a_warning(tmp_path):
    contract = {"inputs": {"code": {"path": "/opt/ml/processing/input/rules", "required": False}},
                "input_source_overrides": {"code": "resolved_rules_path"}}
    p = write(tmp_path, {"Package": {"contract": contract, "config": {"rules_path": "gone/rules"}}})
    plan = plan_of(p)
    assert plan.scripts["Package"].inputs["code"].host_path is None
    [warning] = [w for w in plan.warnings if w.code == "optional-input-unmounted"]
    assert warning.node == "Package" and "rules_path = 'gone/rules'" in warning.message
    assert "--source-map gone/rules=LOCAL_FOLDER" in warning.message and "--input Package.code=PATH" in warning.message
    # the user supplying it settles the warning
    user = UserSpec.model_validate({"scripts": {"Package": {"inputs": {"code": str(tmp_path)}}}})
    assert "optional-input-unmounted" not in codes(plan_of(p, user))


def test_source_dir_true_feeds_code_folder_inputs_from_the_source_folder(tmp_path):
    contract = {"source_dir": True, "inputs": {"hyper": {"path": "/opt/ml/code/hyperparams", "required": False},
                                               "absent": {"path": "/opt/ml/code/nothing_here", "required": False}}}
    p = write(tmp_path, {"S": {"contract": contract, "files": {"hyperparams/h.json": "{}"}}})
    inputs = plan_of(p).scripts["S"].inputs
    assert inputs["hyper"].host_path.value == str(tmp_path / "src" / "S" / "hyperparams")
    assert inputs["hyper"].host_path.describe() == "interface:contract.source_dir"
    assert inputs["absent"].host_path is None  # not in the folder: the real step does not get it either
    off = write(tmp_path / "off", {"S": {"contract": {**contract, "source_dir": False}, "files": {"hyperparams/h.json": "{}"}}})
    assert plan_of(off).scripts["S"].inputs["hyper"].host_path is None


# ---- the pipeline's own config classes ---------------------------------------------------------------


def classes_pipeline(tmp_path, **eval_config):
    eval_contract = {"job_arguments": [{"flag": "--job_type", "source": "job_type"}],
                     "env_vars": {"required": [], "optional": {"ID_FIELD": "id", "LABEL_FIELD": "label", "COMPARISON_MODE": "true"}}}
    payload_contract = {"env_vars": {"required": [], "optional": {"CONTENT_TYPES": "application/json", "FIELD_DEFAULTS": "{}"}}}
    steps = {
        "Eval": {"contract": eval_contract, "config": {"id_name": "order_id", "label_name": "is_abuse", "job_type": "calibration",
                                                       "comparison_mode": False, **eval_config}},
        "Payload": {"contract": payload_contract, "config": {"model_content_types": ["text/csv", "application/x-npy"]}},
        "Train": {"kind": "training", "contract": {"outputs": {"model": {"path": "/opt/ml/model"}},
                                                   "job_arguments": [{"flag": "--job_type", "source": "job_type"}]},
                  "config": {"hyperparameters": {"label_name": "y", "max_depth": 3}}},
    }
    return write(tmp_path, steps)


def test_config_classes_give_the_deployed_values_and_say_so(tmp_path):
    plan = plan_of(classes_pipeline(tmp_path), config_classes=["shaped_framework"])
    eval_env = plan.scripts["Eval"].environment
    assert eval_env["ID_FIELD"].value == "order_id" and eval_env["ID_FIELD"].describe() == "config-class:EvalConfig"
    assert eval_env["COMPARISON_MODE"].value == "false" and eval_env["COMPARISON_MODE"].source == Source.CONFIG_CLASS
    assert plan.scripts["Eval"].argv() == ["--job_type", "calibration"]
    assert plan.scripts["Eval"].job_arguments[0].value.describe() == "config-class:EvalConfig"
    payload = plan.scripts["Payload"].environment
    assert payload["CONTENT_TYPES"].value == "text/csv,application/x-npy"
    # the class omits FIELD_DEFAULTS (None): the interface default applies, as in the framework's builder
    assert (payload["FIELD_DEFAULTS"].value, payload["FIELD_DEFAULTS"].source) == ("{}", Source.INTERFACE)
    assert plan.scripts["Train"].argv() == []  # job_type unset: the class leaves the flag out
    assert plan.warnings == []  # exact values: nothing is a guess


def test_without_the_classes_the_same_pipeline_warns_about_each_guess(tmp_path):
    plan = plan_of(classes_pipeline(tmp_path))
    eval_env = plan.scripts["Eval"].environment
    assert eval_env["ID_FIELD"].value == "id" and eval_env["ID_FIELD"].source == Source.INTERFACE
    guesses = {(w.node, w.subject): w.message for w in plan.warnings if w.code == "env-default-guess"}
    assert set(guesses) == {("Eval", "environment.ID_FIELD"), ("Eval", "environment.LABEL_FIELD"), ("Payload", "environment.CONTENT_TYPES")}
    assert "id_name = 'order_id'" in guesses[("Eval", "environment.ID_FIELD")]
    assert "model_content_types = ['text/csv', 'application/x-npy']" in guesses[("Payload", "environment.CONTENT_TYPES")]
    assert "scripts.Eval.environment.ID_FIELD" in guesses[("Eval", "environment.ID_FIELD")] and "--config-classes" in guesses[("Eval", "environment.ID_FIELD")]


def test_a_collector_that_takes_no_names_returns_its_whole_env(tmp_path):
    p = write(tmp_path, {"Legacy": env_step({"THRESHOLD": "0.1"}, threshold=0.9)})
    env = plan_of(p, config_classes=["shaped_framework"]).scripts["Legacy"].environment
    assert (env["THRESHOLD"].value, env["EXTRA"].value, env["EXTRA"].describe()) == ("0.9", "legacy", "config-class:LegacyConfig")


def test_an_override_attribute_is_read_from_the_class(tmp_path):
    contract = {"inputs": {"code": {"path": "/opt/ml/processing/input/script", "required": False}},
                "input_source_overrides": {"code": "inference_scripts_source"}}
    p = write(tmp_path, {"Package": {"contract": contract, "config": {"inference_code_dir": "handlers"}}})
    (tmp_path / "handlers").mkdir()
    fed = plan_of(p, config_classes=["shaped_framework"]).scripts["Package"].inputs["code"].host_path
    assert fed.value == str(tmp_path / "handlers") and fed.describe() == "config-class:PackageConfig.inference_scripts_source"


def test_the_module_named_in_the_config_is_found_on_its_own(tmp_path):
    p = classes_pipeline(tmp_path)
    config = json.loads(p["config"].read_text())
    config["configuration"]["specific"]["Eval"]["__model_module__"] = "shaped_framework"
    p["config"].write_text(json.dumps(config))
    plan = plan_of(p)
    assert plan.scripts["Eval"].environment["ID_FIELD"].describe() == "config-class:EvalConfig"
    assert plan.scripts["Payload"].environment["CONTENT_TYPES"].source == Source.INTERFACE  # no module for it


def test_a_class_that_cannot_be_used_is_a_warning_and_the_convention_takes_over(tmp_path):
    p = write(tmp_path, {"Strict": env_step({"MUST_HAVE": "1"}), "Nowhere": env_step({"X": "1"})})
    plan = plan_of(p, config_classes=["shaped_framework"])
    failed = {w.node: w.message for w in plan.warnings if w.code == "config-class-failed"}
    assert "StrictConfig(**config) failed: ValidationError" in failed["Strict"]
    assert "no class NowhereConfig in shaped_framework" in failed["Nowhere"]
    assert plan.scripts["Strict"].environment["MUST_HAVE"].source == Source.INTERFACE


def test_a_module_that_cannot_be_imported_is_a_sentence(tmp_path):
    p = write(tmp_path, {"S": env_step({})})
    message = raised_message(PlanError, lambda: plan_of(p, config_classes=["no_such_framework.configs"]))
    assert message.startswith("--config-classes no_such_framework.configs: no such module in rtest's environment")
    assert "--framework-python PATH" in message


# ---- the other warnings ------------------------------------------------------------------------------


def test_similar_names_are_judged_by_their_telling_words():
    assert name_tokens("CONTENT_TYPES") == {"content"} and name_tokens("source_model_inference_content_types") >= {"content"}
    fields = {"id_name": "order_id", "default_numeric_value": 0.0, "comparison_metrics": "all", "empty": ""}
    assert plausible_fields("ID_FIELD", fields, set()) == ["id_name"]
    assert plausible_fields("COMPARISON_MODE", fields, set()) == []  # one shared word of two is not enough
    assert plausible_fields("FIELD_DEFAULTS", fields, {"default_numeric_value"}) == []  # a field another var took


def test_a_missing_required_value_is_a_warning_naming_how_to_set_it(tmp_path):
    p = write(tmp_path, {"S": env_step({}, required=["LABEL_FIELD"], label_name="y")})
    plan = plan_of(p)
    [warning] = plan.warnings
    assert warning.code == "required-value-missing" and warning.subject == "environment.LABEL_FIELD"
    assert "label_name = 'y'" in warning.message and "scripts.S.environment.LABEL_FIELD" in warning.message
    assert "LABEL_FIELD" not in plan.scripts["S"].env()  # omitted, as the framework omits it
    user = UserSpec.model_validate({"scripts": {"S": {"environment": {"LABEL_FIELD": "y"}}}})
    assert plan_of(p, user).warnings == []


def test_an_optional_input_a_compatible_parent_would_feed_is_a_warning(tmp_path):
    loader = {"step_type": "Loader", "registry": {"sagemaker_step_type": "CradleDataLoading"},
              "contract": {"outputs": {"DATA": {"path": "/opt/ml/processing/output/data"}, "SIGNATURE": {"path": "/opt/ml/processing/output/sig"}}}}
    prep = {"contract": {"inputs": {"DATA": {"path": "/opt/ml/processing/input/data", "required": True},
                                    "SIGNATURE": {"path": "/opt/ml/processing/input/signature", "required": False},
                                    "EXTRA": {"path": "/opt/ml/processing/input/extra", "required": False}}},
            "spec": {"dependencies": {"SIGNATURE": {"required": False, "compatible_sources": ["Loader"]},
                                      "EXTRA": {"required": False, "compatible_sources": ["Loader"]}}}}
    p = write(tmp_path, {"Prep": prep}, edges=[("Load", "Prep")])
    (p["interfaces"] / "loader.step.yaml").write_text(yaml.safe_dump(loader))
    config = json.loads(p["config"].read_text())
    config["configuration"]["specific"]["Load"] = {"__model_type__": "LoaderConfig"}
    p["config"].write_text(json.dumps(config))
    dag = json.loads(p["dag"].read_text())
    p["dag"].write_text(json.dumps({"nodes": ["Load", *dag["nodes"]], "edges": dag["edges"]}))
    plan = plan_of(p)
    [warning] = [w for w in plan.warnings if w.code == "optional-input-unmounted"]
    assert warning.subject == "inputs.SIGNATURE" and "Load" in warning.message  # EXTRA: Load offers no such output
    assert "--input Prep.SIGNATURE=PATH" in warning.message


def test_dag_nodes_without_config_and_config_steps_in_no_dag_are_named_together(tmp_path):
    p = write(tmp_path, {"XGBoostTraining": env_step({})})
    dag = {"nodes": ["LightGBMTraining"], "edges": []}
    p["dag"].write_text(json.dumps(dag))
    plan = plan_of(p)
    [warning] = plan.warnings
    assert warning.code == "dag-config-mismatch" and warning.node == "LightGBMTraining"
    assert "LightGBMTraining has no config" in warning.message and "XGBoostTraining" in warning.message
    assert plan.skipped["LightGBMTraining"].startswith("no config")


# ---- --strict --------------------------------------------------------------------------------------


def test_strict_turns_warnings_into_an_error_listing_them(tmp_path):
    p = write(tmp_path, {"S": env_step({}, required=["LABEL_FIELD"])})
    inputs = load_pipeline_inputs(p["dag"], p["config"], [p["interfaces"]], tmp_path)
    assert build_plan(inputs).warnings  # without --strict: a plan with warnings
    message = raised_message(PlanError, build_plan, inputs, UserSpec(strict=True))
    assert message.startswith("--strict: the plan has 1 warning(s): (1) S: required environment variable LABEL_FIELD")
    clean = write(tmp_path / "clean", {"S": env_step({}, required=["LABEL_FIELD"], label_field="y")})
    build_plan(load_pipeline_inputs(clean["dag"], clean["config"], [clean["interfaces"]], tmp_path / "clean"), UserSpec(strict=True))


@pytest.mark.parametrize("command", [["plan"], ["sandbox", "run"]])
def test_strict_on_the_command_line_exits_2_before_anything_runs(tmp_path, capsys, command):
    p = write(tmp_path, {"S": env_step({}, required=["LABEL_FIELD"])})
    flags = ["--dag", str(p["dag"]), "--config", str(p["config"]), "--interfaces", str(p["interfaces"]), "--source-root", str(tmp_path)]
    with pytest.raises(SystemExit) as done:
        main([*command, *flags, "--strict", "--workdir", str(tmp_path / "w")])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "--strict: the plan has 1 warning(s)" in err and "LABEL_FIELD" in err
    assert not (tmp_path / "w" / "runs").exists()


def test_strict_in_the_spec_file_and_the_factory(tmp_path):
    from rtest import InteractiveRuntimeTestingFactory

    p = write(tmp_path, {"S": env_step({}, required=["LABEL_FIELD"])})
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"strict": True, "pipeline": {"dag": "dag.json", "config": "config.json", "interfaces": ["interfaces"], "source_root": "."}}))
    with pytest.raises(SystemExit) as done:
        main(["plan", "--spec", str(spec)])
    assert done.value.code == 2
    factory = InteractiveRuntimeTestingFactory(p["dag"], p["config"], interface_dirs=[p["interfaces"]], source_root=tmp_path, strict=True)
    assert [w for w in factory.get_plan_warnings() if "LABEL_FIELD" in w]
    with pytest.raises(PlanError, match="--strict"):
        factory.complete_plan()
    relaxed = InteractiveRuntimeTestingFactory(p["dag"], p["config"], interface_dirs=[p["interfaces"]], source_root=tmp_path)
    assert relaxed.complete_plan().warnings


# ---- warnings reach the run: terminal, report.json, report.html, JUnit ------------------------------------


@pytest.mark.docker
def test_a_run_shows_plan_warnings_first_and_keeps_them_in_every_report(tmp_path):
    import subprocess
    import sys
    import xml.etree.ElementTree as ET

    from rtest.testing import write_python_pipeline

    script = "import os, pathlib; pathlib.Path('/opt/ml/processing/output/o/x.txt').write_text(os.environ.get('LABEL_FIELD', '-'))"
    p = write_python_pipeline(tmp_path, {"S": {"script": script, "outputs": {"o": "/opt/ml/processing/output/o"},
                                               "env": {"required": ["LABEL_FIELD"], "optional": {}}, "config": {"label_name": "y"}}}, [])
    junit = tmp_path / "junit.xml"
    done = subprocess.run([sys.executable, "-m", "rtest.cli.main", "sandbox", "run", "--dag", str(p["dag"]), "--config", str(p["config"]),
                           "--interfaces", str(p["interfaces"]), "--source-root", str(tmp_path), "--workdir", str(tmp_path / "w"),
                           "--junit", str(junit)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert lines[0].startswith("warning: S: required environment variable LABEL_FIELD")  # before anything runs
    [run] = (tmp_path / "w" / "runs").iterdir()
    report = json.loads((run / "report.json").read_text())
    assert [(w["node"], w["code"], w["subject"]) for w in report["warnings"]] == [("S", "required-value-missing", "environment.LABEL_FIELD")]
    assert "Plan warnings (1)" in (run / "report.html").read_text()
    root = ET.parse(junit).getroot()
    assert "required environment variable LABEL_FIELD" in root.find("testsuite/system-out").text
    assert "LABEL_FIELD" in root.find("testsuite/testcase[@name='S']/system-out").text
