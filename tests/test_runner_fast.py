"""The runner and the step executor against FakeBackend: ordering, --jobs, skipping, cancel,
prepare-ahead, cache hits, timeouts, OOM and a lost engine. No container engine is needed."""

from __future__ import annotations

import json
import threading

import pytest

from rtest.errors import ImageNotFoundError
from rtest.plan.builder import build_plan, load_pipeline_inputs
from rtest.plan.settings import CommandLine
from rtest.run.engine import RunOptions, run_pipeline
from rtest.run.events import RunFinished, RunStarted, StepCreated, StepFinished, StepQueued, StepStarted
from rtest.session import run_and_report
from rtest.testing import FakeBackend, FakeStep, write_python_pipeline

OUT = "/opt/ml/processing/output/out"
IN = "/opt/ml/processing/input/out"


def _plan(tmp_path, nodes: list[str], edges: list[tuple[str, str]]):
    fed = {target for _, target in edges}
    # Distinct sources, so no step is ever a cache hit for another.
    steps = {n: {"script": f"# step {n}\n", "outputs": {"out": OUT}, **({"inputs": {"out": IN}} if n in fed else {})}
             for n in nodes}
    paths = write_python_pipeline(tmp_path / "p", steps, edges)
    return build_plan(load_pipeline_inputs(paths["dag"], paths["config"], [paths["interfaces"]]))


def _run(plan, tmp_path, backend, **kwargs):
    options = RunOptions(workdir=tmp_path / "wd", jobs=kwargs.pop("jobs", 2), stop_grace_s=0.1)
    return run_pipeline(plan, options, backend=backend, **kwargs)


def _status(report) -> dict[str, str]:
    return {node: result.status.value for node, result in report.steps.items()}


def test_steps_start_only_after_their_parents_finish_and_receive_their_outputs(tmp_path):
    plan = _plan(tmp_path, ["A", "B", "C", "D"], [("A", "B"), ("A", "C"), ("B", "D"), ("C", "D")])
    backend = FakeBackend({"A": FakeStep(duration_s=0.05)})
    report = _run(plan, tmp_path, backend)
    assert report.pipeline_success and _status(report) == dict.fromkeys("ABCD", "succeeded")
    position = {(what, node): i for i, (what, node) in enumerate(backend.calls)}
    for parent, child in plan.dag_edges:
        assert position[("finish", parent)] < position[("start", child)]
    assert backend.inputs_seen["D"] == {IN: ["out.txt"]}  # the upstream output, staged into the input
    assert backend.live == {}  # every container removed


def test_jobs_bounds_how_many_steps_run_at_once(tmp_path):
    plan = _plan(tmp_path, ["A", "B", "C", "D"], [])
    steps = {n: FakeStep(duration_s=0.05) for n in "ABCD"}
    two, one = FakeBackend(steps), FakeBackend(steps)
    _run(plan, tmp_path, two, jobs=2, settings=CommandLine(cache=False))
    _run(plan, tmp_path, one, jobs=1, settings=CommandLine(cache=False))
    assert two.max_running == 2 and one.max_running == 1


def test_a_failure_skips_its_descendants_only(tmp_path):
    plan = _plan(tmp_path, ["A", "B", "C", "D"], [("A", "B"), ("B", "C")])
    backend = FakeBackend({"A": FakeStep(exit_code=3, failure="ValueError: bad column")})
    report = _run(plan, tmp_path, backend)
    assert _status(report) == {"A": "failed", "B": "upstream_failed", "C": "upstream_failed", "D": "succeeded"}
    assert report.steps["A"].exit_code == 3 and report.steps["A"].failure_reason == "ValueError: bad column"
    assert report.steps["C"].failure_reason == "upstream step A failed"
    assert set(backend.started()) == {"A", "D"} and not report.pipeline_success
    assert backend.live == {}  # B's container, created ahead, was removed


