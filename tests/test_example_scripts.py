"""The bundled example: its files agree with each other, and its scripts work in their images.

The docker test runs every script in its SageMaker look-alike image by hand,
with plain mounts shaped like SageMaker's, chaining outputs the way the
service would. It proves the example independent of rtest's own runner.
"""

from __future__ import annotations

import csv
import filecmp
import importlib.util
import json
import tarfile
from pathlib import Path

import pytest
import yaml

from rtest.catalog import IMAGE_CATALOG, default_image, framework_of
from rtest.example import (
    CATEGORICAL_FIELDS,
    COLUMNS,
    LABEL_FIELD,
    NUMERIC_FIELDS,
    example_dir,
    example_paths,
    generate_example_inputs,
)
from rtest.yamltext import load_yaml

PATHS = example_paths()
SCRIPT_JOB_TYPES = {"Processing", "Training"}
ENTRY_FIELDS = ("processing_entry_point", "training_entry_point", "script_path", "inference_entry_point")
SOURCE_FIELDS = ("portable_processing_source_dir", "processing_source_dir", "source_dir", "portable_source_dir")


def unwrap(value):
    """Drop __model_type__ markers and unwrap {"__type_info__": "list", "value": [...]}."""
    if isinstance(value, dict):
        if value.get("__type_info__") == "list":
            return [unwrap(v) for v in value["value"]]
        return {k: unwrap(v) for k, v in value.items() if k != "__model_type__"}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def load_config() -> dict:
    return json.loads(PATHS.config.read_text())


def step_config(node: str) -> dict:
    config = load_config()["configuration"]
    return unwrap({**config["shared"], **config["specific"][node]})


def step_type_of(node: str) -> str:
    return load_config()["metadata"]["config_types"][node].removesuffix("Config")


def interfaces() -> dict[str, dict]:
    loaded = (load_yaml(p.read_text()) for p in sorted(PATHS.interfaces.glob("*.step.yaml")))
    return {doc["step_type"]: doc for doc in loaded}


def dag() -> dict:
    return json.loads(PATHS.dag.read_text())["dag"]


def script_nodes() -> list[str]:
    found = interfaces()
    return [n for n in dag()["nodes"] if found[step_type_of(n)]["registry"]["sagemaker_step_type"] in SCRIPT_JOB_TYPES]


def first_field(config: dict, fields: tuple[str, ...]) -> str | None:
    return next((config[f] for f in fields if config.get(f)), None)


def load_script_module(name: str):
    path = PATHS.source_root / "dockers/fraud_model/scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_csv_rows(folder: Path) -> list[dict]:
    return [row for part in sorted(folder.glob("*.csv")) for row in csv.DictReader(part.open())]


# ---------------------------------------------------------------- example inputs


def test_generated_inputs_are_deterministic(tmp_path: Path) -> None:
    first = generate_example_inputs(tmp_path / "a")
    second = generate_example_inputs(tmp_path / "b")
    other_seed = generate_example_inputs(tmp_path / "c", seed=8)

    assert set(first) == {
        "Preprocess_training.DATA",
        "Preprocess_training.SIGNATURE",
        "Preprocess_calibration.DATA",
        "Preprocess_calibration.SIGNATURE",
    }
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) == 6  # two + one data parts, two signatures, the stamp
    assert all(filecmp.cmp(tmp_path / "a" / f, tmp_path / "b" / f, shallow=False) for f in files_a)
    data_a = first["Preprocess_training.DATA"] / "part-00000.csv"
    assert data_a.read_bytes() != (other_seed["Preprocess_training.DATA"] / "part-00000.csv").read_bytes()
    assert second["Preprocess_training.DATA"] == tmp_path / "b" / "training" / "data"


