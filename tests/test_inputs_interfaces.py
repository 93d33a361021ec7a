"""load_interfaces: the interface model, the registry, and the exact sentence for every mistake."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from pipelines import raised_message
from rtest.errors import InterfaceError
from rtest.inputs.interfaces import InterfaceRegistry, StepInterface, load_interfaces

DATA = Path(__file__).parent / "data" / "inputs" / "interfaces"

MINIMAL = """\
step_type: {step_type}
registry:
  sagemaker_step_type: Processing
contract:
  inputs:
    DATA: {{path: /opt/ml/processing/input/data}}
  outputs:
    out: {{path: /opt/ml/processing/output}}
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def interface_error(dirs) -> str:
    """Loading never fails on a file's content; checking every file does."""
    registry = load_interfaces(dirs)
    return raised_message(InterfaceError, registry.check)


# --- happy paths -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def registry() -> InterfaceRegistry:
    return load_interfaces([DATA])


def test_full_interface_from_data_folder(registry):
    preprocess = registry.get("Preprocess")
    assert isinstance(preprocess, StepInterface)
    assert preprocess.registry.sagemaker_step_type == "Processing"
    assert preprocess.compute.kind == "sklearn"
    assert preprocess.compute.framework_version_field == "processing_framework_version"
    contract = preprocess.contract
    assert contract.entry_point == "preprocess.py"
    assert contract.inputs["DATA"].path == "/opt/ml/processing/input/data" and contract.inputs["DATA"].required
    assert contract.inputs["SIGNATURE"].required is False
    assert contract.outputs["processed_data"].path == "/opt/ml/processing/output"
    assert [(a.flag, a.source, a.default, a.required) for a in contract.job_arguments] == [
        ("--job_type", "job_type", None, True),
        ("--mode", None, "fast", False),
    ]
    assert contract.env_vars.required == ["LABEL_FIELD"]
    # YAML numbers and booleans arrive as text; null stays "no default".
    assert contract.env_vars.optional == {"TRAIN_RATIO": "0.7", "NUM_BINS": "20", "STRICT": "true", "OUTPUT_FORMAT": "CSV", "EXTRA": None}
    dependency = preprocess.spec.dependencies["DATA"]
    assert dependency.required and dependency.compatible_sources == ["DataLoading"]
    assert dependency.semantic_keywords == ["data", "raw"] and dependency.aliases == ["raw_data"]
    assert preprocess.spec.outputs["processed_data"].aliases == ["input_path", "training_data"]
    assert preprocess.max_runtime_in_seconds == 3600
    assert preprocess.description == "Splits raw data."
    assert preprocess.runs_script and preprocess.job_kind == "processing"


def test_training_interface_with_fixed_version_and_json_file(registry):
    train = registry.get("Train")
    assert train.job_kind == "training" and train.runs_script
    assert train.compute.kind == "xgboost"
    assert train.compute.framework_version == "1.7"  # a YAML number, kept as text
    assert train.compute.framework_version_field is None
    assert train.contract.job_arguments == [] and train.contract.env_vars.optional == {}
    evaluate = registry.get("Evaluate")  # from a .json file
    assert evaluate.contract.inputs["model"].path == "/opt/ml/processing/input/model"
    assert evaluate.spec is None


def test_non_script_steps(registry):
    loading = registry.get("DataLoading")
    assert loading.contract is None and not loading.runs_script
    assert loading.registry.sagemaker_step_type == "CradleDataLoading"
    assert loading.compute.kind == "python"  # defaults
    assert loading.spec.dependencies == {} and list(loading.spec.outputs) == ["DATA"]
    register = registry.get("Registration")
    # RegisterModel runs no user script; rtest runs its inference check there (the plan skips it without payloads)
    assert register.contract is not None and register.runs_script
    assert register.job_kind == "inference-check"


