"""report.html: content checks on the text, and a real headless-chromium render."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from rtest.plan.model import (
    InputSpec,
    JobArgument,
    OutputSpec,
    PipelineTestingSpec,
    ScriptExecutionSpec,
    Source,
    Sourced,
    Wire,
)
from rtest.report.dag_layout import BOX_H, BOX_W, layout_dag
from rtest.report.html import write_report_html
from rtest.run.model import RunReport, StepResult, StepStatus

T0 = 1_700_000_000.0
EVIL = "<script>alert('pwned')</script>"
CHAIN = ["TabularPreprocessing_training", "XGBoostTraining", "XGBoostModelEval_calibration", "ModelCalibration",
         "Package", "Registration"]
EDGES = [*zip(CHAIN, CHAIN[1:]), ("CradleDataLoading_training", "TabularPreprocessing_training"),
         ("CradleDataLoading_calibration", "TabularPreprocessing_calibration"),
         ("TabularPreprocessing_calibration", "XGBoostModelEval_calibration"),
         ("TabularPreprocessing_training", "FeatureSelection")]
SKIPPED = {"CradleDataLoading_training": "data loading step: no script", "CradleDataLoading_calibration":
           "data loading step: no script", "Registration": "registration step: nothing to run locally"}


def _src(value, source=Source.CONFIG, field=None) -> Sourced:
    return Sourced(value=value, source=source, field=field)


def _spec(node: str, tmp: Path) -> ScriptExecutionSpec:
    return ScriptExecutionSpec(
        node=node,
        step_type=node.split("_")[0],
        job_kind="training" if "Training" in node else "processing",
        script_name="main",
        entry_point="main.py",
        source_dir=tmp / "scripts",
        inputs={
            "input_path": InputSpec(name="input_path", container_path="/opt/ml/processing/input/data"),
            "hyperparameters_s3_uri": InputSpec(
                name="hyperparameters_s3_uri", container_path="/opt/ml/input/config", required=False
            ),
        },
        outputs={"processed_data": OutputSpec(name="processed_data", container_path="/opt/ml/processing/output")},
        environment={"LABEL_FIELD": _src("is_fraud", field="label_name"), "API_TOKEN": _src("s3cr3t-value"),
                     "NOTE": _src(EVIL, Source.USER, "--env")},
        job_arguments=[JobArgument(flag="--job_type", value=_src("training", field="job_type"))],
        hyperparameters={"eta": _src(0.3, field="eta"), "max_depth": _src(6, Source.INTERFACE)},
        instance_type=_src("ml.m5.xlarge"),
        framework=_src("xgboost"),
        framework_version=_src("1.7-1"),
        image=_src("rtest/sagemaker-xgboost:1.7-1", Source.BUILTIN),
    )


def _plan(tmp: Path) -> PipelineTestingSpec:
    nodes = ["CradleDataLoading_training", "CradleDataLoading_calibration", "TabularPreprocessing_calibration",
             *CHAIN[:-1], "FeatureSelection", "Registration"]
    scripts = {n: _spec(n, tmp) for n in nodes if n not in SKIPPED}
    scripts["TabularPreprocessing_training"].inputs["input_path"] = InputSpec(
        name="input_path", container_path="/opt/ml/processing/input/data",
        host_path=_src(str(tmp / "data" / "train.csv"), Source.USER, "--input"))
    wires = [Wire(source_node=a, source_output="processed_data", target_node=b, target_input="input_path",
                  match="name") for a, b in EDGES if a in scripts and b in scripts]
    return PipelineTestingSpec(dag_nodes=nodes, dag_edges=EDGES, scripts=scripts, skipped=SKIPPED, wires=wires,
                               notes=[f"weak match for {EVIL}"])


def _report(tmp: Path) -> RunReport:
    log = tmp / "runs" / "r1" / "XGBoostTraining" / "log.txt"
    log.parent.mkdir(parents=True)
    log.write_text("".join(f"[{i}] train-auc:0.9{i:02d}\n" for i in range(300)) + f"\x1b[31m{EVIL}\x1b[0m\n"
                   + "ValueError: label column 'is_fraud' has NaN\n")

    def step(node, status, start=None, seconds=0.0, **extra):
        end = None if start is None else T0 + start + seconds
        return StepResult(node=node, status=status, started_at=None if start is None else T0 + start,
                          ended_at=end, duration_s=seconds, image="rtest/sagemaker-xgboost:1.7-1", **extra)

    steps = [
        step("TabularPreprocessing_training", StepStatus.SUCCEEDED, 0.5, 14.2, exit_code=0,
             outputs={"processed_data": str(tmp / "runs/r1/TabularPreprocessing_training/output/processed_data")},
             peak_memory_bytes=734_003_200, cpu_time_s=11.8),
        step("TabularPreprocessing_calibration", StepStatus.CACHED, 0.5, 0.1, cache_key="9f2c1e"),
        step("XGBoostTraining", StepStatus.FAILED, 15.0, 41.7, exit_code=1, log_path=str(log),
             failure_reason="script exited with code 1: ValueError: label column 'is_fraud' has NaN"),
        step("FeatureSelection", StepStatus.CANCELLED, 15.0, 42.0, failure_reason="cancelled after a failure"),
        *[step(n, StepStatus.UPSTREAM_FAILED, failure_reason="upstream step 'XGBoostTraining' failed")
          for n in CHAIN[2:5]],
    ]
    return RunReport(run_id="20231114-fraud", pipeline_success=False, steps={s.node: s for s in steps},
                     skipped_nodes=SKIPPED, run_dir=str(tmp / "runs" / "r1"), started_at=T0, duration_s=57.5,
                     execution_order=[s.node for s in steps])


@pytest.fixture
def rendered(tmp_path: Path) -> tuple[Path, str]:
    path = write_report_html(_report(tmp_path), _plan(tmp_path), tmp_path / "out" / "report.html")
    return path, path.read_text(encoding="utf-8")


def test_page_holds_dag_timeline_and_step_details(rendered: tuple[Path, str]) -> None:
    _, page = rendered
    nodes = re.findall(r'<g class="dag-node" data-node="([^"]+)" data-status="([^"]+)"', page)
    assert len(nodes) == 10
    status = dict(nodes)
    assert status["XGBoostTraining"] == "failed" and status["Registration"] == "skipped"
    assert status["TabularPreprocessing_calibration"] == "cached" and status["FeatureSelection"] == "cancelled"
    assert page.count('class="edge"') == len(EDGES)
    assert len(re.findall(r'<g class="bar" data-node=', page)) == 4  # only steps that started
    for expected in ("ml.m5.xlarge", "--job_type", "LABEL_FIELD", "config:label_name", "700.0 MiB",
                     "/opt/ml/processing/input/data", "wire TabularPreprocessing_training.processed_data",
                     "data loading step: no script", "label column &#x27;is_fraud&#x27; has NaN", "41.7 s"):
        assert expected in page, expected
    assert "s3cr3t-value" not in page  # secret-looking env vars are hidden
    assert "[299] train-auc" in page and "[99] train-auc" not in page  # the tail, not the whole log


def test_user_text_is_escaped(rendered: tuple[Path, str]) -> None:
    _, page = rendered
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page
    assert "\x1b" not in page


def test_page_is_self_contained(rendered: tuple[Path, str]) -> None:
    _, page = rendered
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "@import" not in page and "url(http" not in page


def test_empty_and_all_skipped_reports_render(tmp_path: Path) -> None:
    empty = PipelineTestingSpec(dag_nodes=[], dag_edges=[], scripts={})
    page = write_report_html(RunReport(run_id="e", pipeline_success=True, steps={}), empty,
                             tmp_path / "e.html").read_text()
    assert "The DAG has no nodes." in page and "No step ran" in page
    skipped = PipelineTestingSpec(dag_nodes=["a", "b"], dag_edges=[("a", "b")], scripts={},
                                  skipped={"a": "no script", "b": "no script"})
    report = RunReport(run_id="s", pipeline_success=True, steps={}, skipped_nodes=skipped.skipped)
    page = write_report_html(report, skipped, tmp_path / "s.html").read_text()
    assert page.count('data-status="skipped"') == 2 and "Skipped nodes (2)" in page


def test_thousand_nodes_stay_reasonable(tmp_path: Path) -> None:
    nodes = [f"step_{i:04d}" for i in range(1000)]
    edges = [(nodes[i], nodes[i + 1 + (i % 7)]) for i in range(993)]  # a ragged, deep, wide DAG
    plan = PipelineTestingSpec(dag_nodes=nodes, dag_edges=edges, scripts={})
    steps = {n: StepResult(node=n, status=StepStatus.SUCCEEDED, started_at=T0 + i, ended_at=T0 + i + 2,
                           duration_s=2.0) for i, n in enumerate(nodes)}
    report = RunReport(run_id="big", pipeline_success=True, steps=steps, started_at=T0, duration_s=1002.0)
    page = write_report_html(report, plan, tmp_path / "big.html").read_text()
    assert page.count('class="dag-node"') == 1000
    assert len(page) < 3_000_000
    widths = [int(w) for w in re.findall(r'<svg class="dag"[^>]* width="(\d+)"', page)]
    assert widths and max(widths) < 1400  # wide layers wrap instead of growing sideways


def test_layout_keeps_boxes_apart_and_routes_long_edges_around_them(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    layout = layout_dag(plan.dag_nodes, plan.dag_edges)
    boxes = list(layout.boxes.items())
    for i, (a, (ax, ay)) in enumerate(boxes):
        for b, (bx, by) in boxes[i + 1 :]:
            assert abs(ax - bx) >= BOX_W or abs(ay - by) >= BOX_H, (a, b)
        assert 0 <= ax and ax + BOX_W <= layout.width and 0 <= ay and ay + BOX_H <= layout.height
    long_edge = [points for a, b, points in layout.routes
                 if (a, b) == ("TabularPreprocessing_calibration", "XGBoostModelEval_calibration")]
    assert len(long_edge) == 1 and len(long_edge[0]) == 4  # it spans a layer, so it got a waypoint
    (x, top), (_, bottom) = long_edge[0][1:3]
    for node, (bx, by) in layout.boxes.items():  # the straight stretch through that layer misses every box
        assert not (bx <= x <= bx + BOX_W and by < bottom and top < by + BOX_H), node
    for a, b, points in layout.routes:  # every edge leaves its source's bottom and enters its target's top
        assert points[0][1] == layout.boxes[a][1] + BOX_H and points[-1][1] < layout.boxes[b][1]


# ---- a real browser render -------------------------------------------------------------------------------


def _chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("The browser test needs Debian's chromium: run `apt-get install -y chromium`.")
    return binary


def _run_chromium(binary: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp / 'profile'}"]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=180)


def _png_pixels(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """Decode an 8-bit non-interlaced PNG into rows of raw pixels (stdlib only)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        header = struct.unpack(">IIBBBBB", body) if kind == b"IHDR" else header
        idat += body if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and interlace == 0, header
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    raw, stride, rows, prev = zlib.decompress(idat), width * channels, [], bytes(width * channels)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        _unfilter(kind, line, prev, channels)
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


