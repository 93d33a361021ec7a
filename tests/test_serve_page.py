"""The page a team keeps open, in a real browser (Playwright + Debian's chromium): the runs list (coloured
status, start time, steps done/total, filters), a run's deep link, a failed run's reasons and log, and
"what changed" since the previous run of the same pipeline. Screenshots land in tests/artifacts/."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rtest.testing import write_python_pipeline
from serve_helpers import running_service, wait_for

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).with_name("artifacts")
CHROMIUM = "/usr/bin/chromium"
OUT, IN = "/opt/ml/processing/output/out", "/opt/ml/processing/input/out"


def _shop(root: Path) -> dict:
    steps = {"Fetch": {"script": "# fetch\n", "outputs": {"out": OUT}},
             "Train": {"script": "# train v1\n", "inputs": {"out": IN}, "outputs": {"out": OUT},
                       "env": {"required": [], "optional": {"MAX_DEPTH": "3"}}, "config": {"max_depth": 4}}}
    return write_python_pipeline(root, steps, [("Fetch", "Train")])


def _finished(svc, run_id: str) -> dict:
    with svc.client() as client:
        return wait_for(lambda: (run := client.run(run_id))["status"] not in ("queued", "running") and run, 120)


def _submit_api(svc, paths: dict) -> str:
    with svc.client() as client:
        return client.submit({"spec": {"pipeline": {"dag": str(paths["dag"]), "config": str(paths["config"])}},
                              "settings": {"cache": False}, "submitter": "api"})


def test_runs_list_deep_link_failure_and_what_changed(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    fail_file = tmp_path / "failing.txt"
    shop = _shop(tmp_path / "shop")
    other = write_python_pipeline(tmp_path / "other", {"Only": {"script": "# only\n", "outputs": {"out": OUT}}}, [])
    other_dag = other["dag"].rename(other["dag"].with_name("other.dag.json"))
    env = {"RTEST_FAKE_STEP_S": "0.3", "RTEST_FAKE_FAIL_FILE": str(fail_file)}
    with running_service(tmp_path / "wd", env=env) as svc, sync_playwright() as p:
        first = _submit_api(svc, shop)
        assert _finished(svc, first)["status"] == "succeeded"
        side = _submit_api(svc, {"dag": other_dag, "config": other["config"]})
        _finished(svc, side)
        # The next run of the same pipeline: Train's script and its max_depth edited, and Train now fails.
        (shop["src"] / "Train" / "main.py").write_text("# train v2\n")
        config = json.loads(shop["config"].read_text())
        config["configuration"]["specific"]["Train"]["max_depth"] = 6
        shop["config"].write_text(json.dumps(config))
        fail_file.write_text("Train\n")

        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1200})
        page.goto(f"{svc.url}/?token={svc.token}")  # the URL rtest serve prints: the token becomes a cookie
        page.click("details summary")  # the form: fields, not JSON
        page.fill("#dag-path", str(shop["dag"]))
        page.fill("#config-path", str(shop["config"]))
        page.fill("#submitter", "alice")
        page.set_checked("#no-cache", True)
        page.click("#submit")
        expect(page.locator("#submit-result")).to_have_text(re.compile(r"^submitted "), timeout=30_000)
        second = page.text_content("#submit-result").split()[-1]
        assert page.evaluate("location.pathname") == f"/runs/{second}"  # the page follows the new run's link

        # A failed run: each failed step's reason, and its log opened by itself.
        expect(page.locator("#run-status")).to_have_text("failed", timeout=60_000)
        failure = page.locator('#failures .failure[data-node="Train"]')
        failure.wait_for()
        with svc.client() as client:
            reason = next(s["reason"] for s in client.run(second)["steps"] if s["node"] == "Train")
        assert reason and reason in failure.locator(".reason").text_content()
        expect(page.locator("#log-node")).to_have_text("Train", timeout=30_000)
        assert page.locator("#failures .failure").count() == 1
        page.screenshot(path=str(ARTIFACTS / "serve-page-failed-run.png"), full_page=True)

        # What changed since the previous run of this pipeline (not the other pipeline's run in between).
        expect(page.locator("#changes-summary")).to_contain_text("since", timeout=30_000)
        assert f"since {first}" in page.text_content("#changes-summary")
        assert page.locator("#changes tr.step-change", has_text="Train").locator(".change-bad").text_content() \
            == "newly failing"
        assert page.locator("#changes tr.script-change", has_text="Train").count() == 1
        assert page.locator("#changes tr.script-change", has_text="Fetch").count() == 0
        depth = page.locator("#changes tr.value-change", has_text="env MAX_DEPTH").text_content()
        assert "4 (max_depth) → 6 (max_depth)" in depth
        page.locator("#changes").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "serve-page-what-changed.png"), full_page=True)

        # The runs list: coloured status, start time, steps done/total; filters by status and pipeline.
        row = page.locator(f'tr.run[data-run="{second}"]')
        assert row.locator(".steps-count").text_content() == "2/2"
        assert row.locator("td").nth(3).text_content().count(":") == 2  # YYYY-MM-DD HH:MM:SS
        colours = {run: page.locator(f'tr.run[data-run="{run}"] .badge').evaluate(
            "e => getComputedStyle(e).backgroundColor") for run in (first, second)}
        assert colours[first] != colours[second]
        page.select_option("#filter-status", "failed")
        _rows_are(page, [second])
        page.select_option("#filter-status", "")
        page.select_option("#filter-pipeline", "other.dag.json")
        _rows_are(page, [side])
        page.select_option("#filter-pipeline", "")
        expect(page.locator("tr.run")).to_have_count(3, timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "serve-page-runs-list.png"), full_page=True)

        # A deep link, opened fresh: that run, its steps, and its own "what changed" (the pipeline's first run).
        linked = browser.new_page(viewport={"width": 1280, "height": 1000})
        linked.goto(f"{svc.url}/runs/{first}?token={svc.token}")  # a fresh browser: the link keeps its run
        assert linked.url == f"{svc.url}/runs/{first}"  # the token left the address bar
        expect(linked.locator("#run-status")).to_have_text("succeeded", timeout=60_000)
        assert linked.text_content("#run-id") == first
        assert linked.locator("#steps tr").count() == 2 and linked.locator("#failures .failure").count() == 0
        expect(linked.locator("#changes-summary")).to_contain_text("first run", timeout=30_000)
        linked.screenshot(path=str(ARTIFACTS / "serve-page-deep-link.png"), full_page=True)
        browser.close()


def _rows_are(page, runs: list[str]) -> None:
    """The runs list shows exactly these runs, in this order (expect polls without eval: the page's CSP)."""
    from playwright.sync_api import expect

    expect(page.locator("tr.run")).to_have_count(len(runs), timeout=30_000)
    for index, run in enumerate(runs):
        expect(page.locator("tr.run").nth(index)).to_have_attribute("data-run", run)
