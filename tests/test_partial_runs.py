"""Partial runs (issue 15): --only/--skip/--from, outputs of steps not run reused from an earlier run
(--reuse), --keep-going with a missing image. The runner decides; FakeBackend stands in for the engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines import raised_message
from rtest.errors import ImageNotFoundError, PlanError
from rtest.plan.builder import build_plan, load_pipeline_inputs
from rtest.plan.selection import Selection
from rtest.plan.settings import CommandLine
from rtest.plan.userspec import UserSpec
from rtest.report.junit import write_junit
from rtest.run.engine import RunOptions
from rtest.session import run_and_report
from rtest.testing import FakeBackend, FakeStep, write_python_pipeline

OUT = "/opt/ml/processing/output/out"
IN = "/opt/ml/processing/input/out"
BASE = "rtest/sagemaker-base:py3"


def _plan(tmp_path, images: dict[str, str] | None = None):
    """A -> B -> C, A -> D: each step reads its parent's ``out`` and writes its own."""
    edges = [("A", "B"), ("B", "C"), ("A", "D")]
    fed = {t for _, t in edges}
    steps = {n: {"script": f"# step {n}\n", "outputs": {"out": OUT}, **({"inputs": {"out": IN}} if n in fed else {})}
             for n in "ABCD"}
    paths = write_python_pipeline(tmp_path / "p", steps, edges)
    user = UserSpec.model_validate({"scripts": {n: {"image": i} for n, i in (images or {}).items()}})
    return build_plan(load_pipeline_inputs(paths["dag"], paths["config"], [paths["interfaces"]]), user)


def _run(plan, tmp_path, backend=None, run_id=None, **options):
    return run_and_report(plan, RunOptions(workdir=tmp_path / "wd", jobs=2, run_id=run_id, **options),
                          settings=CommandLine(cache=False), formats=("html",), backend=backend or FakeBackend())


def _status(report) -> dict[str, str]:
    return {n: r.status.value for n, r in report.steps.items()}


def test_only_runs_the_named_steps_and_reuses_the_newest_earlier_outputs(tmp_path):
    plan = _plan(tmp_path)
    full = _run(plan, tmp_path, run_id="first")
    assert full.pipeline_success
    backend = FakeBackend()
    part = _run(plan, tmp_path, backend, run_id="second", selection=Selection(only=("C",)))
    assert backend.started() == ["C"]
    assert _status(part) == {"A": "skipped", "B": "reused", "C": "succeeded", "D": "skipped"}
    assert part.steps["B"].failure_reason == "not run: outputs reused from run first"
    assert part.steps["A"].failure_reason == "not run: not in --only C" and part.pipeline_success
    assert backend.inputs_seen["C"] == {IN: ["out.txt"]}  # B's output of the first run, staged
    saved = json.loads((Path(part.run_dir) / "report.json").read_text())["steps"]
    assert saved["A"]["status"] == "skipped" and saved["B"]["status"] == "reused"
    assert "not in --only C" in (Path(part.run_dir) / "report.html").read_text()
    junit = write_junit(part, tmp_path / "junit.xml")
    text = Path(junit if isinstance(junit, (str, Path)) else tmp_path / "junit.xml").read_text()
    assert 'message="not run: not in --only C"' in text and 'message="not run: outputs reused from run first"' in text


def test_from_runs_the_step_and_its_descendants_and_skip_leaves_one_out(tmp_path):
    plan = _plan(tmp_path)
    _run(plan, tmp_path, run_id="first")
    backend = FakeBackend()
    report = _run(plan, tmp_path, backend, selection=Selection(from_node="B"))
    assert sorted(backend.started()) == ["B", "C"]
    assert report.steps["A"].status.value == "reused" and report.steps["D"].failure_reason == "not run: upstream of --from B"
    backend = FakeBackend()
    report = _run(plan, tmp_path, backend, selection=Selection(skip=("D",)))
    assert sorted(backend.started()) == ["A", "B", "C"] and report.steps["D"].failure_reason == "not run: --skip"


