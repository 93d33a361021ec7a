"""Docker Swarm backend: ONE step is one `replicated-job` service with one task and no restart.

It never sees the DAG. The swarm's scheduler places each task by the CPU and memory it
reserves (from the instance type), its GPU generic resource and its placement constraints
(see swarm_placement.py). Success is never inferred: the exit code comes from the task's
container status, the log is read, THEN the service is removed (which removes its container on
whichever node ran it). Staging stays file-based, so the workdir must be visible at the same
path on every node; ``preflight`` proves that, and that each node has the images, before a step.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import docker
import structlog
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.types import (
    ContainerSpec,
    EndpointSpec,
    Mount,
    Placement,
    Resources,
    RestartPolicy,
    ServiceMode,
    TaskTemplate,
)
from requests.exceptions import ConnectionError as RequestsConnectionError

from rtest.catalog import missing_image_message
from rtest.errors import EngineUnavailableError, ImageNotFoundError, PlanError
from rtest.run.backends.base import (
    LABEL_MANAGED,
    LABEL_RUN_ID,
    LABEL_USER,
    BackendBase,  # issue 20: the protocol's optional parts, with their defaults
    Handle,
    StepExit,
    StepLaunch,
    run_labels,
)
from rtest.run.backends.swarm_placement import GPU_RESOURCE, NodeInfo, check_constraint, plan_placement
from rtest.run.backends.swarm_probe import SwarmProbe

log = structlog.get_logger("rtest.swarm")
NANO = 10**9
SERVICE_LOG_WAIT_S = 10.0
SERVICE_LOG_MAX_BYTES = 1 << 20  # what the engine logged besides the script's own log file
FALSE_REJECTION = "assigned node no longer meets constraints"
FALSE_REJECTION_TRIES = 4
MANAGER_HINT = ("Point DOCKER_HOST at a Swarm manager (`docker swarm init` makes this engine one), "
                "or run without --backend swarm.")


class SwarmBackend(BackendBase):
    """One step at a time: prepare (resolve image and placement), run (create the service, follow its task), remove."""

    name = "swarm"

    def __init__(self, client: docker.DockerClient | None = None, *, registry: str | None = None,
                 placement: dict[str, list[str]] | None = None, pending_grace_s: float = 4.0,
                 poll_s: float = 0.2) -> None:
        try:
            self.client = client or docker.from_env(max_pool_size=32)
            info = self.client.info()
        except (DockerException, RequestsConnectionError) as exc:
            raise EngineUnavailableError(f"No Swarm manager answers ({_first_line(exc)}).", hint=MANAGER_HINT) from exc
        swarm = info.get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
            raise EngineUnavailableError(
                f"The engine at {self.client.api.base_url} is not a Swarm manager (swarm state "
                f"'{swarm.get('LocalNodeState', 'unknown')}').", hint=MANAGER_HINT)
        self.api = self.client.api
        self.registry = registry.rstrip("/") if registry else None
        self.placement = {node: list(rules) for node, rules in (placement or {}).items()}
        for rules in self.placement.values():
            for rule in rules:
                if (problem := check_constraint(rule)) is not None:
                    raise PlanError(f"--placement: {problem}.")
        self.pending_grace_s, self.poll_s = pending_grace_s, poll_s
        self._lock = threading.Lock()
        self._pushed: dict[str, str] = {}  # local ref -> registry ref
        self._networks: dict[str, str] = {}  # run id -> its internal network's id
        self._pinned: dict[str, str] = {}  # local ref -> the ref services use (digest or image id)
        self.probe = SwarmProbe(self)
        # ---- issue 20: the manager's image store (dependency images are built there, then pushed) ----
        from rtest.run.backends.docker_images import DockerImageStore

        self.images = DockerImageStore(self.client)

    # ---- the cluster --------------------------------------------------------------------------
    def nodes(self) -> list[NodeInfo]:
        return [NodeInfo.from_inspect(n) for n in self.api.nodes()]

    def total_cpus(self) -> int:
        """What `rtest serve` shares out: the CPUs of every ready node."""
        return max(1, sum(n.nano_cpus for n in self.nodes() if n.ready) // NANO)

    def preflight(self, run_dir: Path, images: list[str]) -> None:
        """Before any step: every node sees the workdir and has (or can pull) every image; PlanError otherwise."""
        self.probe.check(run_dir, {image: self.pinned_ref(image) for image in images})

    # ---- images -------------------------------------------------------------------------------
    def image_id(self, ref: str) -> str:
        try:
            return self.api.inspect_image(ref)["Id"]
        except ImageNotFound as exc:
            raise ImageNotFoundError(missing_image_message(ref)) from exc

    def image_ref(self, ref: str) -> str:
        """The name the nodes use: with --registry, the image pushed there (once per backend)."""
        if not self.registry:
            return ref
        with self._lock:
            if ref not in self._pushed:
                repository, tag = registry_name(ref, self.registry)
                self.api.tag(ref, repository, tag)
                for line in self.api.push(repository, tag=tag, stream=True, decode=True):
                    if "error" in line:
                        raise PlanError(f"Pushing {ref} to the registry {self.registry} failed: {line['error']}.")
                self._pushed[ref] = f"{repository}:{tag}"
            return self._pushed[ref]

    # ---- one step -----------------------------------------------------------------------------
    def prepare(self, launch: StepLaunch) -> Handle:
        """Services start as soon as they exist, so preparing only resolves the image and the placement."""
        nodes = self.nodes()
        rules = self.placement.get("*", []) + self.placement.get(launch.node, [])
        placement = plan_placement(instance_type=launch.instance_type, cpus=launch.cpus,
                                   memory_bytes=launch.memory_bytes, memory_is_users=launch.memory_is_users,
                                   nodes=nodes, constraints=rules)
        return Handle(id="", name=launch.name, launch=launch,
                      extra={"image": self.pinned_ref(launch.image), "placement": placement})

    def pinned_ref(self, ref: str) -> str:
        """The image as services name it: by content, so a node that holds it neither pulls nor asks the registry
        (Swarm's agent skips the pull for an image ID, and for a digest the node already has). With --registry,
        `REGISTRY/NAME@sha256:DIGEST` (nodes without it pull exactly that); without, the image ID, which a node
        has when it holds the same image (docker save | load, or a pull), not a separate build of that name."""
        with self._lock:
            if ref in self._pinned:
                return self._pinned[ref]
        name = self.image_ref(ref)
        pinned = self.image_id(ref)
        if self.registry:
            repository = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
            digests = [d for d in self.api.inspect_image(name).get("RepoDigests") or []
                       if d.startswith(repository + "@")]
            pinned = digests[0] if digests else name  # no digest recorded: the tag, resolved by each node
        with self._lock:
            self._pinned[ref] = pinned
        return pinned

    def run(self, handle: Handle, log_path: Path, cancel: threading.Event) -> StepExit:
        started = time.monotonic()
        placement = handle.extra["placement"]
        with log_path.open("a", encoding="utf-8") as sink:
            for note in placement.notes:
                sink.write(f"[rtest] {note}; reserved what the largest node has\n")
        for attempt in range(1, FALSE_REJECTION_TRIES + 1):
            try:
                handle.id = self.api.create_service(**self._service_spec(handle, attempt))["ID"]
            except (APIError, RequestsConnectionError) as exc:
                return StepExit(exit_code=None, engine_error=f"the swarm manager refused the step: {_first_line(exc)}")
            try:
                exit_info = self._follow(handle, log_path, cancel, started)
            finally:
                self.remove(handle)
            false_rejection = (exit_info.engine_error or "").endswith(FALSE_REJECTION) and not handle.extra["ran"]
            if not false_rejection or attempt == FALSE_REJECTION_TRIES:
                return exit_info
            # Swarm's constraint enforcer counts finished job tasks as still reserving (moby/moby#52652): the
            # task never started, so placing it again is safe.
            log.info("swarm rejected a task it had placed; placing it again", step=handle.name, attempt=attempt)
        return exit_info

    def _service_spec(self, handle: Handle, attempt: int = 1) -> dict:
        launch, placement = handle.launch, handle.extra["placement"]
        container = ContainerSpec(
            image=handle.extra["image"], command=launch.command, env=launch.environment,
            labels=run_labels(launch.run_id, launch.node), user=launch.user, workdir=launch.working_dir,
            mounts=[Mount(target=m.container, source=str(m.host), type="bind", read_only=m.read_only)
                    for m in launch.mounts],
            stop_grace_period=int(max(1, launch.stop_grace_s) * NANO), init=True, cap_drop=["ALL"],
        )
        generic = {GPU_RESOURCE: placement.gpus} if placement.gpus else None
        resources = Resources(cpu_limit=placement.nano_cpus, cpu_reservation=placement.nano_cpus,
                              mem_limit=placement.memory_bytes, mem_reservation=placement.memory_bytes,
                              generic_resources=generic)
        template = TaskTemplate(container, resources=resources, restart_policy=RestartPolicy(condition="none"),
                                placement=Placement(constraints=list(placement.constraints)),
                                networks=[self._network_for(launch)])
        name = handle.name if attempt == 1 else f"{handle.name}-{attempt}"
        return dict(task_template=template, name=name, labels=run_labels(launch.run_id, launch.node),
                    mode=ServiceMode("replicated", replicas=1),
                    endpoint_spec=EndpointSpec(mode="vip"))

    def _network_for(self, launch: StepLaunch) -> str:
        """'none' becomes the run's internal overlay network: swarm tasks cannot use `none`, and an internal
        network has no route out (steps of one run can see each other, nothing else)."""
        if launch.network != "none":
            return launch.network
        with self._lock:
            if launch.run_id not in self._networks:
                created = self.api.create_network(
                    f"rtest-net-{launch.run_id}"[:60], driver="overlay", internal=True,
                    labels={LABEL_MANAGED: "1", LABEL_RUN_ID: launch.run_id})
                self._networks[launch.run_id] = created["Id"]
            return self._networks[launch.run_id]

    def _follow(self, handle: Handle, log_path: Path, cancel: threading.Event, started: float) -> StepExit:
        """Poll the one task until it ends; stop it at the timeout or on cancel; fail it when it can never run."""
        from rtest.run.backends.swarm_task import TaskWatch

        watch = TaskWatch(self, handle)
        handle.extra["ran"] = False
        deadline = started + handle.launch.timeout_s if handle.launch.timeout_s else None
        outcome: dict = {}
        while True:
            try:
                verdict = watch.poll()
            except (APIError, RequestsConnectionError) as exc:
                reason = f"lost contact with the swarm manager while the step ran: {_first_line(exc)}"
                return StepExit(exit_code=None, engine_error=reason, duration_s=time.monotonic() - started)
            handle.extra["ran"] = watch.ran
            if verdict is not None:
                exit_info = verdict.model_copy(update={**outcome, "duration_s": time.monotonic() - started})
                if watch.ran and not watch.node_lost and exit_info.exit_code != 0:
                    # What ran before the bootstrap (an image without python3, say) is only in the engine's
                    # log; the manager fetches it from the node, slowly, so only when the step failed.
                    self._append_service_logs(handle, log_path)
                return exit_info
            if not outcome and cancel.is_set():
                outcome["cancelled"] = True
            elif not outcome and deadline is not None and time.monotonic() > deadline:
                outcome["timed_out"] = True
            else:
                time.sleep(self.poll_s)
                continue
            self.terminate(handle)
            watch.stopping()

    def _append_service_logs(self, handle: Handle, log_path: Path) -> None:
        """The script's output is in the log file already (a shared mount); this adds what came before it.

        The manager fetches them from the task's node, which may stop answering meanwhile: read in a
        helper thread for a bounded time, bounded in size, so a step's end never hangs on them.
        """
        chunks: list[bytes] = []

        def read() -> None:
            try:
                size = 0
                for chunk in self.api.service_logs(handle.id, stdout=True, stderr=True, follow=False):
                    size += len(chunk)
                    if size > SERVICE_LOG_MAX_BYTES:
                        break
                    chunks.append(chunk)
            except (APIError, RequestsConnectionError) as exc:
                log.warning("service logs unavailable", service=handle.name, error=_first_line(exc))

        reader = threading.Thread(target=read, name=f"logs-{handle.name}", daemon=True)
        reader.start()
        reader.join(SERVICE_LOG_WAIT_S)
        with log_path.open("ab") as sink:
            sink.write(b"".join(chunks))

    def terminate(self, handle: Handle) -> None:
        """Removing the service stops its task: SIGTERM, the grace period, then SIGKILL, on its node."""
        self.remove(handle)

    def remove(self, handle: Handle) -> None:
        if not handle.id:
            return
        try:
            self.api.remove_service(handle.id)
        except NotFound:
            pass
        except (APIError, RequestsConnectionError) as exc:
            log.warning("remove failed", service=handle.name, error=_first_line(exc))

    def network_exists(self, name: str) -> bool:
        if name == "none":
            return True
        try:
            return self.api.inspect_network(name).get("Scope") == "swarm"
        except NotFound:
            return False

    # ---- clean-up by label --------------------------------------------------------------------
    def remove_run(self, run_id: str | None = None, *, uid: int | None = None) -> list[str]:
        """Remove the services (and so their containers on every node) and networks a run left."""
        label = [f"{LABEL_RUN_ID}={run_id}" if run_id else LABEL_MANAGED] + (
            [f"{LABEL_USER}={uid}"] if uid is not None else [])
        removed = []
        try:
            for service in self.api.services(filters={"label": label}):
                try:
                    self.api.remove_service(service["ID"])
                    removed.append(service["Spec"]["Name"])
                except NotFound:
                    pass
            for network in self.api.networks(filters={"label": label[:1]}):
                self._remove_network(network["Id"])
        except (APIError, RequestsConnectionError) as exc:
            scoped = f"--run-id {run_id}" if run_id else "--all"
            log.warning(f"cannot list services to remove; run `rtest sandbox clean {scoped} --backend swarm` "
                        "once the manager answers", error=_first_line(exc))
        with self._lock:
            self._networks.pop(run_id or "", None)
        return removed

    def _remove_network(self, network_id: str) -> None:
        """A network is in use until its tasks' containers are gone on every node: retry for a few seconds."""
        for _ in range(50):
            try:
                self.api.remove_network(network_id)
                return
            except NotFound:
                return
            except APIError:
                time.sleep(0.2)
        log.warning("network still in use; `rtest sandbox clean` removes it later", network=network_id)


def registry_name(ref: str, registry: str) -> tuple[str, str]:
    """('10.0.0.1:5000/rtest/sagemaker-base', 'py3') for 'rtest/sagemaker-base:py3': any registry host is replaced."""
    name, tag = ref, "latest"
    if ":" in ref.rsplit("/", 1)[-1]:
        name, tag = ref.rsplit(":", 1)
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        name = rest
    return f"{registry}/{name}", tag


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
