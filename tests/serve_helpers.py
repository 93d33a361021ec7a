"""Start a real `rtest serve` on 127.0.0.1 with a free port, and talk to it over HTTP.

By default (steps played by FakeBackend) the service runs in this test process: the same app, run manager,
registry and token file, served by uvicorn on a thread. ``process=True`` starts the `rtest serve` process instead,
for what is about the process itself (killed and restarted, its lock, its signals) or a real engine (fake=False);
such tests carry ``@pytest.mark.process``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

FAKE_SERVE = Path(__file__).with_name("fake_serve.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Service:
    def __init__(self, workdir: Path, *, slots: int = 2, token: str | None = None, fake: bool = True,
                 env: dict[str, str] | None = None, port: int | None = None,
                 allow_paths: tuple[Path, ...] | None = None, flags: tuple[str, ...] = (),
                 process: bool = False) -> None:
        """``token`` None: the service makes its own (read back from its workdir after the start).
        ``allow_paths`` None: the system temp folder, where tests keep every pipeline they submit by path."""
        self.workdir, self.slots, self.token, self.fake = workdir, slots, token, fake
        self.allow_paths = (Path(tempfile.gettempdir()),) if allow_paths is None else allow_paths
        self.flags = flags
        self.env = env or {}
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.in_process = fake and not process
        self._server = self._thread = self._manager = None

    def argv(self) -> list[str]:
        head = [sys.executable, str(FAKE_SERVE)] if self.fake else [sys.executable, "-m", "rtest.cli.main"]
        tail = ["--backend", "fake"] if self.fake else []
        token = ["--token", self.token] if self.token else []
        paths = [arg for path in self.allow_paths for arg in ("--allow-path", str(path))]
        return [*head, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--workdir", str(self.workdir),
                "--slots", str(self.slots), *token, *paths, *self.flags, *tail]

    def start(self) -> Service:
        if self.in_process:
            return self._start_here()
        env = {**os.environ, **self.env, "NO_PROXY": "127.0.0.1"}
        self.workdir.parent.mkdir(parents=True, exist_ok=True)
        self.log = (self.workdir.parent / f"serve-{self.port}.log").open("ab")
        self.process = subprocess.Popen(self.argv(), env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rtest serve exited with {self.process.returncode}: {self.output()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1, trust_env=False).status_code == 200:
                    if "--no-token" not in self.flags:
                        self.token = (self.workdir / "serve" / "token").read_text()
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"rtest serve did not answer: {self.output()}")

    def _start_here(self) -> Service:
        """What `rtest serve` does (rtest.serve.server.serve), minus the workdir lock and the signal handler,
        which only a process has: those are tested with ``process=True``."""
        import uvicorn

        from fake_serve import fake_backend
        from rtest.run.backends import register_backend
        from rtest.serve import local
        from rtest.serve.server import ServeOptions, build, resolve_token

        unknown = [name for name in self.env if not name.startswith("RTEST_FAKE_")]
        if unknown:
            raise ValueError(f"an in-process service reads only RTEST_FAKE_* settings, not {unknown}: "
                             "use process=True")
        backend = f"fake-{self.port}"
        register_backend(backend, lambda **_: fake_backend(dict(self.env)))
        options = ServeOptions(host="127.0.0.1", port=self.port, workdir=self.workdir, slots=self.slots,
                               token=self.token, backend=backend, allow_paths=self.allow_paths,
                               **_serve_flags(self.flags))
        token = resolve_token(options)
        self.workdir.mkdir(parents=True, exist_ok=True)
        if token:
            local.write_secret(local.token_file(self.workdir), token)
        app, self._manager = build(options, token)
        local.announce(self.port, token)
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                     timeout_graceful_shutdown=3, access_log=False))
        self._thread = threading.Thread(target=self._server.run, name=f"serve-{self.port}", daemon=True)
        self._thread.start()
        wait_for(lambda: self._server.started or not self._thread.is_alive(), timeout_s=60, every_s=0.01)
        if not self._server.started:
            raise RuntimeError(f"the in-process service on port {self.port} did not start")
        self.token = token
        return self

    def _stop_here(self) -> None:
        from rtest.serve import local

        if self._server is None:
            return
        self._server.should_exit = True
        self._thread.join(60)
        local.retract(self.port)
        self._manager.shutdown()
        self._server = None

    def output(self) -> str:
        return (self.workdir.parent / f"serve-{self.port}.log").read_text(errors="replace")

    def kill(self) -> None:
        """As if the machine lost the service: no clean-up of its own."""
        if self.in_process:
            raise RuntimeError("only a service process can be killed: use Service(..., process=True)")
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> None:
        if self.in_process:
            return self._stop_here()
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()

    @property
    def headers(self) -> dict[str, str]:
        """What a program (not a browser) sends: the token."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def client(self, token: str | None = None):
        from rtest.serve.client import ServiceClient

        return ServiceClient(self.url, token if token is not None else self.token)


_FLAGS = {"--allow-code": ("allow_code", None), "--no-token": ("no_token", None),
          "--plan-timeout": ("plan_timeout_s", float), "--max-upload-bytes": ("max_upload", int)}


def _serve_flags(flags: tuple[str, ...]) -> dict:
    """`rtest serve` flags as ServeOptions fields (the ones tests pass; any other needs process=True)."""
    fields, rest = {}, list(flags)
    while rest:
        flag = rest.pop(0)
        if flag not in _FLAGS:
            raise ValueError(f"{flag}: not known to an in-process service; use process=True")
        name, convert = _FLAGS[flag]
        fields[name] = True if convert is None else convert(rest.pop(0))
    return fields


@contextmanager
def running_service(workdir: Path, **kwargs):
    service = Service(workdir, **kwargs).start()
    try:
        yield service
    finally:
        service.stop()


def wait_for(predicate, timeout_s: float = 120.0, every_s: float = 0.1):
    """Poll until ``predicate()`` is truthy (a condition, not a timing assertion)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError("condition not reached in time")