def test_registry_lookup_and_sources(registry):
    assert registry.step_types() == ["DataLoading", "Evaluate", "Preprocess", "Registration", "Train"]
    assert registry.get("preprocess") is registry.get("Preprocess")
    assert registry.get("Unknown") is None
    assert registry.source_of("Preprocess") == (DATA / "preprocess.step.yaml").resolve()
    assert registry.source_of("train") == (DATA / "train.yml").resolve()
    assert "PREPROCESS" in registry and "Nope" not in registry
    assert len(registry) == 5
    with pytest.raises(KeyError):
        registry.source_of("Nope")


def test_exact_match_wins_over_case_insensitive(tmp_path):
    write(tmp_path / "a", "x.yaml", MINIMAL.format(step_type="preprocess"))
    write(tmp_path / "b", "y.yaml", MINIMAL.format(step_type="Preprocess"))
    registry = load_interfaces([tmp_path / "a", str(tmp_path / "b")])
    assert registry.source_of("Preprocess").name == "y.yaml"
    assert registry.source_of("preprocess").name == "x.yaml"


def test_extra_keys_ignored_outside_contract_and_nulls_mean_default(tmp_path):
    write(
        tmp_path,
        "p.step.yaml",
        """\
        step_type: P
        owner: team-a
        registry: {sagemaker_step_type: processing, builder: X}
        compute: {kind: python, note: any}
        contract:
          inputs:
          outputs:
            out: /opt/ml/processing/output
          job_arguments:
          env_vars:
        spec:
          dependencies:
          outputs: {out: {aliases: [o], priority: 1}}
        """,
    )
    found = load_interfaces([tmp_path]).get("P")
    assert found.contract.inputs == {} and found.contract.job_arguments == []
    assert found.contract.outputs["out"].path == "/opt/ml/processing/output"  # bare string shorthand
    assert found.contract.env_vars.required == [] and found.contract.env_vars.optional == {}
    assert found.spec.dependencies == {}
    assert found.runs_script  # step type matched case-insensitively


def test_empty_folder_list_and_empty_folder(tmp_path):
    assert len(load_interfaces([])) == 0
    assert load_interfaces([tmp_path]).step_types() == []


def test_single_file_may_be_given(tmp_path):
    path = write(tmp_path, "one.step.yaml", MINIMAL.format(step_type="One"))
    assert load_interfaces([path]).step_types() == ["One"]


def test_bundled_example_interfaces_load():
    from rtest.example import example_dir

    registry = load_interfaces([Path(example_dir()) / "interfaces"])
    assert registry.get("Train").job_kind == "training"
    assert registry.get("Registration").job_kind == "inference-check"


# --- errors, with the exact sentence -----------------------------------------------------


def test_missing_required_field_names_file_and_field(tmp_path):
    path = write(
        tmp_path,
        "preprocess.step.yaml",
        """\
        step_type: Preprocess
        contract:
          inputs:
            DATA: {required: true}
        """,
    )
    assert interface_error([tmp_path]) == f"Interface file {path}: field contract.inputs.DATA.path: Field required."


def test_typo_inside_contract_is_a_warning_naming_file_and_key(tmp_path):
    path = write(
        tmp_path,
        "preprocess.step.yaml",
        """\
        step_type: Preprocess
        contract:
          input:
            DATA: {path: /opt/ml/processing/input/data}
        """,
    )
    registry = load_interfaces([tmp_path])
    registry.check()  # no error
    assert registry.get("Preprocess").contract.inputs == {}
    assert [(w.file, w.key) for w in registry.warnings] == [(path.resolve(), "contract.input")]
    assert registry.warnings[0].message == (
        f"Interface file {path.resolve()}: key contract.input is not part of the interface schema "
        "(did you mean 'inputs'?); rtest ignores it"
    )


