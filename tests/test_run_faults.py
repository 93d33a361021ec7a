"""Host faults during a run (issue 7, point 5, run side): a full disk or a vanished workdir ends the run
with exit 1, failed steps that say why, and a report, never a traceback.

The full disk is real: a small tmpfs mounted as the workdir (needs root, as CI has).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import write_python_pipeline
from rtest.plan.builder import build_plan, load_pipeline_inputs
from rtest.plan.settings import CommandLine
from rtest.plan.userspec import parse_input_flags
from rtest.report.json_report import read_report_json
from rtest.run.engine import RunOptions
from rtest.run.events import StepFinished
from rtest.run.model import StepStatus
from rtest.session import run_and_report

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

OUT = "/opt/ml/processing/output/out"
IN = "/opt/ml/processing/input/inp"
MIB = 2**20


@pytest.fixture
def small_disk(tmp_path):
    """A 40 MiB file system of its own, so filling it harms nothing else."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mount_point)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"a real full disk needs a tmpfs mount, which needs root: {mounted.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _writes(mib: int, name: str = "big.bin", where: str = OUT) -> str:
    """A script writing mib MiB of random (incompressible) bytes."""
    return f"import os\nwith open('{where}/{name}', 'wb') as f:\n    for _ in range({mib}):\n        f.write(os.urandom({MIB}))\n"


def _cli(p: dict[str, Path], workdir: Path, cwd: Path) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-m", "rtest.cli.main", "sandbox", "run", "--dag", str(p["dag"]), "--config", str(p["config"]),
         "--interfaces", str(p["interfaces"]), "--workdir", str(workdir)],
        capture_output=True, text=True, timeout=240, cwd=cwd, env={**os.environ, "COLUMNS": "300"},
    )
    return result.returncode, result.stdout + result.stderr


def test_a_disk_too_full_to_stage_an_input_fails_that_step_with_a_sentence(tmp_path, small_disk):
    steps = {"Big": {"script": _writes(25), "outputs": {"out": OUT}, "aliases": {"out": ["inp"]}},
             "Use": {"script": "print('never')\n", "inputs": {"inp": IN}}}
    p = write_python_pipeline(tmp_path / "p", steps, [("Big", "Use")])
    code, terminal = _cli(p, small_disk / "wd", tmp_path)
    assert code == 1 and "Traceback" not in terminal, terminal
    (run,) = (small_disk / "wd" / "runs").iterdir()
    report = read_report_json(run / "report.json")
    assert report.steps["Big"].status is StepStatus.SUCCEEDED
    use = report.steps["Use"]
    assert use.status is StepStatus.FAILED
    assert use.failure_reason.startswith("the disk ran out of space while rtest was moving the step's files")
    assert "free space on the disk holding the workdir" in use.failure_reason
    assert not any((run / "Use" / "input" / "inp").iterdir())  # nothing half-copied


def test_a_disk_that_fills_while_packing_the_model_fails_that_step(tmp_path, small_disk):
    steps = {"Train": {"script": _writes(22, where="/opt/ml/model"), "kind": "training", "outputs": {"model": "/opt/ml/model"}},
             "Other": {"script": f"open('{OUT}/ok', 'w').write('ok')\n", "outputs": {"out": OUT}}}
    p = write_python_pipeline(tmp_path / "p", steps, [])
    plan = build_plan(load_pipeline_inputs(p["dag"], p["config"], [p["interfaces"]]), parse_input_flags(None))
    report = run_and_report(plan, RunOptions(workdir=small_disk / "wd", jobs=1))
    train = report.steps["Train"]
    assert train.status is StepStatus.FAILED and train.exit_code == 0
    assert train.failure_reason.startswith("the disk ran out of space while rtest was collecting the step's outputs")
    assert report.steps["Other"].status is StepStatus.SUCCEEDED
    assert (Path(report.run_dir) / "report.json").is_file()
    assert list(Path(report.run_dir).rglob("model.tar.gz*")) == []  # no half archive left behind


def test_a_disk_full_at_the_end_exits_1_with_a_sentence(tmp_path, small_disk):
    fill = f"import os\ntry:\n    with open('{OUT}/fill', 'wb') as f:\n        while True:\n            f.write(b'x' * {MIB})\nexcept OSError:\n    pass\n"
    p = write_python_pipeline(tmp_path / "p", {"Fill": {"script": fill, "outputs": {"out": OUT}}}, [])
    code, terminal = _cli(p, small_disk / "wd", tmp_path)
    assert code == 1, terminal
    assert "Traceback" not in terminal, terminal
    assert "could not write its report" in terminal and "the disk ran out of space while rtest was writing the report" in terminal


def test_a_workdir_removed_mid_run_fails_the_next_step_and_still_writes_a_report(tmp_path):
    steps = {"First": {"script": f"open('{OUT}/a.csv', 'w').write('1')\n", "outputs": {"out": OUT}, "aliases": {"out": ["inp"]}},
             "Second": {"script": "print('x')\n", "inputs": {"inp": IN}}}
    p = write_python_pipeline(tmp_path / "p", steps, [("First", "Second")])
    plan = build_plan(load_pipeline_inputs(p["dag"], p["config"], [p["interfaces"]]), parse_input_flags(None))
    workdir = tmp_path / "wd"

    def remove_the_workdir(event):
        if isinstance(event, StepFinished) and event.node == "First":
            shutil.rmtree(workdir / "runs")

    report = run_and_report(plan, RunOptions(workdir=workdir), settings=CommandLine(cache=False),
                            subscribers=[remove_the_workdir])
    second = report.steps["Second"]
    assert report.steps["First"].status is StepStatus.SUCCEEDED
    assert second.status is StepStatus.FAILED
    assert "vanished while rtest was moving the step's files" in second.failure_reason
    assert "was the workdir removed during the run?" in second.failure_reason
    assert read_report_json(Path(report.run_dir) / "report.json").steps["Second"].status is StepStatus.FAILED
