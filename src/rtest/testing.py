"""For tests, benchmarks and demos: small real pipelines for the base image, and a backend with no engine."""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rtest import jobs
from rtest.errors import ImageNotFoundError
from rtest.jobs.base import SM_OUTPUT_PATH
from rtest.run.backends.base import BackendBase, Handle, StepExit, StepLaunch
from rtest.yamltext import dump_yaml


def write_python_pipeline(root: Path, steps: dict[str, dict], edges: list[tuple[str, str]], *,
                          shared: dict | None = None) -> dict[str, Path]:
    """A pipeline whose every step runs in the base image, one step type per node.

    ``steps[node]`` holds: ``script`` (source text), ``inputs``/``outputs`` ({name: container path}),
    optional ``kind`` (a job kind's name: "processing", "training"), ``config`` (extra config fields), ``aliases``
    ({output: [input names]}), ``env`` ({"required": [...], "optional": {...}}), ``args``.
    """
    (root / "interfaces").mkdir(parents=True, exist_ok=True)
    (root / "src").mkdir(exist_ok=True)
    specific = {}
    for node, step in steps.items():
        kind = jobs.get(step["kind"]) if "kind" in step else jobs.default_kind()
        iface = {
            "step_type": node,
            "registry": {"sagemaker_step_type": kind.step_types[0]},
            "compute": {"kind": "python"},
            "contract": {
                "inputs": {n: {"path": p, "required": True} for n, p in step.get("inputs", {}).items()},
                "outputs": {n: {"path": p} for n, p in step.get("outputs", {}).items()},
                "job_arguments": step.get("args", []),
                "env_vars": step.get("env", {"required": [], "optional": {}}),
            },
            "spec": {"outputs": {o: {"aliases": a} for o, a in step.get("aliases", {}).items()}},
        }
        (root / "interfaces" / f"{node}.step.yaml").write_text(dump_yaml(iface))
        folder = root / "src" / node
        folder.mkdir(exist_ok=True)
        (folder / "main.py").write_text(step["script"])
        entry_field = (kind.entry_point_fields or jobs.default_kind().entry_point_fields)[0]
        specific[node] = {"__model_type__": f"{node}Config", entry_field: "main.py", "source_dir": f"src/{node}",
                          **step.get("config", {})}
    config = {"configuration": {"shared": shared or {}, "specific": specific},
              "metadata": {"config_types": {n: f"{n}Config" for n in steps}}}
    (root / "dag.json").write_text(json.dumps({"nodes": list(steps), "edges": [list(e) for e in edges]}))
    (root / "config.json").write_text(json.dumps(config, indent=2))
    return {"dag": root / "dag.json", "config": root / "config.json", "interfaces": root / "interfaces",
            "src": root / "src"}


# ---- a backend with no engine: scripted steps, for fast tests of the runner and the step executor ----


class FakeCrash(BaseException):
    """Stands for rtest being killed mid-run: not an Exception, so no layer turns it into a step result."""


@dataclass(frozen=True)
class FakeStep:
    """One fake step: runs ``duration_s``, then exits with ``exit_code`` (or is OOM-killed, or loses the engine)."""

    exit_code: int = 0
    duration_s: float = 0.0
    oom: bool = False
    engine_lost: bool = False
    crash: bool = False  # rtest itself dies mid-step (raises FakeCrash, which nothing in rtest catches)
    failure: str | None = None  # text written to /opt/ml/output/failure
    writes: dict[str, str] = field(default_factory=lambda: {"out.txt": "made by a fake step\n"})  # into every output


class FakeBackend(BackendBase):
    """Implements the backend protocol without containers and records what it was asked to do.

    Outputs are written into the mounts the layout made for declared outputs (``<node>/output/<name>``);
    each run also records the files it found in its input mounts, so staging can be checked.
    """

    name = "fake"

    def __init__(self, steps: dict[str, FakeStep] | None = None, *, images: set[str] | None = None) -> None:
        self.steps = steps or {}
        self.present = images  # None: every image exists; ``self.images`` stays None: no image store
        self.calls: list[tuple[str, str]] = []  # (what, node) in the order they happened
        self.inputs_seen: dict[str, dict[str, list[str]]] = {}  # node -> container path -> file names
        self.live: dict[str, Handle] = {}  # created and not yet removed, by handle id
        self.running = 0
        self.max_running = 0
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def _record(self, what: str, node: str) -> None:
        with self._lock:
            self.calls.append((what, node))

    def image_id(self, ref: str) -> str:
        if self.present is not None and ref not in self.present:
            raise ImageNotFoundError(f"Image {ref} is not in the fake engine.")
        return "sha256:" + hashlib.sha256(ref.encode()).hexdigest()

    def prepare(self, launch: StepLaunch) -> Handle:
        handle = Handle(id=f"fake-{next(self._ids)}", name=launch.name, launch=launch)
        with self._lock:
            self.live[handle.id] = handle
        self._record("prepare", launch.node)
        return handle

    def run(self, handle: Handle, log_path: Path, cancel: threading.Event) -> StepExit:
        launch, step = handle.launch, self.steps.get(handle.launch.node, FakeStep())
        self._record("start", launch.node)
        with self._lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        try:
            return self._play(launch, step, log_path, cancel)
        finally:
            with self._lock:
                self.running -= 1
            self._record("finish", launch.node)
            self.remove(handle)

    def _play(self, launch: StepLaunch, step: FakeStep, log_path: Path, cancel: threading.Event) -> StepExit:
        self.inputs_seen[launch.node] = {m.container: sorted(p.name for p in m.host.rglob("*") if p.is_file())
                                         for m in launch.mounts if m.host.parent.name == "input"}
        if step.engine_lost:
            return StepExit(exit_code=None, engine_error="lost contact with the fake engine")
        if step.crash:
            raise FakeCrash(f"rtest died while {launch.node} ran")
        started = time.monotonic()
        while time.monotonic() - started < step.duration_s:
            if cancel.is_set():
                return StepExit(exit_code=143, cancelled=True, duration_s=time.monotonic() - started)
            if launch.timeout_s and time.monotonic() - started > launch.timeout_s:
                return StepExit(exit_code=143, timed_out=True, duration_s=time.monotonic() - started)
            time.sleep(0.005)
        with log_path.open("a") as log:
            log.write(f"fake step {launch.node}\n")
        for mount in launch.mounts:
            if mount.host.parent.name == "output" and step.exit_code == 0:
                for name, text in step.writes.items():
                    (mount.host / name).write_text(text)
            if mount.container == SM_OUTPUT_PATH and step.failure:
                (mount.host / "failure").write_text(step.failure)
        return StepExit(exit_code=137 if step.oom else step.exit_code, oom_killed=step.oom,
                        duration_s=time.monotonic() - started)

    def remove(self, handle: Handle) -> None:
        with self._lock:
            gone = self.live.pop(handle.id, None)
        if gone is not None:
            self._record("remove", handle.launch.node)

    def remove_run(self, run_id: str | None = None, *, uid: int | None = None) -> list[str]:
        with self._lock:  # every fake container is the invoking user's, so ``uid`` narrows nothing here
            left = [h for h in self.live.values() if run_id is None or h.launch.run_id == run_id]
        for handle in left:
            self.remove(handle)
        return [h.name for h in left]

    def network_exists(self, name: str) -> bool:
        return name in ("none", "bridge", "host")

    def started(self) -> list[str]:
        return [node for what, node in self.calls if what == "start"]
