"""What rtest does when the container engine misbehaves: hiccups, disappears mid-run, or never answers."""

from __future__ import annotations

import secrets
import selectors
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import docker
import pytest
import requests
from docker.errors import APIError, NotFound, create_api_error_from_http_exception

from cli_helpers import rtest_here
from rtest.errors import EngineUnavailableError
from rtest.plan.builder import build_plan, load_pipeline_inputs
from rtest.plan.settings import CommandLine
from rtest.plan.userspec import parse_input_flags
from rtest.run.backends.base import LABEL_NODE
from rtest.run.backends.docker import DockerBackend, _is_transient, _retry_idempotent
from rtest.run.engine import RunOptions
from rtest.session import run_and_report
from rtest.testing import write_python_pipeline

OUT = "/opt/ml/processing/output/out"
START_DOCKER_SENTENCE = "Start Docker"
REAL_SOCKET = "/var/run/docker.sock"


def _api_error(status: int) -> APIError:
    """The exception the docker SDK itself raises for an engine answer with this status."""
    response = requests.Response()
    response.status_code = status
    response.reason = "test"
    response.url = "http+docker://localhost/v1.45/containers/x/json"
    try:
        create_api_error_from_http_exception(requests.HTTPError(f"{status} test", response=response))  # always raises
    except APIError as error:
        return error
    raise AssertionError("the docker SDK did not raise for an HTTP error")


def _plan(p: dict[str, Path]):
    return build_plan(load_pipeline_inputs(p["dag"], p["config"], [p["interfaces"]]), parse_input_flags(None))


# ---- retry policy ------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_transient(status):
    assert _is_transient(_api_error(status))


def test_a_dropped_connection_is_transient():
    assert _is_transient(requests.exceptions.ConnectionError("Connection aborted."))


@pytest.mark.parametrize("status", [404, 409, 400])
def test_client_errors_are_not_transient(status):
    error = _api_error(status)
    assert isinstance(error, APIError) and error.status_code == status
    assert not _is_transient(error)


def test_404_is_the_sdks_not_found():
    assert isinstance(_api_error(404), NotFound) and not _is_transient(_api_error(404))


def _flaky(errors: list[BaseException | None]):
    """A callable that raises the next listed error (None: returns 'done') and counts its calls."""
    calls = []

    def call(*args, **kwargs):
        calls.append((args, kwargs))
        error = errors[min(len(calls), len(errors)) - 1]
        if error is not None:
            raise error
        return "done"

    return call, calls


def _napless(call):
    """The retrying call, its back-off recorded instead of slept (the waits are what is tested, not the clock)."""
    wrapped, waits = _retry_idempotent(call), []
    wrapped.retry.sleep = waits.append
    return wrapped, waits


def test_two_503s_then_success_is_retried_to_success():
    call, calls = _flaky([_api_error(503), _api_error(503), None])
    wrapped, waits = _napless(call)
    assert wrapped("abc", force=True) == "done"
    assert len(calls) == 3 and calls[-1] == (("abc",), {"force": True}) and len(waits) == 2


def test_a_404_is_not_retried_and_reraised():
    call, calls = _flaky([_api_error(404), None])
    with pytest.raises(NotFound):
        _retry_idempotent(call)()
    assert len(calls) == 1


def test_endless_503s_give_up_after_the_configured_attempts():
    call, calls = _flaky([_api_error(503)])
    wrapped, waits = _napless(call)
    attempts = wrapped.retry.stop.max_attempt_number
    with pytest.raises(APIError) as caught:
        wrapped()
    assert caught.value.status_code == 503
    assert len(calls) == attempts == 4
    assert len(waits) == 3 and 0 < sum(waits) < 5  # the back-off is short: a dead engine is noticed in seconds


# ---- the engine goes away mid-run ----------------------------------------------------------------

