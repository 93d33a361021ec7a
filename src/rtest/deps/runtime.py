"""What a run does with dependencies: build missing dependency images, then give each step's container
its image, the wheelhouse read-only and pip settings that keep pip offline; explain pip failures after.

The run layer calls three things: ``prepare_dependencies`` (before the first step), ``PreparedDeps.plan``
(images swapped, so the cache key and the report follow) and ``PreparedDeps.launch_extras`` (per launch).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from rtest.deps.image import Progress, build_dependency_image, container_dir, image_exists
from rtest.deps.resolve import StepDeps, analyse, install_specs, resolve_images
from rtest.plan.model import PipelineTestingSpec, Source, Sourced

LOG_TAIL_BYTES = 64 * 1024
PIP_NOT_FOUND = re.compile(r"(?:No matching distribution found for|Could not find a version that satisfies the requirement) ([^\s(]+)")
PIP_OFFLINE = re.compile(r"(Temporary failure in name resolution|Failed to establish a new connection|Network is unreachable)")


@dataclass
class DepsOptions:
    enabled: bool = True
    wheelhouses: list[Path] = field(default_factory=list)  # the user's folders (--wheelhouse, spec file)
    download: bool = True  # False with --offline: the folders are all there is
    on_progress: Progress | None = None


@dataclass
class PreparedDeps:
    steps: dict[str, StepDeps]
    built: list[str] = field(default_factory=list)

    def plan(self, plan: PipelineTestingSpec) -> PipelineTestingSpec:
        """The plan with each step's image replaced by its dependency image, where it has one."""
        scripts = dict(plan.scripts)
        for node, step in self.steps.items():
            if step.image and node in scripts:
                scripts[node] = scripts[node].model_copy(update={"image": Sourced(value=step.image, source=Source.BUILTIN,
                                                                                   field=f"deps of {step.base_image}")})
        return plan.model_copy(update={"scripts": scripts})

    def launch_extras(self, node: str, launch):
        """The wheelhouse read-only, and pip pointed at it (offline when the step has no network)."""
        step = self.steps.get(node)
        if step is None or step.house is None:
            return launch
        from rtest.run.model import Mount

        dirs = [d for d in step.house.dirs if d.is_dir()]
        mounts = [Mount(host=d, container=container_dir(i), read_only=True) for i, d in enumerate(dirs)]
        env = {"PIP_FIND_LINKS": " ".join(m.container for m in mounts), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        if launch.network == "none":
            env.update(PIP_NO_INDEX="1", PIP_RETRIES="0", PIP_TIMEOUT="2")
        return launch.model_copy(update={"mounts": [*launch.mounts, *mounts], "environment": {**env, **launch.environment}})

    def explain(self, results: dict) -> dict:
        """A failed step whose log shows pip could not find a package gets a reason that says how to add it."""
        explained = {}
        for node, result in results.items():
            reason = pip_failure_reason(node, result.log_path) if result.status.value == "failed" else None
            explained[node] = result.model_copy(update={"failure_reason": f"{reason}\n{result.failure_reason or ''}".strip()}) if reason else result
        return explained


def pip_failure_reason(node: str, log_path: str | None) -> str | None:
    text = _tail(Path(log_path)) if log_path else ""
    missing = PIP_NOT_FOUND.search(text)
    if missing:
        package = missing.group(1).strip("'\"")
        return (f"pip could not find {package} in the offline wheelhouse (the sandbox has no package index); add it with "
                f"`rtest deps --add {node} '{package}'`, or under scripts.{node}.requirements in the spec file, and run again.")
    if PIP_OFFLINE.search(text) and "pip" in text:
        return ("pip tried to reach a package index, but the step has no network; declare the package in requirements.txt "
                f"or scripts.{node}.requirements so rtest installs it, or pass --network bridge.")
    return None


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def prepare_dependencies(plan: PipelineTestingSpec, workdir: Path, client,
                         options: DepsOptions | PreparedDeps | bool | None = True) -> PreparedDeps | None:
    """Resolve every step's dependencies and build the dependency images that are missing.

    ``options`` may be already prepared (the CLI prepares before its live display starts), True for
    the defaults, or False/None for no dependency handling at all (``--no-deps``).
    """
    if isinstance(options, PreparedDeps) or not options:
        return options or None
    options = options if isinstance(options, DepsOptions) else DepsOptions()
    if not options.enabled or not plan.scripts:
        return None
    steps = resolve_images(analyse(plan, client, workdir, user_wheelhouses=options.wheelhouses, download=options.download))
    prepared = PreparedDeps(steps=steps)
    pending: dict[str, StepDeps] = {}
    for step in steps.values():
        if step.image and step.image not in pending and not image_exists(client, step.image):
            pending[step.image] = step
    for tag, step in pending.items():
        build_dependency_image(client, base_ref=step.base_image, info=step.info, tag=tag,
                               specs=install_specs(step),
                               wheels=step.wheels, dirs=step.house.dirs, on_progress=options.on_progress)
        prepared.built.append(tag)
    return prepared
