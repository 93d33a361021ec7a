"""What a web browser may do to the service: the defences against other pages the user has open.

A page on any other origin (another loopback port counts) can make the browser send requests here;
it cannot set custom headers or read answers without CORS, which we never grant unless configured.
So, for every request:

* the ``Host`` must be one we answer to (the bound address, localhost, 127.0.0.1, [::1], --allowed-host):
  a rebinding page (its name resolving to 127.0.0.1) sends its own name and is refused;
* a state-changing request (not GET/HEAD/OPTIONS) that a browser sends carries ``Origin`` (or at least
  ``Referer``); it must be this service's own origin or an --allowed-origin. Requests with neither
  come from programs (the CLI, curl), which a page cannot drive;
* every answer says ``nosniff`` and may not be framed.
(JSON-only bodies and the upload header are checked by the routes; see rtest.serve.app.)
"""

from __future__ import annotations

import ipaddress
import json
import socket
from urllib.parse import urlsplit

from starlette.datastructures import Headers

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
WILDCARDS = ("0.0.0.0", "::", "[::]", "")
ANY = "*"


def host_name(host_header: str) -> str:
    """``Host`` without its port, lower case: '127.0.0.1:8080' -> '127.0.0.1', '[::1]:80' -> '[::1]'."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def allowed_hosts(bound: str, extra: tuple[str, ...] = ()) -> frozenset[str]:
    """The names this service answers to. A wildcard bind (0.0.0.0) also answers to this machine's names."""
    names = {*LOOPBACK_NAMES, *(host_name(h) if h != ANY else ANY for h in extra)}
    bound = bound.strip().lower()
    if bound in WILDCARDS:
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    else:
        names.add(f"[{bound.strip('[]')}]" if ":" in bound else bound)
    return frozenset(names)


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
        return True
    except ValueError:
        return False


class BrowserGuard:
    """ASGI middleware: Host allowlist, same-origin state changes, nosniff and no framing on every answer."""

    def __init__(self, app, *, bound: str, hosts: tuple[str, ...] = (), origins: tuple[str, ...] = ()) -> None:
        self.app = app
        self.hosts = allowed_hosts(bound, hosts)
        self.any_ip = bound.strip().lower() in WILDCARDS  # reached by this machine's addresses, whatever they are
        self.origins = frozenset(o.rstrip("/").lower() for o in origins)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        problem = self._host_problem(host) or (
            None if scope["method"] in SAFE_METHODS else self._origin_problem(headers, host))
        if problem:
            await _refuse(send, *problem)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY")]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _host_problem(self, host: str) -> tuple[int, str] | None:
        name = host_name(host)
        if ANY in self.hosts or name in self.hosts or (self.any_ip and _is_ip_literal(name)):
            return None
        return 421, ("This service does not answer to that Host name (a page may be rebinding its name to this "
                     "machine); use http://127.0.0.1:PORT, or start the service with --allowed-host NAME.")

    def _origin_problem(self, headers: Headers, host: str) -> tuple[int, str] | None:
        origin = headers.get("origin")
        if origin is None and headers.get("referer"):
            parts = urlsplit(headers["referer"])
            origin = f"{parts.scheme}://{parts.netloc}"
        if origin is None:
            return None  # not sent by a browser page
        origin = origin.rstrip("/").lower()
        if origin in self.origins or origin in (f"http://{host.lower()}", f"https://{host.lower()}"):
            return None
        return 403, ("Cross-origin request refused: a page from another origin may not change anything here; "
                     "use the service's own page, the rtest CLI, or start the service with --allowed-origin.")


async def _refuse(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"x-content-type-options", b"nosniff")]})
    await send({"type": "http.response.body", "body": body})