def test_generated_inputs_are_written_again_only_when_edited_or_asked_differently(tmp_path: Path) -> None:
    part = generate_example_inputs(tmp_path)["Preprocess_training.DATA"] / "part-00000.csv"
    pristine, written_at = part.read_bytes(), part.stat().st_mtime_ns
    generate_example_inputs(tmp_path)
    assert part.stat().st_mtime_ns == written_at  # a rerun finds them as written: nothing to do

    part.write_text("an edit\n")
    generate_example_inputs(tmp_path)
    assert part.read_bytes() == pristine  # edited: written again, as generated

    generate_example_inputs(tmp_path, rows=400)
    assert part.read_bytes() != pristine  # other rows: other files


def test_generated_inputs_have_the_promised_shape(tmp_path: Path) -> None:
    inputs = generate_example_inputs(tmp_path, rows=600, seed=3)
    training = read_csv_rows(inputs["Preprocess_training.DATA"])
    calibration = read_csv_rows(inputs["Preprocess_calibration.DATA"])

    assert len(training) == 600 and len(calibration) == 300
    assert len(NUMERIC_FIELDS) == 10 and len(CATEGORICAL_FIELDS) == 1
    assert list(training[0]) == list(COLUMNS)
    signature = (inputs["Preprocess_training.SIGNATURE"] / "signature").read_text().strip().split(",")
    assert signature == list(COLUMNS)
    ids = {row["transaction_id"] for row in training} | {row["transaction_id"] for row in calibration}
    assert len(ids) == 900
    for row in training:
        assert row[LABEL_FIELD] in ("0", "1")
        for field in NUMERIC_FIELDS:
            if row[field] != "":
                float(row[field])


def test_label_carries_signal_the_model_can_learn(tmp_path: Path) -> None:
    rows = read_csv_rows(generate_example_inputs(tmp_path)["Preprocess_training.DATA"])

    def fraud_rate(selected: list[dict]) -> float:
        return sum(int(r[LABEL_FIELD]) for r in selected) / len(selected)

    overall = fraud_rate(rows)
    assert 0.05 < overall < 0.2
    assert fraud_rate([r for r in rows if int(r["failed_logins_24h"]) > 0]) > 1.5 * overall
    assert fraud_rate([r for r in rows if r["merchant_category"] == "grocery"]) < fraud_rate(
        [r for r in rows if r["merchant_category"] == "gaming"]
    )
    assert any(r["distance_from_home"] == "" for r in rows)


def test_too_few_rows_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rows"):
        generate_example_inputs(tmp_path, rows=5)


# ---------------------------------------------------------------- files agree


def test_paths_point_inside_the_package() -> None:
    assert PATHS.source_root == example_dir() == PATHS.config.parent
    for path in (PATHS.dag, PATHS.config, PATHS.interfaces):
        assert path.exists(), path


def test_dag_nodes_are_the_config_steps_and_every_step_has_an_interface() -> None:
    config = load_config()
    nodes = dag()["nodes"]
    assert len(nodes) == 12
    assert set(nodes) == set(config["configuration"]["specific"]) == set(config["metadata"]["config_types"])
    assert all(a in nodes and b in nodes for a, b in dag()["edges"])
    found = interfaces()
    for node in nodes:
        model_type = config["configuration"]["specific"][node]["__model_type__"]
        assert model_type == config["metadata"]["config_types"][node]
        assert step_type_of(node) in found, f"{node} has no interface"
        assert node == step_type_of(node) or node.startswith(step_type_of(node) + "_")


