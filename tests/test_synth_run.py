"""A real container run on synthesized inputs (issue 19): the step reads exactly the rows written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines import write_pipeline
from rtest import InteractiveRuntimeTestingFactory
from rtest.synth.apply import SynthOptions
from test_synth import TRAIN_HYPER, loader_config

pytestmark = pytest.mark.docker

COUNTING_PREPROCESS = """\
import glob, os
import pandas as pd
shards = sorted(glob.glob('/opt/ml/processing/input/data/part-*.parquet'))
frame = pd.concat([pd.read_parquet(p) for p in shards]) if shards else pd.read_csv(
    glob.glob('/opt/ml/processing/input/data/*.csv')[0])
signature = glob.glob('/opt/ml/processing/input/signature/*')
columns = open(signature[0]).read().split(',') if signature else []
os.makedirs('/opt/ml/processing/output/train', exist_ok=True)
with open('/opt/ml/processing/output/train/seen.txt', 'w') as out:
    out.write(f"{len(frame)} {len(shards)} {columns == list(frame.columns)} {sorted(frame['is_abuse'].unique())}")
"""


def test_factory_run_reads_every_synthesized_row_once(tmp_path: Path):
    paths = write_pipeline(tmp_path, extra_specific={"DataLoading_training": loader_config(shards=3),
                                                     "Train": {"hyperparameters": TRAIN_HYPER}})
    config = json.loads(paths["config"].read_text())
    config["configuration"]["shared"].update(label_name="is_abuse", label_field="is_abuse")
    paths["config"].write_text(json.dumps(config))
    (tmp_path / "code" / "scripts" / "preprocess.py").write_text(COUNTING_PREPROCESS)
    factory = InteractiveRuntimeTestingFactory(paths["dag"], paths["config"], interface_dirs=[paths["interfaces"]],
                                               workspace_dir=tmp_path / ".rtest", source_root=tmp_path)
    factory.configure_script_testing("Preprocess_calibration", expected_inputs={"DATA": paths["data"]})
    outcome = factory.execute_dag_guided_testing(synthesize_inputs=SynthOptions(rows=900, seed=3), deps=False,
                                                 network="none")
    results = outcome["script_results"]
    assert results["Preprocess_training"]["status"] == "succeeded", results["Preprocess_training"]
    seen = Path(results["Preprocess_training"]["outputs"]["processed_data"]) / "train" / "seen.txt"
    assert seen.read_text() == "900 3 True [0, 1]"
    report = json.loads((Path(outcome["run_dir"]) / "report.json").read_text())
    assert {(s["node"], s["input"]) for s in report["synthesized_inputs"]} == {
        ("Preprocess_training", "DATA"), ("Preprocess_training", "SIGNATURE")}
    assert "Synthesized inputs (2)" in (Path(outcome["run_dir"]) / "report.html").read_text()
