"""Carrying out ONE step: stage inputs, check the cache, run the container, collect outputs."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from rtest.errors import UntrustedOutputError
from rtest.plan.model import PipelineTestingSpec, ScriptExecutionSpec
from rtest.run import layout
from rtest.run.cache import StepCache, step_key, tree_digest
from rtest.run.docker_backend import ContainerHandle, DockerBackend
from rtest.run.limits import ResourceLimits, limits_for
from rtest.run.model import StepExit, StepLaunch, StepResult, StepStatus
from rtest.run.staging import MODEL_CONTAINER_PATH, export_output, pack_model, stage_copy, stage_output
from rtest.run.untrusted import DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES, OutputLimits, fault_reason, scan_tree


@dataclass
class RunOptions:
    network: str | None = None  # None: "none" unless the config turns isolation off
    limits: bool = True
    timeout_s: float | None = None  # overrides every step's max runtime
    memory_bytes: int | None = None  # overrides the instance type's memory limit
    pack_model: bool = True
    user: str | None = None  # "uid:gid" the containers run as
    stop_grace_s: float = 10.0
    max_output_files: int = DEFAULT_MAX_FILES  # per output: a step's files are untrusted (run/untrusted.py)
    max_output_bytes: int = DEFAULT_MAX_BYTES


@dataclass
class RunContext:
    run_id: str
    run_dir: Path
    options: RunOptions
    image_ids: dict[str, str] = field(default_factory=dict)  # image ref -> id, checked before the run
    executor_dir: Path | None = None  # the bootstrap, copied under the run folder


class StepExecutor:
    def __init__(self, plan: PipelineTestingSpec, backend: DockerBackend, ctx: RunContext, cache: StepCache | None) -> None:
        self.plan, self.backend, self.ctx, self.cache = plan, backend, ctx, cache
        self._prepared: dict[str, Future] = {}
        self._lock = threading.Lock()
        self._prep_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rtest-prepare")
        self._source_digests: dict[Path, str] = {}

    # ---- containers created ahead of time ------------------------------------------------
    def prepare_ahead(self, node: str) -> None:
        with self._lock:
            if node not in self._prepared:
                self._prepared[node] = self._prep_pool.submit(self._create, node)

    def prepared_count(self) -> int:
        with self._lock:
            return len(self._prepared)

    def discard_prepared(self, node: str) -> None:
        with self._lock:
            future = self._prepared.pop(node, None)
        if future is not None:
            future.add_done_callback(lambda f: f.exception() is None and self.backend.remove(f.result()))

    def close(self) -> None:
        for node in list(self._prepared):
            self.discard_prepared(node)
        self._prep_pool.shutdown(wait=True)

    def _create(self, node: str) -> ContainerHandle:
        return self.backend.prepare(self.launch_for(node))

    def _take_container(self, node: str) -> ContainerHandle:
        with self._lock:
            future = self._prepared.pop(node, None)
        if future is not None:
            try:
                return future.result()
            except Exception:  # creation ahead failed; try once more now, and let that error speak
                pass
        return self._create(node)

    def spec_for(self, node: str) -> ScriptExecutionSpec:
        """The node's spec without optional inputs nobody feeds: on SageMaker their folder does not exist."""
        spec = self.plan.scripts[node]
        wired = {w.target_input for w in self.plan.wires_into(node)}
        unfed = [n for n, i in spec.inputs.items() if not i.required and i.host_path is None and n not in wired]
        if not unfed:
            return spec
        return spec.model_copy(update={"inputs": {n: i for n, i in spec.inputs.items() if n not in unfed}})

    def launch_for(self, node: str) -> StepLaunch:
        spec = self.spec_for(node)
        folders = layout.step_folders(self.ctx.run_dir, node)
        layout.prepare_step_folders(spec, folders)
        options = self.ctx.options
        timeout = options.timeout_s or (spec.max_runtime_s.value if spec.max_runtime_s else None)
        launch = layout.build_launch(
            spec, folders, run_id=self.ctx.run_id, image=spec.image.value, executor_dir=self.ctx.executor_dir or layout.executor_dir(),
            user=options.user, network=self._network(spec), limits=self._limits(spec),
            timeout_s=timeout,
        )
        return launch.model_copy(update={"stop_grace_s": options.stop_grace_s})

    def _limits(self, spec: ScriptExecutionSpec):
        limits = limits_for(spec.instance_type.value, enabled=self.ctx.options.limits)
        if self.ctx.options.memory_bytes:
            limits = replace(limits, mem_bytes=self.ctx.options.memory_bytes) if limits else ResourceLimits(None, self.ctx.options.memory_bytes)
        return limits

    def _network(self, spec: ScriptExecutionSpec) -> str:
        if self.ctx.options.network:
            return self.ctx.options.network
        isolation = spec.network_isolation
        return "bridge" if isolation is not None and isolation.value is False else "none"

    # ---- one step ------------------------------------------------------------------------
    def execute(self, node: str, upstream: dict[str, StepResult], cancel: threading.Event) -> StepResult:
        """One step's result; a refused output or a host fault (disk full, workdir gone) fails the step, with a sentence."""
        try:
            return self._execute(node, upstream, cancel)
        except (UntrustedOutputError, OSError) as exc:
            self.discard_prepared(node)
            return StepResult(node=node, status=StepStatus.FAILED, ended_at=time.time(),
                              failure_reason=fault_reason(exc, "moving the step's files"))

    def _execute(self, node: str, upstream: dict[str, StepResult], cancel: threading.Event) -> StepResult:
        spec = self.spec_for(node)
        folders = layout.step_folders(self.ctx.run_dir, node)
        started = time.time()
        layout.prepare_step_folders(spec, folders)
        self._stage_inputs(spec, folders, upstream)
        layout.write_job_config_files(spec, folders, run_id=self.ctx.run_id, image=spec.image.value)
        base = dict(node=node, image=spec.image.value, log_path=str(folders.log_path), started_at=started)
        key = self._cache_key(spec, folders) if self.cache else None
        if key and self.cache.lookup(key) is not None:
            self.discard_prepared(node)
            outputs = self.cache.restore(key, folders.root / "cached-outputs")
            self._export(spec, outputs)
            return StepResult(**base, status=StepStatus.CACHED, exit_code=0, outputs={k: str(v) for k, v in outputs.items()},
                              ended_at=time.time(), duration_s=round(time.time() - started, 3), cache_key=key)
        if cancel.is_set():
            self.discard_prepared(node)
            return StepResult(**base, status=StepStatus.CANCELLED, failure_reason="cancelled before it started", ended_at=time.time())
        handle = self._take_container(node)
        exit_info = self.backend.run(handle, folders.log_path, cancel)
        return self._result(spec, folders, exit_info, base, key)

    def _stage_inputs(self, spec: ScriptExecutionSpec, folders: layout.StepFolders, upstream: dict[str, StepResult]) -> None:
        for wire in self.plan.wires_into(spec.node):
            produced = upstream.get(wire.source_node)
            if produced is not None and wire.source_output in produced.outputs:
                stage_output(Path(produced.outputs[wire.source_output]), folders.input_dir(wire.target_input),
                             label=f"output {wire.source_output} of step {wire.source_node}", limits=self._output_limits())
        for name, item in spec.inputs.items():
            if item.host_path is not None:
                stage_copy(Path(item.host_path.value), folders.input_dir(name))

    def _cache_key(self, spec: ScriptExecutionSpec, folders: layout.StepFolders) -> str:
        if spec.source_dir not in self._source_digests:
            self._source_digests[spec.source_dir] = tree_digest(spec.source_dir)
        inputs = {name: tree_digest(folders.input_dir(name)) for name in spec.inputs}
        options = self.ctx.options
        settings = {"network": self._network(spec), "limits": options.limits, "pack_model": options.pack_model,
                    "timeout": options.timeout_s or (spec.max_runtime_s.value if spec.max_runtime_s else None)}
        image_id = self.ctx.image_ids.get(spec.image.value, spec.image.value)
        return step_key(spec, image_id=image_id, source_digest=self._source_digests[spec.source_dir], input_digests=inputs, settings=settings)

    def _result(self, spec: ScriptExecutionSpec, folders: layout.StepFolders, exit_info: StepExit, base: dict, key: str | None) -> StepResult:
        usage = layout.read_usage(folders) or {}
        status, reason = self._judge(spec, folders, exit_info)
        result = StepResult(
            **base, status=status, exit_code=exit_info.exit_code, failure_reason=reason, ended_at=time.time(),
            duration_s=round(exit_info.duration_s, 3), peak_memory_bytes=usage.get("max_rss_bytes"),
            cpu_time_s=usage.get("cpu_time_s"), cache_key=key,
        )
        if status is StepStatus.SUCCEEDED:
            try:
                outputs = self._collect_outputs(spec, folders)
                if self.cache and key:
                    self.cache.store(key, outputs, folders.log_path, {"node": spec.node, "run_id": self.ctx.run_id})
                self._export(spec, outputs)
            except (UntrustedOutputError, OSError) as exc:  # what the step left breaks the rules: nothing is passed on
                result.status, result.failure_reason = StepStatus.FAILED, fault_reason(exc, "collecting the step's outputs")
                return result
            result.outputs = {name: str(path) for name, path in outputs.items()}
        return result

    def _judge(self, spec: ScriptExecutionSpec, folders: layout.StepFolders, exit_info: StepExit) -> tuple[StepStatus, str | None]:
        """Success only from an exit code of 0 that the engine really reported."""
        if exit_info.cancelled:
            return StepStatus.CANCELLED, "cancelled by the user; the container was stopped"
        if exit_info.engine_error:
            return StepStatus.FAILED, f"container engine error: {exit_info.engine_error}"
        if exit_info.timed_out:
            timeout = self.ctx.options.timeout_s or (spec.max_runtime_s.value if spec.max_runtime_s else 0)
            return StepStatus.FAILED, (f"timed out after {timeout:g} s (max runtime); the container got SIGTERM, "
                                       f"then SIGKILL after a {self.ctx.options.stop_grace_s:g} s grace period")
        if exit_info.oom_killed:
            limits = self._limits(spec)
            limit = _size(limits.mem_bytes) if limits and limits.mem_bytes else "the host's"
            return StepStatus.FAILED, (f"out of memory: the kernel killed the script at the {limit} memory limit of "
                                       f"{spec.instance_type.value}; choose a larger instance type or pass --no-limits")
        if exit_info.exit_code == 0:
            return StepStatus.SUCCEEDED, None
        written = layout.read_failure_reason(folders)
        return StepStatus.FAILED, written or f"script {spec.entry_point} exited with code {exit_info.exit_code}"

    def _collect_outputs(self, spec: ScriptExecutionSpec, folders: layout.StepFolders) -> dict[str, Path]:
        """Each output, checked by the untrusted-file rules before anything uses it (raises UntrustedOutputError)."""
        outputs: dict[str, Path] = {}
        for name, item in spec.outputs.items():
            produced = folders.output_dir(name)
            label = f"output {name} ({item.container_path})"
            if spec.job_kind == "training" and item.container_path.rstrip("/") == MODEL_CONTAINER_PATH and self.ctx.options.pack_model:
                outputs[name] = pack_model(produced, folders.root / "artifacts" / name, label=label, limits=self._output_limits())
            else:
                scan_tree(produced, label, self._output_limits())
                outputs[name] = produced
        return outputs

    def _output_limits(self) -> OutputLimits:
        return OutputLimits(self.ctx.options.max_output_files, self.ctx.options.max_output_bytes)

    def _export(self, spec: ScriptExecutionSpec, outputs: dict[str, Path]) -> None:
        for name, item in spec.outputs.items():
            if item.export_to and name in outputs:
                export_output(outputs[name], Path(item.export_to), label=f"output {name}", limits=self._output_limits())


def _size(nbytes: int) -> str:
    return f"{nbytes / 2**30:.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.0f} MiB"
