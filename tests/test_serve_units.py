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