def test_reuse_names_the_run_and_a_missing_upstream_output_is_an_error_naming_it(tmp_path):
    plan = _plan(tmp_path)
    message = raised_message(PlanError, lambda: _run(plan, tmp_path, selection=Selection(only=("C",))))
    assert "B.out (needed by C)" in message and "--reuse RUN_ID" in message
    assert not (tmp_path / "wd" / "runs").exists() or not any((tmp_path / "wd" / "runs").iterdir())
    _run(plan, tmp_path, FakeBackend({"B": FakeStep(exit_code=1)}), run_id="broken")  # B failed there
    message = raised_message(PlanError, lambda: _run(plan, tmp_path, selection=Selection(only=("C",), reuse_run="broken")))
    assert "B.out (needed by C) is not in run broken" in message
    good = _run(plan, tmp_path, run_id="good")
    _run(plan, tmp_path, FakeBackend({"B": FakeStep(exit_code=1)}), run_id="newest-broken")
    backend = FakeBackend()
    report = _run(plan, tmp_path, backend, selection=Selection(only=("C",), reuse_run="good"))
    assert backend.started() == ["C"] and report.steps["B"].failure_reason == "not run: outputs reused from run good"
    report = _run(plan, tmp_path, FakeBackend(), selection=Selection(only=("C",)))  # newest run with B's output
    assert report.steps["B"].outputs == good.steps["B"].outputs and "newest-broken" not in report.steps["B"].failure_reason
    assert "'Z' is not a script step" in raised_message(PlanError, lambda: _run(plan, tmp_path, selection=Selection(only=("Z",))))
    assert "--reuse nope" in raised_message(PlanError, lambda: _run(plan, tmp_path, selection=Selection(only=("C",), reuse_run="nope")))


def test_keep_going_fails_the_step_whose_image_is_missing_alone_with_its_reason(tmp_path):
    plan = _plan(tmp_path, images={"B": "rtest/sagemaker-pytorch:2.1.0", "D": "someone/else:1"})
    backend = FakeBackend(images={BASE})
    message = raised_message(ImageNotFoundError, lambda: _run(plan, tmp_path, backend))
    assert "2 images are missing" in message and "rtest/sagemaker-pytorch:2.1.0" in message and "someone/else:1" in message
    assert backend.started() == []
    report = _run(plan, tmp_path, backend, keep_going=True)
    assert _status(report) == {"A": "succeeded", "B": "failed", "C": "upstream_failed", "D": "failed"}
    assert "Image rtest/sagemaker-pytorch:2.1.0 is not in the local Docker engine (needed by B)" in report.steps["B"].failure_reason
    assert report.steps["C"].failure_reason == "upstream step B failed" and backend.started() == ["A"]
    assert not report.pipeline_success
    # with --only, an image only deselected steps need is not checked at all
    report = _run(plan, tmp_path, FakeBackend(images={BASE}), selection=Selection(only=("A",)))
    assert report.pipeline_success and _status(report)["B"] == "skipped"
    assert report.steps["B"].failure_reason.startswith(  # what running it would need
        "not run: not in --only A; it needs image rtest/sagemaker-pytorch:2.1.0, which is not in the local Docker engine: ")
    assert "--image-map" in report.steps["B"].failure_reason


