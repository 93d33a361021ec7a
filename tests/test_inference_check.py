"""The inference check's container side (executor/inference_check.py), run through the bootstrap on the host.

A stand-in /opt/ml (RTEST_OPT_ML) holds the model input (a real model.tar.gz), the payload input
and the check's config; each handler below defines all, some or none of the toolkit's functions.
The toolkit's defaults are run with numpy (the test extra installs it, as the serving images have it)
and as in an image without it (a shadow package that fails to import).
"""

from __future__ import annotations

import ast
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

EXECUTOR = Path(__file__).resolve().parents[1] / "executor"
BOOTSTRAP = EXECUTOR / "bootstrap.py"

ALL_FOUR = '''
import csv, io, json

def model_fn(model_dir):
    with open(model_dir + "/weights.json") as handle:
        return json.load(handle)

def input_fn(body, content_type):
    if content_type == "application/json":
        return [json.loads(body)]
    if content_type == "text/csv":
        return [dict(zip(["a", "b"], map(float, row))) for row in csv.reader(io.StringIO(body)) if row]
    raise ValueError("unsupported content type " + content_type)

def predict_fn(records, model):
    return [{"score": model["w"] * r["a"], "label": "high" if r["b"] > 1 else "low"} for r in records]

def output_fn(prediction, accept):
    if accept == "application/json":
        return json.dumps({"predictions": prediction}), accept
    if accept == "text/csv":
        return "".join("%s,%s\\n" % (p["score"], p["label"]) for p in prediction), accept
    raise ValueError("unsupported accept " + accept)
'''
OUTPUTS = [["score", "NUMERIC"], ["label", "TEXT"]]


CHECK_FILES = ("inference_check.py", "toolkit_defaults.py", "answer_check.py")


@pytest.mark.parametrize("name", CHECK_FILES)
def test_the_check_runs_in_any_image_python_3_8_and_the_standard_library(name):
    text = (EXECUTOR / name).read_text()
    tree = ast.parse(text, feature_version=(3, 8))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    siblings = {Path(f).stem for f in CHECK_FILES}
    optional = {"numpy"} if name == "toolkit_defaults.py" else set()  # imported under try: the image may lack it
    assert imported and imported <= set(sys.stdlib_module_names) | siblings | optional, imported
    for api in ("removeprefix", "removesuffix", "functools.cache(", "zoneinfo", "list[", "dict[", "tuple["):
        assert api not in text, api


