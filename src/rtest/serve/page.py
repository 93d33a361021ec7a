"""The web page's answers and the headers that keep step-written files inert.

The page is sent with a strict Content-Security-Policy: its script is its own file (/static/app.js), it may
talk to this origin only, and nothing may frame it. Opened as ``/?token=...`` (the URL `rtest serve`
prints) it sets the token as an HttpOnly, SameSite=Strict cookie and redirects to ``/``, so the token
leaves the address bar and page scripts never hold it.

Every file a run holds was written by a step: it is served as an attachment, ``nosniff``, under a
``sandbox`` CSP, so a step's ``.html`` downloads instead of running script on the service's origin.
The run's own ``report.html`` (written by rtest, no scripts) is shown inline, sandboxed all the same.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import lru_cache
from importlib import resources
from urllib.parse import quote

from fastapi.responses import HTMLResponse, RedirectResponse, Response

from rtest.serve.auth import same_token

REPORT = "report.html"
ARTIFACT_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"


@lru_cache(maxsize=1)
def _page() -> tuple[str, str]:
    html = resources.files("rtest.serve").joinpath("web/index.html").read_text(encoding="utf-8")
    hashes = [f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
              for body in re.findall(r"<script>(.*?)</script>", html, flags=re.S)]  # none today: kept strict if any
    scripts = " ".join(["'self'", *hashes])
    csp = (f"default-src 'none'; script-src {scripts}; style-src 'self' 'unsafe-inline'; connect-src 'self'; "
           "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return html, csp


def page_response(token: str | None, given: str | None, cookie: str, back: str = "/") -> Response:
    html, csp = _page()
    if given is not None:  # the printed URL: trade the token for the cookie, and drop it from the address bar
        answer = RedirectResponse(back if back.startswith("/runs/") else "/", status_code=303)
        if token and same_token(given, token):
            answer.set_cookie(cookie, token, httponly=True, samesite="strict", path="/")
        return answer
    return HTMLResponse(html, headers={"Content-Security-Policy": csp, "Referrer-Policy": "same-origin",
                                       "Cache-Control": "no-store"})


def artifact_headers(path: str) -> tuple[str, dict[str, str]]:
    """(media type, headers) for a file of a run at ``path`` (relative to the run folder)."""
    if path == REPORT:
        return "text/html; charset=utf-8", {"Content-Security-Policy": ARTIFACT_CSP}
    name = path.rsplit("/", 1)[-1] or "file"
    return "application/octet-stream", {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
                                        "Content-Security-Policy": ARTIFACT_CSP}