def test_an_image_rtest_has_no_look_alike_for_is_said_not_built_never_builtin(tmp_path, capsys):
    import yaml

    from rtest.cli.main import main
    from rtest.cli.render import image_origin

    paths = write_python_pipeline(tmp_path / "p", {"Torch": {"script": "print(1)\n", "outputs": {"out": OUT}},
                                                   "Plain": {"script": "print(2)\n", "outputs": {"out": OUT}}}, [])
    interface = paths["interfaces"] / "Torch.step.yaml"
    doc = yaml.safe_load(interface.read_text())
    doc["compute"] = {"kind": "framework", "sdk_class": "PyTorch", "framework_version": "2.1.0"}
    interface.write_text(yaml.safe_dump(doc))
    with pytest.raises(SystemExit) as exited:
        main(["plan", "--dag", str(paths["dag"]), "--config", str(paths["config"]), "--interfaces", str(paths["interfaces"])])
    code = exited.value.code
    shown = capsys.readouterr().out
    import re

    assert code == 0 and not re.search(r"image=\S+ \(builtin", shown)  # no image is ever called builtin
    assert "image=rtest/sagemaker-pytorch:2.1.0 (not built: rtest has no look-alike for it; pass --image-map " \
           "pytorch:2.1.0=IMAGE" in " ".join(shown.split())
    plain = build_plan(load_pipeline_inputs(paths["dag"], paths["config"], [paths["interfaces"]])).scripts["Plain"]
    assert image_origin(plain, set()) == "rtest look-alike"
    assert image_origin(plain, {BASE}) == "rtest look-alike, not built: build it with `rtest sandbox images build` " \
                                          "(add `--offline` on a machine with no registry)"


@pytest.mark.docker
def test_the_cli_runs_part_of_a_pipeline_in_containers_and_keeps_going_past_a_missing_image(tmp_path, docker_client):
    """`rtest sandbox run --only/--reuse/--keep-going` end to end: real containers, real files."""
    import subprocess
    import sys

    import yaml

    script = (f"import pathlib, sys\nsrc = pathlib.Path('{IN}/v.txt')\nv = int(src.read_text()) if src.exists() else 0\n"
              f"pathlib.Path('{OUT}/v.txt').write_text(str(v + 1))\n")
    paths = write_python_pipeline(tmp_path / "p", {"A": {"script": script, "outputs": {"out": OUT}},
                                                   "B": {"script": script, "inputs": {"out": IN}, "outputs": {"out": OUT}},
                                                   "Lone": {"script": script, "outputs": {"out": OUT}}}, [("A", "B")])
    base = ["--dag", str(paths["dag"]), "--config", str(paths["config"]), "--interfaces", str(paths["interfaces"]),
            "--workdir", str(tmp_path / "wd"), "--no-deps"]

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "rtest.cli.main", "sandbox", "run", *base, *args],
                              capture_output=True, text=True, timeout=600, cwd=tmp_path)

    first = cli()
    assert first.returncode == 0, first.stdout + first.stderr
    [first_run] = [d.name for d in (tmp_path / "wd" / "runs").iterdir()]
    part = cli("--only", "B", "--reuse", first_run, "--no-cache")
    assert part.returncode == 0, part.stdout + part.stderr
    [second_run] = [d.name for d in (tmp_path / "wd" / "runs").iterdir() if d.name != first_run]
    report = json.loads((tmp_path / "wd" / "runs" / second_run / "report.json").read_text())
    assert {n: s["status"] for n, s in report["steps"].items()} == {"A": "reused", "B": "succeeded", "Lone": "skipped"}
    assert (Path(report["steps"]["B"]["outputs"]["out"]) / "v.txt").read_text() == "2"  # A's first-run output fed it

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"scripts": {"A": {"image": "rtest-test/never-built:1"}}}))
    stopped = cli("--spec", str(spec))
    assert stopped.returncode != 0 and "rtest-test/never-built:1 is not in the local Docker engine (needed by A)" in stopped.stdout + stopped.stderr
    going = cli("--spec", str(spec), "--keep-going", "--no-cache")
    assert going.returncode == 1, going.stdout + going.stderr
    latest = max((tmp_path / "wd" / "runs").iterdir(), key=lambda d: d.stat().st_mtime)
    steps = json.loads((latest / "report.json").read_text())["steps"]
    assert {n: s["status"] for n, s in steps.items()} == {"A": "failed", "B": "upstream_failed", "Lone": "succeeded"}
    assert "rtest-test/never-built:1 is not in the local Docker engine" in steps["A"]["failure_reason"]
