#!/usr/bin/env python3
"""Bundle the trained model, its calibration and the inference handler into model.tar.gz.

Runs in the base image: Python standard library only.

SageMaker Processing contract:
  input  /opt/ml/processing/input/model        model.tar.gz from training (or its unpacked files)
  input  /opt/ml/processing/input/calibration  calibration_model.json and friends
  output /opt/ml/processing/output             model.tar.gz (model files, calibration/, code/)
The inference handler is shipped next to this script in the processing code folder.
"""
from __future__ import annotations

import logging
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

MODEL_DIR = "/opt/ml/processing/input/model"
CALIBRATION_DIR = "/opt/ml/processing/input/calibration"
OUTPUT_DIR = "/opt/ml/processing/output"
CODE_DIR = "/opt/ml/processing/input/code"
HANDLER_NAME = "inference_handler.py"

logger = logging.getLogger("package")


def safe_extract(archive: Path, target: Path) -> None:
    with tarfile.open(archive, "r:*") as tar:
        for member in tar.getmembers():
            if member.name.startswith("/") or ".." in Path(member.name).parts or member.issym() or member.islnk():
                raise ValueError(f"Refusing unsafe member {member.name!r} in {archive}")
        tar.extractall(target)


def stage_model(model_dir: Path, staging: Path) -> None:
    """Copy the model files into staging, unpacking model.tar.gz when that is what arrived."""
    archives = sorted(model_dir.rglob("*.tar.gz"))
    if (model_dir / "xgboost-model").is_file():
        for item in model_dir.iterdir():
            if item.is_file() and not item.name.endswith(".tar.gz"):
                shutil.copy2(item, staging / item.name)
    elif archives:
        logger.info("Extracting %s", archives[0])
        safe_extract(archives[0], staging)
    else:
        raise FileNotFoundError(f"Neither xgboost-model nor a model.tar.gz under {model_dir}")
    if not (staging / "xgboost-model").is_file():
        raise FileNotFoundError(f"The model from {model_dir} holds no xgboost-model file at its top level")


def stage_calibration(calibration_dir: Path, staging: Path) -> None:
    files = sorted(p for p in calibration_dir.rglob("*") if p.is_file())
    if not any(p.name == "calibration_model.json" for p in files):
        raise FileNotFoundError(f"No calibration_model.json under {calibration_dir}")
    target = staging / "calibration"
    for path in files:
        destination = target / path.relative_to(calibration_dir)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)


def stage_code(code_dir: Path, staging: Path) -> None:
    candidates = [code_dir / HANDLER_NAME, Path(CODE_DIR) / HANDLER_NAME]
    handler = next((c for c in candidates if c.is_file()), None)
    if handler is None:
        raise FileNotFoundError(f"Inference handler {HANDLER_NAME} is in neither {code_dir} nor {CODE_DIR}")
    (staging / "code").mkdir()
    shutil.copy2(handler, staging / "code" / HANDLER_NAME)


def package(model_dir: Path, calibration_dir: Path, code_dir: Path, output_dir: Path) -> Path:
    with tempfile.TemporaryDirectory() as scratch:
        staging = Path(scratch)
        stage_model(model_dir, staging)
        stage_calibration(calibration_dir, staging)
        stage_code(code_dir, staging)
        output_dir.mkdir(parents=True, exist_ok=True)
        archive = output_dir / "model.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for path in sorted(staging.rglob("*")):
                if path.is_file():
                    tar.add(str(path), arcname=str(path.relative_to(staging)))
                    logger.info("Packed %s", path.relative_to(staging))
    logger.info("Wrote %s (%d bytes)", archive, archive.stat().st_size)
    return archive


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        package(Path(MODEL_DIR), Path(CALIBRATION_DIR), Path(__file__).resolve().parent, Path(OUTPUT_DIR))
    except Exception:
        logger.exception("Packaging failed")
        sys.exit(1)
