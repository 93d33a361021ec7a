#!/usr/bin/env python3
"""XGBoost training entry point for the SageMaker XGBoost framework container (script mode).

Hyperparameters come from /opt/ml/input/config/hyperparameters.json (every
value a JSON-encoded string) and from ``--key value`` arguments, which the
training toolkit passes and which win. Channels: train (required), val, test.
The model goes to SM_MODEL_DIR as ``xgboost-model`` plus ``feature_columns.json``
(feature order and categorical risk tables); metrics go to SM_OUTPUT_DATA_DIR.
"""
from __future__ import annotations

import argparse
import ast
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

HYPERPARAMETERS_JSON = "/opt/ml/input/config/hyperparameters.json"
DEFAULTS = {"max_depth": 6, "eta": 0.3, "num_round": 100, "min_child_weight": 1, "id_name": None}
FAILURE_FILE = "/opt/ml/output/failure"

logger = logging.getLogger("train")


def decode(value):
    """A hyperparameter as SageMaker delivers it (JSON text, a Python repr, or plain text)."""
    if not isinstance(value, str):
        return value
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(value)
        except (ValueError, SyntaxError):
            continue
    return value


def as_list(value) -> list:
    value = decode(value)
    if value is None:
        return []
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return list(value)


def load_hyperparameters(argv: list[str]) -> dict:
    hps = dict(DEFAULTS)
    path = Path(HYPERPARAMETERS_JSON)
    if path.is_file():
        hps.update({key: decode(text) for key, text in json.loads(path.read_text()).items()})
    parser = argparse.ArgumentParser(description="XGBoost fraud model training")
    for key in ("label_name", "id_name", "max_depth", "eta", "num_round", "min_child_weight",
                "full_field_list", "tab_field_list", "cat_field_list"):
        parser.add_argument(f"--{key}", type=str, default=None)
    known, unknown = parser.parse_known_args(argv)
    if unknown:
        logger.info("Ignoring arguments this script does not use: %s", unknown)
    hps.update({key: decode(text) for key, text in vars(known).items() if text is not None})
    if not hps.get("label_name"):
        raise ValueError("Hyperparameter label_name is required")
    return hps


def feature_lists(hps: dict, train: pd.DataFrame) -> tuple[list[str], list[str]]:
    columns = list(train.columns)
    numeric, categorical = as_list(hps.get("tab_field_list")), as_list(hps.get("cat_field_list"))
    if not numeric and not categorical:
        # No explicit lists: every field but label and id, text columns treated as categorical.
        skip = {hps["label_name"], hps.get("id_name")}
        fields = [c for c in as_list(hps.get("full_field_list")) or columns if c not in skip]
        categorical = [c for c in fields if c in columns and train[c].dtype == object]
        numeric = [c for c in fields if c not in categorical]
    missing = [c for c in numeric + categorical if c not in columns]
    if missing:
        raise ValueError(f"Feature columns {missing} are not in the training data columns {columns}")
    return numeric, categorical


def channel_dir(name: str) -> Path:
    return Path(os.environ.get(f"SM_CHANNEL_{name.upper()}", f"/opt/ml/input/data/{name}"))


def read_channel(name: str, required: bool) -> pd.DataFrame | None:
    folder = channel_dir(name)
    files = (
        sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".csv", ".tsv")) if folder.is_dir() else []
    )
    if not files:
        if required:
            raise FileNotFoundError(f"Channel '{name}' has no .csv/.tsv files at {folder}")
        logger.info("Channel %s is empty or absent; skipping it", name)
        return None
    frames = [pd.read_csv(p, sep="\t" if p.suffix == ".tsv" else ",") for p in files]
    frame = pd.concat(frames, ignore_index=True)
    logger.info("Channel %s: %d rows from %d file(s)", name, len(frame), len(files))
    return frame


def risk_tables(train: pd.DataFrame, categorical: list[str], label: str) -> dict:
    """Smoothed fraud rate per category: a numeric encoding that inference can reproduce."""
    prior = float(train[label].mean())
    tables = {}
    for column in categorical:
        keys = train[column].astype(str)
        stats = train.groupby(keys)[label].agg(["sum", "count"])
        rates = (stats["sum"] + 10 * prior) / (stats["count"] + 10)
        tables[column] = {"default": prior, "bins": {str(k): float(v) for k, v in rates.items()}}
    return tables


def to_matrix(frame: pd.DataFrame, numeric: list[str], tables: dict) -> np.ndarray:
    columns = [pd.to_numeric(frame[c], errors="coerce").astype(float).values for c in numeric]
    for column, table in tables.items():
        mapped = [table["bins"].get(str(v), table["default"]) for v in frame[column].values]
        columns.append(np.asarray(mapped, dtype=float))
    return np.column_stack(columns)


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC by ranks (ties averaged); NaN when only one class is present."""
    labels = np.asarray(labels, dtype=int)
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=float)
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    return float((ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def train(hps: dict, model_dir: Path, output_dir: Path) -> dict:
    label = hps["label_name"]
    frames = {
        "train": read_channel("train", True),
        "val": read_channel("val", False),
        "test": read_channel("test", False),
    }
    numeric, categorical = feature_lists(hps, frames["train"])
    tables = risk_tables(frames["train"], categorical, label)
    features = numeric + categorical
    matrices = {
        name: xgb.DMatrix(to_matrix(frame, numeric, tables), label=frame[label].values, feature_names=features)
        for name, frame in frames.items() if frame is not None
    }
    params = {"objective": "binary:logistic", "eval_metric": "auc", "max_depth": int(hps["max_depth"]),
              "eta": float(hps["eta"]), "min_child_weight": float(hps["min_child_weight"]), "seed": 0}
    logger.info("Training %d rounds with %s on %d features", int(hps["num_round"]), params, len(features))
    booster = xgb.train(params, matrices["train"], num_boost_round=int(hps["num_round"]),
                        evals=[(m, n) for n, m in matrices.items()], verbose_eval=5)

    model_dir.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(model_dir / "xgboost-model"))
    metadata = {"label_name": label, "features": features, "numeric_features": numeric,
                "categorical_features": categorical, "risk_tables": tables}
    (model_dir / "feature_columns.json").write_text(json.dumps(metadata, indent=2, sort_keys=True))
    (model_dir / "hyperparameters.json").write_text(json.dumps(hps, indent=2, sort_keys=True, default=str))

    metrics = {name: {"auc": auc(frames[name][label].values, booster.predict(m)), "rows": int(m.num_row())}
               for name, m in matrices.items()}
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    logger.info("Metrics: %s", metrics)
    return metrics


def write_failure(exc: BaseException) -> None:
    """SageMaker shows /opt/ml/output/failure as the job's FailureReason."""
    try:
        Path(FAILURE_FILE).parent.mkdir(parents=True, exist_ok=True)
        Path(FAILURE_FILE).write_text(f"{type(exc).__name__}: {exc}"[:1024])
    except OSError:
        logger.warning("Could not write %s", FAILURE_FILE)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        train(load_hyperparameters(sys.argv[1:]),
              Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model")),
              Path(os.environ.get("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data")))
    except Exception as exc:
        logger.exception("Training failed")
        write_failure(exc)
        sys.exit(1)
