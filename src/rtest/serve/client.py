"""The HTTP client of `rtest serve`, used by `rtest sandbox run --server`, `rtest runs` and the factory."""

from __future__ import annotations

import functools
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from rtest.errors import RtestError


class ServiceError(RtestError):
    """The service refused a request (bad input, unknown run, missing token)."""


class ServiceUnavailableError(RtestError):
    """No service answers at the URL."""

    exit_code = 3


@functools.cache
def _tls_context(https: bool) -> ssl.SSLContext:
    """One context per process. httpx's own (certifi's CA bundle) costs ~15 ms to load, which a plain-http
    service never needs: it gets a verifying context that trusts nothing, so it fails closed if ever asked
    to speak TLS (the client follows no redirects)."""
    return httpx.create_ssl_context() if https else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class ServiceClient:
    def __init__(self, url: str, token: str | None = None, *, timeout_s: float = 60.0) -> None:
        from rtest.serve.local import local_token

        self.url = url.rstrip("/")
        token = token or local_token(self.url)  # a service on this machine left its token for us
        headers = {"x-rtest-client": "cli", **({"Authorization": f"Bearer {token}"} if token else {})}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=httpx.Timeout(timeout_s),
                                 trust_env=False, verify=_tls_context(self.url.startswith("https:")))

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- plain calls -------------------------------------------------------------------------
    def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServiceUnavailableError(f"No rtest service answers at {self.url} ({exc}); start one with "
                                          "`rtest serve` or check --server / RTEST_SERVER.") from None
        _raise_for(response, self.url)
        return response

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/healthz").json()

    def service(self) -> dict[str, Any]:
        """Where the service keeps its runs (for token holders)."""
        return self._call("GET", "/api/service").json()

    def shares_file_system(self, probe: Path | None = None) -> bool:
        """True when paths mean the same on both sides: the service's workdir is visible here with the id it
        reports, and the service sees ``probe`` (e.g. the pipeline's config) as we do. Under compose the workdir
        may be shared while the client's files are not."""
        health = self.service()
        marker = Path(health["workdir"]) / "serve" / "server-id"
        try:
            if marker.read_text().strip() != health["server_id"]:
                return False
            if probe is None:
                return True
            mine = probe.resolve().stat()
        except OSError:
            return False
        theirs = self._call("GET", "/api/fs/stat", params={"path": str(probe.resolve())}).json()
        return theirs["exists"] and (theirs["size"], theirs["mtime_ns"]) == (mine.st_size, mine.st_mtime_ns)

    def submit(self, request: dict[str, Any], bundle: Path | None = None) -> str:
        if bundle is None:
            return self._call("POST", "/api/runs", json=request).json()["id"]
        with bundle.open("rb") as data:
            files = {"bundle": ("bundle.tar.gz", data, "application/gzip")}
            return self._call("POST", "/api/runs", data={"request": json.dumps(request)}, files=files).json()["id"]

    def prune(self, keep_runs: int | None, keep_days: float | None) -> list[str]:
        body = {"keep_runs": keep_runs, "keep_days": keep_days}
        return self._call("POST", "/api/runs/prune", json=body).json()["removed"]

    def runs(self, status: str | None = None, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        params = {"limit": limit, "offset": offset, **({"status": status} if status else {})}
        return self._call("GET", "/api/runs", params=params).json()

    def run(self, run_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/runs/{run_id}").json()

    def cancel(self, run_id: str) -> bool:
        try:
            self._call("POST", f"/api/runs/{run_id}/cancel")
        except ServiceError as exc:
            if "only a queued or running run" in str(exc):  # it ended meanwhile
                return False
            raise
        return True

    def download(self, run_id: str, path: str, target: Path) -> Path | None:
        """The run's file ``path`` into ``target``; None when the run has no such file."""
        try:
            with self.http.stream("GET", f"/api/runs/{run_id}/artifacts/{path}") as response:
                if response.status_code == 404:
                    return None
                _raise_for(response, self.url)
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
        except httpx.TransportError as exc:
            raise ServiceUnavailableError(f"The rtest service at {self.url} went away: {exc}.") from None
        return target

    def log(self, run_id: str, node: str, *, tail: int | None = None, follow: bool = False) -> Iterator[bytes]:
        params = {"follow": follow, **({"tail": tail} if tail else {})}
        timeout = httpx.Timeout(60.0, read=None) if follow else self.http.timeout
        try:
            with self.http.stream("GET", f"/api/runs/{run_id}/steps/{node}/log", params=params,
                                  timeout=timeout) as response:
                _raise_for(response, self.url)
                yield from response.iter_bytes()
        except httpx.TransportError as exc:
            raise ServiceUnavailableError(f"The rtest service at {self.url} went away: {exc}.") from None

    # ---- server-sent events ------------------------------------------------------------------------
    def events(self, run_id: str, *, reconnects: int = 5) -> Iterator[dict[str, Any]]:
        """The run's events to ``run_ended``; a dropped connection resumes after the last event seen."""
        seen, failures = 0, 0
        while True:
            try:
                for event_id, record in self._event_stream(run_id, seen):
                    seen, failures = event_id, 0
                    yield record
                    if record.get("type") == "run_ended":
                        return
                return  # the service closed the stream without an end: the run is over
            except httpx.TransportError as exc:
                failures += 1
                if failures > reconnects:
                    raise ServiceUnavailableError(f"Lost the rtest service at {self.url}: {exc}.") from None

    def _event_stream(self, run_id: str, after: int) -> Iterator[tuple[int, dict[str, Any]]]:
        timeout = httpx.Timeout(60.0, read=90.0)  # the service sends a keep-alive every 15 s
        with self.http.stream("GET", f"/api/runs/{run_id}/events", params={"after": after},
                              timeout=timeout) as response:
            _raise_for(response, self.url)
            event_id, data = after, []
            for line in response.iter_lines():
                if line.startswith("id:"):
                    event_id = int(line[3:].strip())
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and data:
                    yield event_id, json.loads("\n".join(data))
                    data = []


def _raise_for(response: httpx.Response, url: str) -> None:
    if response.status_code < 400:
        return
    if response.status_code == 401:
        raise ServiceError(f"The rtest service at {url} wants a token: pass --token or set RTEST_TOKEN.")
    try:
        response.read()
        detail = response.json().get("detail", response.text)
    except (ValueError, httpx.ResponseNotRead):
        detail = response.text
    if not isinstance(detail, str):
        detail = json.dumps(detail)
    raise ServiceError(f"The rtest service at {url} answered {response.status_code}: {detail}")
