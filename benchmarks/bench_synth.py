"""Time to synthesize a loader's input (issue 19): schema, generation and writing, per format.

Goal: 100,000 rows of atoz's schema (72 columns: 60 numeric, 8 string, 2 dates, label, id; Parquet in two
shards) written in under 2 s. By default the schema is an atoz-shaped loader config built here (the same
column counts and kinds); ``--config PATH --loader NODE [--source-dir DIR]`` reads a real one instead.
Prints figures side by side; asserts nothing.

    python benchmarks/bench_synth.py [--rows 100000] [--repeat 3] [--config ... --loader ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from rtest.inputs.config import load_pipeline_config
from rtest.synth.generate import generate_table
from rtest.synth.hints import gather_hints
from rtest.synth.schema import derive_schema
from rtest.synth.write import write_dataset


def atoz_shaped_config(folder: Path) -> Path:
    numeric = [f"Abuse.source_{i // 6}.n_feature_{i}_last_365_days" for i in range(60)]
    strings = ["PAYMETH", "claim_reason", "claimantInfo_status", "shipments_status", "abuse_type",
               "concession_type", "marketplace_id", "objectId"]
    names = numeric + strings + ["transactionDate", "tag_date", "is_abuse", "order_id"]
    loader = {"__model_type__": "CradleDataLoadingConfig", "job_type": "training",
              "data_sources_spec": {"start_date": "2025-01-01T00:00:00", "end_date": "2025-04-17T00:00:00",
                                    "data_sources": [{"mds_data_source_properties": {"output_schema": [
                                        {"field_name": n, "field_type": "STRING"} for n in names]}}]},
              "output_spec": {"output_schema": sorted(names), "output_format": "PARQUET",
                              "include_header_in_s3_output": True, "output_file_count": 0,
                              "keep_dot_in_output_schema": False}}
    train = {"__model_type__": "XGBoostTrainingConfig",
             "hyperparameters": {"tab_field_list": numeric, "cat_field_list": strings[:4], "label_name": "is_abuse",
                                 "id_name": "order_id", "multiclass_categories": [0, 1]}}
    path = folder / "config.json"
    path.write_text(json.dumps({"configuration": {"shared": {}, "specific": {
        "CradleDataLoading_training": loader, "XGBoostTraining": train}}}))
    return path


def timed(call, repeat: int) -> tuple[float, object]:
    runs, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--loader", default="CradleDataLoading_training")
    parser.add_argument("--source-dir", type=Path, action="append", default=[])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = load_pipeline_config(args.config or atoz_shaped_config(Path(tmp)))
        derive_s, schema = timed(lambda: derive_schema(config.step_config(args.loader),
                                                       gather_hints(config, config.step_names(), args.source_dir)),
                                 args.repeat)
        kinds = {k: sum(c.kind == k for c in schema.columns) for k in ("numeric", "categorical", "date", "label", "id")}
        print(f"schema: {len(schema.columns)} columns {kinds}, {schema.file_format}, {schema.shards} shards "
              f"({'given config' if args.config else 'atoz-shaped config'}); derived in {derive_s * 1000:.1f} ms")
        print(f"{'format':<8} {'rows':>8} {'generate s':>11} {'write s':>8} {'total s':>8} {'MB':>6}  goal")
        for fmt in ("parquet", "csv", "json"):
            schema.file_format = fmt
            rows = args.rows if fmt != "json" else args.rows // 10  # JSON lines are written row by row
            gen_s, table = timed(lambda: generate_table(schema, rows, 1), args.repeat)  # noqa: B023 - runs now
            out = Path(tmp) / fmt
            write_s, _ = timed(lambda: write_dataset(schema, table, out, 1), args.repeat)  # noqa: B023 - runs now
            size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
            goal = "< 2 s (issue 19)" if fmt == "parquet" and rows == 100_000 else ""
            print(f"{fmt:<8} {rows:>8} {gen_s:>11.2f} {write_s:>8.2f} {gen_s + write_s:>8.2f} {size:>6.1f}  {goal}")


if __name__ == "__main__":
    main()
