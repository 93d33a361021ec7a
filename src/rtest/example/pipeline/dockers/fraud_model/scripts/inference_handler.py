"""Inference handler for the packaged fraud model (SageMaker XGBoost serving, script mode).

The serving toolkit calls model_fn once, then input_fn -> predict_fn -> output_fn
per request. The packaged model.tar.gz holds xgboost-model, feature_columns.json,
calibration/calibration_model.json and this file under code/.
"""
from __future__ import annotations

import bisect
import csv
import io
import json
import os


def model_fn(model_dir):
    import xgboost as xgb  # only the serving image has it; Package merely copies this file

    booster = xgb.Booster()
    booster.load_model(os.path.join(model_dir, "xgboost-model"))
    with open(os.path.join(model_dir, "feature_columns.json"), encoding="utf-8") as handle:
        meta = json.load(handle)
    calibration_path = os.path.join(model_dir, "calibration", "calibration_model.json")
    calibration = None
    if os.path.exists(calibration_path):
        with open(calibration_path, encoding="utf-8") as handle:
            calibration = json.load(handle)
    return {"booster": booster, "meta": meta, "calibration": calibration}


def input_fn(request_body, content_type):
    """A list of records (dicts) from a JSON object/list or headerless CSV rows."""
    if isinstance(request_body, bytes):
        request_body = request_body.decode("utf-8")
    if content_type == "application/json":
        parsed = json.loads(request_body)
        return parsed if isinstance(parsed, list) else [parsed]
    if content_type == "text/csv":
        return [{"__row__": row} for row in csv.reader(io.StringIO(request_body)) if row]
    raise ValueError(f"Unsupported content type {content_type}")


def encode(record, meta):
    if "__row__" in record:
        record = dict(zip(meta["features"], record["__row__"]))
    values = []
    for name in meta["features"]:
        raw = record.get(name)
        if name in meta.get("categorical_features", []):
            table = meta["risk_tables"][name]
            values.append(table["bins"].get(str(raw), table["default"]))
        else:
            values.append(float("nan") if raw in (None, "") else float(raw))
    return values


def calibrate(score, calibration):
    """Linear interpolation in the calibration lookup table, clipped at its ends."""
    if not calibration:
        return score
    knots, values = calibration["score_knots"], calibration["calibrated_values"]
    if score <= knots[0]:
        return values[0]
    if score >= knots[-1]:
        return values[-1]
    right = bisect.bisect_right(knots, score)
    left = right - 1
    span = knots[right] - knots[left]
    weight = 0.0 if span == 0 else (score - knots[left]) / span
    return values[left] + weight * (values[right] - values[left])


def predict_fn(input_data, model):
    import xgboost as xgb

    rows = [encode(record, model["meta"]) for record in input_data]
    scores = model["booster"].predict(xgb.DMatrix(rows, feature_names=model["meta"]["features"]))
    return [
        {"raw_score": float(s), "calibrated_score": float(calibrate(float(s), model["calibration"]))} for s in scores
    ]


def output_fn(prediction, accept):
    if accept in ("application/json", "*/*", None):
        return json.dumps({"predictions": prediction}), "application/json"
    raise ValueError(f"Unsupported accept type {accept}")
