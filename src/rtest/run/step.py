"""Carrying out ONE step: stage inputs, check the cache, run the container, collect outputs."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rtest.errors import UntrustedOutputError
from rtest.plan.model import PipelineTestingSpec, ScriptExecutionSpec
from rtest.plan.settings import StepSettings
from rtest.run import diagnose, layout, ownership
from rtest.run.artifacts import LocalStager, Stager
from rtest.run.backends.base import Backend, Handle, StepExit, StepLaunch
from rtest.run.cache import StepCache, step_key, tree_digest
from rtest.run.events import Event, StepCreated, StepStarted
from rtest.run.inference_results import CACHE_META_KEY, from_value, read_inference_results
from rtest.run.logcap import DEFAULT_MAX_LOG_BYTES, cap_log
from rtest.run.model import StepResult, StepStatus
from rtest.run.source_digest import source_digest
from rtest.run.untrusted import OutputLimits, fault_reason


@dataclass
class RunContext:
    run_id: str
    run_dir: Path
    settings: dict[str, StepSettings]  # node -> effective settings, computed once before the run
    stop_grace_s: float = 10.0
    image_ids: dict[str, str] = field(default_factory=dict)  # image ref -> id, checked before the run
    executor_dir: Path | None = None  # the bootstrap, copied under the run folder
    emit: Callable[[Event], None] = lambda event: None
    output_limits: OutputLimits = OutputLimits()  # caps per output: a step's files are untrusted (run/untrusted.py)
    cache_key: str = "imports"  # see RunOptions.cache_key
    launch_extras: Callable[[str, StepLaunch], StepLaunch] | None = None  # rtest.deps: wheelhouse mounts, pip env
    max_log_bytes: int | None = DEFAULT_MAX_LOG_BYTES  # per step log: head and tail kept (run/logcap.py)


class StepExecutor:
    def __init__(self, plan: PipelineTestingSpec, backend: Backend, ctx: RunContext, cache: StepCache | None,
                 stager: Stager | None = None) -> None:
        self.plan, self.backend, self.ctx, self.cache = plan, backend, ctx, cache
        self.stager: Stager = stager or LocalStager(ctx.output_limits)
        self._prepared: dict[str, Future] = {}
        self._lock = threading.Lock()
        self._prep_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rtest-prepare")
        self._source_digests: dict[tuple[Path, str], str] = {}
        # Done when a step first goes past the cache to a container. Until then the runner creates none ahead: in a
        # rerun served from the cache each one made ahead was only removed again (6 of the example's 10 steps).
        self.first_launch: Future = Future()

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
            future.add_done_callback(self._remove_created)

    def _remove_created(self, future: Future) -> None:
        """A discarded preparation's container, once created, is removed (a failed creation left none)."""
        if future.exception() is None:
            self.backend.remove(future.result())

    def close(self) -> None:
        for node in list(self._prepared):
            self.discard_prepared(node)
        self._prep_pool.shutdown(wait=True)

    def _create(self, node: str) -> Handle:
        handle = self.backend.prepare(self.launch_for(node))
        self.ctx.emit(StepCreated(node))
        return handle

    def _take_container(self, node: str) -> Handle:
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

    def settings_for(self, node: str) -> StepSettings:
        return self.ctx.settings[node]

    def launch_for(self, node: str) -> StepLaunch:
        spec = self.spec_for(node)
        folders = layout.step_folders(self.ctx.run_dir, node)
        layout.prepare_step_folders(spec, folders)
        executor_dir = self.ctx.executor_dir or layout.executor_dir()
        launch = layout.build_launch(spec, folders, self.settings_for(node), run_id=self.ctx.run_id,
                                     executor_dir=executor_dir, stop_grace_s=self.ctx.stop_grace_s,
                                     max_log_bytes=self.ctx.max_log_bytes)
        return self.ctx.launch_extras(node, launch) if self.ctx.launch_extras else launch

    # ---- one step ------------------------------------------------------------------------
    def execute(self, node: str, upstream: dict[str, StepResult], cancel: threading.Event) -> StepResult:
        """One step's result; a refused output or a host fault (disk full, workdir gone) fails it with a sentence."""
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
        settings = self.settings_for(node)
        layout.write_job_config_files(spec, folders, settings, run_id=self.ctx.run_id)
        base = dict(node=node, image=settings.image.value, log_path=str(folders.log_path), started_at=started)
        key = self._cache_key(spec, folders) if self.cache and settings.cache.value else None
        meta = self.cache.lookup(key) if self.cache and key else None
        if meta is not None:
            assert self.cache is not None and key is not None  # a hit was looked up with both
            self.discard_prepared(node)
            outputs = self.stager.restore_cached(self.cache, key, folders)
            self._export(spec, outputs)
            return StepResult(**base, status=StepStatus.CACHED, exit_code=0,
                              outputs={k: str(v) for k, v in outputs.items()},
                              ended_at=time.time(), duration_s=round(time.time() - started, 3), cache_key=key,
                              inference_check=from_value(meta.get(CACHE_META_KEY)))
        if cancel.is_set():
            self.discard_prepared(node)
            return StepResult(**base, status=StepStatus.CANCELLED, failure_reason="cancelled before it started",
                              ended_at=time.time())
        user = settings.user.value
        unreadable = ownership.unreadable_for(user, [spec.source_dir, spec.script_path])
        if unreadable:
            self.discard_prepared(node)
            return StepResult(**base, status=StepStatus.FAILED, failure_reason=unreadable, ended_at=time.time())
        with self._lock:
            if not self.first_launch.done():
                self.first_launch.set_result(node)
        handle = self._take_container(node)
        ownership.hand_over(folders.root, user)  # as root: the step's uid may write its folders
        self.ctx.emit(StepStarted(node))
        exit_info = self.backend.run(handle, folders.log_path, cancel)
        cap_log(folders.log_path, self.ctx.max_log_bytes)
        ownership.take_back(folders.root, user)  # no setuid/setgid bit, no device file, the invoking user's files
        return self._result(spec, folders, exit_info, base, key)

    def _stage_inputs(self, spec: ScriptExecutionSpec, folders: layout.StepFolders,
                      upstream: dict[str, StepResult]) -> None:
        for wire in self.plan.wires_into(spec.node):
            produced = upstream.get(wire.source_node)
            if produced is not None and wire.source_output in produced.outputs:
                self.stager.stage_in(Path(produced.outputs[wire.source_output]), folders, wire.target_input,
                                     label=f"output {wire.source_output} of step {wire.source_node}")
        for name, item in spec.inputs.items():
            if item.host_path is not None:  # the user's files: the same rules as at plan time
                self.stager.stage_user_input(Path(item.host_path.value), folders, name,
                                             follow_links=self.plan.follow_input_links)

    def _cache_key(self, spec: ScriptExecutionSpec, folders: layout.StepFolders) -> str:
        full = self.ctx.cache_key == "full"
        source = (spec.source_dir, "" if full else spec.entry_point)  # nodes sharing a script share its digest
        if source not in self._source_digests:
            self._source_digests[source] = source_digest(spec.source_dir, spec.entry_point, full=full)
        inputs = {name: tree_digest(folders.input_dir(name)) for name in spec.inputs}
        settings = self.settings_for(spec.node)
        image_id = self.ctx.image_ids.get(settings.image.value, settings.image.value)
        return step_key(spec, image_id=image_id, source_digest=self._source_digests[source],
                        input_digests=inputs, settings=settings.cache_material())

    def _result(self, spec: ScriptExecutionSpec, folders: layout.StepFolders, exit_info: StepExit, base: dict,
                key: str | None) -> StepResult:
        usage = layout.read_usage(folders) or {}
        status, reason = self._judge(spec, folders, exit_info)
        result = StepResult(
            **base, status=status, exit_code=exit_info.exit_code, failure_reason=reason, ended_at=time.time(),
            duration_s=round(exit_info.duration_s, 3), peak_memory_bytes=usage.get("max_rss_bytes"),
            cpu_time_s=usage.get("cpu_time_s"), cache_key=key, host=exit_info.host, host_id=exit_info.host_id,
        )
        if spec.kind.results_file:  # the inference check's samples, whether it passed or not
            result.inference_check = read_inference_results(folders)
        if status is StepStatus.SUCCEEDED:
            warned = diagnose.warnings_in(diagnose.read_log_tail(folders.log_path))
            result.warning_count, result.warning_lines = warned.count, warned.lines
            try:
                outputs = self._collect_outputs(spec, folders)
                if self.cache and key:
                    stored: dict[str, object] = {"node": spec.node, "run_id": self.ctx.run_id}
                    if result.inference_check is not None:
                        stored[CACHE_META_KEY] = result.inference_check.model_dump(mode="json")
                    self.stager.store_cached(self.cache, key, outputs, folders, stored)
                self._export(spec, outputs)
            except (UntrustedOutputError, OSError) as exc:  # what the step left breaks the rules: nothing is passed on
                result.status, result.failure_reason = StepStatus.FAILED, fault_reason(
                    exc, "collecting the step's outputs"
                )
                return result
            result.outputs = {name: str(path) for name, path in outputs.items()}
        return result

    def _judge(self, spec: ScriptExecutionSpec, folders: layout.StepFolders,
               exit_info: StepExit) -> tuple[StepStatus, str | None]:
        """Success only from an exit code of 0 that the engine really reported."""
        if exit_info.cancelled:
            return StepStatus.CANCELLED, "cancelled by the user; the container was stopped"
        if exit_info.engine_error:  # a container removed by someone else is no engine fault: its reason says so
            prefix = "" if exit_info.removed_outside else "container engine error: "
            return StepStatus.FAILED, f"{prefix}{exit_info.engine_error}"
        settings = self.settings_for(spec.node)
        if exit_info.timed_out:
            timeout = settings.timeout_s.value or 0
            return StepStatus.FAILED, (f"timed out after {timeout:g} s (max runtime, from "
                                       f"{settings.timeout_s.describe()}); "
                                       f"the container got SIGTERM, then SIGKILL after a {self.ctx.stop_grace_s:g} s "
                                       "grace period")
        if exit_info.oom_killed:
            memory = settings.memory_bytes.value
            limit = _size(memory) if memory else "the host's"
            if settings.memory_bytes.field == "--memory":  # the user's flag set the limit, not the instance type
                return (
                    StepStatus.FAILED,
                    f"out of memory: the kernel killed the script at the {limit} limit set by --memory; raise --memory",
                )
            return StepStatus.FAILED, (f"out of memory: the kernel killed the script at the {limit} memory limit of "
                                       f"{spec.instance_type.value}; choose a larger instance type or pass --no-limits")
        if exit_info.exit_code == 0:
            return StepStatus.SUCCEEDED, None
        if exit_info.exit_code == SIGKILL_EXIT and layout.read_usage(folders) is None:
            # The bootstrap always writes usage.json, even when the script dies by a signal: without it, the
            # container's first process itself was SIGKILLed, and rtest did not do it (no timeout, no cancel).
            return StepStatus.FAILED, ("the container was killed by something outside rtest before the script "
                                       "finished (SIGKILL: docker kill, the engine stopping, or the host running out "
                                       "of memory); the log shows what the script wrote until then")
        log_text = diagnose.read_log_tail(folders.log_path)  # the exception line, and any network attempt
        exited = f"script {spec.entry_point} exited with code {exit_info.exit_code}"  # kept when rtest ignored the file
        return StepStatus.FAILED, diagnose.failure_reason(
            layout.read_failure_reason(folders, exited),
            log_text,
            settings.network.value,
            spec.entry_point,
            exit_info.exit_code,
            spec.node,
        )

    def _collect_outputs(self, spec: ScriptExecutionSpec, folders: layout.StepFolders) -> dict[str, Path]:
        return self.stager.collect_out(spec, folders, self.settings_for(spec.node))

    def _export(self, spec: ScriptExecutionSpec, outputs: dict[str, Path]) -> None:
        self.stager.export(spec, outputs)


SIGKILL_EXIT = 128 + 9


def _size(nbytes: int) -> str:
    return f"{nbytes / 2**30:.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.0f} MiB"