def test_every_interface_parses_and_has_the_keys() -> None:
    files = sorted(PATHS.interfaces.glob("*.step.yaml"))
    assert len(files) == 10
    for path in files:
        doc = yaml.safe_load(path.read_text())
        assert {"step_type", "registry", "spec"} <= set(doc), path.name
        assert set(doc["spec"]) == {"dependencies", "outputs"}, path.name
        if doc["registry"]["sagemaker_step_type"] == "RegisterModel":  # the inference check's two inputs
            assert set(doc["contract"]["inputs"]) == set(doc["spec"]["dependencies"]), path.name
            continue
        if doc["registry"]["sagemaker_step_type"] not in SCRIPT_JOB_TYPES:
            assert "contract" not in doc, path.name
            continue
        assert {"kind", "framework_version_field"} <= set(doc["compute"]), path.name
        contract = doc["contract"]
        assert {"entry_point", "inputs", "outputs", "job_arguments", "env_vars"} <= set(contract), path.name
        assert set(contract["inputs"]) == set(doc["spec"]["dependencies"]), path.name
        assert set(contract["outputs"]) == set(doc["spec"]["outputs"]), path.name
        for io in (*contract["inputs"].values(), *contract["outputs"].values()):
            assert io["path"].startswith("/opt/ml/"), path.name


def test_every_script_node_has_its_entry_point_on_disk_and_a_catalog_image() -> None:
    found = interfaces()
    nodes = script_nodes()
    assert len(nodes) == 9
    for node in nodes:
        config, interface = step_config(node), found[step_type_of(node)]
        entry, source = first_field(config, ENTRY_FIELDS), first_field(config, SOURCE_FIELDS)
        assert entry == interface["contract"]["entry_point"], node
        assert (PATHS.source_root / source / entry).is_file(), node
        version = config.get(interface["compute"]["framework_version_field"])
        assert version, f"{node} lacks {interface['compute']['framework_version_field']}"
        kind = framework_of(interface["compute"]["kind"], interface["compute"].get("sdk_class"))  # framework + SKLearn
        assert default_image(kind, str(version).removeprefix("py")) in IMAGE_CATALOG.values(), node
        for argument in interface["contract"]["job_arguments"]:
            assert config.get(argument["source"]), f"{node} lacks {argument['source']}"
        if "LABEL_FIELD" in interface["contract"]["env_vars"]["required"]:
            assert config["label_name"] == LABEL_FIELD


def test_registration_names_an_existing_handler_but_runs_no_script() -> None:
    config = step_config("Registration")
    handler = PATHS.source_root / first_field(config, SOURCE_FIELDS) / config["inference_entry_point"]
    assert handler.is_file()
    assert interfaces()["Registration"]["registry"]["sagemaker_step_type"] == "RegisterModel"
    assert "Registration" not in script_nodes()
    assert {"DataLoading_training", "DataLoading_calibration"}.isdisjoint(script_nodes())


def wire_candidates(downstream: str, dependency: str) -> tuple[str, list[tuple[str, str]]]:
    """The pipeline-inputs.md rule: name, else alias, else keyword match from a compatible producer."""
    found = interfaces()
    dep = found[step_type_of(downstream)]["spec"]["dependencies"][dependency]
    upstream = [a for a, b in dag()["edges"] if b == downstream]
    outputs = [(u, name, spec or {}) for u in upstream for name, spec in found[step_type_of(u)]["spec"]["outputs"].items()]
    by_name = [(u, n) for u, n, _ in outputs if n == dependency]
    if by_name:
        return "name", by_name
    by_alias = [(u, n) for u, n, s in outputs if dependency in s.get("aliases", [])]
    if by_alias:
        return "alias", by_alias
    keywords = set(dep.get("semantic_keywords", []))
    semantic = [
        (u, n)
        for u, n, s in outputs
        if step_type_of(u) in dep.get("compatible_sources", []) and keywords & set(s.get("semantic_keywords", []))
    ]
    return "semantic", semantic


