"""Start a real `rtest serve` process on 127.0.0.1 with a free port, and talk to it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
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
                 allow_paths: tuple[Path, ...] | None = None, flags: tuple[str, ...] = ()) -> None:
        """``token`` None: the service makes its own (read back from its workdir after the start).
        ``allow_paths`` None: the system temp folder, where tests keep every pipeline they submit by path."""
        self.workdir, self.slots, self.token, self.fake = workdir, slots, token, fake
        self.allow_paths = (Path(tempfile.gettempdir()),) if allow_paths is None else allow_paths
        self.flags = flags
        self.env = env or {}
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def argv(self) -> list[str]:
        head = [sys.executable, str(FAKE_SERVE)] if self.fake else [sys.executable, "-m", "rtest.cli.main"]
        tail = ["--backend", "fake"] if self.fake else []
        token = ["--token", self.token] if self.token else []
        paths = [arg for path in self.allow_paths for arg in ("--allow-path", str(path))]
        return [*head, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--workdir", str(self.workdir),
                "--slots", str(self.slots), *token, *paths, *self.flags, *tail]

    def start(self) -> Service:
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

    def output(self) -> str:
        return (self.workdir.parent / f"serve-{self.port}.log").read_text(errors="replace")

    def kill(self) -> None:
        """As if the machine lost the service: no clean-up of its own."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> None:
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
