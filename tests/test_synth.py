"""Synthesized sample inputs (issue 19) from framework-shaped loader configs written here (no cursus files)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pipelines import raised_message, write_pipeline
from rtest.errors import PlanError
from rtest.plan.builder import draft_plan, load_pipeline_inputs
from rtest.plan.userspec import UserSpec, parse_input_flags
from rtest.synth.apply import SynthOptions, build_synthesized_plan, synthesize_pending_inputs

FIELDS = ["Abuse.n_claims", "Abuse.n_refunds", "amount", "PAYMETH", "tag_date", "is_abuse", "order_id"]


def loader_config(fmt: str = "PARQUET", *, keep_dot: bool = False, shards: int = 3, header: bool = True,
                  schema: list[str] | None = FIELDS) -> dict:
    """A DataLoading step in the shape the framework serializes a Cradle loading config."""
    types = [{"field_name": n, "field_type": "STRING"} for n in FIELDS]
    return {
        "data_sources_spec": {"__model_type__": "DataSourcesSpecificationConfig",
                              "start_date": "2025-01-01T00:00:00", "end_date": "2025-02-01T00:00:00",
                              "data_sources": {"__type_info__": "list", "value": [
                                  {"__model_type__": "DataSourceConfig", "data_source_name": "RAW",
                                   "mds_data_source_properties": {"output_schema": types if schema else []}}]}},
        "output_spec": {"__model_type__": "OutputSpecificationConfig", "output_schema": schema or [],
                        "output_format": fmt, "include_header_in_s3_output": header, "output_file_count": shards,
                        "keep_dot_in_output_schema": keep_dot},
    }


TRAIN_HYPER = {"tab_field_list": "['Abuse.n_claims', 'Abuse.n_refunds', 'amount']", "cat_field_list": ["PAYMETH"],
               "label_name": "is_abuse", "id_name": "order_id", "is_binary": True}


def planned(tmp_path: Path, loader: dict, hyper: dict | None = None, user: UserSpec | None = None,
            rows: int = 600, seed: int = 7):
    paths = write_pipeline(tmp_path, extra_specific={"DataLoading_training": loader,
                                                     "Train": {"hyperparameters": hyper or TRAIN_HYPER}})
    config = json.loads(paths["config"].read_text())
    config["configuration"]["shared"].update(label_name="is_abuse", label_field="is_abuse")
    paths["config"].write_text(json.dumps(config))
    inputs = load_pipeline_inputs(paths["dag"], paths["config"], [paths["interfaces"]], tmp_path)
    calibration = parse_input_flags([f"Preprocess_calibration.DATA={paths['data']}"])  # no loader feeds it here
    return build_synthesized_plan(inputs, calibration.merged_with(user or UserSpec()), tmp_path / "work", SynthOptions(rows=rows, seed=seed))


def _read_parquet(path: Path):
    import pyarrow.parquet as pq  # here, not at the top: collecting this module on every worker should not pay for it

    return pq.read_table(path)


def _csv():
    import pyarrow.csv as pcsv

    return pcsv


def data_of(plan) -> Path:
    return Path(next(s.path for s in plan.synthesized if s.input == "DATA"))


def test_parquet_shards_named_as_the_service_names_them_hold_exactly_the_rows(tmp_path):
    plan = planned(tmp_path, loader_config())
    shards = sorted(data_of(plan).iterdir())
    assert [p.name[:11] for p in shards] == ["part-00000-", "part-00001-", "part-00002-"]
    assert all(p.name.endswith("-c000.parquet") and ".snappy." not in p.name for p in shards)
    table = _read_parquet(data_of(plan))
    assert table.num_rows == 600
    assert table.column_names == [n.replace(".", "__DOT__") for n in FIELDS]
    assert str(table.schema.field("Abuse__DOT__n_claims").type) == "double"  # refined by tab_field_list
    assert set(table.column("is_abuse").to_pylist()) == {0, 1}
    ids = table.column("order_id").to_pylist()
    assert len(set(ids)) == len(ids)
    assert all("2025-01-01" <= d <= "2025-02-01" for d in table.column("tag_date").to_pylist())
    spec = plan.scripts["Preprocess_training"].inputs["DATA"].host_path
    assert spec.source.value == "synthesized" and spec.field == "DataLoading_training.DATA"


def test_signature_and_metadata_as_the_framework_loader_writes_them(tmp_path):
    plan = planned(tmp_path, loader_config())
    signature = Path(next(s.path for s in plan.synthesized if s.input == "SIGNATURE")) / "signature"
    assert signature.read_text() == ",".join(n.replace(".", "__DOT__") for n in FIELDS)
    metadata = json.loads((data_of(plan).parent / "metadata" / "metadata").read_text())
    assert metadata["data_info"]["total_rows"] == 600 and metadata["data_info"]["total_columns"] == len(FIELDS)
    assert metadata["column_info"]["amount"]["data_type"] == "float64"
    assert metadata["column_info"]["order_id"]["unique_count"] == 600


def test_keep_dot_true_keeps_the_dots(tmp_path):
    table = _read_parquet(data_of(planned(tmp_path, loader_config(keep_dot=True))))
    assert "Abuse.n_claims" in table.column_names


@pytest.mark.parametrize("header", [True, False])
def test_csv_with_and_without_header(tmp_path, header):
    folder = data_of(planned(tmp_path, loader_config("CSV", header=header, shards=2)))
    first = sorted(folder.iterdir())[0]
    assert first.name.endswith("-c000.csv")
    line = first.read_text().splitlines()[0]
    assert line.startswith('"Abuse__DOT__n_claims"') == header
    names = [n.replace(".", "__DOT__") for n in FIELDS]
    options = _csv().ReadOptions(column_names=None if header else names)
    assert sum(_csv().read_csv(p, read_options=options).num_rows for p in folder.iterdir()) == 600


def test_json_lines(tmp_path):
    folder = data_of(planned(tmp_path, loader_config("JSON", shards=1)))
    lines = next(folder.iterdir()).read_text().splitlines()
    assert len(lines) == 600 and json.loads(lines[0])["order_id"]


def test_label_carries_a_signal_a_model_can_learn(tmp_path):
    table = _read_parquet(data_of(planned(tmp_path, loader_config(), rows=3000)))
    label, feature = table.column("is_abuse").to_pylist(), table.column("Abuse__DOT__n_claims").to_pylist()
    pairs = [(f, y) for f, y in zip(feature, label) if f is not None]
    ranked = sorted(pairs)
    positives = sum(y for _, y in pairs)
    rank_sum = sum(i + 1 for i, (_, y) in enumerate(ranked) if y == 1)
    auc = (rank_sum - positives * (positives + 1) / 2) / (positives * (len(pairs) - positives))
    assert auc > 0.65, auc
    assert 0.15 < positives / len(pairs) < 0.5


def test_multiclass_labels_take_every_category(tmp_path):
    hyper = {**TRAIN_HYPER, "is_binary": False, "multiclass_categories": ["low", "mid", "high", "severe"]}
    plan = planned(tmp_path, loader_config(), hyper, rows=400)
    labels = _read_parquet(data_of(plan)).column("is_abuse").to_pylist()
    assert {label: labels.count(label) >= 20 for label in ["low", "mid", "high", "severe"]} == \
        dict.fromkeys(["low", "mid", "high", "severe"], True)
    assert "Train:hyperparameters.multiclass_categories" in plan.synthesized[0].fields


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    def digest(folder: Path) -> str:
        return hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in sorted(folder.iterdir()))).hexdigest()

    first = data_of(planned(tmp_path / "a", loader_config()))
    again = data_of(planned(tmp_path / "b", loader_config()))
    other = data_of(planned(tmp_path / "c", loader_config(), seed=8))
    assert digest(first) == digest(again)
    assert digest(first) != digest(other)


def test_a_label_with_no_classes_and_an_untyped_column_are_warnings_naming_the_field(tmp_path):
    loader = loader_config()
    loader["output_spec"]["output_schema"] = FIELDS + ["mystery"]
    hyper = {k: v for k, v in TRAIN_HYPER.items() if k != "is_binary"}
    messages = [w.message for w in planned(tmp_path, loader, hyper).warnings]
    assert any("no multiclass_categories, is_binary or num_classes" in m for m in messages)
    assert any("column mystery has no field_type" in m for m in messages)


def test_a_loader_without_a_schema_is_a_plan_error_asking_for_input(tmp_path):
    message = raised_message(PlanError, planned, tmp_path, loader_config(schema=None))
    assert "Cannot synthesize Preprocess_training.DATA" in message
    assert "output_spec.output_schema is empty" in message


def test_user_input_wins_over_synthesis(tmp_path):
    user = parse_input_flags([f"Preprocess_training.DATA={tmp_path / 'data'}"])
    plan = planned(tmp_path, loader_config(), user=user)
    assert plan.scripts["Preprocess_training"].inputs["DATA"].host_path.source.value == "user"
    assert [s.input for s in plan.synthesized] == ["SIGNATURE"]


def test_a_redshift_loader_says_why_not(tmp_path):
    paths = write_pipeline(tmp_path, extra_specific={"DataLoading_training": {
        "__model_type__": "RedshiftDataLoadingConfig", "sql_query": "select 1"}})
    config = json.loads(paths["config"].read_text())
    config["metadata"]["config_types"]["DataLoading_training"] = "RedshiftDataLoadingConfig"
    paths["config"].write_text(json.dumps(config))
    inputs = load_pipeline_inputs(paths["dag"], paths["config"], [paths["interfaces"]], tmp_path)
    plan = draft_plan(inputs, UserSpec())
    message = raised_message(PlanError, synthesize_pending_inputs, plan, inputs, tmp_path / "synth", SynthOptions())
    assert "RedshiftDataLoading" in message and "--input" in message


def test_synthesized_inputs_key_the_cache_apart(tmp_path):
    from rtest.run.cache import step_key

    plan = planned(tmp_path, loader_config())
    spec = plan.scripts["Preprocess_training"]
    as_user = spec.model_copy(deep=True)
    for item in as_user.inputs.values():
        if item.host_path is not None:
            item.host_path = item.host_path.model_copy(update={"source": "user"})
    same = dict(image_id="i", source_digest="s", input_digests={"DATA": "d"}, settings={})
    assert step_key(spec, **same) != step_key(as_user, **same)


def test_report_json_and_html_say_what_was_synthesized(tmp_path):
    from rtest.report.html import render_report_html
    from rtest.report.json_report import read_report_json, write_report_json
    from rtest.run.model import RunReport

    plan = planned(tmp_path, loader_config())
    report = RunReport(run_id="r1", pipeline_success=True, steps={}, synthesized_inputs=plan.synthesized)
    saved = read_report_json(write_report_json(report, tmp_path / "report.json"))
    assert [(s.node, s.input, s.rows, s.seed) for s in saved.synthesized_inputs] == \
        [(s.node, s.input, 600, s.seed) for s in plan.synthesized]
    page = render_report_html(report, plan)
    assert "Synthesized inputs (2)" in page and "DataLoading_training:output_spec.output_schema" in page
    first_id = _read_parquet(data_of(plan)).column("Abuse__DOT__n_claims").to_pylist()[0]
    assert f"<td>{first_id}</td>" in page or first_id is None


def test_data_synth_command_writes_one_input(tmp_path):
    from rtest.cli.main import main

    paths = write_pipeline(tmp_path, extra_specific={"DataLoading_training": loader_config("CSV", shards=1),
                                                     "Train": {"hyperparameters": TRAIN_HYPER}})
    out = tmp_path / "peek"
    with pytest.raises(SystemExit) as ended:
        main(["data", "synth", "Preprocess_training.DATA", "--out", str(out), "--dag", str(paths["dag"]),
              "--config", str(paths["config"]), "--interfaces", str(paths["interfaces"]),
              "--source-root", str(tmp_path), "--workdir", str(tmp_path / "w"), "--rows", "50"])
    assert ended.value.code == 0
    shard = next(out.iterdir())
    assert shard.name.endswith("-c000.csv") and len(shard.read_text().splitlines()) == 51


def test_a_spec_file_turns_synthesis_on_and_hyperparameter_files_are_read(tmp_path):
    """pipeline.synthesize_inputs/rows/seed in a spec file; tab_field_list from the training source folder's JSON."""
    from rtest.cli.data_cmd import synth_options
    from rtest.plan.userspec import load_user_spec

    spec = tmp_path / "spec.yaml"
    spec.write_text("version: 1\npipeline: {synthesize_inputs: true, rows: 120, seed: 4}\n")
    user = load_user_spec(spec)
    assert user.pipeline.synthesize_inputs and synth_options(user, None, None) == SynthOptions(rows=120, seed=4)
    assert synth_options(user, 50, 0) == SynthOptions(rows=50, seed=0)  # flags win
    hyper_dir = tmp_path / "code" / "hyperparams"
    hyper_dir.mkdir(parents=True)
    (hyper_dir / "hyperparameters_NA.json").write_text(json.dumps(TRAIN_HYPER))
    plan = planned(tmp_path, loader_config(), hyper={"max_depth": 3}, rows=120)
    assert "code/hyperparams/hyperparameters_NA.json:tab_field_list" in plan.synthesized[0].fields
    table = _read_parquet(data_of(plan))
    assert str(table.schema.field("amount").type) == "double" and table.num_rows == 120