def _unfilter(kind: int, line: bytearray, prev: bytes, bpp: int) -> None:
    if kind == 2:
        line[:] = bytes((a + b) & 255 for a, b in zip(line, prev))
        return
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        up, corner = prev[i], prev[i - bpp] if i >= bpp else 0
        if kind == 1:
            line[i] = (line[i] + left) & 255
        elif kind == 3:
            line[i] = (line[i] + (left + up) // 2) & 255
        elif kind == 4:
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255


@pytest.mark.browser
def test_chromium_renders_the_report(rendered: tuple[Path, str], tmp_path: Path) -> None:
    binary = _chromium()
    path, _ = rendered
    shot = tmp_path / "shot.png"
    done = _run_chromium(binary, tmp_path, f"--screenshot={shot}", "--window-size=1400,2000", path.as_uri())
    assert shot.exists(), f"chromium wrote no screenshot (exit {done.returncode}): {done.stderr[-2000:]}"
    assert shot.stat().st_size > 20_000
    width, height, channels, rows = _png_pixels(shot.read_bytes())
    assert (width, height) == (1400, 2000)
    colours = {row[x : x + 3] for row in rows[::4] for x in range(0, width * channels, channels * 4)}
    assert len(colours) > 50, f"the page rendered nearly blank ({len(colours)} colours)"
    palette = {bytes.fromhex(c) for c in ("cc3333", "2e9e4f", "1683a0", "dd8416")}  # failed, ok, cached, upstream
    assert palette <= colours, "status colours missing from the rendered DAG"

    dom = _run_chromium(binary, tmp_path, "--dump-dom", path.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count('class="dag-node"') == 10 and '<svg class="timeline"' in dom.stdout
    assert "<script" not in dom.stdout.lower() and "&lt;script&gt;alert" in dom.stdout
