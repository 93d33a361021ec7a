"""SageMaker Processing jobs: inputs and outputs under /opt/ml/processing, processingjobconfig.json."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

from rtest.jobs.base import NAME_CHARS, ROLE_ARN, JobFiles, JobKind, ScannedPath, job_arn

INPUT_ROOT = "/opt/ml/processing/input"
OUTPUT_ROOT = "/opt/ml/processing/output"
CODE_PATH = f"{INPUT_ROOT}/code"
DEFAULT_VOLUME_GB = 30  # the SageMaker SDK's default volume_size
# compute.kind -> the SDK processor the framework builds for it (cursus's builder_base)
FRAMEWORK_PROCESSORS = {"xgboost": "XGBoostProcessor", "framework": "FrameworkProcessor"}
SCRIPT_PROCESSORS = {"sklearn": "SKLearnProcessor", "script": "ScriptProcessor", "python": "ScriptProcessor",
                     "byo_container": "ScriptProcessor"}
_INPUT = re.compile(rf"^{INPUT_ROOT}/([{NAME_CHARS}]+)")
_OUTPUT = re.compile(rf"^{OUTPUT_ROOT}(?:/([{NAME_CHARS}]+))?")


class Processing(JobKind):
    name = "processing"
    step_types = ("Processing",)
    entry_point_fields = ("processing_entry_point", "script_path")
    code_path = CODE_PATH
    config_path = "/opt/ml/config"
    needs_named_paths = True  # nothing is written by convention, so a script with no paths is a gap
    bundled_source_root = "/opt/ml/code/"  # a framework processor ships source_dir there

    def conventional_input_path(self, name: str) -> str:
        return f"{INPUT_ROOT}/{name}"

    def scan_literal(self, path: str) -> ScannedPath | None:
        if m := _INPUT.match(path):  # /opt/ml/processing/input/code is the script itself, not data
            return None if m.group(1) == "code" else ScannedPath("input", m.group(1), f"{INPUT_ROOT}/{m.group(1)}")
        if m := _OUTPUT.match(path):
            return ScannedPath("output", m.group(1) or "output", f"{OUTPUT_ROOT}/{m.group(1)}" if m.group(1) else path)
        return None

    def instance_type_fields(self, get: Callable[[str], Any]) -> list[str]:
        sized = ["processing_instance_type_large", "processing_instance_type_small"]
        return ["processing_instance_type", *(sized if get("use_large_processing_instance") else reversed(sized))]

    def framework_version_fields(self, framework: str) -> list[str]:
        extra = ["processing_framework_version"] if framework == "sklearn" else []
        return [] if framework == "python" else [*extra, "framework_version"]

    def config_files(self, job: JobFiles) -> dict[str, Any]:
        return {"processingjobconfig.json": processing_job_config(job)}

    def installs_requirements_txt(self, compute_kind: str | None) -> tuple[bool, str]:
        # The SDK (sagemaker/processing.py): FrameworkProcessor (XGBoostProcessor, PyTorchProcessor, ...) runs
        # its generated runproc.sh, which does `pip install -r requirements.txt` when source_dir has one.
        # ScriptProcessor (SKLearnProcessor is one) uploads only the entry script and installs nothing.
        processor = FRAMEWORK_PROCESSORS.get((compute_kind or "").lower())
        if processor:
            return True, f"{processor}'s runproc.sh runs pip install -r requirements.txt from source_dir"
        processor = SCRIPT_PROCESSORS.get((compute_kind or "").lower(), "ScriptProcessor")
        return False, (f"{processor} is a ScriptProcessor: it uploads only the entry script and "
                       "installs no requirements.txt")


def processing_job_config(job: JobFiles) -> dict[str, Any]:
    """The CreateProcessingJob request SageMaker hands the container, with host folders as S3 URIs."""
    inputs = [_input(i.name, i.host, i.container_path) for i in job.inputs]
    inputs.append(_input("code", job.code_dir, CODE_PATH))
    outputs = [{"OutputName": o.name, "AppManaged": False, "S3Output": {
        "S3Uri": o.host.resolve().as_uri(), "LocalPath": o.container_path, "S3UploadMode": "EndOfJob"}}
        for o in job.outputs]
    return {
        "ProcessingJobArn": job_arn("processing", job.job_name),
        "ProcessingJobName": job.job_name,
        "AppSpecification": {"ImageUri": job.image, "ContainerEntrypoint": ["python3", job.entry_point],
                             "ContainerArguments": job.argv},
        "Environment": job.environment,
        "ProcessingInputs": inputs,
        "ProcessingOutputConfig": {"Outputs": outputs},
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": job.instance_count,
                                                  "InstanceType": job.instance_type,
                                                  "VolumeSizeInGB": DEFAULT_VOLUME_GB}},
        "RoleArn": ROLE_ARN,
        "StoppingCondition": {"MaxRuntimeInSeconds": job.max_runtime_s},
    }


def _input(name: str, host: Path, local_path: str) -> dict[str, Any]:
    return {"InputName": name, "AppManaged": False, "S3Input": {
        "S3Uri": Path(host).resolve().as_uri(), "LocalPath": local_path, "S3DataType": "S3Prefix",
        "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated", "S3CompressionType": "None"}}