def test_cancel_stops_the_running_step_and_never_starts_the_rest(tmp_path):
    plan = _plan(tmp_path, ["A", "B", "C", "D"], [("A", "B"), ("B", "C")])
    backend = FakeBackend({"A": FakeStep(duration_s=30), "D": FakeStep(duration_s=30)})
    cancel = threading.Event()
    on_start = lambda event: isinstance(event, StepStarted) and event.node == "A" and cancel.set()  # noqa: E731
    report = _run(plan, tmp_path, backend, cancel=cancel, subscribers=[on_start], jobs=1)
    assert _status(report) == {"A": "cancelled", "B": "upstream_failed", "C": "upstream_failed", "D": "cancelled"}
    assert report.interrupted and backend.started() == ["A"] and backend.live == {}
    assert report.steps["B"].failure_reason == "upstream step A cancelled"
    assert report.steps["D"].failure_reason == "cancelled before it started"


def test_a_child_is_created_ahead_while_its_parent_runs(tmp_path):
    plan = _plan(tmp_path, ["A", "B"], [("A", "B")])
    backend = FakeBackend({"A": FakeStep(duration_s=0.1)})
    _run(plan, tmp_path, backend)
    assert backend.calls.index(("prepare", "B")) < backend.calls.index(("finish", "A"))
    assert backend.calls.count(("prepare", "B")) == 1  # the container made ahead is the one started


def test_below_a_cached_step_a_child_is_still_created_ahead_once_a_step_runs(tmp_path):
    plan = _plan(tmp_path, ["A", "B", "C"], [("A", "B"), ("B", "C")])
    _run(plan, tmp_path, FakeBackend())
    script = plan.scripts["B"].script_path
    script.write_text(script.read_text() + "# edited\n")  # B reruns; A stays cached
    changed = FakeBackend({"B": FakeStep(duration_s=0.1)})
    report = _run(plan, tmp_path, changed)
    assert _status(report) == {"A": "cached", "B": "succeeded", "C": "cached"}  # B wrote what it wrote before
    assert ("prepare", "A") not in changed.calls and ("prepare", "B") in changed.calls  # B: made when it started
    assert changed.calls.index(("prepare", "C")) < changed.calls.index(("finish", "B"))  # C: ahead, while B ran


def test_an_unchanged_rerun_is_served_from_the_cache(tmp_path):
    plan = _plan(tmp_path, ["A", "B"], [("A", "B")])
    first, second = FakeBackend(), FakeBackend()
    _run(plan, tmp_path, first)
    again = _run(plan, tmp_path, second)
    assert _status(again) == {"A": "cached", "B": "cached"} and second.started() == []
    assert second.calls == []  # no container was made ahead for a step the cache then served
    assert (tmp_path / "wd" / "runs" / again.run_id / "B" / "input" / "out" / "out.txt").read_text() == \
        "made by a fake step\n"  # the cached output still feeds its consumer
    off = _run(plan, tmp_path, FakeBackend(), settings=CommandLine(cache=False))
    assert _status(off) == {"A": "succeeded", "B": "succeeded"}


def test_a_changed_input_reruns_the_consumer_only(tmp_path):
    plan = _plan(tmp_path, ["A", "B"], [("A", "B")])
    _run(plan, tmp_path, FakeBackend())
    changed = FakeBackend({"A": FakeStep(writes={"out.txt": "different\n"})})
    report = _run(plan, tmp_path, changed, settings=CommandLine(network="bridge"))  # a setting in the key
    assert _status(report) == {"A": "succeeded", "B": "succeeded"}
    rerun = FakeBackend({"A": FakeStep(writes={"out.txt": "different\n"})})
    again = _run(plan, tmp_path, rerun, settings=CommandLine(network="bridge"))
    assert _status(again) == {"A": "cached", "B": "cached"}


def test_timeout_from_the_command_line_stops_the_step_and_reaches_the_job_config(tmp_path):
    plan = _plan(tmp_path, ["A", "B"], [("A", "B")])
    backend = FakeBackend({"A": FakeStep(duration_s=30)})
    report = _run(plan, tmp_path, backend, settings=CommandLine(timeout_s=0.2))
    assert _status(report) == {"A": "failed", "B": "upstream_failed"}
    assert report.steps["A"].failure_reason.startswith("timed out after 0.2 s (max runtime, from user:--timeout)")
    assert report.settings["A"]["timeout_s"] == (0.2, "user:--timeout")


def test_processing_job_config_stopping_condition_is_the_timeout_flag(tmp_path):
    plan = _plan(tmp_path, ["A"], [])
    report = _run(plan, tmp_path, FakeBackend(), settings=CommandLine(timeout_s=1234))
    config = json.loads((tmp_path / "wd" / "runs" / report.run_id / "A" / "config" / "processingjobconfig.json")
                        .read_text())
    assert config["StoppingCondition"] == {"MaxRuntimeInSeconds": 1234}


