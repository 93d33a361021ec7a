"""Turn the evaluation metrics into a Markdown report (needs rtest-demo-report, from requirements.txt)."""

import argparse
import json
from pathlib import Path

from rtest_demo_report import __version__, markdown_table

METRICS_DIR = Path("/opt/ml/processing/input/metrics")
REPORT_DIR = Path("/opt/ml/processing/output/report")


def build_report(metrics: dict, job_type: str) -> str:
    rows = [
        {"metric": name, "value": value} for name, value in sorted(metrics.items()) if isinstance(value, (int, float))
    ]
    if not rows:
        raise ValueError(f"no numeric metrics in {METRICS_DIR / 'metrics.json'}; got keys {sorted(metrics)}")
    return f"# Model metrics ({job_type})\n\n" + markdown_table(rows, ["metric", "value"])


def main(job_type: str) -> None:
    metrics = json.loads((METRICS_DIR / "metrics.json").read_text())
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    (REPORT_DIR / "report.md").write_text(build_report(metrics, job_type))
    print(f"report written with rtest-demo-report {__version__}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--job_type", required=True)
    main(parser.parse_args().job_type)
