"""Before a run on a swarm: does every node see the workdir, and have every image the plan needs?

Staging is file-based: a step's outputs are read on the manager's side and its inputs are
written there, so the workdir must be the same folder, at the same path, on every node (an
NFS mount in a real cluster). One tiny task per node and image writes a nonce into the run
folder: the manager reading it back proves both the image and the shared path at once. A node
without the image rejects its task ("No such image"). Every problem is listed in ONE error,
node by node, before any step starts.
"""

from __future__ import annotations

import secrets
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from docker.errors import APIError, NotFound
from docker.types import ContainerSpec, Mount, Placement, RestartPolicy, ServiceMode, TaskTemplate

from rtest.errors import PlanError
from rtest.run.backends.base import LABEL_MANAGED, LABEL_RUN_ID

if TYPE_CHECKING:
    from rtest.run.backends.swarm import SwarmBackend

PROBE_TIMEOUT_S = 90.0  # a node may pull a large image from the registry first
CHECKED_FOR_S = 300.0  # a service (rtest serve) probes a node and image again after this long
MOUNT = "/rtest-probe"


class SwarmProbe:
    def __init__(self, backend: SwarmBackend) -> None:
        self.backend = backend
        self._checked: dict[tuple[str, str, str], float] = {}  # (node id, image, workdir) -> when

    def check(self, run_dir: Path, images: dict[str, str]) -> None:
        """``images``: each image's name (for the messages) -> the ref its services use (pinned by content)."""
        nodes = [n for n in self.backend.nodes() if n.ready]
        workdir = str(run_dir.resolve().parent)
        now = time.monotonic()
        wanted = [(n, i, images[i]) for n in nodes for i in sorted(images)
                  if now - self._checked.get((n.id, images[i], workdir), -CHECKED_FOR_S) >= CHECKED_FOR_S]
        if not wanted:
            return
        folder = run_dir / ".swarm-probe"
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o777)  # the probe writes as the image's user, whoever that is
        try:
            problems = self._probe(folder, run_dir.name, wanted)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if problems:
            listed = "; ".join(problems)
            raise PlanError(f"The swarm cannot run this plan: {listed}.",
                            hint="Give --registry HOST:PORT so rtest pushes the images, or load them on each node; "
                                 "mount the workdir at the same path on every node (e.g. over NFS).")
        for node, _, pinned in wanted:
            self._checked[(node.id, pinned, workdir)] = now

    def _probe(self, folder: Path, run_id: str, wanted: list) -> list[str]:
        api = self.backend.api
        started: dict[str, tuple] = {}
        problems: list[str] = []
        try:
            for node, image, pinned in wanted:
                nonce = secrets.token_hex(8)
                write_nonce = f"open('{MOUNT}/{nonce}', 'w').write('{nonce}')"
                spec = ContainerSpec(image=pinned, command=["python3", "-c", write_nonce],
                                     mounts=[Mount(target=MOUNT, source=str(folder), type="bind")],
                                     labels={LABEL_MANAGED: "1", LABEL_RUN_ID: run_id})
                template = TaskTemplate(spec, restart_policy=RestartPolicy(condition="none"),
                                        placement=Placement(constraints=[f"node.id=={node.id}"]))
                service = api.create_service(template, name=f"rtest-probe-{nonce}",
                                             labels={LABEL_MANAGED: "1", LABEL_RUN_ID: run_id},
                                             mode=ServiceMode("replicated", replicas=1))
                started[service["ID"]] = (node, image, nonce)
            problems = self._wait(folder, started)
        finally:
            for service_id in started:
                try:
                    api.remove_service(service_id)
                except (NotFound, APIError):
                    pass
        return problems

    def _wait(self, folder: Path, started: dict[str, tuple]) -> list[str]:
        api, problems, pending = self.backend.api, [], dict(started)
        deadline = time.monotonic() + PROBE_TIMEOUT_S
        while pending and time.monotonic() < deadline:
            for service_id, (node, image, nonce) in list(pending.items()):
                tasks = api.tasks(filters={"service": service_id})
                status = (tasks[0].get("Status") or {}) if tasks else {}
                state = status.get("State")
                if state not in ("complete", "failed", "rejected", "shutdown", "orphaned"):
                    continue
                del pending[service_id]
                problem = _judge(node.hostname, image, nonce, folder, state, (status.get("Err") or "").strip())
                if problem:
                    problems.append(problem)
            time.sleep(0.2)
        problems += [f"node {node.hostname} did not run a probe of {image} within {PROBE_TIMEOUT_S:g} s"
                     for node, image, _ in pending.values()]
        return problems


def _judge(host: str, image: str, nonce: str, folder: Path, state: str, error: str) -> str | None:
    if state == "complete":
        written = folder / nonce
        try:
            seen = written.read_text()[:64] if written.is_file() and not written.is_symlink() else ""
        except OSError:
            seen = ""
        return None if seen == nonce else (
            f"node {host} cannot see the workdir at {folder.parent.parent} (its probe wrote elsewhere)")
    if "No such image" in error or "not found" in error or "pull access denied" in error:
        return f"node {host} lacks the image {image}"
    return f"node {host} failed a probe of {image}: {error or state}"
