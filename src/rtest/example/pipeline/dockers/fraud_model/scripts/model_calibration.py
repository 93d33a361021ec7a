#!/usr/bin/env python3
"""Fit a score -> probability calibration on evaluation predictions.

The result is a lookup table (score knots and calibrated values) that any
runtime can apply by linear interpolation, with no scikit-learn at inference.

SageMaker Processing contract:
  input  /opt/ml/processing/input/eval_data           predictions CSV (label + score columns)
  output /opt/ml/processing/output/calibration        calibration_model.json, calibration_metrics.json
  env    LABEL_FIELD (required), SCORE_FIELD, CALIBRATION_METHOD (isotonic|percentile), NUM_BINS
  args   --job_type
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

INPUT_DIR = "/opt/ml/processing/input/eval_data"
OUTPUT_DIR = "/opt/ml/processing/output/calibration"
METHODS = ("isotonic", "percentile")

logger = logging.getLogger("model_calibration")


def read_predictions(folder: Path, label: str, score: str) -> tuple[np.ndarray, np.ndarray]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".csv", ".tsv"))
    if not files:
        raise FileNotFoundError(f"No prediction .csv/.tsv files under {folder}")
    frame = pd.concat([pd.read_csv(p, sep="\t" if p.suffix == ".tsv" else ",") for p in files], ignore_index=True)
    for column in (label, score):
        if column not in frame.columns:
            raise ValueError(f"Column '{column}' not in predictions; columns are {list(frame.columns)}")
    frame = frame.dropna(subset=[label, score])
    if frame[label].nunique() < 2:
        raise ValueError("Calibration needs both classes in the label column")
    logger.info("Read %d predictions from %d file(s)", len(frame), len(files))
    return frame[score].astype(float).values, frame[label].astype(int).values


def fit_isotonic(scores: np.ndarray, labels: np.ndarray) -> tuple[list, list]:
    model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True)
    model.fit(scores, labels)
    return model.X_thresholds_.tolist(), model.y_thresholds_.tolist()


def fit_percentile(scores: np.ndarray, labels: np.ndarray, bins: int) -> tuple[list, list]:
    """Mean label per score quantile bin, made monotone so the mapping keeps the ranking."""
    edges = np.unique(np.quantile(scores, np.linspace(0.0, 1.0, bins + 1)))
    index = np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, len(edges) - 2)
    knots, values = [], []
    for b in range(len(edges) - 1):
        members = index == b
        if members.any():
            knots.append(float(scores[members].mean()))
            values.append(float(labels[members].mean()))
    return knots, np.maximum.accumulate(values).tolist()


def apply_table(scores: np.ndarray, knots: list, values: list) -> np.ndarray:
    return np.interp(scores, knots, values)


def main(job_type: str) -> dict:
    label = os.environ.get("LABEL_FIELD")
    if not label:
        raise ValueError("Environment variable LABEL_FIELD is required")
    score = os.environ.get("SCORE_FIELD", "prob_class_1")
    method = os.environ.get("CALIBRATION_METHOD", "isotonic").lower()
    if method not in METHODS:
        raise ValueError(f"CALIBRATION_METHOD must be one of {METHODS}, got {method!r}")
    bins = int(os.environ.get("NUM_BINS", "20"))

    scores, labels = read_predictions(Path(INPUT_DIR), label, score)
    knots, values = fit_isotonic(scores, labels) if method == "isotonic" else fit_percentile(scores, labels, bins)
    calibrated = apply_table(scores, knots, values)
    metrics = {
        "method": method,
        "job_type": job_type,
        "rows": int(len(scores)),
        "brier_before": float(np.mean((scores - labels) ** 2)),
        "brier_after": float(np.mean((calibrated - labels) ** 2)),
        "knots": len(knots),
    }
    table = {"method": method, "score_field": score, "label_field": label,
             "interpolation": "linear", "score_knots": knots, "calibrated_values": values}

    out = Path(OUTPUT_DIR)
    out.mkdir(parents=True, exist_ok=True)
    (out / "calibration_model.json").write_text(json.dumps(table, indent=2))
    (out / "calibration_metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    logger.info("Calibration: %s", metrics)
    return metrics


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description="Calibrate model scores")
    parser.add_argument("--job_type", required=True)
    args = parser.parse_args()
    try:
        main(args.job_type)
    except Exception:
        logger.exception("Model calibration failed")
        sys.exit(1)