class SocketProxy:
    """Forwards a unix socket to the real engine's, until ``kill`` drops every connection at once."""

    def __init__(self, path: str, upstream: str = REAL_SOCKET) -> None:
        self.path, self.upstream = path, upstream
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(64)
        self.open: list[socket.socket] = []
        self.lock = threading.Lock()
        self.killed = threading.Event()
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def _accept(self) -> None:
        while not self.killed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # the listener was closed by kill()
            engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            engine.connect(self.upstream)
            with self.lock:
                self.open += [client, engine]
            threading.Thread(target=self._pump, args=(client, engine), name="proxy-pump", daemon=True).start()

    def _pump(self, client: socket.socket, engine: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ, engine)
        selector.register(engine, selectors.EVENT_READ, client)
        try:
            while not self.killed.is_set():
                for key, _ in selector.select(timeout=0.2):
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            selector.close()
            for sock in (client, engine):
                _close(sock)

    def kill(self) -> None:
        self.killed.set()
        _close(self.listener)
        with self.lock:
            for sock in self.open:
                _close(sock)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


@pytest.fixture
def short_dir():
    """Unix socket paths must stay under ~100 characters, which pytest's tmp_path may not."""
    path = tempfile.mkdtemp(prefix="rtf-", dir="/tmp")
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


