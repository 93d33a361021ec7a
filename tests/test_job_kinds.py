"""A new job kind is one module: a kind defined and registered here alone is discovered, planned,
checked, laid out (mounts, env, config files) and run through the runner with FakeBackend, its
packed output reaching a consumer as model.tar.gz. No container engine is needed."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from rtest import jobs
from rtest.jobs.base import JobFiles, JobKind, ScannedPath
from rtest.plan.builder import build_plan, draft_plan, load_pipeline_inputs, plan_problems
from rtest.plan.model import OutputSpec, PipelineTestingSpec, Source
from rtest.plan.settings import CommandLine, step_settings
from rtest.plan.userspec import parse_input_flags
from rtest.run import layout
from rtest.run.engine import RunOptions, run_pipeline
from rtest.testing import FakeBackend, FakeStep, write_python_pipeline

ROOT = "/opt/ml/batch"
_LITERAL = re.compile(rf"^{ROOT}/(input|output)/([A-Za-z0-9_.-]+)")


class BatchScript(JobKind):
    """A made-up kind: everything under /opt/ml/batch, its own config file, env and packed model."""

    name = "batchscript"
    step_types = ("BatchScript",)
    entry_point_fields = ("batch_entry_point",)
    code_path = f"{ROOT}/code"
    config_path = f"{ROOT}/config"
    output_folders = ("scratch",)
    packed_outputs = (f"{ROOT}/model",)

    def conventional_input_path(self, name: str) -> str:
        return f"{ROOT}/input/{name}"

    def scan_literal(self, path: str) -> ScannedPath | None:
        m = _LITERAL.match(path)
        return ScannedPath(m.group(1), m.group(2), f"{ROOT}/{m.group(1)}/{m.group(2)}") if m else None

    def environment(self, job_name: str) -> dict[str, str]:
        return {"BATCH_JOB_NAME": job_name}

    def config_files(self, job: JobFiles) -> dict[str, Any]:
        return {"batchjob.json": {"name": job.job_name, "inputs": {i.name: i.container_path for i in job.inputs},
                                  "timeout": job.max_runtime_s}}


@pytest.fixture
def batch_kind():
    kind = jobs.register(BatchScript())
    yield kind
    jobs.unregister(kind.name)


def _plan(tmp_path, build=build_plan):
    extra = tmp_path / "extra.csv"
    extra.write_text("a\n1\n")
    return build(_pipeline(tmp_path), parse_input_flags([f"Loose.extra={extra}"]))


def _pipeline(tmp_path):
    steps = {
        "Prep": {"script": "# prep\n", "outputs": {"rows": "/opt/ml/processing/output/rows"}},
        "Score": {"script": "# score\n", "kind": "batchscript", "inputs": {"rows": f"{ROOT}/input/rows"},
                  "outputs": {"model": f"{ROOT}/model"}, "aliases": {"model": ["model"]}},
        "Loose": {"script": f"open('{ROOT}/input/extra')\nopen('{ROOT}/output/report/r.txt', 'w')\n",
                  "kind": "batchscript"},
        "Use": {"script": "# use\n", "inputs": {"model": "/opt/ml/processing/input/model"}},
    }
    paths = write_python_pipeline(tmp_path / "p", steps, [("Prep", "Score"), ("Score", "Use")])
    (paths["interfaces"] / "Loose.step.yaml").unlink()  # no interface: the entry field and the script scan decide
    return load_pipeline_inputs(paths["dag"], paths["config"], [paths["interfaces"]])


def test_a_registered_kind_is_discovered_and_planned(tmp_path, batch_kind):
    extra = tmp_path / "extra.csv"
    extra.write_text("a\n1\n")
    user = parse_input_flags([f"Loose.extra={extra}", f"Loose.more={extra}"])
    plan = build_plan(_pipeline(tmp_path), user)
    score, loose = plan.scripts["Score"], plan.scripts["Loose"]
    assert score.job_kind == loose.job_kind == "batchscript" and score.kind is batch_kind
    assert [w.describe() for w in plan.wires][:1] == ["Prep.rows -> Score.rows (name)"]
    assert {n: (i.container_path, i.declared_by) for n, i in loose.inputs.items()} == {
        "extra": (f"{ROOT}/input/extra", Source.SCRIPT_SCAN), "more": (f"{ROOT}/input/more", Source.USER)}
    assert {n: o.container_path for n, o in loose.outputs.items()} == {"report": f"{ROOT}/output/report"}
    assert type(plan).model_validate_json(plan.model_dump_json()) == plan


def test_the_plan_time_path_check_knows_the_kinds_own_folders(tmp_path, batch_kind):
    plan = _plan(tmp_path, draft_plan)
    score = plan.scripts["Score"]
    score.outputs["clash"] = OutputSpec(name="clash", container_path=f"{ROOT}/config/")
    score.outputs["nested"] = OutputSpec(name="nested", container_path=f"{ROOT}/code/out")
    messages = [p.message for p in plan_problems(plan) if p.node == "Score"]
    assert messages == [
        f"Score: output clash and rtest's config folder share the container path {ROOT}/config; "
        "give each its own path in the step interface",
        f"Score: output nested at {ROOT}/code/out lies inside the read-only code folder {ROOT}/code; "
        "move it out of the code folder in the step interface"]


def test_the_layout_comes_from_the_kind(tmp_path, batch_kind):
    plan = _plan(tmp_path)
    spec = plan.scripts["Score"]
    folders = layout.step_folders(tmp_path / "run", spec.node)
    settings = step_settings(spec, CommandLine(timeout_s=77))
    layout.prepare_step_folders(spec, folders)
    layout.write_job_config_files(spec, folders, settings, run_id="r1")
    launch = layout.build_launch(spec, folders, settings, run_id="r1", executor_dir=tmp_path / "executor")
    assert sorted(p.name for p in folders.config_dir.iterdir()) == ["batchjob.json", "resourceconfig.json"]
    config = json.loads((folders.config_dir / "batchjob.json").read_text())
    assert config == {"name": "rtest-r1-Score", "inputs": {"rows": f"{ROOT}/input/rows"}, "timeout": 77}
    mounts = {m.container: m.read_only for m in launch.mounts}
    assert mounts[f"{ROOT}/code"] and mounts[f"{ROOT}/config"] and not mounts[f"{ROOT}/model"]
    assert (folders.sm_output_dir / "scratch").is_dir()
    assert launch.working_dir == f"{ROOT}/code" and launch.environment["BATCH_JOB_NAME"] == "rtest-r1-Score"
    assert launch.environment["RTEST_JOB_KIND"] == "batchscript"
    assert launch.environment["RTEST_ENTRY_POINT"] == f"{ROOT}/code/main.py"


def test_a_run_packs_the_kinds_model_for_its_consumer(tmp_path, batch_kind):
    plan = _plan(tmp_path)
    backend = FakeBackend({"Score": FakeStep(writes={"weights.bin": "w"})})
    report = run_pipeline(plan, RunOptions(workdir=tmp_path / "wd", jobs=2, stop_grace_s=0.1), backend=backend)
    assert report.pipeline_success and backend.inputs_seen["Loose"] == {f"{ROOT}/input/extra": ["extra.csv"]}
    assert backend.inputs_seen["Use"] == {"/opt/ml/processing/input/model": ["model.tar.gz"]}


def test_an_unknown_kind_in_a_saved_plan_names_the_known_ones(tmp_path, batch_kind):
    plan = _plan(tmp_path)
    saved = plan.model_dump_json()
    jobs.unregister(batch_kind.name)
    with pytest.raises(ValueError, match="unknown job kind 'batchscript'; known kinds: processing, training"):
        PipelineTestingSpec.model_validate_json(saved)
    jobs.register(batch_kind)


def test_the_registry_finds_kinds_by_step_type_and_entry_field(batch_kind):
    assert jobs.job_kind_for("TRAINING").name == "training" and jobs.job_kind_for("processing").name == "processing"
    assert jobs.job_kind_for("batchscript") is batch_kind and jobs.job_kind_for("CreateModel") is None
    assert jobs.runnable_step_types() == ("Processing", "Training", "BatchScript")
    # Each kind's own field first, in registration order, then the others: the order the config is read in.
    assert jobs.registry.entry_point_fields() == ("processing_entry_point", "training_entry_point",
                                                  "batch_entry_point", "script_path")
    assert jobs.kind_for_entry_field("script_path").name == "processing"
    with pytest.raises(ValueError, match="cannot be removed"):
        jobs.unregister("processing")
