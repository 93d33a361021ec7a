#!/usr/bin/env python3
"""Build sample inference payloads from the trained model's feature list.

Runs in the base image: Python standard library only.

SageMaker Processing contract:
  input  /opt/ml/processing/input/model   model.tar.gz from training (or its unpacked files)
  output /opt/ml/processing/output        one sample per content type, plus payload.tar.gz of them
  env    CONTENT_TYPES (comma list of application/json, text/csv),
         DEFAULT_NUMERIC_VALUE, DEFAULT_TEXT_VALUE
"""
from __future__ import annotations

import csv
import io
import json
import logging
import os
import sys
import tarfile
from pathlib import Path

MODEL_DIR = "/opt/ml/processing/input/model"
OUTPUT_DIR = "/opt/ml/processing/output"
METADATA_NAME = "feature_columns.json"
SAMPLE_FILES = {"application/json": "payload_application_json.json", "text/csv": "payload_text_csv.csv"}

logger = logging.getLogger("payload")


def read_model_metadata(model_dir: Path) -> dict:
    """feature_columns.json, read straight out of model.tar.gz when the model arrives packed."""
    direct = model_dir / METADATA_NAME
    if direct.is_file():
        return json.loads(direct.read_text(encoding="utf-8"))
    archives = sorted(model_dir.rglob("*.tar.gz"))
    if not archives:
        raise FileNotFoundError(f"Neither {METADATA_NAME} nor a model.tar.gz under {model_dir}")
    with tarfile.open(archives[0], "r:*") as tar:
        member = next((m for m in tar.getmembers() if Path(m.name).name == METADATA_NAME and m.isfile()), None)
        if member is None:
            raise FileNotFoundError(f"{archives[0]} holds no {METADATA_NAME}")
        return json.loads(tar.extractfile(member).read().decode("utf-8"))


def sample_record(meta: dict, numeric_default: float, text_default: str) -> dict:
    features = meta.get("features")
    if not features:
        raise ValueError(f"{METADATA_NAME} lists no features")
    categorical = set(meta.get("categorical_features", []))
    return {name: (text_default if name in categorical else numeric_default) for name in features}


def render(content_type: str, record: dict) -> str:
    if content_type == "application/json":
        return json.dumps(record, indent=2) + "\n"
    if content_type == "text/csv":
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(record.values())
        return buffer.getvalue()
    raise ValueError(f"Unsupported content type {content_type!r}; use one of {sorted(SAMPLE_FILES)}")


def build_payloads(
    model_dir: Path, output_dir: Path, content_types: list, numeric_default: float, text_default: str
) -> list:
    record = sample_record(read_model_metadata(model_dir), numeric_default, text_default)
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for content_type in content_types:
        text = render(content_type, record)
        path = output_dir / SAMPLE_FILES[content_type]
        path.write_text(text, encoding="utf-8")
        written.append(path)
        logger.info("Wrote %s sample %s", content_type, path.name)
    with tarfile.open(output_dir / "payload.tar.gz", "w:gz") as tar:
        for path in written:
            tar.add(str(path), arcname=path.name)
    return written


def content_types_from_env() -> list:
    raw = os.environ.get("CONTENT_TYPES", "application/json,text/csv")
    types = [t.strip().lower() for t in raw.split(",") if t.strip()]
    unknown = [t for t in types if t not in SAMPLE_FILES]
    if not types or unknown:
        raise ValueError(f"CONTENT_TYPES={raw!r} must list some of {sorted(SAMPLE_FILES)}")
    return types


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        build_payloads(
            Path(MODEL_DIR),
            Path(OUTPUT_DIR),
            content_types_from_env(),
            float(os.environ.get("DEFAULT_NUMERIC_VALUE", "0.0")),
            os.environ.get("DEFAULT_TEXT_VALUE", "UNKNOWN"),
        )
    except Exception:
        logger.exception("Payload generation failed")
        sys.exit(1)