def _running_container(docker_client, node: str, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = docker_client.containers.list(filters={"label": f"{LABEL_NODE}={node}", "status": "running"})
        if found:
            return found[0]
        time.sleep(0.2)
    return None


@pytest.mark.docker
@pytest.mark.timeout(90)
def test_engine_lost_mid_run_fails_the_step_and_still_writes_the_report(tmp_path, short_dir, docker_client):
    node = "Lost" + secrets.token_hex(4)
    p = write_python_pipeline(tmp_path / "p", {node: {"script": "import time\ntime.sleep(60)\n", "outputs": {"out": OUT}}}, [])
    plan = _plan(p)
    proxy = SocketProxy(str(short_dir / "docker.sock"))
    backend = DockerBackend(docker.DockerClient(base_url=f"unix://{proxy.path}"))
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["report"] = run_and_report(plan, RunOptions(workdir=tmp_path / "wd"), settings=CommandLine(cache=False), backend=backend)
        except BaseException as exc:  # noqa: BLE001 - the assertion below shows it
            outcome["error"] = exc

    runner = threading.Thread(target=run, name="run-pipeline", daemon=True)
    try:
        runner.start()
        container = _running_container(docker_client, node, timeout_s=30)
        assert container is not None, f"the step's container never ran: {outcome}"
        killed_at = time.monotonic()
        proxy.kill()
        runner.join(timeout=30)
        assert not runner.is_alive(), "run_pipeline hung after the engine went away"
        assert time.monotonic() - killed_at < 30
        assert "error" not in outcome, f"run_pipeline raised instead of reporting: {outcome['error']!r}"
        report = outcome["report"]
        step = report.steps[node]
        assert step.status.value == "failed" and not report.pipeline_success
        assert "lost contact with the container engine" in step.failure_reason, step.failure_reason
        assert (Path(report.run_dir) / "report.json").is_file()
        # The engine itself never died: the container outlived the lost connection, as an orphan.
        assert docker_client.containers.list(all=True, filters={"label": f"{LABEL_NODE}={node}"})
    finally:
        proxy.kill()
        for orphan in docker_client.containers.list(all=True, filters={"label": f"{LABEL_NODE}={node}"}):
            orphan.remove(force=True, v=True)
    assert docker_client.containers.list(all=True, filters={"label": f"{LABEL_NODE}={node}"}) == []


# ---- no engine at all ----------------------------------------------------------------------------
# Not marked docker: these need NO engine, so they run (and must pass) where none is installed.

@pytest.fixture
def nowhere(short_dir) -> str:
    return f"unix://{short_dir}/no-engine-{secrets.token_hex(3)}.sock"


def test_backend_on_a_missing_socket_says_how_to_start_docker(nowhere):
    with pytest.raises(EngineUnavailableError) as caught:
        # A pinned API version, so the client itself does not call the engine before the backend does.
        DockerBackend(docker.DockerClient(base_url=nowhere, version="1.41"))
    assert START_DOCKER_SENTENCE in str(caught.value) and "docker info" in str(caught.value)
    assert caught.value.exit_code == 3


def test_backend_from_env_on_a_missing_socket_says_how_to_start_docker(nowhere, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", nowhere)
    with pytest.raises(EngineUnavailableError) as caught:
        DockerBackend()
    assert START_DOCKER_SENTENCE in str(caught.value)


def test_cli_without_an_engine_exits_3_with_one_sentence(tmp_path, nowhere):
    p = write_python_pipeline(tmp_path / "p", {"Solo": {"script": "print('hi')\n", "outputs": {"out": OUT}}}, [])
    result = rtest_here("sandbox", "run", "--dag", str(p["dag"]), "--config", str(p["config"]),
                        "--workdir", str(tmp_path / "wd"), cwd=tmp_path, env={"DOCKER_HOST": nowhere, "COLUMNS": "400"})
    output = result.stdout + result.stderr
    assert result.returncode == 3, output
    assert START_DOCKER_SENTENCE in output and "No container engine answers" in output, output
    assert "Traceback" not in output, output


# ---- a container removed or killed by someone else -----------------------------------------------

def _run_until_the_script_speaks(tmp_path: Path, docker_client, node: str, run_id: str):
    """Start a one-step run in a thread; return it with its container once the script has logged a line."""
    script = "import time\nprint('half way through', flush=True)\ntime.sleep(60)\n"
    p = write_python_pipeline(tmp_path / "p", {node: {"script": script, "outputs": {"out": OUT}}}, [])
    plan = _plan(p)
    outcome: dict = {}

    def run() -> None:
        outcome["report"] = run_and_report(plan, RunOptions(workdir=tmp_path / "wd", run_id=run_id),
                                           settings=CommandLine(cache=False))

    runner = threading.Thread(target=run, name="run-pipeline", daemon=True)
    runner.start()
    container = _running_container(docker_client, node, timeout_s=30)
    assert container is not None, f"the step's container never ran: {outcome}"
    log = tmp_path / "wd" / "runs" / run_id / node / "log.txt"
    deadline = time.monotonic() + 30
    while not (log.is_file() and "half way through" in log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return runner, container, outcome


@pytest.mark.docker
@pytest.mark.timeout(120)
def test_container_removed_outside_rtest_says_so_and_keeps_the_log(tmp_path, docker_client):
    node, run_id = "Gone" + secrets.token_hex(4), "gone-" + secrets.token_hex(4)
    runner, container, outcome = _run_until_the_script_speaks(tmp_path, docker_client, node, run_id)
    container.remove(force=True)  # what `docker rm -f`, or a prune by someone else, does
    runner.join(timeout=30)
    assert not runner.is_alive(), "the run hung after its container was removed"
    report = outcome["report"]
    step = report.steps[node]
    assert step.status.value == "failed" and not report.pipeline_success
    assert step.failure_reason.startswith("the container was removed by something outside rtest while the step ran")
    assert "409" not in step.failure_reason and "engine error" not in step.failure_reason
    assert "half way through" in Path(step.log_path).read_text()  # the log streamed so far is kept ...
    page = (Path(report.run_dir) / "report.html").read_text()
    assert "half way through" in page and "removed by something outside rtest" in page  # ... and shown
    assert docker_client.containers.list(all=True, filters={"label": f"{LABEL_NODE}={node}"}) == []


@pytest.mark.docker
@pytest.mark.timeout(120)
def test_container_killed_outside_rtest_says_so_and_keeps_the_log(tmp_path, docker_client):
    node, run_id = "Killed" + secrets.token_hex(4), "killed-" + secrets.token_hex(4)
    runner, container, outcome = _run_until_the_script_speaks(tmp_path, docker_client, node, run_id)
    container.kill()  # what `docker kill`, or an engine restart, does
    runner.join(timeout=30)
    assert not runner.is_alive(), "the run hung after its container was killed"
    step = outcome["report"].steps[node]
    assert step.status.value == "failed"
    assert step.failure_reason.startswith("the container was killed by something outside rtest before the script")
    assert "half way through" in Path(step.log_path).read_text()
