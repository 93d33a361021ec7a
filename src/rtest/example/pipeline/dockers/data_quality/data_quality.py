"""Row counts and fraud rate per split of the preprocessed data.

Like many real pipeline scripts, it installs a pinned package at import time, from a private index
when USE_SECURE_PYPI is true. Under rtest the pin is found by reading this file, installed into the
step's dependency image beforehand, and pip finds it already satisfied: no network needed.
"""

import csv
import os
import subprocess
import sys
from pathlib import Path

USE_SECURE_PYPI = os.environ.get("USE_SECURE_PYPI", "false").lower() == "true"


def install_packages(packages, use_secure=USE_SECURE_PYPI):
    command = [sys.executable, "-m", "pip", "install", *packages]
    if use_secure:
        command += ["--index-url", os.environ.get("SECURE_PYPI_URL", "https://pypi.example.internal/simple")]
    subprocess.check_call(command)


install_packages(["rtest-demo-report==0.1.0"])

from rtest_demo_report import markdown_table  # noqa: E402 - installed just above

DATA_DIR = Path("/opt/ml/processing/input/data")
OUTPUT_DIR = Path("/opt/ml/processing/output/quality")


def split_stats(label_field: str) -> list:
    rows = []
    for split in sorted(p for p in DATA_DIR.iterdir() if p.is_dir()):
        labels = []
        for part in sorted(split.glob("*.csv")):
            with open(part, newline="") as handle:
                labels += [row[label_field] for row in csv.DictReader(handle)]
        if not labels:
            raise ValueError(f"split {split.name} has no rows with column {label_field}")
        rows.append(
            {"split": split.name, "rows": len(labels), "fraud_rate": sum(v == "1" for v in labels) / len(labels)}
        )
    if not rows:
        raise ValueError(f"no split folders under {DATA_DIR}")
    return rows


if __name__ == "__main__":
    stats = split_stats(os.environ["LABEL_FIELD"])
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUTPUT_DIR / "quality.md").write_text(markdown_table(stats, ["split", "rows", "fraud_rate"]))
    print(markdown_table(stats, ["split", "rows", "fraud_rate"]))
