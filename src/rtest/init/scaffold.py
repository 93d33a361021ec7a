"""`rtest init --new DIR`: the smallest pipeline that runs, for someone starting from nothing.

Two processing steps (Prepare -> Summarize) with stdlib-only scripts, their interfaces, a cursus-style
config, a DAG, a small CSV and a spec file that feeds it; every file is short enough to read in a minute
and shows one of the three formats the README describes.
"""

from __future__ import annotations

import json
from pathlib import Path

from rtest.errors import PlanError

DAG = {"nodes": ["Prepare", "Summarize"], "edges": [["Prepare", "Summarize"]]}

SHARED = {"pipeline_name": "my-first-pipeline", "source_dir": "scripts", "label_field": "label"}


def _step(config_class: str, entry_point: str) -> dict:
    return {"__model_type__": config_class, "processing_source_dir": "scripts", "processing_entry_point": entry_point,
            "processing_framework_version": "1.2-1", "processing_instance_type_small": "ml.m5.large",
            "processing_instance_count": 1}


CONFIG = {
    "configuration": {
        "shared": SHARED,
        "specific": {"Prepare": {**_step("PrepareConfig", "prepare.py"), "min_value": 0},
                     "Summarize": _step("SummarizeConfig", "summarize.py")},
    },
    "metadata": {"config_types": {"Prepare": "PrepareConfig", "Summarize": "SummarizeConfig"}},
}

PREPARE_INTERFACE = """\
step_type: Prepare                 # matches the config class PrepareConfig
registry: {sagemaker_step_type: Processing}
compute: {kind: sklearn, framework_version_field: processing_framework_version}
contract:
  entry_point: prepare.py
  inputs:
    DATA: {path: /opt/ml/processing/input/data, required: true}
  outputs:
    prepared: {path: /opt/ml/processing/output/prepared}
  env_vars:
    required: [LABEL_FIELD]          # the value: the config field label_field
    optional: {MIN_VALUE: "0"}        # the config field min_value, else this default
spec:
  outputs:
    prepared: {aliases: [clean_data]}  # other names a consumer's input may use for this output
"""

SUMMARIZE_INTERFACE = """\
step_type: Summarize
registry: {sagemaker_step_type: Processing}
compute: {kind: sklearn, framework_version_field: processing_framework_version}
contract:
  entry_point: summarize.py
  inputs:
    prepared: {path: /opt/ml/processing/input/prepared, required: true}   # wired from Prepare by name
  outputs:
    summary: {path: /opt/ml/processing/output/summary}
spec:
  dependencies:
    prepared: {required: true, compatible_sources: [Prepare]}
"""

PREPARE_SCRIPT = '''\
"""Keep the rows whose value is at least MIN_VALUE; SageMaker mounts the input and output folders."""
import csv
import os
from pathlib import Path

source = Path("/opt/ml/processing/input/data")
target = Path("/opt/ml/processing/output/prepared")
label, minimum = os.environ["LABEL_FIELD"], float(os.environ.get("MIN_VALUE", "0"))
kept = []
for path in sorted(source.glob("*.csv")):
    with open(path, newline="") as handle:
        kept += [row for row in csv.DictReader(handle) if float(row["value"]) >= minimum]
if not kept:
    raise SystemExit(f"no rows in {source} with value >= {minimum}")
target.mkdir(parents=True, exist_ok=True)
with open(target / "prepared.csv", "w", newline="") as handle:
    writer = csv.DictWriter(handle, fieldnames=list(kept[0]))
    writer.writeheader()
    writer.writerows(kept)
print(f"kept {len(kept)} rows; label column {label}")
'''

SUMMARIZE_SCRIPT = '''\
"""Count the prepared rows per label and write a summary JSON."""
import csv
import json
from collections import Counter
from pathlib import Path

rows = list(csv.DictReader(open("/opt/ml/processing/input/prepared/prepared.csv", newline="")))
summary = {"rows": len(rows), "labels": dict(Counter(row["label"] for row in rows))}
target = Path("/opt/ml/processing/output/summary")
target.mkdir(parents=True, exist_ok=True)
(target / "summary.json").write_text(json.dumps(summary, indent=2))
print(json.dumps(summary))
'''

SAMPLE = "id,value,label\n" + "".join(f"{i},{(i * 7) % 10 - 2},{i % 2}\n" for i in range(1, 41))

SPEC = """\
# rtest sandbox run --spec rtest-spec.yaml   (paths are relative to this file)
version: 1
pipeline: {dag: dag.json, config: config.json, interfaces: [interfaces], source_root: .}
scripts:
  Prepare:
    inputs: {DATA: data}               # the one thing no config knows: sample data
"""

FILES = {
    "dag.json": json.dumps(DAG, indent=2) + "\n",
    "config.json": json.dumps(CONFIG, indent=2) + "\n",
    "interfaces/prepare.step.yaml": PREPARE_INTERFACE,
    "interfaces/summarize.step.yaml": SUMMARIZE_INTERFACE,
    "scripts/prepare.py": PREPARE_SCRIPT,
    "scripts/summarize.py": SUMMARIZE_SCRIPT,
    "data/sample.csv": SAMPLE,
    "rtest-spec.yaml": SPEC,
}


def scaffold(target: Path) -> list[Path]:
    """Write the pipeline into ``target`` (new or empty); returns the files written."""
    target = Path(target)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise PlanError(f"{target} already exists and is not an empty folder; `rtest init --new` only writes into a "
                        "new or empty folder.", hint="Pick another name, or run `rtest init` in it instead.")
    written = []
    for relative, text in FILES.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