def test_wiring_is_unambiguous_and_uses_every_match_kind() -> None:
    found = interfaces()
    kinds = set()
    for node in script_nodes():
        for dependency, spec in found[step_type_of(node)]["spec"]["dependencies"].items():
            kind, candidates = wire_candidates(node, dependency)
            assert len(candidates) <= 1, f"{node}.{dependency} is ambiguous: {candidates}"
            if spec.get("required") and candidates:
                kinds.add(kind)
            elif spec.get("required"):
                # Only DataLoading feeds no candidate here, and the user supplies that input.
                assert node.startswith("Preprocess_"), f"{node}.{dependency} is not wired"
    assert kinds == {"name", "alias", "semantic"}
    assert wire_candidates("Package", "calibration_model") == (
        "semantic",
        [("ModelCalibration_calibration", "calibration_output")],
    )
    assert wire_candidates("ModelCalibration_calibration", "evaluation_data") == (
        "alias",
        [("ModelEvaluation_calibration", "eval_output")],
    )


# ---------------------------------------------------------------- stdlib scripts on the host


def fake_model(folder: Path, *, packed: bool) -> Path:
    """A stand-in for Train's /opt/ml/model: opaque model bytes plus the real metadata shape."""
    files = folder / "files"
    files.mkdir(parents=True)
    (files / "xgboost-model").write_bytes(b"not-a-real-booster")
    meta = {"features": ["amount", "merchant_category"], "numeric_features": ["amount"],
            "categorical_features": ["merchant_category"],
            "risk_tables": {"merchant_category": {"default": 0.1, "bins": {"gaming": 0.3}}}}
    (files / "feature_columns.json").write_text(json.dumps(meta))
    if not packed:
        return files
    model_input = folder / "model_input"
    model_input.mkdir()
    with tarfile.open(model_input / "model.tar.gz", "w:gz") as tar:
        for path in files.iterdir():
            tar.add(path, arcname=path.name)
    return model_input


@pytest.mark.parametrize("packed", [True, False])
def test_package_bundles_model_calibration_and_handler(tmp_path: Path, packed: bool) -> None:
    package = load_script_module("package")
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    (calibration / "calibration_model.json").write_text('{"score_knots": [0, 1], "calibrated_values": [0, 1]}')

    archive = package.package(fake_model(tmp_path, packed=packed), calibration,
                              PATHS.source_root / "dockers/fraud_model/scripts", tmp_path / "out")

    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert names == {"xgboost-model", "feature_columns.json", "calibration/calibration_model.json",
                     "code/inference_handler.py"}


def test_package_fails_loudly_without_calibration(tmp_path: Path) -> None:
    package = load_script_module("package")
    (tmp_path / "calibration").mkdir()
    with pytest.raises(FileNotFoundError, match="calibration_model.json"):
        package.package(fake_model(tmp_path, packed=True), tmp_path / "calibration",
                        PATHS.source_root / "dockers/fraud_model/scripts", tmp_path / "out")


