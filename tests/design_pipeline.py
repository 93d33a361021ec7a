"""The bundled example, cut down and renamed so its scripts carry the names the design's code uses.

The design drives the factory with ``"tabular_preprocessing"`` and ``"xgboost_training"``. Here the example's
preprocess.py and train.py get those names (config, interfaces and files alike), the preprocessing input is called
``raw_data`` and gains a ``preprocessing_metrics`` output, so the design's calls meet a real pipeline.
The preprocessing node is named after its script, as the design's pending loop compares pending names to it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from rtest.example import example_dir

NODES = {"DataLoading_training": "DataLoading_training", "Preprocess_training": "tabular_preprocessing",
         "Train": "XGBoostTraining"}  # example node -> node here


def write_design_pipeline(root: Path) -> dict[str, Path]:
    source = example_dir()
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source / "dockers" / "fraud_model", root / "dockers" / "fraud_model",
                    ignore=shutil.ignore_patterns("__pycache__"))
    scripts = root / "dockers" / "fraud_model"
    (scripts / "scripts" / "preprocess.py").rename(scripts / "scripts" / "tabular_preprocessing.py")
    (scripts / "train.py").rename(scripts / "xgboost_training.py")

    config = json.loads((source / "config.json").read_text())
    specific = config["configuration"]["specific"]
    config["configuration"]["specific"] = {new: specific[old] for old, new in NODES.items()}
    types = config["metadata"]["config_types"]
    config["metadata"]["config_types"] = {new: types[old] for old, new in NODES.items()}
    config["configuration"]["specific"]["tabular_preprocessing"]["processing_entry_point"] = "tabular_preprocessing.py"
    config["configuration"]["specific"]["XGBoostTraining"]["training_entry_point"] = "xgboost_training.py"
    (root / "config.json").write_text(json.dumps(config, indent=2))

    interfaces = root / "interfaces"
    interfaces.mkdir()
    shutil.copy(source / "interfaces" / "data_loading.step.yaml", interfaces)
    pre = yaml.safe_load((source / "interfaces" / "preprocess.step.yaml").read_text())
    pre["contract"]["entry_point"] = "tabular_preprocessing.py"
    pre["contract"]["inputs"]["raw_data"] = pre["contract"]["inputs"].pop("DATA")
    pre["contract"]["outputs"]["preprocessing_metrics"] = {"path": "/opt/ml/processing/metrics"}
    pre["spec"]["dependencies"]["raw_data"] = pre["spec"]["dependencies"].pop("DATA")
    (interfaces / "preprocess.step.yaml").write_text(yaml.safe_dump(pre))
    train = yaml.safe_load((source / "interfaces" / "train.step.yaml").read_text())
    train["contract"]["entry_point"] = "xgboost_training.py"
    train["contract"]["env_vars"] = {"required": ["LABEL_FIELD"], "optional": {"ID_FIELD": "id"}}
    (interfaces / "train.step.yaml").write_text(yaml.safe_dump(train))

    dag = {"dag": {"nodes": list(NODES.values()),
                   "edges": [["DataLoading_training", "tabular_preprocessing"],
                             ["tabular_preprocessing", "XGBoostTraining"]]}}
    (root / "dag.json").write_text(json.dumps(dag, indent=2))
    return {"dag": root / "dag.json", "config": root / "config.json", "interfaces": interfaces}