class CheckJob:
    """A temp folder laid out as the inference check's container sees it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ml = root / "ml"
        self.model_input, self.payloads = root / "in" / "model", root / "in" / "payload"
        self.source = root / "source"
        for folder in (self.model_input, self.payloads, self.source, self.ml / "output", self.ml / "model"):
            folder.mkdir(parents=True)
        self.config = root / "inferencecheck.json"
        self.config.write_text(json.dumps({
            "model_inputs": [str(self.model_input)], "payload_inputs": [str(self.payloads)],
            "model_dir": str(self.ml / "model"), "results": str(self.ml / "output" / "inference_check.json")}))
        self.log = root / "log.txt"
        self.log.touch()

    def package(self, handler: str | None, files: dict[str, str] | None = None) -> None:
        """model.tar.gz with weights.json, and the handler under code/ (None: the archive has no code/)."""
        members = {"weights.json": json.dumps({"w": 2.0}), **(files or {})}
        if handler is not None:
            members["code/handler.py"] = handler
        with tarfile.open(self.model_input / "model.tar.gz", "w:gz") as tar:
            for name, text in members.items():
                data = text.encode()
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))

    def environment(self, *, content_types="application/json,text/csv", accepts="application/json",
                    outputs=OUTPUTS) -> dict[str, str]:
        """What rtest's layout gives the bootstrap, with the check's paths under this folder."""
        (self.source / "handler.py").exists() or (self.source / "handler.py").write_text(ALL_FOUR)
        return {"RTEST_JOB_KIND": "inference-check", "RTEST_OPT_ML": str(self.ml),
                "RTEST_ENTRY_POINT": str(self.source / "handler.py"), "RTEST_LOG": str(self.log),
                "RTEST_META_DIR": str(self.root / "meta"), "RTEST_INFERENCE_CONFIG": str(self.config),
                "SAGEMAKER_PROGRAM": "handler.py", "RTEST_INFERENCE_CONTENT_TYPES": content_types,
                "RTEST_INFERENCE_ACCEPT_TYPES": accepts, "RTEST_INFERENCE_OUTPUTS": json.dumps(outputs)}

    def run(self, numpy: bool = True, **settings) -> tuple[int, dict, str]:
        """``numpy=False``: as in an image without numpy (a shadow package that fails to import); the test extra
        installs numpy on the host."""
        env = {**os.environ, **self.environment(**settings)}
        if numpy is False:
            shadow = self.root / "no-numpy" / "numpy"
            shadow.mkdir(parents=True, exist_ok=True)
            (shadow / "__init__.py").write_text("raise ImportError('no numpy in this image')\n")
            env["PYTHONPATH"] = str(shadow.parent)
        code = subprocess.run([sys.executable, str(BOOTSTRAP)], env=env, timeout=60).returncode
        results = json.loads((self.ml / "output" / "inference_check.json").read_text())
        failure = self.ml / "output" / "failure"
        return code, results, failure.read_text() if failure.exists() else ""


@pytest.fixture
def job(tmp_path) -> CheckJob:
    made = CheckJob(tmp_path)
    (made.payloads / "sample.json").write_text(json.dumps({"a": 1.5, "b": 2}))
    (made.payloads / "sample.csv").write_text("1.5,2\n")
    return made


def test_a_handler_with_all_four_functions_answers_every_sample(job):
    job.package(ALL_FOUR)
    code, results, failure = job.run()
    assert code == 0 and failure == "", job.log.read_text()
    assert results["model_loaded"] and results["handler_from"] == "archive"
    assert set(results["functions"].values()) == {"handler"}
    assert [(s["file"], s["content_type"], s["status"]) for s in results["samples"]] == [
        ("sample.csv", "text/csv", "answered"), ("sample.json", "application/json", "answered")]
    assert all(s["latency_ms"] > 0 for s in results["samples"])
    assert (job.ml / "model" / "code" / "handler.py").read_text() == ALL_FOUR  # hosting's layout


def test_each_sample_goes_with_each_accept_type(job):
    job.package(ALL_FOUR)
    code, results, _ = job.run(accepts="application/json,text/csv")
    assert code == 0, job.log.read_text()
    assert sorted((s["file"], s["accept"]) for s in results["samples"]) == [
        ("sample.csv", "application/json"), ("sample.csv", "text/csv"),
        ("sample.json", "application/json"), ("sample.json", "text/csv")]


def test_an_input_fn_that_raises_for_csv_fails_that_sample_with_its_exception_line(job):
    job.package(ALL_FOUR.replace('    if content_type == "text/csv":',
                                 '    if content_type == "text/csv":\n        raise ValueError("CSV rows are not read")'))
    code, results, failure = job.run()
    assert code == 1
    by_file = {s["file"]: s for s in results["samples"]}
    assert by_file["sample.json"]["status"] == "answered"
    sentence = by_file["sample.csv"]["failure"]
    assert sentence == ("sample sample.csv (text/csv -> application/json): input_fn raised ValueError: "
                        "CSV rows are not read (handler.py line 12)")
    assert failure.splitlines()[0] == f"inference check: {sentence}"
    assert "Traceback" in job.log.read_text()  # the whole story stays in the log


def test_a_missing_output_variable_is_named(job):
    job.package(ALL_FOUR)
    code, results, failure = job.run(outputs=OUTPUTS + [["calibrated-score", "NUMERIC"]])
    assert code == 1
    assert results["samples"][0]["failure"] == (
        "sample sample.csv (text/csv -> application/json): output variable 'calibrated-score' is missing from the "
        "answer (it has: label, score)")
    assert "output variable 'calibrated-score' is missing" in failure.splitlines()[0]


def test_a_wrongly_typed_output_variable_and_a_wrong_response_type_are_failures(job):
    job.package(ALL_FOUR.replace('"high" if r["b"] > 1 else "low"', '{"nested": 1}')
                .replace("), accept\n    if accept == \"text/csv\"", "), \"text/csv\"\n    if accept == \"text/csv\""))
    code, results, _ = job.run(content_types="application/json", outputs=[["label", "TEXT"]])
    assert code == 1
    assert results["samples"][-1]["failure"].endswith("the answer's content type is text/csv, not the configured "
                                                     "application/json")
    job.package(ALL_FOUR.replace('"high" if r["b"] > 1 else "low"', '{"nested": 1}'))
    code, results, _ = job.run(content_types="application/json", outputs=[["label", "TEXT"], ["score", "NUMERIC"]])
    assert results["samples"][-1]["failure"].endswith("output variable 'label' is a dict, not TEXT")


def test_a_headerless_csv_answer_is_read_in_the_configured_order(job):
    """ALL_FOUR answers CSV as score,label with no header: each column is the variable at that place."""
    job.package(ALL_FOUR)
    code, results, _ = job.run(accepts="text/csv")
    assert code == 0 and {s["status"] for s in results["samples"]} == {"answered"}, job.log.read_text()
    code, results, _ = job.run(accepts="text/csv", outputs=[["label", "TEXT"], ["score", "NUMERIC"]])
    assert code == 1
    assert results["samples"][0]["failure"] == (
        "sample sample.csv (text/csv -> text/csv): output variable 'score' is 'high', not NUMERIC "
        "(CSV column 2 of 2, in the configured order: label, score)")


@pytest.mark.parametrize("numpy", [True, False], ids=["with numpy", "an image without numpy"])
def test_some_functions_the_toolkit_defaults_fill_in_the_rest(job, numpy):
    """model_fn and predict_fn only: the default input_fn decodes JSON, the default output_fn encodes JSON."""
    job.package("def model_fn(model_dir):\n    return 3\n\n"
                "def predict_fn(data, model):\n"
                "    record = data.tolist() if hasattr(data, 'tolist') else data  # numpy's 0-d array of the dict\n"
                "    print('input_fn gave a', type(data).__name__)\n"
                "    return [{'score': model * record['a']}]\n")
    code, results, failure = job.run(content_types="application/json", outputs=[["score", "NUMERIC"]],
                                     numpy=numpy)
    assert code == 0, failure + job.log.read_text()
    assert results["functions"] == {"model_fn": "handler", "predict_fn": "handler",
                                    "input_fn": "toolkit default", "output_fn": "toolkit default"}
    assert [(s["file"], s["status"]) for s in results["samples"]] == [("sample.csv", "not-sent"),
                                                                      ("sample.json", "answered")]
    assert f"input_fn gave a {'ndarray' if numpy else 'dict'}" in job.log.read_text()


def test_a_handler_with_none_of_the_four_fails_where_the_toolkit_has_no_default(job):
    job.package("VERSION = 1\n")
    code, results, failure = job.run()
    assert code == 1 and not results["model_loaded"] and results["samples"] == []
    assert set(results["functions"].values()) == {"toolkit default"}
    assert failure.startswith("inference check: model_fn raised NotImplementedError: Please provide a model_fn "
                              "implementation (the toolkit has no default).")


def test_no_predict_fn_fails_every_sample_with_the_toolkits_words(job):
    job.package("def model_fn(model_dir):\n    return None\n")
    code, results, _ = job.run(content_types="application/json")
    assert code == 1
    json_sample = next(s for s in results["samples"] if s["file"] == "sample.json")
    assert "predict_fn raised NotImplementedError: Please provide a predict_fn implementation" in json_sample["failure"]
    csv_sample = next(s for s in results["samples"] if s["file"] == "sample.csv")
    assert csv_sample["status"] == "not-sent"  # text/csv is not configured here: not sent, not a failure


def test_transform_fn_alone_serves_and_may_take_the_context(job):
    job.package("import json\ndef model_fn(model_dir, context):\n    return 1\n\n"
                "def transform_fn(model, body, content_type, accept):\n"
                "    return json.dumps([{'score': model, 'label': content_type}]), accept\n")
    code, results, failure = job.run()
    assert code == 0, failure
    assert results["functions"]["transform_fn"] == "handler"


def test_transform_fn_with_input_fn_is_refused_as_the_toolkit_does(job):
    job.package("def transform_fn(m, b, c, a):\n    return b\n\ndef input_fn(b, c):\n    return b\n")
    code, _, failure = job.run()
    assert code == 1
    assert failure.startswith("inference check: importing handler.py raised ValueError: Cannot use transform_fn "
                              "implementation in conjunction with input_fn")


def test_a_handler_missing_from_the_archive_comes_from_its_source_folder(job):
    job.package(None)
    code, results, _ = job.run()
    assert code == 0, job.log.read_text()
    assert results["handler_from"] == "source folder (the archive has no code/handler.py)"


def test_payloads_packed_in_an_archive_are_unpacked(job):
    job.package(ALL_FOUR)
    with tarfile.open(job.payloads / "payload.tar.gz", "w:gz") as tar:
        for sample in sorted(job.payloads.glob("sample.*")):
            tar.add(sample, arcname=sample.name)
            sample.unlink()
    code, results, _ = job.run()
    assert code == 0, job.log.read_text()
    assert sorted(s["file"] for s in results["samples"]) == ["sample.csv", "sample.json"]


def test_no_payload_sample_and_an_unsafe_archive_are_sentences(job):
    job.package(ALL_FOUR)
    for sample in job.payloads.iterdir():
        sample.unlink()
    code, _, failure = job.run()
    assert code == 1 and failure.startswith("inference check: no payload sample: the payload input holds no sample")
    job.package(ALL_FOUR, files={"../escape.txt": "x"})
    code, _, failure = job.run()
    assert code == 1 and "holds a member outside the archive: ../escape.txt" in failure
