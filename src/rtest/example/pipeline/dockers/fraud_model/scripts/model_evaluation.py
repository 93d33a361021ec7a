#!/usr/bin/env python3
"""Score held-out data with the trained XGBoost model and report metrics.

SageMaker Processing contract:
  input  /opt/ml/processing/input/model      model.tar.gz from training (or its unpacked files)
  input  /opt/ml/processing/input/eval_data  CSV/TSV parts, possibly in a <job_type>/ sub-folder
  output /opt/ml/processing/output/eval      eval_predictions.csv (id, label, prob_class_0, prob_class_1)
  output /opt/ml/processing/output/metrics   metrics.json
  env    LABEL_FIELD (required), ID_FIELD
  args   --job_type
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

MODEL_DIR = "/opt/ml/processing/input/model"
EVAL_DATA_DIR = "/opt/ml/processing/input/eval_data"
EVAL_OUTPUT_DIR = "/opt/ml/processing/output/eval"
METRICS_OUTPUT_DIR = "/opt/ml/processing/output/metrics"

logger = logging.getLogger("model_evaluation")


def safe_extract(archive: Path, target: Path) -> None:
    with tarfile.open(archive, "r:*") as tar:
        for member in tar.getmembers():
            if member.name.startswith("/") or ".." in Path(member.name).parts or member.issym() or member.islnk():
                raise ValueError(f"Refusing unsafe member {member.name!r} in {archive}")
        tar.extractall(target)


def locate_model(model_dir: Path, scratch: Path) -> Path:
    """The folder holding xgboost-model: the input itself, or model.tar.gz unpacked."""
    if (model_dir / "xgboost-model").is_file():
        return model_dir
    archives = sorted(model_dir.rglob("*.tar.gz"))
    if not archives:
        raise FileNotFoundError(f"Neither xgboost-model nor a model.tar.gz under {model_dir}")
    logger.info("Extracting %s", archives[0])
    safe_extract(archives[0], scratch)
    found = sorted(scratch.rglob("xgboost-model"))
    if not found:
        raise FileNotFoundError(f"{archives[0]} holds no xgboost-model file")
    return found[0].parent


def read_eval_data(data_dir: Path) -> pd.DataFrame:
    files = sorted(p for p in data_dir.rglob("*") if p.is_file() and p.suffix in (".csv", ".tsv"))
    if not files:
        raise FileNotFoundError(f"No .csv/.tsv files under {data_dir}")
    frame = pd.concat([pd.read_csv(p, sep="\t" if p.suffix == ".tsv" else ",") for p in files], ignore_index=True)
    logger.info("Evaluation data: %d rows from %d file(s)", len(frame), len(files))
    return frame


def to_matrix(frame: pd.DataFrame, meta: dict) -> xgb.DMatrix:
    missing = [c for c in meta["features"] if c not in frame.columns]
    if missing:
        raise ValueError(f"Evaluation data lacks model features {missing}")
    columns = [pd.to_numeric(frame[c], errors="coerce").astype(float).values for c in meta["numeric_features"]]
    for column in meta["categorical_features"]:
        table = meta["risk_tables"][column]
        columns.append(
            np.asarray([table["bins"].get(str(v), table["default"]) for v in frame[column].values], dtype=float)
        )
    return xgb.DMatrix(np.column_stack(columns), feature_names=meta["features"])


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
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


def metrics_for(labels: np.ndarray, scores: np.ndarray) -> dict:
    predicted = scores >= 0.5
    actual = labels == 1
    true_pos = int((predicted & actual).sum())
    precision = true_pos / max(int(predicted.sum()), 1)
    recall = true_pos / max(int(actual.sum()), 1)
    return {
        "auc_roc": auc(labels, scores),
        "brier_score": float(np.mean((scores - labels) ** 2)),
        "precision_at_0_5": precision,
        "recall_at_0_5": recall,
        "f1_at_0_5": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "positive_rate": float(actual.mean()),
        "mean_score": float(scores.mean()),
        "rows": int(len(labels)),
    }


def main(job_type: str) -> dict:
    label = os.environ.get("LABEL_FIELD")
    if not label:
        raise ValueError("Environment variable LABEL_FIELD is required")
    id_field = os.environ.get("ID_FIELD", "transaction_id")
    with tempfile.TemporaryDirectory() as scratch:
        model_path = locate_model(Path(MODEL_DIR), Path(scratch))
        meta = json.loads((model_path / "feature_columns.json").read_text())
        booster = xgb.Booster()
        booster.load_model(str(model_path / "xgboost-model"))
    frame = read_eval_data(Path(EVAL_DATA_DIR))
    if label not in frame.columns:
        raise ValueError(f"Label column '{label}' (LABEL_FIELD) not in evaluation data")
    scores = booster.predict(to_matrix(frame, meta))
    labels = frame[label].astype(int).values

    predictions = pd.DataFrame({label: labels, "prob_class_0": 1.0 - scores, "prob_class_1": scores})
    if id_field in frame.columns:
        predictions.insert(0, id_field, frame[id_field].values)
    Path(EVAL_OUTPUT_DIR).mkdir(parents=True, exist_ok=True)
    predictions.to_csv(Path(EVAL_OUTPUT_DIR) / "eval_predictions.csv", index=False)

    metrics = dict(metrics_for(labels, scores), job_type=job_type)
    Path(METRICS_OUTPUT_DIR).mkdir(parents=True, exist_ok=True)
    (Path(METRICS_OUTPUT_DIR) / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    logger.info("Metrics: %s", metrics)
    return metrics


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description="Evaluate the XGBoost fraud model")
    parser.add_argument("--job_type", required=True)
    args = parser.parse_args()
    try:
        main(args.job_type)
    except Exception:
        logger.exception("Model evaluation failed")
        sys.exit(1)