def test_typos_in_nested_declarations_are_warnings(tmp_path):
    path = write(
        tmp_path,
        "p.yaml",
        """\
        step_type: P
        colour: blue
        contract:
          inputs:
            DATA: {path: /in, requird: false}
          job_arguments:
            - {flag: --x, sauce: job_type}
        """,
    ).resolve()
    registry = load_interfaces([tmp_path])
    registry.check(["P"])
    messages = [w.message for w in registry.warnings]
    assert messages == [
        f"Interface file {path}: key colour is not part of the interface schema; rtest ignores it",
        f"Interface file {path}: key contract.inputs.DATA.requird is not part of the interface schema (did you mean 'required'?); rtest ignores it",
        f"Interface file {path}: key contract.job_arguments.0.sauce is not part of the interface schema (did you mean 'source'?); rtest ignores it",
    ]
    registry.check(["P"])
    assert len(registry.warnings) == 3  # validated once, warned once


def test_wrong_types_are_named_with_the_value(tmp_path):
    path = write(tmp_path, "p.yaml", "step_type: P\nmax_runtime_in_seconds: soon\n")
    assert interface_error([tmp_path]) == (
        f"Interface file {path}: field max_runtime_in_seconds: Input should be a valid integer, "
        "unable to parse string as an integer, got 'soon'."
    )


def test_missing_step_type(tmp_path):
    path = write(tmp_path, "p.yaml", "registry: {sagemaker_step_type: Processing}\n")
    assert interface_error([tmp_path]) == f"Interface file {path}: field step_type: Field required."


def test_malformed_yaml_names_line_and_column(tmp_path):
    path = write(tmp_path, "p.step.yaml", "step_type: P\ncontract:\n  inputs: [a, b\n")
    message = interface_error([tmp_path])
    assert message.startswith(f"Interface file {path} is not valid YAML at line 4, column 1: ")
    assert message.endswith(".")


def test_malformed_yaml_mapping_error(tmp_path):
    path = write(tmp_path, "p.step.yaml", "step_type: P\nregistry: sagemaker_step_type: Processing\n")
    # libyaml's words ("in this context"); PyYAML's pure-Python parser says "here"
    assert interface_error([tmp_path]) in {
        f"Interface file {path} is not valid YAML at line 2, column 30: mapping values are not allowed {where}."
        for where in ("in this context", "here")
    }


def test_malformed_json(tmp_path):
    path = tmp_path / "p.json"
    path.write_text('{"step_type": "P",\n "contract": }')
    assert interface_error([tmp_path]) == f"Interface file {path} is not valid JSON at line 2, column 14: Expecting value."


def test_not_a_mapping(tmp_path):
    path = write(tmp_path, "p.yaml", "- step_type: P\n")
    assert interface_error([tmp_path]) == (
        f"Interface file {path} is a list; it must be a mapping with step_type, registry, contract and spec."
    )
    path.write_text("")
    assert interface_error([tmp_path]) == (
        f"Interface file {path} is empty; it must be a mapping with step_type, registry, contract and spec."
    )


def test_missing_folder(tmp_path):
    folder = tmp_path / "nowhere"
    assert raised_message(InterfaceError, load_interfaces, [folder]) == (
        f"Interface folder {folder} does not exist; pass the folder that holds the *.step.yaml files."
    )


def test_duplicate_step_type_names_both_files(tmp_path):
    first = write(tmp_path / "a", "one.yaml", MINIMAL.format(step_type="Preprocess"))
    second = write(tmp_path / "b", "two.step.yaml", MINIMAL.format(step_type="Preprocess"))
    assert interface_error([tmp_path / "a", tmp_path / "b"]) == (
        f"Interface files {first.resolve()} and {second.resolve()} both declare step_type 'Preprocess'; "
        "keep one of them or rename the step_type."
    )


def test_duplicate_within_one_folder(tmp_path):
    write(tmp_path, "a.json", json.dumps({"step_type": "X"}))
    write(tmp_path, "b.yml", "step_type: X\n")
    message = interface_error([tmp_path])
    assert message == (
        f"Interface files {(tmp_path / 'a.json').resolve()} and {(tmp_path / 'b.yml').resolve()} both declare "
        "step_type 'X'; keep one of them or rename the step_type."
    )
