"""The design's own code against a real pipeline (issue 16 point 1).

Each test body makes the calls the design's "User Experience Flow" (phases 1-3) and "Error Handling" blocks make,
reads the keys they read and catches the exception types they catch; the pipeline is the bundled example,
renamed so its scripts carry the design's names (tests/design_pipeline.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import structlog

from design_pipeline import write_design_pipeline
from rtest import InteractiveRuntimeTestingFactory
from rtest.example import generate_example_inputs


class _CursusShapedDag:
    """What a pipeline catalogue's DAG function returns: nodes and edges added one by one."""

    def __init__(self) -> None:
        self.nodes: list[str] = []
        self.edges: list[tuple[str, str]] = []

    def add_node(self, name: str) -> None:
        self.nodes.append(name)

    def add_edge(self, upstream: str, downstream: str) -> None:
        self.edges.append((upstream, downstream))


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> dict[str, Path]:
    """A project folder as the design's user has it: the pipeline, and sample data under test/data."""
    paths = write_design_pipeline(tmp_path / "pipeline")
    generated = generate_example_inputs(tmp_path / "generated", rows=200)
    raw = tmp_path / "test" / "data" / "tabular_preprocessing" / "input" / "raw_data.csv"
    raw.parent.mkdir(parents=True)
    shutil.copy(generated["Preprocess_training.DATA"] / "part-00000.csv", raw)
    monkeypatch.chdir(tmp_path)
    structlog.reset_defaults()  # a fresh notebook: nobody has set up logging
    return paths


def _dag_of(paths: dict[str, Path]):
    def create_xgboost_complete_e2e_dag() -> _CursusShapedDag:
        dag = _CursusShapedDag()
        data = json.loads(paths["dag"].read_text())["dag"]
        for node in data["nodes"]:
            dag.add_node(node)
        for upstream, downstream in data["edges"]:
            dag.add_edge(upstream, downstream)
        return dag

    return create_xgboost_complete_e2e_dag


def _phases_1_and_2(dag, config_path: str) -> InteractiveRuntimeTestingFactory:
    # Phase 1
    testing_factory = InteractiveRuntimeTestingFactory(dag, config_path)
    scripts_to_test = testing_factory.get_scripts_requiring_testing()
    print(f"Discovered {len(scripts_to_test)} validated scripts from config")
    summary = testing_factory.get_testing_factory_summary()
    print(f"Auto-configurable scripts: {summary['auto_configured_scripts']}")
    print(f"Scripts needing manual config: {len(summary['pending_scripts'])}")
    # Phase 2
    pending_scripts = testing_factory.get_pending_script_configurations()
    for script_name in pending_scripts:
        requirements = testing_factory.get_script_testing_requirements(script_name)
        print(f"Configuring testing for: {script_name}")
        print(f"Script path: {requirements['script_path']}")
        print(f"Source directory: {requirements['source_dir']}")
        for env_var in requirements["environment_variables"]:
            print(f"  env {env_var['name']}: {env_var['default_value']} (source: {env_var['source']})")
        for job_arg in requirements["job_arguments"]:
            print(f"  arg {job_arg['name']}: {job_arg['default_value']} (source: {job_arg['source']})")
        if script_name == "tabular_preprocessing":
            testing_factory.configure_script_testing(
                script_name,
                expected_inputs={"raw_data": "test/data/tabular_preprocessing/input/raw_data.csv"},
                expected_outputs={
                    "processed_data": "test/data/tabular_preprocessing/output/processed_data.csv",
                    "preprocessing_metrics": "test/data/tabular_preprocessing/output/metrics.json",
                },
            )
            print(f"{script_name} configured")
    return testing_factory


def test_design_phases_1_2_and_error_handling_without_running(project, capsys):
    dag = _dag_of(project)()
    testing_factory = _phases_1_and_2(dag, str(project["config"]))
    out = capsys.readouterr()
    assert "Discovered 2 validated scripts from config" in out.out
    assert "Auto-configurable scripts: ['XGBoostTraining']" in out.out and "Scripts needing manual config: 1" in out.out
    assert "Configuring testing for: tabular_preprocessing" in out.out
    assert f"Script path: {project['dag'].parent.resolve()}/dockers/fraud_model/scripts/tabular_preprocessing.py" in out.out
    assert f"Source directory: {project['dag'].parent.resolve()}/dockers/fraud_model/scripts" in out.out
    assert "env LABEL_FIELD: is_fraud (source: config)" in out.out
    assert "env OUTPUT_FORMAT: CSV (source: interface)" in out.out
    assert "arg --job_type: training (source: config)" in out.out and "tabular_preprocessing configured" in out.out
    assert testing_factory.get_testing_factory_summary()["pending_scripts"] == []
    assert out.err == ""  # no log lines in a notebook unless asked

    # Error handling
    with pytest.raises(FileNotFoundError) as missing:
        InteractiveRuntimeTestingFactory(dag, "/nonexistent/config.json")
    assert f"{missing.value}" == "Configuration file not found: /nonexistent/config.json"
    with pytest.raises(FileNotFoundError, match="DAG file not found"):  # the DAG and a spec file, alike
        InteractiveRuntimeTestingFactory("/nonexistent/dag.json", str(project["config"]))
    with pytest.raises(FileNotFoundError, match="Spec file not found"):
        InteractiveRuntimeTestingFactory.from_spec("/nonexistent/spec.yaml")
    with pytest.raises(ValueError) as phantom:
        testing_factory.configure_script_testing("phantom_script", expected_inputs={})
    assert f"{phantom.value}".startswith("Script 'phantom_script' not found in validated scripts")

    # Config-enhanced feedback, by script name
    requirements = testing_factory.get_script_testing_requirements("xgboost_training")
    shown = [f"{env_var['name']}: {env_var['default_value']}" for env_var in requirements["environment_variables"]
             if env_var["source"] == "config"]
    assert shown == ["LABEL_FIELD: is_fraud", "ID_FIELD: transaction_id"]