@pytest.mark.parametrize("packed", [True, False])
def test_payload_builds_one_sample_per_content_type(tmp_path: Path, packed: bool) -> None:
    payload = load_script_module("payload")
    out = tmp_path / "out"
    payload.build_payloads(fake_model(tmp_path, packed=packed), out, ["application/json", "text/csv"], 1.5, "N/A")

    assert json.loads((out / "payload_application_json.json").read_text()) == {"amount": 1.5, "merchant_category": "N/A"}
    assert (out / "payload_text_csv.csv").read_text() == "1.5,N/A\n"
    with tarfile.open(out / "payload.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["payload_application_json.json", "payload_text_csv.csv"]


def test_payload_refuses_unknown_content_types(monkeypatch: pytest.MonkeyPatch) -> None:
    payload = load_script_module("payload")
    monkeypatch.setenv("CONTENT_TYPES", "application/json,application/x-parquet")
    with pytest.raises(ValueError, match="CONTENT_TYPES"):
        payload.content_types_from_env()


def test_inference_handler_parses_requests_and_applies_calibration() -> None:
    handler = load_script_module("inference_handler")
    meta = {"features": ["amount", "merchant_category"], "categorical_features": ["merchant_category"],
            "risk_tables": {"merchant_category": {"default": 0.1, "bins": {"gaming": 0.3}}}}
    records = handler.input_fn(b"12.5,gaming\n", "text/csv") + handler.input_fn('{"amount": ""}', "application/json")
    assert [handler.encode(r, meta)[1] for r in records] == [0.3, 0.1]
    assert handler.encode(records[0], meta)[0] == 12.5
    table = {"score_knots": [0.2, 0.6], "calibrated_values": [0.1, 0.5]}
    assert [handler.calibrate(s, table) for s in (0.0, 0.4, 0.9)] == pytest.approx([0.1, 0.3, 0.5])
    with pytest.raises(ValueError):
        handler.input_fn("x", "application/x-parquet")


# ---------------------------------------------------------------- every script in its image, chained by hand

SKLEARN_IMAGE = IMAGE_CATALOG[("sklearn", "1.2-1")]
XGBOOST_IMAGE = IMAGE_CATALOG[("xgboost", "1.7-1")]
BASE_IMAGE = IMAGE_CATALOG[("python", "3")]
CODE = "/opt/ml/processing/input/code"
SCRIPTS_DIR = PATHS.source_root / "dockers/fraud_model/scripts"
TRAINING_DIR = PATHS.source_root / "dockers/fraud_model"
USER = "1000:1000"  # scripts must not need root, as a runner may map the host user


class Sandbox:
    """Runs one script per container, SageMaker-style, with host folders as its inputs and outputs."""

    def __init__(self, client, root: Path) -> None:
        self.client = client
        self.root = root

    def folder(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o777)
        return path

    def run(self, image: str, argv: list[str], mounts: list[tuple[Path, str, str]], env: dict[str, str],
            *, workdir: str | None = None) -> tuple[int, str]:
        container = self.client.containers.run(
            image,
            command=argv,
            entrypoint=["python3"],
            volumes=[f"{host}:{target}:{mode}" for host, target, mode in mounts],
            environment=env,
            network_mode="none",
            user=USER,
            working_dir=workdir,
            detach=True,
        )
        try:
            status = container.wait(timeout=300)
            return status["StatusCode"], container.logs().decode("utf-8", "replace")
        finally:
            container.remove(force=True)

    def processing(self, image: str, script: str, args: list[str], inputs: dict[str, Path],
                   outputs: dict[str, Path], env: dict[str, str]) -> tuple[int, str]:
        mounts = [(SCRIPTS_DIR, CODE, "ro")]
        mounts += [(host, target, "ro") for target, host in inputs.items()]
        mounts += [(host, target, "rw") for target, host in outputs.items()]
        return self.run(image, [f"{CODE}/{script}", *args], mounts, env)


def check(result: tuple[int, str], step: str) -> str:
    code, logs = result
    assert code == 0, f"{step} exited {code}:\n{logs[-4000:]}"
    return logs


def pack_model(model_dir: Path, target: Path) -> Path:
    """What SageMaker does with /opt/ml/model when a training job ends."""
    with tarfile.open(target / "model.tar.gz", "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    return target


def training_hyperparameters() -> dict:
    return step_config("Train")["hyperparameters"]


def toolkit_args(hps: dict) -> list[str]:
    """The training toolkit's `--key value` arguments, keys sorted; lists arrive as their Python repr."""
    return [part for key in sorted(hps) for part in (f"--{key}", hps[key] if isinstance(hps[key], str) else str(hps[key]))]


def run_training(box: Sandbox, splits: Path) -> tuple[Path, Path]:
    hps = training_hyperparameters()
    config_dir, model_dir, output_dir = box.folder("train/config"), box.folder("train/model"), box.folder("train/output")
    (config_dir / "hyperparameters.json").write_text(json.dumps({k: json.dumps(v) for k, v in hps.items()}))
    channels = ["train", "val", "test"]
    (config_dir / "inputdataconfig.json").write_text(
        json.dumps({c: {"TrainingInputMode": "File", "ContentType": "text/csv"} for c in channels}))
    env = {"SM_MODEL_DIR": "/opt/ml/model", "SM_OUTPUT_DATA_DIR": "/opt/ml/output/data",
           "SM_CHANNELS": json.dumps(channels), "SM_HPS": json.dumps(hps, sort_keys=True),
           "SM_CURRENT_HOST": "algo-1", "TRAINING_JOB_NAME": "example-train"}
    env.update({f"SM_CHANNEL_{c.upper()}": f"/opt/ml/input/data/{c}" for c in channels})
    mounts = [(TRAINING_DIR, "/opt/ml/code", "ro"), (config_dir, "/opt/ml/input/config", "ro"),
              (box.folder("train/meta"), "/opt/ml/output", "rw"), (output_dir, "/opt/ml/output/data", "rw"),
              (model_dir, "/opt/ml/model", "rw")]
    mounts += [(splits / c, f"/opt/ml/input/data/{c}", "ro") for c in channels]
    check(box.run(XGBOOST_IMAGE, ["/opt/ml/code/train.py", *toolkit_args(hps)], mounts, env, workdir="/opt/ml/code"),
          "Train")
    return model_dir, output_dir


@pytest.mark.docker
def test_example_scripts_run_in_their_images_chained_by_hand(docker_client, tmp_path: Path) -> None:
    present = {tag for image in docker_client.images.list() for tag in image.tags}
    missing = [i for i in (SKLEARN_IMAGE, XGBOOST_IMAGE, BASE_IMAGE) if i not in present]
    assert not missing, f"Build the look-alike images first (rtest sandbox images build); missing {missing}"
    box = Sandbox(docker_client, tmp_path / "run")
    inputs = generate_example_inputs(tmp_path / "inputs", rows=2000)
    label_env = {"LABEL_FIELD": LABEL_FIELD}

    # Preprocess, both job types (sklearn image).
    splits, calibration_data = box.folder("pre_training/out"), box.folder("pre_calibration/out")
    for job_type, out in (("training", splits), ("calibration", calibration_data)):
        node = f"Preprocess_{job_type}"
        check(box.processing(SKLEARN_IMAGE, "preprocess.py", ["--job_type", job_type],
                             {"/opt/ml/processing/input/data": inputs[f"{node}.DATA"],
                              "/opt/ml/processing/input/signature": inputs[f"{node}.SIGNATURE"]},
                             {"/opt/ml/processing/output": out},
                             {**label_env, "TRAIN_RATIO": "0.7", "TEST_VAL_RATIO": "0.5"}), node)
    split_rows = {s: len(read_csv_rows(splits / s)) for s in ("train", "val", "test")}
    assert sum(split_rows.values()) == 2000 and split_rows["train"] == 1400
    assert len(read_csv_rows(calibration_data / "calibration")) == 1000

    # Train (xgboost image, training-job layout), then pack the model as the service would.
    model_dir, train_output = run_training(box, splits)
    assert {"xgboost-model", "feature_columns.json"} <= {p.name for p in model_dir.iterdir()}
    saved_hps = json.loads((model_dir / "hyperparameters.json").read_text())
    assert saved_hps["max_depth"] == 4 and saved_hps["full_field_list"][-1] == LABEL_FIELD
    assert json.loads((train_output / "metrics.json").read_text())["test"]["auc"] > 0.75
    packed_model = pack_model(model_dir, box.folder("model_packed"))

    # Evaluate on calibration data (xgboost image), from model.tar.gz and from the unpacked folder.
    eval_out, metrics_out = box.folder("eval/out"), box.folder("eval/metrics")
    for model_input, outputs in ((packed_model, (eval_out, metrics_out)),
                                 (model_dir, (box.folder("eval2/out"), box.folder("eval2/metrics")))):
        check(box.processing(XGBOOST_IMAGE, "model_evaluation.py", ["--job_type", "calibration"],
                             {"/opt/ml/processing/input/model": model_input,
                              "/opt/ml/processing/input/eval_data": calibration_data},
                             {"/opt/ml/processing/output/eval": outputs[0],
                              "/opt/ml/processing/output/metrics": outputs[1]}, label_env), "ModelEvaluation")
    metrics = json.loads((metrics_out / "metrics.json").read_text())
    assert metrics["rows"] == 1000 and metrics["auc_roc"] > 0.75
    assert (eval_out / "eval_predictions.csv").read_bytes() == (tmp_path / "run/eval2/out/eval_predictions.csv").read_bytes()

    # Calibrate (sklearn image), with each method; the isotonic table feeds Package.
    for method in ("percentile", "isotonic"):
        calibration_out = box.folder(f"calibration_{method}/out")
        check(box.processing(SKLEARN_IMAGE, "model_calibration.py", ["--job_type", "calibration"],
                             {"/opt/ml/processing/input/eval_data": eval_out},
                             {"/opt/ml/processing/output/calibration": calibration_out},
                             {**label_env, "SCORE_FIELD": "prob_class_1", "CALIBRATION_METHOD": method}), method)
        table = json.loads((calibration_out / "calibration_model.json").read_text())
        values = table["calibrated_values"]
        assert table["method"] == method
        assert len(values) == len(table["score_knots"]) > 1 and values == sorted(values)
        assert table["score_knots"] == sorted(table["score_knots"])

    # Package and Payload (base image: stdlib only).
    package_out, payload_out = box.folder("package/out"), box.folder("payload/out")
    check(box.processing(BASE_IMAGE, "package.py", [],
                         {"/opt/ml/processing/input/model": packed_model,
                          "/opt/ml/processing/input/calibration": calibration_out},
                         {"/opt/ml/processing/output": package_out}, {}), "Package")
    with tarfile.open(package_out / "model.tar.gz") as tar:
        assert {"xgboost-model", "feature_columns.json", "calibration/calibration_model.json",
                "code/inference_handler.py"} <= set(tar.getnames())
    check(box.processing(BASE_IMAGE, "payload.py", [], {"/opt/ml/processing/input/model": packed_model},
                         {"/opt/ml/processing/output": payload_out}, {}), "Payload")
    sample = json.loads((payload_out / "payload_application_json.json").read_text())
    assert list(sample) == json.loads((model_dir / "feature_columns.json").read_text())["features"]


@pytest.mark.docker
def test_example_scripts_fail_loudly_on_bad_input(docker_client, tmp_path: Path) -> None:
    box = Sandbox(docker_client, tmp_path / "run")
    inputs = generate_example_inputs(tmp_path / "inputs", rows=100)
    code, logs = box.processing(SKLEARN_IMAGE, "preprocess.py", ["--job_type", "training"],
                                {"/opt/ml/processing/input/data": inputs["Preprocess_training.DATA"]},
                                {"/opt/ml/processing/output": box.folder("out")}, {"LABEL_FIELD": "no_such_column"})
    assert code != 0 and "no_such_column" in logs
    code, logs = box.processing(BASE_IMAGE, "payload.py", [], {"/opt/ml/processing/input/model": box.folder("empty")},
                                {"/opt/ml/processing/output": box.folder("payload")}, {})
    assert code != 0 and "model.tar.gz" in logs
    meta = box.folder("train_meta")
    code, logs = box.run(XGBOOST_IMAGE, ["/opt/ml/code/train.py", "--label_name", LABEL_FIELD],
                         [(TRAINING_DIR, "/opt/ml/code", "ro"), (box.folder("no_data"), "/opt/ml/input/data/train", "ro"),
                          (meta, "/opt/ml/output", "rw"), (box.folder("model"), "/opt/ml/model", "rw")],
                         {"SM_CHANNEL_TRAIN": "/opt/ml/input/data/train"})
    assert code != 0 and "Training failed" in logs
    assert (meta / "failure").read_text().startswith("FileNotFoundError: Channel 'train' has no .csv/.tsv files")
