"""SageMaker Training jobs: channels under /opt/ml/input/data, the model folder packed as model.tar.gz.

The config files are the ones the sagemaker-training toolkit reads (hyperparameters.json,
inputdataconfig.json, resourceconfig.json); the bootstrap's training branch turns them
into the SM_* variables and hyperparameter arguments.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections import Counter
from itertools import islice
from pathlib import Path
from typing import Any

from rtest.jobs.base import NAME_CHARS, SM_OUTPUT_PATH, JobFiles, JobKind, Placed, ScannedPath, job_arn

CHANNEL_ROOT = "/opt/ml/input/data"  # training channels: <CHANNEL_ROOT>/<channel>
MODEL_PATH = "/opt/ml/model"  # packed as model.tar.gz when the job ends
OUTPUT_DATA_PATH = f"{SM_OUTPUT_PATH}/data"
_CHANNEL = re.compile(rf"^{CHANNEL_ROOT}(?:/([{NAME_CHARS}]+))?")
_CONTENT_TYPES = {".csv": "text/csv", ".parquet": "application/x-parquet", ".json": "application/json",
                  ".jsonl": "application/jsonlines", ".libsvm": "text/libsvm", ".pb": "application/x-recordio-protobuf"}
CHANNEL_SAMPLE_FILES = 2000  # files looked at to guess a channel's content type: a sample is enough


class Training(JobKind):
    name = "training"
    step_types = ("Training",)
    entry_point_fields = ("training_entry_point",)
    code_path = "/opt/ml/code"
    config_path = "/opt/ml/input/config"
    output_folders = ("data",)
    own_mounts = {"model": MODEL_PATH}  # the script writes its model there even when no output names it
    packed_outputs = (MODEL_PATH,)
    default_outputs = {"model_output": MODEL_PATH}
    takes_hyperparameters = True

    def conventional_input_path(self, name: str) -> str:
        return f"{CHANNEL_ROOT}/{name}"

    def scan_literal(self, path: str) -> ScannedPath | None:
        if m := _CHANNEL.match(path):
            name = m.group(1)
            return ScannedPath("input", name or "input_path", f"{CHANNEL_ROOT}/{name}" if name else CHANNEL_ROOT)
        if path.startswith(MODEL_PATH):
            return ScannedPath("output", "model_output", MODEL_PATH)
        if path.startswith(OUTPUT_DATA_PATH):
            return ScannedPath("output", "output_data", OUTPUT_DATA_PATH)
        return None

    def installs_requirements_txt(self, compute_kind: str | None) -> tuple[bool, str]:
        # sagemaker-training-toolkit (modules.install): `pip install . -r requirements.txt` in the code folder
        return True, "the SageMaker training toolkit runs pip install -r requirements.txt from the code folder"

    def environment(self, job_name: str) -> dict[str, str]:
        # Set by the service; for processing the Environment dict is all there is.
        return {"TRAINING_JOB_NAME": job_name, "TRAINING_JOB_ARN": job_arn("training", job_name)}

    def config_files(self, job: JobFiles) -> dict[str, Any]:
        return {
            "hyperparameters.json": {k: json.dumps(v) for k, v in job.hyperparameters.items() if v is not None},
            "inputdataconfig.json": {channel: _channel_config(folder)
                                     for channel, folder in training_channels(job.inputs).items()},
        }


def training_channels(inputs: list[Placed]) -> dict[str, Path]:
    """Channel name -> host folder: inputs at /opt/ml/input/data/<channel>, and the sub-folders of one at the root."""
    channels: dict[str, Path] = {}
    for item in inputs:
        path = posixpath.normpath(item.container_path)
        if path == CHANNEL_ROOT and item.host.is_dir():
            channels.update({sub.name: sub for sub in sorted(item.host.iterdir())
                             if sub.is_dir() and not sub.name.startswith(".")})
        elif path.startswith(CHANNEL_ROOT + "/"):
            channels[path[len(CHANNEL_ROOT) + 1:].split("/")[0]] = item.host
    return dict(sorted(channels.items()))


def _channel_config(folder: Path) -> dict[str, Any]:
    config = {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
    files = islice(folder.rglob("*"), CHANNEL_SAMPLE_FILES) if folder.is_dir() else ()
    suffixes = Counter(p.suffix.lower() for p in files if p.is_file())
    known = [(count, _CONTENT_TYPES[s]) for s, count in suffixes.items() if s in _CONTENT_TYPES]
    if known:  # SageMaker only has a ContentType when the user gave one; the files' type is the best stand-in
        config["ContentType"] = max(known)[1]
    return config