def test_design_aliases_and_ambiguous_script_names(project, example_copy):
    testing_factory = InteractiveRuntimeTestingFactory(str(project["dag"]), str(project["config"]))
    spec = testing_factory.configure_script_testing(
        "tabular_preprocessing.py", input_paths={"raw_data": "test/data/tabular_preprocessing/input"},
        environ_vars={"OUTPUT_FORMAT": "PARQUET"}, job_args={"job_type": "training"})
    assert spec.node == "tabular_preprocessing" and spec.env()["OUTPUT_FORMAT"] == "PARQUET"
    with pytest.raises(TypeError, match="under both of its names"):
        testing_factory.configure_script_testing("tabular_preprocessing", expected_inputs={}, input_paths={})
    with pytest.raises(TypeError, match="unexpected keyword argument 'input_path'"):
        testing_factory.configure_script_testing("tabular_preprocessing", input_path={})
    # The example runs preprocess.py in two nodes: its script name alone says neither.
    example = InteractiveRuntimeTestingFactory(example_copy / "dag.json", example_copy / "config.json")
    with pytest.raises(ValueError, match="'preprocess' is ambiguous: nodes Preprocess_training, Preprocess_calibration"):
        example.get_script_testing_requirements("preprocess")
    assert example.get_script_testing_requirements("train")["step_name"] == "Train"
    from rtest.errors import PlanError
    from rtest.plan.builder import draft_plan, load_pipeline_inputs
    from rtest.plan.userspec import parse_input_flags

    with pytest.raises(PlanError, match="'preprocess' is ambiguous: nodes Preprocess_training, Preprocess_calibration"):
        draft_plan(load_pipeline_inputs(example_copy / "dag.json", example_copy / "config.json"),
                   parse_input_flags([f"preprocess.DATA={example_copy}"]))


def test_notebook_tables(project):
    testing_factory = InteractiveRuntimeTestingFactory(str(project["dag"]), str(project["config"]))
    page = testing_factory._repr_html_()
    assert "<table>" in page and "tabular_preprocessing" in page and "pending" in page and "auto_configured" in page
    assert "DataLoading_training" in page  # the skipped node, with its reason
    table = testing_factory.get_script_testing_requirements("XGBoostTraining")._repr_html_()
    assert "wire:tabular_preprocessing.processed_data" in table and "config:label_field" in table
    with_markup = testing_factory.get_script_testing_requirements("tabular_preprocessing")
    with_markup["missing"] = ["<script>alert(1)</script>"]
    assert "<script>" not in with_markup._repr_html_()


@pytest.mark.docker
def test_design_phase_3_runs_the_pipeline(project, capsys):
    testing_factory = _phases_1_and_2(_dag_of(project)(), str(project["config"]))
    # Phase 3
    results = testing_factory.execute_dag_guided_testing()
    print(f"Pipeline success: {results['pipeline_success']}")
    factory_info = results["interactive_factory_info"]
    print(f"Total validated scripts tested: {factory_info['total_scripts']}")
    print(f"Manually configured: {factory_info['manually_configured']}")
    print(f"Auto-configured: {factory_info['auto_configured']}")
    for script_name, config_info in factory_info["script_configurations"].items():
        print(f"  {script_name} - {config_info['status']}")
    out = capsys.readouterr()
    assert "Pipeline success: True" in out.out, results["script_results"]
    assert "Total validated scripts tested: 2" in out.out
    assert "Manually configured: 1" in out.out and "Auto-configured: 1" in out.out
    assert "  tabular_preprocessing - manually_configured" in out.out
    assert "  XGBoostTraining - auto_configured" in out.out
    # No log lines in a notebook unless asked: every line printed is one of the design's own prints.
    ours = ("Discovered", "Auto-configurable", "Scripts needing", "Configuring", "Script path", "Source directory",
            "  env ", "  arg ", "tabular_preprocessing configured", "Pipeline success", "Total validated", "Manually",
            "Auto-configured", "  tabular_preprocessing - ", "  XGBoostTraining - ")
    assert out.err == "" and [line for line in out.out.splitlines() if not line.startswith(ours)] == []
    exported = Path("test/data/tabular_preprocessing/output/processed_data.csv")
    assert sorted(p.name for p in exported.iterdir()) == ["test", "train", "val"]
    page = results._repr_html_()
    assert "XGBoostTraining" in page and "succeeded" in page


def test_spec_files_and_input_flags_may_name_scripts(project, capsys):
    from rtest.cli.main import main

    spec = Path("rtest-spec.yaml")
    spec.write_text(f"pipeline: {{dag: {project['dag']}, config: {project['config']}}}\n"
                    "scripts:\n  tabular_preprocessing.py:\n    environment: {OUTPUT_FORMAT: PARQUET}\n")
    inputs = [f"tabular_preprocessing.raw_data={Path('test/data/tabular_preprocessing/input').resolve()}",
              f"xgboost_training.input_path={Path('test/data').resolve()}"]
    with pytest.raises(SystemExit) as exited:
        main(["plan", "--spec", str(spec), *sum((["--input", i] for i in inputs), []), "--format", "json"])
    assert exited.value.code == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["scripts"]["tabular_preprocessing"]["environment"]["OUTPUT_FORMAT"]["value"] == "PARQUET"
    assert plan["scripts"]["XGBoostTraining"]["inputs"]["input_path"]["host_path"]["source"] == "user"
