#!/usr/bin/env python3
"""Tabular preprocessing: read raw CSV parts, clean the label, split for training.

SageMaker Processing contract:
  input  /opt/ml/processing/input/data       CSV/TSV parts (required)
  input  /opt/ml/processing/input/signature  optional file listing the expected columns
  output /opt/ml/processing/output           train/ val/ test/ (training) or <job_type>/
  env    LABEL_FIELD (required), TRAIN_RATIO, TEST_VAL_RATIO, OUTPUT_FORMAT
  args   --job_type training|validation|testing|calibration
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

DATA_DIR = "/opt/ml/processing/input/data"
SIGNATURE_DIR = "/opt/ml/processing/input/signature"
OUTPUT_DIR = "/opt/ml/processing/output"
JOB_TYPES = ("training", "validation", "testing", "calibration")
FORMATS = {"CSV": (",", "csv"), "TSV": ("\t", "tsv")}
RANDOM_STATE = 42

logger = logging.getLogger("preprocess")


def read_signature(signature_dir: Path) -> list[str] | None:
    """Column names from the first file in the signature folder, if there is one."""
    if not signature_dir.is_dir():
        return None
    files = sorted(p for p in signature_dir.rglob("*") if p.is_file())
    if not files:
        return None
    text = files[0].read_text(encoding="utf-8").strip()
    columns = [c.strip() for c in text.replace("\n", ",").split(",") if c.strip()]
    logger.info("Signature %s lists %d columns", files[0].name, len(columns))
    return columns


def read_parts(data_dir: Path) -> pd.DataFrame:
    parts = sorted(p for p in data_dir.rglob("*") if p.is_file() and p.name.endswith((".csv", ".tsv", ".csv.gz")))
    if not parts:
        raise FileNotFoundError(f"No .csv/.tsv files under {data_dir}")
    frames = []
    for part in parts:
        sep = "\t" if part.name.endswith(".tsv") else ","
        frame = pd.read_csv(part, sep=sep)
        logger.info("Read %s: %d rows x %d columns", part.name, len(frame), len(frame.columns))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def clean(df: pd.DataFrame, label: str, signature: list[str] | None) -> pd.DataFrame:
    if signature:
        missing = [c for c in signature if c not in df.columns]
        if missing:
            raise ValueError(f"Columns {missing} from the signature are missing in the data")
        df = df[signature]
    if label not in df.columns:
        raise ValueError(f"Label column '{label}' (LABEL_FIELD) not in data columns {list(df.columns)}")
    before = len(df)
    df = df.dropna(subset=[label])
    labels = pd.to_numeric(df[label], errors="coerce")
    df = df[labels.notna()].copy()
    df[label] = labels[labels.notna()].astype(int)
    if len(df) < before:
        logger.warning("Dropped %d rows with a missing or non-numeric label", before - len(df))
    if df.empty:
        raise ValueError("No rows left after dropping rows without a label")
    return df


def split(df: pd.DataFrame, label: str, train_ratio: float, test_val_ratio: float) -> dict[str, pd.DataFrame]:
    """train / test / val; the hold-out is cut into test (test_val_ratio) and val."""
    stratify = df[label] if df[label].nunique() > 1 else None
    train, holdout = train_test_split(df, train_size=train_ratio, random_state=RANDOM_STATE, stratify=stratify)
    stratify = holdout[label] if holdout[label].nunique() > 1 else None
    test, val = train_test_split(holdout, train_size=test_val_ratio, random_state=RANDOM_STATE, stratify=stratify)
    return {"train": train, "test": test, "val": val}


def ratio(name: str, default: str) -> float:
    value = float(os.environ.get(name, default))
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value}")
    return value


def main(job_type: str) -> None:
    label = os.environ.get("LABEL_FIELD")
    if not label:
        raise ValueError("Environment variable LABEL_FIELD is required")
    output_format = os.environ.get("OUTPUT_FORMAT", "CSV").upper()
    if output_format not in FORMATS:
        raise ValueError(f"OUTPUT_FORMAT must be one of {sorted(FORMATS)}, got {output_format}")
    sep, ext = FORMATS[output_format]

    df = clean(read_parts(Path(DATA_DIR)), label, read_signature(Path(SIGNATURE_DIR)))
    logger.info("Job type %s: %d rows, positive rate %.4f", job_type, len(df), df[label].mean())
    if job_type == "training":
        splits = split(df, label, ratio("TRAIN_RATIO", "0.7"), ratio("TEST_VAL_RATIO", "0.5"))
    else:
        splits = {job_type: df}

    for name, frame in splits.items():
        folder = Path(OUTPUT_DIR) / name
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{name}_processed_data.{ext}"
        frame.to_csv(target, sep=sep, index=False)
        logger.info("Wrote %s: %d rows", target, len(frame))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job_type", required=True, choices=JOB_TYPES)
    args = parser.parse_args()
    try:
        main(args.job_type)
    except Exception:
        logger.exception("Preprocessing failed")
        sys.exit(1)
