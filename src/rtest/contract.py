"""The SageMaker container contract, defined once: step types rtest runs and the paths a job sees.

Plan time (discovery, interfaces, script scan, conventional input paths) and run time
(layout, model packing) both read these names, so the two can never disagree.
"""

from __future__ import annotations

# SageMaker step types whose script rtest can run (compared case-insensitively).
RUNNABLE_STEP_TYPES = ("Processing", "Training")

# Paths inside the container.
PROCESSING_INPUT_ROOT = "/opt/ml/processing/input"
CHANNEL_ROOT = "/opt/ml/input/data"  # training channels: <CHANNEL_ROOT>/<channel>
MODEL_PATH = "/opt/ml/model"  # training's model folder, packed as model.tar.gz when the job ends
SM_OUTPUT_PATH = "/opt/ml/output"
CODE_PATHS = {"processing": "/opt/ml/processing/input/code", "training": "/opt/ml/code"}
CONFIG_PATHS = {"processing": "/opt/ml/config", "training": "/opt/ml/input/config"}


def is_runnable_step_type(step_type: str | None) -> bool:
    return bool(step_type) and step_type.lower() in (t.lower() for t in RUNNABLE_STEP_TYPES)


def conventional_input_path(job_kind: str, name: str) -> str:
    """Where SageMaker puts an input nobody gave a path: a channel for training, a processing input else."""
    return f"{CHANNEL_ROOT}/{name}" if job_kind == "training" else f"{PROCESSING_INPUT_ROOT}/{name}"
