"""report.json round trips, and log tails read from the end of real (even huge) files."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from rtest.errors import RtestError
from rtest.report.json_report import STEP_FIELDS, read_report_json, write_report_json
from rtest.report.logtail import log_tail, strip_ansi
from rtest.run.model import RunReport, StepResult, StepStatus


def _report() -> RunReport:
    return RunReport(
        run_id="20240101-abc",
        pipeline_success=False,
        steps={
            "prep": StepResult(
                node="prep",
                status=StepStatus.SUCCEEDED,
                exit_code=0,
                duration_s=3.5,
                started_at=100.0,
                ended_at=103.5,
                image="rtest/sagemaker-base:py3",
                outputs={"processed": "/runs/x/prep/output/processed"},
                log_path="/runs/x/prep/log.txt",
                peak_memory_bytes=123456,
                cpu_time_s=2.25,
                cache_key="k1",
            ),
            "train": StepResult(node="train", status=StepStatus.FAILED, exit_code=2, failure_reason="boom"),
        },
        skipped_nodes={"Cradle": "no script"},
        run_dir="/somewhere/else",
        started_at=99.0,
        duration_s=10.0,
        execution_order=["prep", "train"],
        interrupted=True,
    )


def test_report_json_has_exactly_the_documented_shape(tmp_path: Path) -> None:
    path = write_report_json(_report(), tmp_path / "run" / "report.json")
    data = json.loads(path.read_text())
    assert list(data) == [
        "run_id", "run_dir", "pipeline_success", "steps", "skipped_nodes", "execution_order", "started_at", "duration_s",
        "interrupted", "warnings",
    ]
    assert set(data["steps"]["prep"]) == set(STEP_FIELDS) == {
        "status", "exit_code", "duration_s", "image", "outputs", "log_path", "failure_reason",
        "peak_memory_bytes", "cpu_time_s", "started_at", "ended_at", "cache_key", "warning_count", "warning_lines",
        "host", "host_id",
    }
    assert data["steps"]["prep"]["status"] == "succeeded"
    assert data["steps"]["prep"]["outputs"] == {"processed": "/runs/x/prep/output/processed"}
    assert data["steps"]["train"]["failure_reason"] == "boom"
    assert data["skipped_nodes"] == {"Cradle": "no script"}
    assert data["interrupted"] is True
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]  # no temp file left behind


def test_round_trip_restores_the_report(tmp_path: Path) -> None:
    original = _report()
    back = read_report_json(write_report_json(original, tmp_path / "report.json"))
    assert back.model_dump(exclude={"run_dir"}) == original.model_dump(exclude={"run_dir"})
    assert back.run_dir == str(tmp_path)  # report.json sits in the run folder


def test_rewrite_replaces_the_old_report(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    write_report_json(_report(), path)
    write_report_json(RunReport(run_id="second", pipeline_success=True, steps={}), path)
    assert read_report_json(path).run_id == "second"


@pytest.mark.parametrize(
    "content, fragment",
    [(None, "No run report"), ("{not json", "not valid JSON"), ('{"run_id": 1}', "no 'steps'"),
     ('{"run_id": "x", "pipeline_success": false, "steps": {"a": {"status": "exploded"}}}', "steps.a.status")],
)
def test_unreadable_reports_raise_one_clear_error(tmp_path: Path, content: str | None, fragment: str) -> None:
    path = tmp_path / "report.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(RtestError) as info:
        read_report_json(path)
    assert fragment in str(info.value) and str(path) in str(info.value)


def test_log_tail_returns_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    log.write_text("".join(f"line {i}\n" for i in range(10000)))
    assert log_tail(log, 3) == "line 9997\nline 9998\nline 9999"
    log.write_text("a\nb\nc")  # no final newline
    assert log_tail(log, 2) == "b\nc"
    assert log_tail(log, 50) == "a\nb\nc"
    assert log_tail(log, 0) == ""


def test_log_tail_is_robust_to_missing_empty_and_binary_files(tmp_path: Path) -> None:
    assert log_tail(tmp_path / "nope.txt", 5) == ""
    assert log_tail(None, 5) == ""
    assert log_tail(tmp_path, 5) == ""  # a folder
    (tmp_path / "empty.txt").write_bytes(b"")
    assert log_tail(tmp_path / "empty.txt", 5) == ""
    (tmp_path / "bin.txt").write_bytes(b"ok\n\xff\xfe caf\xc3\xa9\n")
    assert log_tail(tmp_path / "bin.txt", 5) == "ok\n\ufffd\ufffd caf\u00e9"


def test_log_tail_reads_only_the_end_of_a_huge_file(tmp_path: Path) -> None:
    log = tmp_path / "huge.txt"
    with open(log, "wb") as handle:
        handle.truncate(8 * 1024**3)  # 8 GiB sparse: reading it all would take minutes and the RAM
        handle.seek(0, os.SEEK_END)
        handle.write(b"\nsecond to last\nthe end\n")
    started = time.monotonic()
    assert log_tail(log, 2) == "second to last\nthe end"
    assert time.monotonic() - started < 2.0


def test_log_tail_caps_one_endless_line(tmp_path: Path) -> None:
    log = tmp_path / "progress.txt"
    log.write_bytes(b"x" * 1_000_000)  # a progress bar that never prints a newline
    assert len(log_tail(log, 5, max_bytes=4096)) == 4096


def test_strip_ansi() -> None:
    assert strip_ansi("\x1b[1;31mred\x1b[0m plain \x1b[2K") == "red plain "
