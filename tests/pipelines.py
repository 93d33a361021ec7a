"""Builders of small, real pipeline folders (DAG, config, interfaces, scripts) for tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rtest.testing import write_python_pipeline  # noqa: F401 - re-exported for the tests
from rtest.yamltext import dump_yaml

PREPROCESS_INTERFACE = {
    "step_type": "Preprocess",
    "registry": {"sagemaker_step_type": "Processing"},
    "compute": {"kind": "sklearn", "framework_version_field": "processing_framework_version"},
    "contract": {
        "entry_point": "preprocess.py",
        "inputs": {
            "DATA": {"path": "/opt/ml/processing/input/data", "required": True},
            "SIGNATURE": {"path": "/opt/ml/processing/input/signature", "required": False},
        },
        "outputs": {"processed_data": {"path": "/opt/ml/processing/output"}},
        "job_arguments": [{"flag": "--job_type", "source": "job_type"}],
        "env_vars": {"required": ["LABEL_FIELD"], "optional": {"TRAIN_RATIO": "0.7", "OUTPUT_FORMAT": "CSV"}},
    },
    "spec": {
        "dependencies": {"DATA": {"required": True, "compatible_sources": ["DataLoading"], "semantic_keywords": ["data", "raw"]}},
        "outputs": {"processed_data": {"aliases": ["input_path", "training_data"], "semantic_keywords": ["processed"]}},
    },
}

TRAIN_INTERFACE = {
    "step_type": "Train",
    "registry": {"sagemaker_step_type": "Training"},
    "compute": {"kind": "xgboost", "framework_version_field": "framework_version"},
    "contract": {
        "entry_point": "train.py",
        "inputs": {"input_path": {"path": "/opt/ml/input/data", "required": True}},
        "outputs": {"model_output": {"path": "/opt/ml/model"}},
        "env_vars": {"required": [], "optional": {}},
    },
    "spec": {
        "dependencies": {"input_path": {"required": True, "compatible_sources": ["Preprocess"], "semantic_keywords": ["processed"]}},
        "outputs": {"model_output": {"aliases": ["model_input"], "semantic_keywords": ["model"]}},
    },
}

EVAL_INTERFACE = {
    "step_type": "Evaluate",
    "registry": {"sagemaker_step_type": "Processing"},
    "compute": {"kind": "python"},
    "contract": {
        "entry_point": "evaluate.py",
        "inputs": {
            "model_input": {"path": "/opt/ml/processing/input/model", "required": True},
            "baseline": {"path": "/opt/ml/processing/input/baseline", "required": False},
        },
        "outputs": {"metrics": {"path": "/opt/ml/processing/output/metrics"}},
    },
    "spec": {
        "dependencies": {
            "model_input": {"required": True, "compatible_sources": ["Train"], "semantic_keywords": ["model"]},
            "baseline": {"required": False, "compatible_sources": ["Train"], "semantic_keywords": ["baseline", "reference", "model"]},
        },
        "outputs": {"metrics": {"semantic_keywords": ["metrics"]}},
    },
}

DATALOAD_INTERFACE = {"step_type": "DataLoading", "registry": {"sagemaker_step_type": "DataLoad"}}
REGISTER_INTERFACE = {"step_type": "Register", "registry": {"sagemaker_step_type": "RegisterModel"}}


def write_pipeline(root: Path, *, extra_specific: dict | None = None, drop_scripts: tuple[str, ...] = ()) -> dict[str, Path]:
    """A 6-node pipeline: DataLoading -> Preprocess_training -> Train -> Evaluate -> Register, plus Preprocess_calibration."""
    nodes = ["DataLoading_training", "Preprocess_training", "Preprocess_calibration", "Train", "Evaluate", "Register"]
    edges = [["DataLoading_training", "Preprocess_training"], ["Preprocess_training", "Train"], ["Train", "Evaluate"], ["Evaluate", "Register"]]
    specific = {
        "DataLoading_training": {"__model_type__": "DataLoadingConfig", "job_type": "training"},
        "Preprocess_training": {"__model_type__": "PreprocessConfig", "job_type": "training", "processing_entry_point": "preprocess.py",
                                "processing_source_dir": "code/scripts", "processing_framework_version": "1.2-1",
                                "processing_instance_type_small": "ml.m5.large", "train_ratio": 0.8},
        "Preprocess_calibration": {"__model_type__": "PreprocessConfig", "job_type": "calibration", "processing_entry_point": "preprocess.py",
                                   "processing_source_dir": "code/scripts", "processing_framework_version": "1.2-1"},
        "Train": {"__model_type__": "TrainConfig", "training_entry_point": "train.py", "source_dir": "code",
                  "training_instance_type": "ml.m5.2xlarge",
                  "hyperparameters": {"__model_type__": "ModelHyperparameters", "label_name": "is_fraud", "max_depth": 6,
                                      "fields": {"__type_info__": "list", "value": ["a", "b"]}}},
        "Evaluate": {"__model_type__": "EvaluateConfig", "processing_entry_point": "evaluate.py", "processing_source_dir": "code/scripts"},
        "Register": {"__model_type__": "RegisterConfig", "inference_entry_point": "inference_handler.py", "source_dir": "code"},
    }
    for node, fields in (extra_specific or {}).items():
        specific.setdefault(node, {}).update(fields)
    config = {
        "configuration": {"shared": {"framework_version": "1.7-1", "py_version": "py3", "label_name": "is_fraud",
                                     "label_field": "is_fraud", "region": "NA"},
                          "specific": specific},
        "metadata": {"config_types": {n: c["__model_type__"] for n, c in specific.items() if "__model_type__" in c}},
    }
    (root / "interfaces").mkdir(parents=True, exist_ok=True)
    for iface in (PREPROCESS_INTERFACE, TRAIN_INTERFACE, EVAL_INTERFACE, DATALOAD_INTERFACE, REGISTER_INTERFACE):
        (root / "interfaces" / f"{iface['step_type'].lower()}.step.yaml").write_text(dump_yaml(iface))
    scripts = root / "code" / "scripts"
    scripts.mkdir(parents=True, exist_ok=True)
    files = {scripts / "preprocess.py": "print('pre')\n", root / "code" / "train.py": "print('train')\n",
             scripts / "evaluate.py": "print('eval')\n", root / "code" / "inference_handler.py": "def model_fn(d): pass\n"}
    for path, text in files.items():
        if path.name not in drop_scripts:
            path.write_text(text)
    (root / "dag.json").write_text(json.dumps({"nodes": nodes, "edges": edges}))
    (root / "config.json").write_text(json.dumps(config, indent=2))
    data = root / "data"
    data.mkdir(exist_ok=True)
    (data / "train.csv").write_text("a,b,is_fraud\n1,2,0\n")
    return {"dag": root / "dag.json", "config": root / "config.json", "interfaces": root / "interfaces", "data": data}



def raised_message(error_type: type, call, *args) -> str:
    """The one sentence a user sees when ``call(*args)`` fails, checked to be an RtestError."""
    from rtest.errors import RtestError

    with pytest.raises(error_type) as caught:
        call(*args)
    assert isinstance(caught.value, RtestError)
    return str(caught.value)
