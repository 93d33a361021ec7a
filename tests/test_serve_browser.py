"""The web page of rtest serve in a real browser (Playwright driving Debian's chromium): submit a run,
watch a step turn green without a reload, cancel a run. The screenshot lands in tests/artifacts/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rtest.testing import write_python_pipeline
from serve_helpers import running_service

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).with_name("artifacts")
CHROMIUM = "/usr/bin/chromium"
OUT, IN = "/opt/ml/processing/output/out", "/opt/ml/processing/input/out"


def _request(root: Path, name: str, first: str = "First") -> dict:
    steps = {first: {"script": f"# {name} first\n", "outputs": {"out": OUT}},
             "Second": {"script": f"# {name} second\n", "inputs": {"out": IN}, "outputs": {"out": OUT}}}
    return write_python_pipeline(root / name, steps, [(first, "Second")])


def _submit(page, paths: dict) -> str:
    """The page's submit form, field by field (no JSON to type)."""
    page.fill("#dag-path", str(paths["dag"]))
    page.fill("#config-path", str(paths["config"]))
    page.fill("#submitter", "browser")
    page.set_checked("#no-cache", True)
    from playwright.sync_api import expect
    page.click("#submit")
    expect(page.locator("#submit-result")).to_have_text(re.compile(r"^submitted "))  # the page's CSP forbids eval
    return page.text_content("#submit-result").split()[-1]


def test_the_page_shows_a_run_live_and_cancels_another(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    env = {"RTEST_FAKE_STEP_S": "2", "RTEST_FAKE_SLOW": "Slow"}
    with running_service(tmp_path / "wd", env=env) as svc, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        refused = []  # anything the page's own Content-Security-Policy blocked
        page.on("console", lambda message: "Content Security Policy" in message.text and refused.append(message.text))
        page.goto(f"{svc.url}/?token={svc.token}")  # the URL rtest serve prints: the token becomes a cookie
        page.click("details summary")
        first = _submit(page, _request(tmp_path, "quick"))
        # The same page, never reloaded: the DAG box turns running, then green (succeeded).
        page.wait_for_selector('#dag g.dag-node[data-node="First"][data-status="running"]', timeout=30_000)
        page.wait_for_selector('#dag g.dag-node[data-node="Second"][data-status="succeeded"]', timeout=60_000)
        page.click('#dag g.dag-node[data-node="Second"]')
        expect(page.locator("#log")).to_contain_text("fake step Second")
        assert page.text_content("#run-status") == "succeeded"
        assert page.locator(f'tr.run[data-run="{first}"]').count() == 1
        page.screenshot(path=str(ARTIFACTS / "serve-page-succeeded.png"), full_page=True)

        second = _submit(page, _request(tmp_path, "slow", first="Slow"))
        page.wait_for_selector('#dag g.dag-node[data-node="Slow"][data-status="running"]', timeout=30_000)
        page.click("#cancel")
        expect(page.locator("#run-status")).to_have_text("cancelled", timeout=60_000)
        page.wait_for_selector('#dag g.dag-node[data-node="Slow"][data-status="cancelled"]')
        page.screenshot(path=str(ARTIFACTS / "serve-page-cancelled.png"), full_page=True)
        browser.close()
        assert refused == []
        with svc.client() as client:
            assert client.run(second)["status"] == "cancelled" and client.run(first)["status"] == "succeeded"
