"""Docker backend: launches, waits for and terminates ONE container at a time.

It never sees the DAG. The runner hands it a ``StepLaunch`` and gets back a
``StepExit``. Success is never inferred: the exit code and logs are read from
the stopped container first, and only then is the container removed (no
auto-remove, which loses the exit code when the container vanishes first).
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import docker
import structlog
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from requests.exceptions import ConnectionError as RequestsConnectionError
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from rtest.catalog import missing_image_message
from rtest.errors import EngineUnavailableError, ImageNotFoundError
from rtest.run.backends.base import (
    LABEL_MANAGED,
    LABEL_NODE,
    LABEL_RUN_ID,
    LABEL_USER,
    BackendBase,
    Handle,
    StepExit,
    StepLaunch,
    run_labels,
)
from rtest.run.backends.docker_images import DockerImageStore

log = structlog.get_logger("rtest.docker")

__all__ = ["DockerBackend", "LABEL_MANAGED", "LABEL_NODE", "LABEL_RUN_ID", "LABEL_USER", "ContainerHandle"]
NANO = 10**9

ENGINE_HINT = (
    "Start Docker (for example `sudo systemctl start docker`, or `sudo dockerd &` where there is no"
    " service manager) and check that `docker info` answers, then run rtest again."
)


def _is_transient(exc: BaseException) -> bool:
    """Engine hiccups worth retrying: 5xx answers and dropped connections, not 4xx."""
    if isinstance(exc, NotFound):
        return False
    if isinstance(exc, APIError):
        return exc.status_code is not None and exc.status_code >= 500
    return isinstance(exc, RequestsConnectionError)


# Only idempotent calls go through this: inspect, start, stop, kill, remove, list.
_retry_idempotent = retry(
    retry=retry_if_exception(_is_transient),
    stop=stop_after_attempt(4),
    wait=wait_exponential(multiplier=0.2, max=2),
    reraise=True,
)


ContainerHandle = Handle  # a docker container: Handle.id is the container id


class DockerBackend(BackendBase):
    """One step at a time: prepare (create), start, wait, collect, remove."""

    name = "docker"

    def __init__(self, client: docker.DockerClient | None = None) -> None:
        try:
            self.client = client or docker.from_env(max_pool_size=32)
            self.client.ping()
        except (DockerException, RequestsConnectionError) as exc:
            message = f"No container engine answers ({_first_line(exc)})."
            raise EngineUnavailableError(message, hint=ENGINE_HINT) from exc
        self.api = self.client.api
        self.images = DockerImageStore(self.client)  # dependency images and builds go through the same engine
        self._host: tuple[str | None, str | None] | None = None
        # -- issue 18: a finished container is removed off the step's critical path (its exit code and logs are
        # read first); remove_run waits for these before it lists what is left
        self._removing: dict[str, Future] = {}  # container name -> its removal under way
        self._removing_lock = threading.Lock()
        self._removals = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rtest-remove")

    def host(self) -> tuple[str | None, str | None]:
        """The engine's host name and id, for the report's "where it ran" (asked once)."""
        if self._host is None:
            try:
                info = self.api.info()
                self._host = (info.get("Name"), info.get("ID"))
            except (APIError, RequestsConnectionError):
                return None, None
        return self._host

    # ---- images -------------------------------------------------------------------
    def image_id(self, ref: str) -> str:
        try:
            return self.api.inspect_image(ref)["Id"]
        except ImageNotFound as exc:
            raise ImageNotFoundError(missing_image_message(ref)) from exc

    # ---- one container ------------------------------------------------------------
    def prepare(self, launch: StepLaunch) -> ContainerHandle:
        """Create the container without starting it, so its start costs little later."""
        self.wait_for_removals(launch.name)  # a step run again under its name: the old container must be gone first
        host_config = self.api.create_host_config(
            binds={str(m.host): {"bind": m.container, "mode": "ro" if m.read_only else "rw"} for m in launch.mounts},
            network_mode=launch.network,
            nano_cpus=round(launch.cpus * NANO) if launch.cpus else None,
            mem_limit=launch.memory_bytes,
            memswap_limit=launch.memory_bytes,  # equal to mem_limit: no swap, so OOM is OOM
            pids_limit=launch.pids_limit,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            privileged=False,
            init=True,  # reaps zombies and forwards SIGTERM to the script
            log_config=_log_config(launch.max_log_bytes),
        )
        try:
            created = self.api.create_container(
                image=launch.image,
                command=launch.command,
                environment=launch.environment,
                labels=run_labels(launch.run_id, launch.node),
                user=launch.user,
                working_dir=launch.working_dir,
                host_config=host_config,
                name=launch.name,
                network_disabled=launch.network == "none",
            )
        except ImageNotFound as exc:
            raise ImageNotFoundError(missing_image_message(launch.image)) from exc
        return ContainerHandle(id=created["Id"], name=launch.name, launch=launch)

    def run(self, handle: ContainerHandle, log_path: Path, cancel: threading.Event) -> StepExit:
        """Start a prepared container, wait for it (timeout, cancel), read what it left, remove it."""
        launch = handle.launch
        started = time.monotonic()
        try:
            _retry_idempotent(self.api.start)(handle.id)
        except (APIError, RequestsConnectionError) as exc:
            self.remove(handle)
            reason = f"the engine could not start the container: {_first_line(exc)}"
            return StepExit(exit_code=None, engine_error=reason)
        self.host()  # asked once, while the container runs, not after it (issue 18)
        outcome = self._wait(handle, launch.timeout_s, cancel)
        exit_info = self._collect(handle, outcome, log_path, time.monotonic() - started)
        self._remove_later(handle)
        return exit_info

    def _remove_later(self, handle: ContainerHandle) -> None:
        """Exit code and logs are read: the removal (tens of ms of the engine's time) need not hold up the next step."""
        with self._removing_lock:
            future = self._removals.submit(self.remove, handle)
            self._removing[handle.name] = future
        future.add_done_callback(lambda done: self._removed(handle.name, done))

    def _removed(self, name: str, future: Future) -> None:
        with self._removing_lock:
            if self._removing.get(name) is future:
                del self._removing[name]

    def wait_for_removals(self, name: str | None = None) -> None:
        """The removal of container ``name`` (None: of every container) has ended; remove logs its own failures."""
        with self._removing_lock:
            pending = list(self._removing.values()) if name is None else [self._removing.get(name)]
        for future in pending:
            if future is not None:
                future.exception()

    def _wait(self, handle: ContainerHandle, timeout_s: float | None, cancel: threading.Event) -> dict:
        """Wait in a helper thread so a timeout or Ctrl-C can interrupt the blocking call."""
        answers: queue.Queue = queue.Queue(maxsize=1)

        def blocking_wait() -> None:
            try:
                answers.put({"status": self.api.wait(handle.id, timeout=None)["StatusCode"]})
            except Exception as exc:  # the engine went away or dropped the connection
                answers.put({"error": exc})

        threading.Thread(target=blocking_wait, name=f"wait-{handle.name}", daemon=True).start()
        deadline = None if not timeout_s else time.monotonic() + timeout_s
        outcome: dict = {}
        while True:
            try:
                return {**answers.get(timeout=0.2), **outcome}
            except queue.Empty:
                pass
            if not outcome and cancel.is_set():
                outcome["cancelled"] = True
                self.terminate(handle)
            elif not outcome and deadline is not None and time.monotonic() > deadline:
                outcome["timed_out"] = True
                self.terminate(handle)

    def _collect(self, handle: ContainerHandle, outcome: dict, log_path: Path, duration_s: float) -> StepExit:
        if _removed_by_others(outcome.get("error")):
            return _removed_outside(outcome, duration_s)
        if "error" in outcome:
            reason = f"lost contact with the container engine while the step ran: {_first_line(outcome['error'])}"
            return StepExit(exit_code=None, engine_error=reason, duration_s=duration_s)
        state: dict = {}
        try:
            state = _retry_idempotent(self.api.inspect_container)(handle.id)["State"]
            self._append_engine_logs(handle, log_path)
        except (APIError, RequestsConnectionError) as exc:
            if _removed_by_others(exc):
                return _removed_outside(outcome, duration_s)
            return StepExit(exit_code=outcome.get("status"), engine_error=_first_line(exc), duration_s=duration_s)
        host, host_id = self.host()
        return StepExit(
            host=host, host_id=host_id,
            exit_code=state.get("ExitCode", outcome.get("status")),
            oom_killed=bool(state.get("OOMKilled")),
            timed_out=bool(outcome.get("timed_out")),
            cancelled=bool(outcome.get("cancelled")),
            duration_s=duration_s,
        )

    def _append_engine_logs(self, handle: ContainerHandle, log_path: Path) -> None:
        """The script's own output goes straight to the log file; this adds what came before it (bounded)."""
        left = handle.launch.max_log_bytes or None
        stream = self.api.logs(handle.id, stdout=True, stderr=True, stream=True, follow=False)
        try:
            with log_path.open("ab") as sink:
                for chunk in stream:
                    sink.write(chunk if left is None else chunk[:left])
                    if left is not None:
                        left -= len(chunk)
                        if left <= 0:
                            break
        finally:
            getattr(stream, "close", lambda: None)()

    def terminate(self, handle: ContainerHandle) -> None:
        """SIGTERM, a grace period, then SIGKILL (the engine's stop does exactly that)."""
        grace = int(max(1, handle.launch.stop_grace_s))
        try:
            _retry_idempotent(self.api.stop)(handle.id, timeout=grace)
        except NotFound:
            pass
        except (APIError, RequestsConnectionError) as exc:
            log.warning("stop failed", container=handle.name, error=_first_line(exc))

    def remove(self, handle: ContainerHandle) -> None:
        try:
            _retry_idempotent(self.api.remove_container)(handle.id, force=True, v=True)
        except NotFound:
            pass
        except (APIError, RequestsConnectionError) as exc:
            if _removed_by_others(exc):  # someone else's removal is under way: the container goes anyway
                return
            log.warning("remove failed", container=handle.name, error=_first_line(exc))

    def network_exists(self, name: str) -> bool:
        try:
            _retry_idempotent(self.client.networks.get)(name)
        except NotFound:
            return False
        return True

    # ---- clean-up by label ----------------------------------------------------------
    def remove_run(self, run_id: str | None = None, *, uid: int | None = None) -> list[str]:
        """Remove the containers rtest created: of one run, or of every run (of user ``uid`` when given).

        Runs in run_pipeline's clean-up, so an engine that went away must not raise
        here: that would lose the report of the steps that did run.
        """
        self.wait_for_removals()  # so what is listed below is what a crash or Ctrl-C left, not a removal under way
        label = [f"{LABEL_RUN_ID}={run_id}" if run_id else LABEL_MANAGED] + (
            [f"{LABEL_USER}={uid}"] if uid is not None else []
        )
        try:
            found = _retry_idempotent(self.api.containers)(all=True, filters={"label": label})
        except (APIError, RequestsConnectionError) as exc:
            scoped = f"--run-id {run_id}" if run_id else "--all"
            log.warning(f"cannot list containers to remove; run `rtest sandbox clean {scoped}` once the engine answers",
                        label=label, error=_first_line(exc))
            return []
        removed = []
        for container in found:
            name = container["Names"][0].lstrip("/") if container.get("Names") else container["Id"][:12]
            try:
                _retry_idempotent(self.api.remove_container)(container["Id"], force=True, v=True)
                removed.append(name)
            except NotFound:
                pass
            except (APIError, RequestsConnectionError) as exc:
                if not _removed_by_others(exc):  # a removal already under way ends as this one would
                    log.warning("remove failed", container=name, error=_first_line(exc))
        return removed


def _log_config(max_log_bytes: int | None) -> dict | None:
    """The engine keeps at most about the log cap of a container's own stdout (a script can write there too)."""
    if not max_log_bytes:
        return None
    return {"Type": "json-file", "Config": {"max-size": str(max(max_log_bytes, 1 << 20)), "max-file": "1"}}


# ---- a container removed behind rtest's back (docker rm -f, a prune, another tool's cleanup) ----------
# The engine answers 404 once it is gone, 409 while its removal is under way.
_REMOVAL_CONFLICTS = ("marked for removal", "removal of container", "is dead")


def _removed_by_others(exc: BaseException | None) -> bool:
    if isinstance(exc, NotFound):
        return True
    if isinstance(exc, APIError) and exc.status_code == 409:
        text = str(exc.explanation or exc)
        return any(marker in text for marker in _REMOVAL_CONFLICTS)
    return False


def _removed_outside(outcome: dict, duration_s: float) -> StepExit:
    """The script's log is a host file the container wrote into; it stays, with what the script wrote until then."""
    reason = ("the container was removed by something outside rtest while the step ran (docker rm -f, a prune, or "
              "another tool's cleanup); the log shows what the script wrote until then. Run the step again, and keep "
              "cleanup tools away from containers labelled rtest.run-id while a run is going")
    return StepExit(exit_code=outcome.get("status"), engine_error=reason, removed_outside=True, duration_s=duration_s)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
