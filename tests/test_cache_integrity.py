"""Cache integrity (issue 7, point 6): broken entries are misses and get replaced; killed runs' leftovers are swept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines import write_python_pipeline
from rtest.plan.builder import build_plan, load_pipeline_inputs
from rtest.plan.userspec import parse_input_flags
from rtest.run.cache import STALE_AFTER_S, StepCache

KEY = "0123456789abcdef0123456789abcdef"


def _outputs(tmp_path: Path) -> dict[str, Path]:
    out = tmp_path / "run" / "out"
    (out / "sub").mkdir(parents=True)
    (out / "data.csv").write_text("a,b\n1,2\n")
    (out / "sub" / "more.csv").write_text("x\n" * 100)
    os.symlink("data.csv", out / "latest.csv")
    return {"out": out}


def _stored(tmp_path: Path) -> StepCache:
    cache = StepCache(tmp_path / "cache")
    cache.store(KEY, _outputs(tmp_path), None, {"node": "S"})
    assert cache.lookup(KEY) is not None
    return cache


def _break_meta(entry: Path) -> None:
    (entry / "meta.json").write_text("{half a")


def _break_by_truncation(entry: Path) -> None:
    (entry / "outputs" / "out" / "sub" / "more.csv").unlink()  # a hard link: unlink, never write through it
    (entry / "outputs" / "out" / "sub" / "more.csv").write_text("x\n")


def _break_by_removal(entry: Path) -> None:
    (entry / "outputs" / "out" / "data.csv").unlink()


def _break_meta_as_fifo(entry: Path) -> None:
    (entry / "meta.json").unlink()
    os.mkfifo(entry / "meta.json")


def _break_missing_output(entry: Path) -> None:
    (entry / "outputs" / "out" / "latest.csv").unlink()
    os.rename(entry / "outputs" / "out", entry / "outputs" / "renamed")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("damage", [_break_meta, _break_by_truncation, _break_by_removal, _break_meta_as_fifo, _break_missing_output])
def test_a_damaged_entry_is_a_miss_and_is_replaced(tmp_path, damage):
    cache = _stored(tmp_path)
    damage(cache.entry(KEY))
    assert cache.lookup(KEY) is None
    cache.store(KEY, _outputs(tmp_path / "again"), None, {"node": "S"})
    meta = cache.lookup(KEY)
    assert meta is not None and meta["node"] == "S"
    restored = cache.restore(KEY, tmp_path / "restored")
    assert (restored["out"] / "sub" / "more.csv").read_text() == "x\n" * 100
    assert os.readlink(restored["out"] / "latest.csv") == "data.csv"
    assert [p.name for p in cache.root.iterdir()] == [KEY]  # the broken one is gone, no trash left


def test_an_entry_without_a_shape_manifest_is_a_miss(tmp_path):
    cache = _stored(tmp_path)
    meta_path = cache.entry(KEY) / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["shapes"]  # an entry written by an older rtest
    meta_path.write_text(json.dumps(meta))
    assert cache.lookup(KEY) is None


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_leftovers_of_killed_runs_are_swept_when_the_cache_opens(tmp_path):
    root = tmp_path / "cache"
    root.mkdir()
    dead = root / f".{KEY}.{_dead_pid()}.abc123"
    trash = root / f".trash.{KEY}.{_dead_pid()}.42"
    live = root / f".{KEY}.{os.getpid()}.def456"
    old_live = root / f".{'f' * 32}.{os.getpid()}.old"
    for path in (dead, trash, live, old_live):
        (path / "outputs").mkdir(parents=True)
        (path / "outputs" / "x").write_text("partial")
    long_ago = time.time() - STALE_AFTER_S - 60
    os.utime(old_live, (long_ago, long_ago))
    (root / KEY).mkdir()  # a real entry is never swept
    StepCache(root)
    assert sorted(p.name for p in root.iterdir()) == sorted([KEY, live.name])


def test_opening_a_missing_cache_is_fine(tmp_path):
    assert StepCache(tmp_path / "nope").sweep() == 0


@pytest.mark.docker
@pytest.mark.timeout(300)
def test_a_corrupted_entry_reruns_the_step_and_is_repaired(tmp_path, docker_client):
    from rtest.run.engine import RunOptions, run_pipeline

    script = "import pathlib\npathlib.Path('/opt/ml/processing/output/out/data.csv').write_text('a\\n1\\n' * 50)\n"
    p = write_python_pipeline(tmp_path / "p", {"S": {"script": script, "outputs": {"out": "/opt/ml/processing/output/out"}}}, [])
    plan = build_plan(load_pipeline_inputs(p["dag"], p["config"], [p["interfaces"]]), parse_input_flags(None))
    workdir = tmp_path / "wd"
    statuses = []
    for round_ in range(4):
        if round_ == 2:  # damage the one entry: an output file cut short
            (entry,) = [e for e in (workdir / "cache").iterdir() if not e.name.startswith(".")]
            data = entry / "outputs" / "out" / "data.csv"
            data.unlink()
            data.write_text("a\n")
        report = run_pipeline(plan, RunOptions(workdir=workdir))
        statuses.append(report.steps["S"].status.value)
    assert statuses == ["succeeded", "cached", "succeeded", "cached"]
    assert Path(report.steps["S"].outputs["out"], "data.csv").read_text() == "a\n1\n" * 50
