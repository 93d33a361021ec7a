"""A catalogue written in the real framework's shape loads whole, and a DAG using part of it plans.

The files under data/catalogue/interfaces are our own, written to cover every key and
shape the public cursus catalogue uses (top level, registry, compute, contract, ports).
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
import yaml

from pipelines import raised_message
from rtest.errors import InterfaceError
from rtest.inputs.interfaces import load_interfaces
from rtest.plan.builder import build_plan, load_pipeline_inputs
from rtest.plan.userspec import parse_input_flags

CATALOGUE = Path(__file__).parent / "data" / "catalogue"

# Every key the real catalogue uses, by where it sits (the list, and the reference's section 4).
CATALOGUE_KEYS = {
    "": {"step_type", "node_type", "registry", "patterns", "compute", "contract", "spec", "variants"},
    "registry": {"sagemaker_step_type", "description", "requires", "config_class"},
    "compute": {"kind", "sdk_class", "framework_version_field", "framework_version_default", "py_version_field",
                "image_uri_field", "retrieve_image", "container_entrypoint", "framework_name", "lock_training_region",
                "network_mode", "kms_network", "subnets_field", "security_group_ids_field", "requires"},
    "contract": {"entry_point", "inputs", "outputs", "arguments", "job_arguments", "env_vars", "framework_requirements",
                 "description", "source_dir", "include_job_type_in_path", "input_source_overrides", "circular_ref_check",
                 "runtime_requires", "skip_inputs", "sink", "computed_env_paths", "output_path_token"},
    "input": {"path", "required", "channels"},
}


def keys_in_catalogue() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {where: set() for where in CATALOGUE_KEYS}
    for path in (CATALOGUE / "interfaces").glob("*.step.yaml"):
        data = yaml.safe_load(path.read_text())
        found[""] |= set(data)
        for section in ("registry", "compute", "contract"):
            found[section] |= set(data.get(section) or {})
        for port in (data.get("contract") or {}).get("inputs", {}).values():
            found["input"] |= set(port)
    return found


def test_the_fixture_catalogue_covers_every_key_of_the_real_one():
    found = keys_in_catalogue()
    assert {where: CATALOGUE_KEYS[where] - found[where] for where in CATALOGUE_KEYS} == {where: set() for where in CATALOGUE_KEYS}


def test_the_whole_catalogue_loads_with_no_errors_and_no_warnings():
    registry = load_interfaces([CATALOGUE / "interfaces"])
    registry.check()
    for step_type in registry.step_types():
        for job_type in [None, *registry.get(step_type).variants]:
            registry.get(step_type, job_type)
    assert len(registry) == 8 and registry.warnings == []


def test_typed_keys_carry_their_values():
    registry = load_interfaces([CATALOGUE / "interfaces"])
    train = registry.get("BoostTraining")
    assert (train.compute.kind, train.compute.sdk_class, train.compute.py_version_field) == ("estimator", "XGBoost", "py_version")
    assert train.contract.inputs["input_path"].channels == ["train", "val", "test"]
    assert train.runnable and train.job_kind == "training"
    pack = registry.get("ModelPackaging")
    assert pack.compute.framework_version_default == "1.0-1"
    assert pack.contract.source_dir is True and pack.contract.input_source_overrides == {"inference_code": "inference_code_source"}
    assert pack.contract.computed_env_paths == {"STAGING_PREFIX": ["packaging", "staging"]}
    prep = registry.get("TabularPrep")
    assert prep.contract.skip_inputs == ["lookup_tables"] and prep.contract.arguments == {"job_type": "which split this run prepares"}
    assert prep.contract.framework_requirements == {"pandas": ">=1.1.0", "scikit-learn": "==1.2.1"}
    tuning = registry.get("GraphTuning")
    assert tuning.compute.image_uri_field == "training_image_uri"
    assert tuning.compute.container_entrypoint == ["python3", "/opt/ml/input/data/code/train.py"]


@pytest.mark.parametrize(
    ("step_type", "job_type"),
    [("BoostModel", "CreateModel"), ("BatchScoring", "Transform"), ("GraphTuning", "Tuning"),
     ("WarehouseDataLoading", "RedshiftDataLoading")],
)
def test_steps_that_run_no_script_load_and_say_why(step_type, job_type):
    interface = load_interfaces([CATALOGUE / "interfaces"]).get(step_type)
    assert not interface.runnable
    assert interface.skip_reason.startswith(f"not a Processing or Training job ({job_type}): ")


def test_a_registration_step_is_an_inference_check():
    interface = load_interfaces([CATALOGUE / "interfaces"]).get("ModelUpload")  # ModelRegistrationProcessing
    assert interface.runnable and interface.job_kind == "inference-check"


def test_null_paths_load_as_none():
    model = load_interfaces([CATALOGUE / "interfaces"]).get("BoostModel")
    assert model.contract.inputs["model_data"].path is None and model.contract.outputs["model_name"].path is None


def test_a_processing_step_with_a_null_path_is_skipped_with_the_port_named(tmp_path):
    (tmp_path / "x.step.yaml").write_text("step_type: X\ncontract:\n  inputs:\n    DATA: {path: null}\n")
    interface = load_interfaces([tmp_path]).get("X")
    assert interface.skip_reason == "its contract gives no container path for DATA (path: null)"


def test_variants_are_merged_for_the_node_job_type():
    registry = load_interfaces([CATALOGUE / "interfaces"])
    base = registry.get("TabularPrep")
    training = registry.get("TabularPrep", "training")
    calibration = registry.get("TabularPrep", "Calibration")  # job types match case-insensitively
    assert base.spec.outputs["processed_data"].aliases == ["input_path", "training_data"]
    assert training.spec.outputs["processed_data"].aliases == ["input_path", "training_data", "train_splits"]
    assert training.spec.outputs["processed_data"].semantic_keywords == ["processed", "splits"]  # deep merge keeps the rest
    assert calibration.spec.dependencies["DATA"].semantic_keywords == ["calibration", "data"]
    assert calibration.spec.dependencies["DATA"].compatible_sources == ["WarehouseDataLoading"]
    assert registry.get("TabularPrep", "tagging") == base  # no such variant: the base


def test_lookup_by_config_class_and_by_separator_insensitive_name():
    registry = load_interfaces([CATALOGUE / "interfaces"])
    assert registry.get("BoostModelStep").step_type == "BoostModel"  # BoostModelStepConfig minus 'Config'
    assert registry.get("boost_training").step_type == "BoostTraining"


def test_a_dag_using_three_of_them_plans():
    inputs = load_pipeline_inputs(CATALOGUE / "dag.json", CATALOGUE / "config.json", [CATALOGUE / "interfaces"], CATALOGUE / "project")
    assert list(inputs.discovery.scripts) == ["TabularPrep_training", "BoostTraining", "ModelPackaging"]
    assert inputs.discovery.skipped["BoostModel"].startswith("not a Processing or Training job (CreateModel)")
    assert inputs.discovery.skipped["WarehouseDataLoading_training"].startswith("not a Processing or Training job (RedshiftDataLoading)")
    user = parse_input_flags([f"TabularPrep_training.DATA={CATALOGUE / 'project' / 'data' / 'sample.csv'}"])
    plan = build_plan(inputs, user)
    assert [w.describe() for w in plan.wires] == [
        "TabularPrep_training.processed_data -> BoostTraining.input_path (alias)",
        "BoostTraining.model_output -> ModelPackaging.model_input (alias)",
    ]
    assert plan.scripts["BoostTraining"].job_kind == "training"
    # LABEL_FIELD is fed by a config-class override in the framework; without the classes it is a visible guess
    guesses = [w for w in plan.warnings if w.node == "TabularPrep_training" and w.subject == "environment.LABEL_FIELD"]
    assert guesses and "label_name" in guesses[0].message


# --- only what the DAG uses is validated, and every problem comes at once --------------------


def broken_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "interfaces"
    shutil.copytree(CATALOGUE / "interfaces", folder)
    prep = folder / "tabular_prep.step.yaml"
    prep.write_text(prep.read_text().replace("  framework_version_default: 1.2-1\n", "  retrieve_image: [not, a, bool]\n"))
    pack = folder / "model_packaging.step.yaml"
    pack.write_text(pack.read_text().replace("      required: true\n", "      required: maybe\n", 1))
    (folder / "graph_tuning.step.yaml").write_text("step_type: GraphTuning\ncontract: [broken\n")  # unused by the DAG
    return folder


def test_problems_of_used_interfaces_come_in_one_error_and_unused_ones_are_warnings(tmp_path):
    folder = broken_copy(tmp_path)
    message = raised_message(InterfaceError, load_pipeline_inputs, CATALOGUE / "dag.json", CATALOGUE / "config.json", [folder], CATALOGUE / "project")
    prep, pack = (folder / "tabular_prep.step.yaml").resolve(), (folder / "model_packaging.step.yaml").resolve()
    assert message == (
        f"2 interface problems: Interface file {prep}: field compute.retrieve_image: Input should be a valid boolean; "
        f"Interface file {pack}: field contract.inputs.model_input.required: Input should be a valid boolean, "
        "unable to interpret input, got 'maybe'."
    )
    assert "graph_tuning" not in message


def test_an_unused_unreadable_file_is_only_a_warning(tmp_path):
    folder = tmp_path / "interfaces"
    shutil.copytree(CATALOGUE / "interfaces", folder)
    broken = folder / "graph_tuning.step.yaml"
    broken.write_text("step_type: GraphTuning\ncontract: [broken\n")
    inputs = load_pipeline_inputs(CATALOGUE / "dag.json", CATALOGUE / "config.json", [folder], CATALOGUE / "project")
    assert len(inputs.discovery.scripts) == 3
    assert [w.file for w in inputs.interfaces.warnings] == [broken.resolve()]
    assert "is not valid YAML" in inputs.interfaces.warnings[0].message


def test_an_unreadable_file_of_a_used_step_type_is_an_error(tmp_path):
    folder = tmp_path / "interfaces"
    shutil.copytree(CATALOGUE / "interfaces", folder)
    (folder / "boost_training.step.yaml").write_text(textwrap.dedent("step_type: BoostTraining\ncontract: [broken\n"))
    message = raised_message(InterfaceError, load_pipeline_inputs, CATALOGUE / "dag.json", CATALOGUE / "config.json", [folder], CATALOGUE / "project")
    assert message.startswith(f"Interface file {(folder / 'boost_training.step.yaml').resolve()} is not valid YAML at line 3")
