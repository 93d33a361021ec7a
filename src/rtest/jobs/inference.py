"""The inference check: where a pipeline registers its model, rtest serves it its own payloads.

SageMaker runs no script of the user's for a model registration: it records the packaged
``model.tar.gz`` and its inference handler. The most expensive failure comes after that: the
model does not load in its serving container, or its handler rejects the payloads the pipeline
built. This kind runs in place of such a node. In the serving framework's image (the config's
``framework`` + ``framework_version``, the training framework's look-alike) the bootstrap's
inference branch (executor/inference_check.py, stdlib only) lays the archive out as hosting
does (``/opt/ml/model``, the handler under ``code/``, SAGEMAKER_PROGRAM and
SAGEMAKER_SUBMIT_DIRECTORY), loads the handler as the sagemaker-inference toolkit does
(its defaults where a function is missing) and sends every payload sample with each configured
content type and accept type. No web server, no network: the handler functions are called
directly. The per-sample results go to ``/opt/ml/output/inference_check.json``.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any, Callable

from rtest.jobs.base import JobFiles, JobKind, ScannedPath

MODEL_PATH = "/opt/ml/model"  # hosting unpacks model.tar.gz here; the handler is under code/
SUBMIT_DIRECTORY = f"{MODEL_PATH}/code"
INPUT_ROOT = "/opt/rtest/inference/input"  # an input nobody placed (the model, the payloads)
RESULTS_FILE = "inference_check.json"  # under the output folder (sm_output/ on the host)
CONFIG_FILE = "inferencecheck.json"
# The registration config's contract (cursus's field names).
CONTENT_TYPES_FIELD = "source_model_inference_content_types"
RESPONSE_TYPES_FIELD = "source_model_inference_response_types"
OUTPUT_VARIABLES_FIELD = "source_model_inference_output_variable_list"
# cursus saves the config with sorted keys, so the {name: type} map above comes back alphabetical; the
# variable_schema it writes beside it keeps the author's order, which is the order of a CSV answer's columns.
SCHEMA_FIELD = "variable_schema"
HANDLER_FIELD = "inference_entry_point"
FRAMEWORK_FIELD = "framework"
REGISTRATION_WORDS = ("registration", "registermodel")  # step types of model registration, however spelt


class InferenceCheck(JobKind):
    name = "inference-check"
    step_types = ("RegisterModel", "ModelRegistration")  # and any type naming registration: see serves()
    entry_point_fields = ()  # inference_entry_point alone still means "no job" when no interface says registration
    code_path = "/opt/rtest/handler-source"  # the handler as the source folder holds it: used when the archive lacks it
    config_path = "/opt/rtest/inference/config"
    own_mounts = {"model": MODEL_PATH}  # writable: the archive is unpacked there in the container
    script_job = False
    results_file = RESULTS_FILE

    def serves(self, step_type: str) -> bool:
        lowered = step_type.lower()
        return any(word in lowered for word in REGISTRATION_WORDS) or super().serves(step_type)

    def conventional_input_path(self, name: str) -> str:
        return f"{INPUT_ROOT}/{name}"

    def scan_literal(self, path: str) -> ScannedPath | None:
        return None  # a handler's paths are the model folder's, not a job's inputs

    def instance_type_fields(self, get: Callable[[str], Any]) -> list[str]:
        return ["inference_instance_type"]

    def serving_framework(self, get: Callable[[str], Any]) -> tuple[str, str] | None:
        framework = get(FRAMEWORK_FIELD)
        return (str(framework).lower(), FRAMEWORK_FIELD) if framework else None

    def config_environment(self, get: Callable[[str], Any]) -> dict[str, tuple[str, str]]:
        env: dict[str, tuple[str, str]] = {}
        handler = get(HANDLER_FIELD)
        if handler:  # what hosting sets for a model with an entry point
            env["SAGEMAKER_PROGRAM"] = (posixpath.basename(str(handler)), HANDLER_FIELD)
            env["SAGEMAKER_SUBMIT_DIRECTORY"] = (SUBMIT_DIRECTORY, HANDLER_FIELD)
        for name, field in (("RTEST_INFERENCE_CONTENT_TYPES", CONTENT_TYPES_FIELD),
                            ("RTEST_INFERENCE_ACCEPT_TYPES", RESPONSE_TYPES_FIELD)):
            value = get(field)
            if value:
                env[name] = (",".join(value) if isinstance(value, (list, tuple)) else str(value), field)
        variables, field = ordered_output_variables(get)
        if variables:
            env["RTEST_INFERENCE_OUTPUTS"] = (json.dumps(variables), field)
        return env

    def config_files(self, job: JobFiles) -> dict[str, Any]:
        payloads = [i.container_path for i in job.inputs if is_payload_input(i.name)]
        models = [i.container_path for i in job.inputs if not is_payload_input(i.name)]
        return {CONFIG_FILE: {"model_inputs": models, "payload_inputs": payloads, "model_dir": MODEL_PATH,
                              "results": posixpath.join(self.output_path, RESULTS_FILE)}}


def is_payload_input(name: str) -> bool:
    """Which of a registration's inputs holds the payload samples (the other holds the packaged model)."""
    return "payload" in name.lower()


def ordered_output_variables(get: Callable[[str], Any]) -> tuple[list[list[str]], str]:
    """The output variables in the order a CSV answer gives them, and the config field(s) that said so.

    The variable list decides which variables there are; the schema only orders them, and only when it
    names the same ones (a schema left stale by a hand edit of the list is ignored).
    """
    variables = output_variables(get(OUTPUT_VARIABLES_FIELD))
    schema = schema_output_variables(get(SCHEMA_FIELD))
    if variables and sorted(schema) == sorted(variables) and schema != variables:
        return schema, f"{OUTPUT_VARIABLES_FIELD} (in {SCHEMA_FIELD}.output's order)"
    if variables:
        return variables, OUTPUT_VARIABLES_FIELD
    return schema, f"{SCHEMA_FIELD}.output.variables"


def schema_output_variables(schema: Any) -> list[list[str]]:
    """cursus's ``variable_schema.output.variables`` ([{name, type}, ...]) as [[name, type], ...], in order."""
    output = schema.get("output") if isinstance(schema, dict) else None
    listed = output.get("variables") if isinstance(output, dict) else None
    if not isinstance(listed, list):
        return []
    return [[str(item["name"]), str(item.get("type") or "TEXT").upper()]
            for item in listed if isinstance(item, dict) and item.get("name")]


def output_variables(value: Any) -> list[list[str]]:
    """The config's output variable list as [[name, type], ...]: cursus writes a {name: type} map or pairs."""
    if isinstance(value, dict):
        return [[str(k), str(v).upper()] for k, v in value.items()]
    if isinstance(value, (list, tuple)):
        pairs = []
        for item in value:
            if isinstance(item, (list, tuple)) and item:
                pairs.append([str(item[0]), str(item[1]).upper() if len(item) > 1 else "TEXT"])
            elif isinstance(item, str):
                pairs.append([item, "TEXT"])
        return pairs
    return []