def test_oom_and_a_lost_engine_are_failures_with_reasons(tmp_path):
    plan = _plan(tmp_path, ["A", "B", "C"], [("B", "C")])
    backend = FakeBackend({"A": FakeStep(oom=True), "B": FakeStep(engine_lost=True)})
    report = _run(plan, tmp_path, backend, settings=CommandLine(memory_bytes=300 * 2**20))
    assert _status(report) == {"A": "failed", "B": "failed", "C": "upstream_failed"}
    assert report.steps["A"].failure_reason.startswith("out of memory: the kernel killed the script at the 300 MiB")
    assert report.steps["B"].failure_reason == "container engine error: lost contact with the fake engine"


def test_a_missing_image_stops_the_run_before_any_step(tmp_path):
    plan = _plan(tmp_path, ["A"], [])
    backend = FakeBackend(images=set())
    with pytest.raises(ImageNotFoundError):
        _run(plan, tmp_path, backend)
    assert backend.calls == []


def test_events_arrive_in_order_and_report_json_is_readable_while_the_run_goes(tmp_path):
    plan = _plan(tmp_path, ["A", "B"], [("A", "B")])
    events, snapshots = [], {}

    def watch(event):
        events.append(event)
        if isinstance(event, StepFinished):
            run_dir = tmp_path / "wd" / "runs" / events[0].run_id
            snapshots[event.node] = json.loads((run_dir / "report.json").read_text())

    options = RunOptions(workdir=tmp_path / "wd", jobs=1)
    report = run_and_report(plan, options, backend=FakeBackend(), subscribers=[watch], formats=["json"])
    kinds = [(type(e).__name__, getattr(e, "node", None)) for e in events]
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished)
    for node in "AB":
        mine = [k for k, n in kinds if n == node]
        assert mine == [StepQueued.__name__, StepCreated.__name__, StepStarted.__name__, StepFinished.__name__] or \
            mine == [StepCreated.__name__, StepQueued.__name__, StepStarted.__name__, StepFinished.__name__]
    partial = snapshots["A"]
    assert partial["steps"]["A"]["status"] == "succeeded" and partial["steps"]["B"]["status"] == "pending"
    assert partial["duration_s"] is None and not partial["pipeline_success"]
    final = json.loads((tmp_path / "wd" / "runs" / report.run_id / "report.json").read_text())
    assert final["pipeline_success"] and final["duration_s"] is not None


def test_plan_and_html_report_show_where_each_setting_came_from(tmp_path):
    from rtest.cli.render import plan_json

    plan = _plan(tmp_path, ["A"], [])
    shown = plan_json(plan)["settings"]["A"]
    assert shown["network"] == {"value": "none", "source": "builtin:sandbox default"}
    assert shown["cache"] == {"value": True, "source": "builtin"}
    options = RunOptions(workdir=tmp_path / "wd")
    report = run_and_report(plan, options, backend=FakeBackend(), settings=CommandLine(timeout_s=99, network="bridge"))
    html = (tmp_path / "wd" / "runs" / report.run_id / "report.html").read_text()
    assert "<td>timeout_s</td><td>99.0</td><td>user:--timeout</td>" in html
    assert "<td>network</td><td>bridge</td><td>user:--network</td>" in html


def test_a_run_that_dies_leaves_a_readable_partial_report_and_no_containers(tmp_path):
    from rtest.report.json_report import read_report_json
    from rtest.testing import FakeCrash

    plan = _plan(tmp_path, ["A", "B", "C"], [("A", "B"), ("B", "C")])
    backend = FakeBackend({"B": FakeStep(crash=True)})
    with pytest.raises(FakeCrash):
        run_and_report(plan, RunOptions(workdir=tmp_path / "wd", jobs=1), backend=backend)
    left = read_report_json(next((tmp_path / "wd" / "runs").glob("*/report.json")))
    assert _status(left) == {"A": "succeeded", "B": "pending", "C": "pending"}
    assert left.duration_s is None and not left.pipeline_success
    assert backend.live == {}  # C's container, created ahead, was removed on the way out
