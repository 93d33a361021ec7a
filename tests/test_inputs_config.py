"""load_pipeline_config: unwrapping, the shared/specific overlay, field priorities, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines import raised_message
from rtest.errors import ConfigError
from rtest.inputs.config import PipelineConfig, StepConfig, load_pipeline_config, unwrap

DATA = Path(__file__).parent / "data" / "inputs"


def write_config(tmp_path: Path, configuration, metadata=None, name: str = "config.json") -> Path:
    document = {"configuration": configuration}
    if metadata is not None:
        document["metadata"] = metadata
    path = tmp_path / name
    path.write_text(json.dumps(document, indent=2))
    return path


def config_error(path) -> str:
    return raised_message(ConfigError, load_pipeline_config, path)


def step(fields: dict, node: str = "Step", shared: dict | None = None, config_types: dict | None = None) -> StepConfig:
    config = PipelineConfig(
        path=Path("/x/config.json"), shared=shared or {}, specific={node: fields}, config_types=config_types or {}, metadata={}
    )
    found = config.step_config(node)
    assert found is not None
    return found


# --- the bundled-style data file ---------------------------------------------------------


@pytest.fixture(scope="module")
def cursus_config() -> PipelineConfig:
    return load_pipeline_config(DATA / "config_cursus.json")


def test_sections_and_absolute_path(cursus_config):
    assert cursus_config.path == (DATA / "config_cursus.json").resolve()
    assert cursus_config.path.is_absolute()
    assert cursus_config.step_names() == ["DataLoading_training", "Preprocess_training", "Train", "Register", "Custom_calibration"]
    assert cursus_config.shared["framework_version"] == "1.7-1"
    assert cursus_config.metadata["created_at"] == "2025-11-02T20:15:08"


def test_nested_model_types_and_list_wrappers_are_unwrapped(cursus_config):
    loading = cursus_config.step_config("DataLoading_training")
    assert loading.fields["data_sources"] == {
        "start_date": "2025-01-01T00:00:00",
        "data_sources": [
            {"data_source_name": "TRANSACTIONS", "properties": {"table": "tx"}},
            {"data_source_name": "LABELS", "properties": {"table": "labels"}},
        ],
    }
    assert "__model_type__" not in json.dumps(cursus_config.specific)
    assert "__type_info__" not in json.dumps(cursus_config.specific)
    train = cursus_config.step_config("Train")
    assert train.get("hyperparameters") == {"label_name": "is_fraud", "max_depth": 6, "tab_fields": ["a", "b"]}


def test_config_class_from_metadata_then_model_type(cursus_config):
    # metadata.config_types wins over the object's own __model_type__.
    assert cursus_config.step_config("Preprocess_training").config_class == "TabularPreprocessingConfig"
    assert cursus_config.step_config("Preprocess_training").step_type == "TabularPreprocessing"
    # No metadata entry: the __model_type__ of the specific section.
    assert cursus_config.step_config("Register").config_class == "RegisterConfig"
    assert cursus_config.step_config("Register").step_type == "Register"
    assert cursus_config.config_types["Train"] == "TrainConfig"


def test_step_type_from_node_name_without_class(cursus_config):
    custom = cursus_config.step_config("Custom_calibration")
    assert custom.config_class is None
    assert custom.step_type == "Custom"


def test_shared_overlaid_by_specific(cursus_config):
    preprocess = cursus_config.step_config("Preprocess_training")
    assert preprocess.get("region") == "NA"  # from shared
    assert preprocess.get("framework_version") == "1.2-1"  # specific wins over shared 1.7-1
    assert preprocess.get("train_ratio") == 0.7
    assert cursus_config.shared["framework_version"] == "1.7-1", "the overlay must not change shared"


def test_entry_points_and_source_dirs(cursus_config):
    assert cursus_config.step_config("Preprocess_training").entry_point() == ("processing_entry_point", "preprocess.py")
    assert cursus_config.step_config("Preprocess_training").source_dir() == ("processing_source_dir", "dockers/my_model/scripts")
    assert cursus_config.step_config("Train").entry_point() == ("training_entry_point", "train.py")
    assert cursus_config.step_config("Train").source_dir() == ("source_dir", "dockers/my_model")  # from shared
    assert cursus_config.step_config("Register").entry_point() == ("inference_entry_point", "inference_handler.py")
    assert cursus_config.step_config("DataLoading_training").entry_point() is None


def test_unknown_node_has_no_step_config(cursus_config):
    assert cursus_config.step_config("NotAStep") is None


# --- unwrapping rules --------------------------------------------------------------------


def test_unwrap_type_info_variants():
    assert unwrap({"__type_info__": "list", "value": [{"__model_type__": "X", "a": 1}]}) == [{"a": 1}]
    assert unwrap({"__type_info__": "tuple", "value": [1, 2]}) == [1, 2]
    assert unwrap({"__type_info__": "set", "value": ["a", "b"]}) == ["a", "b"]
    assert unwrap({"__type_info__": "dict", "value": {"k": {"__type_info__": "list", "value": [3]}}}) == {"k": [3]}
    assert unwrap({"__type_info__": "datetime", "value": "2025-01-01T00:00:00"}) == "2025-01-01T00:00:00"
    assert unwrap({"__type_info__": "custom", "name": "n"}) == {"name": "n"}
    assert unwrap([{"__model_type__": "A", "inner": {"__model_type__": "B", "x": None}}]) == [{"inner": {"x": None}}]
    assert unwrap("plain") == "plain"


# --- StepConfig rules --------------------------------------------------------------------


def test_entry_point_priority():
    all_fields = {
        "inference_entry_point": "inference.py",
        "script_path": "script.py",
        "training_entry_point": "train.py",
        "processing_entry_point": "process.py",
    }
    assert step(all_fields).entry_point() == ("processing_entry_point", "process.py")
    del all_fields["processing_entry_point"]
    assert step(all_fields).entry_point() == ("training_entry_point", "train.py")
    del all_fields["training_entry_point"]
    assert step(all_fields).entry_point() == ("script_path", "script.py")
    del all_fields["script_path"]
    assert step(all_fields).entry_point() == ("inference_entry_point", "inference.py")


def test_empty_entry_point_is_skipped():
    found = step({"processing_entry_point": "", "training_entry_point": None, "script_path": "  ", "inference_entry_point": "h.py"})
    assert found.entry_point() == ("inference_entry_point", "h.py")
    assert step({"processing_entry_point": ""}).entry_point() is None


def test_source_dir_priority_and_specific_wins_over_shared():
    fields = {
        "portable_source_dir": "portable",
        "source_dir": "src",
        "processing_source_dir": "proc",
        "portable_processing_source_dir": "portable_proc",
    }
    assert step(dict(fields)).source_dir() == ("portable_processing_source_dir", "portable_proc")
    del fields["portable_processing_source_dir"]
    assert step(dict(fields)).source_dir() == ("processing_source_dir", "proc")
    del fields["processing_source_dir"]
    assert step(dict(fields)).source_dir() == ("source_dir", "src")
    del fields["source_dir"]
    assert step(dict(fields)).source_dir() == ("portable_source_dir", "portable")
    assert step({}, shared={"source_dir": "shared_src"}).source_dir() == ("source_dir", "shared_src")
    assert step({"source_dir": "mine"}, shared={"source_dir": "shared_src"}).source_dir() == ("source_dir", "mine")
    assert step({"source_dir": None}, shared={"source_dir": "shared_src"}).source_dir() is None


def test_step_type_derivation():
    assert step({}, node="Preprocess_training", config_types={"Preprocess_training": "PreprocessConfig"}).step_type == "Preprocess"
    assert step({}, node="Thing", config_types={"Thing": "ThingStep"}).step_type == "ThingStep"
    assert step({"job_type": "training"}, node="Preprocess_training").step_type == "Preprocess"
    assert step({"job_type": "Calibration"}, node="Eval_calibration").step_type == "Eval"
    assert step({"job_type": "training"}, node="Preprocess_calibration").step_type == "Preprocess_calibration"
    assert step({}, node="Package").step_type == "Package"
    assert step({}, node="Preprocess_training", shared={"job_type": "training"}).step_type == "Preprocess"


def test_get_and_has():
    found = step({"a": 0, "b": None, "c": "x"})
    assert found.get("a") == 0 and found.has("a")
    assert found.get("b", "default") == "default" and not found.has("b")
    assert found.get("missing") is None and not found.has("missing")
    assert found.node == "Step"


def test_load_from_str_path_and_shared_is_optional(tmp_path):
    path = write_config(tmp_path, {"specific": {"A": {"script_path": "a.py"}}})
    config = load_pipeline_config(str(path))
    assert config.shared == {} and config.metadata == {}
    assert config.step_config("A").fields == {"script_path": "a.py"}


# --- errors, with the exact sentence -----------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "absent.json"
    assert config_error(path) == f"Configuration file not found: {path}"
    assert config_error(str(path)) == f"Configuration file not found: {path}"


def test_invalid_json(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{\n  "configuration": {\n    "shared": {"a": 1,}\n  }\n}\n')
    assert config_error(path) == (
        f"Configuration file {path} is not valid JSON at line 3, column 23: Expecting property name enclosed in double quotes."
    )


def test_missing_configuration_section(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"shared": {}, "specific": {}}')
    assert config_error(path) == (
        f"Configuration file {path} has no 'configuration' section at the top level; "
        'expected {"configuration": {"shared": {...}, "specific": {"<step>": {...}}}}.'
    )


def test_missing_specific_section(tmp_path):
    path = write_config(tmp_path, {"shared": {}})
    assert config_error(path) == (
        f"Configuration file {path} has no 'specific' section under 'configuration'; "
        'expected {"configuration": {"shared": {...}, "specific": {"<step>": {...}}}}.'
    )


def test_top_level_not_an_object(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("[1, 2]")
    assert config_error(path) == (
        f"Configuration file {path} holds a list, not an object; "
        'expected {"configuration": {"shared": {...}, "specific": {"<step>": {...}}}}.'
    )


def test_non_object_sections(tmp_path):
    path = write_config(tmp_path, {"shared": ["x"], "specific": {}})
    assert config_error(path) == f"Configuration file {path}: section 'shared' under 'configuration' is a list, not an object."
    path = write_config(tmp_path, "text")
    assert config_error(path) == f"Configuration file {path}: section 'configuration' at the top level is a str, not an object."
    path = write_config(tmp_path, {"specific": {}}, metadata={"config_types": ["A"]})
    assert config_error(path) == f"Configuration file {path}: section 'config_types' under 'metadata' is a list, not an object."


def test_step_section_not_an_object(tmp_path):
    path = write_config(tmp_path, {"specific": {"Train": 42}})
    assert config_error(path) == (
        f"Configuration file {path}: configuration.specific.Train is an int, not an object; give each step an object of its fields."
    )
