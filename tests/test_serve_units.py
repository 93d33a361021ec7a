"""Pieces of rtest serve without a service process: the slot pool, the registry, reading run files,
bind checks, and the checked-in OpenAPI schema."""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path

import pytest

from rtest.serve import files
from rtest.serve.auth import UnsafeBindError, check_bind, is_loopback
from rtest.serve.registry import Registry
from rtest.serve.slots import SlotPool

ROOT = Path(__file__).resolve().parents[1]


def test_slots_are_granted_first_come_first_served_and_a_cancelled_waiter_leaves_the_queue():
    order: list[tuple[str, str, bool]] = []
    pool = SlotPool(1, on_change=lambda run, node, acquired, in_use: order.append((run, node, acquired)))
    never = threading.Event()
    assert pool.acquire("r1", "a", never)
    waiters = []
    for run, node in (("r2", "b"), ("r1", "c")):
        thread = threading.Thread(target=pool.acquire, args=(run, node, never))
        thread.start()
        waiters.append(thread)
        while pool.queue_length() < len(waiters):
            pass
    cancel = threading.Event()
    cancelled = threading.Thread(target=lambda: order.append(("r3", "d", pool.acquire("r3", "d", cancel))))
    cancelled.start()
    while pool.queue_length() < 3:
        pass
    assert pool.queue_position("r2") == 1 and pool.queue_position("r1") == 2 and pool.queue_position("r3") == 3
    cancel.set()
    cancelled.join()
    pool.release("r1", "a")
    waiters[0].join()
    pool.release("r2", "b")
    waiters[1].join()
    pool.release("r1", "c")
    granted = [(run, node) for run, node, acquired in order if acquired is True]
    assert granted == [("r1", "a"), ("r2", "b"), ("r1", "c")] and ("r3", "d", False) in order
    assert pool.peak == 1 and pool.in_use == 0 and pool.queue_length() == 0


def test_the_registry_pages_newest_first_and_survives_reopening(tmp_path):
    registry = Registry(tmp_path / "r.sqlite")
    for i in range(5):
        registry.add_run(f"run{i}", {"example": True}, submitter="me", pipeline="p", jobs=None)
    registry.set_run("run3", status="running", started_at=1.0)
    registry.set_steps("run3", ["a", "b"])
    registry.set_step("run3", "a", status="succeeded", duration_s=0.5)
    registry.close()
    again = Registry(tmp_path / "r.sqlite")
    page, total = again.runs(limit=2, offset=1)
    assert [r["id"] for r in page] == ["run3", "run2"] and total == 5
    assert again.run_ids_with_status("running") == ["run3"]
    assert [(s["node"], s["status"]) for s in again.steps("run3")] == [("a", "succeeded"), ("b", "pending")]
    assert again.request_of("run1") == {"example": True}


def test_reading_under_a_run_folder_refuses_links_fifos_and_parents(tmp_path):
    run = tmp_path / "run"
    (run / "step").mkdir(parents=True)
    (run / "step" / "log.txt").write_text("line 1\nline 2\nline 3\n")
    (run / "step" / "link").symlink_to(tmp_path)
    (run / "linkdir").symlink_to(run / "step")
    os.mkfifo(run / "step" / "fifo")
    fd = files.open_under(run, "step/log.txt")
    assert files.read_range(fd, files.tail_offset(fd, 2), 100) == b"line 2\nline 3\n"
    os.close(fd)
    for bad in ("step/link/x", "step/link", "linkdir/log.txt", "step/fifo", "../run/step/log.txt", "/etc/passwd"):
        with pytest.raises(files.NotServable):
            files.open_under(run, bad)


def test_only_loopback_may_go_without_a_token():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "t")
    with pytest.raises(UnsafeBindError, match="without a token"):
        check_bind("0.0.0.0", None)


def test_the_checked_in_openapi_schema_is_current():
    spec = importlib.util.spec_from_file_location("serve_openapi", ROOT / "scripts" / "serve_openapi.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0, "run: python scripts/serve_openapi.py"
    paths = set(__import__("json").loads(module.SCHEMA.read_text())["paths"])
    assert {"/api/runs", "/api/runs/{run_id}/events", "/api/runs/{run_id}/cancel", "/healthz", "/metrics"} <= paths


def _four_steps(tmp_path):
    from rtest.plan.builder import build_plan, load_pipeline_inputs
    from rtest.testing import write_python_pipeline

    steps = {n: {"script": f"# {n}\n", "outputs": {"out": "/opt/ml/processing/output/out"}} for n in "ABCD"}
    paths = write_python_pipeline(tmp_path / "p", steps, [])
    return build_plan(load_pipeline_inputs(paths["dag"], paths["config"], [paths["interfaces"]]))


def test_the_runner_runs_each_step_inside_a_slot_of_the_shared_limiter(tmp_path):
    from rtest.plan.settings import CommandLine
    from rtest.run.engine import RunOptions, run_pipeline
    from rtest.testing import FakeBackend, FakeStep

    pool = SlotPool(1)
    backend = FakeBackend({n: FakeStep(duration_s=0.05) for n in "ABCD"})
    options = RunOptions(workdir=tmp_path / "wd", jobs=4, slots=pool.for_run("r"), stop_grace_s=0.1)
    report = run_pipeline(_four_steps(tmp_path), options, backend=backend, settings=CommandLine(cache=False))
    assert report.pipeline_success and backend.max_running == 1 and pool.peak == 1 and pool.in_use == 0


def test_a_step_waiting_for_a_slot_is_cancelled_with_its_run(tmp_path):
    from rtest.run.engine import RunOptions, run_pipeline
    from rtest.testing import FakeBackend

    pool = SlotPool(1)
    assert pool.acquire("other-run", "X", threading.Event())  # another run holds the only slot
    cancel = threading.Event()
    on_queue = lambda event: type(event).__name__ == "StepQueued" and cancel.set()  # noqa: E731
    options = RunOptions(workdir=tmp_path / "wd", jobs=2, slots=pool.for_run("r"), stop_grace_s=0.1)
    backend = FakeBackend()
    report = run_pipeline(_four_steps(tmp_path), options, backend=backend, cancel=cancel, subscribers=[on_queue])
    assert report.interrupted and backend.started() == [] and pool.queue_length() == 0
    assert {r.status.value for r in report.steps.values()} == {"cancelled"}
    assert "waiting for a slot" in report.steps["A"].failure_reason
