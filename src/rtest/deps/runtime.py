"""What a run does with dependencies: build missing dependency images, then give each step's container
its image, the wheelhouse read-only and pip settings that keep pip offline. Why pip failed is told by
rtest.run.diagnose.

``prepare_dependencies`` runs before the run (it builds images, so it sits above run/); the session then
runs ``PreparedDeps.plan`` (images swapped, so the cache key and the report follow) and hands
``PreparedDeps.launch_extras`` to the engine (per launch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rtest.deps.image import Progress, build_dependency_image, container_dir
from rtest.deps.policy import DECLARED_WARNING
from rtest.deps.resolve import StepDeps, analyse, install_specs, resolve_images, unmet_warnings
from rtest.plan.model import PipelineTestingSpec, PlanWarning, Source, Sourced
from rtest.run.backends.base import Mount, StepLaunch
from rtest.run.backends.images import ImageStore


@dataclass
class DepsOptions:
    enabled: bool = True
    wheelhouses: list[Path] = field(default_factory=list)  # the user's folders (--wheelhouse, spec file)
    download: bool = True  # False with --offline: the folders are all there is
    on_progress: Progress | None = None
    install_declared: bool = False  # also install interfaces' framework_requirements (SageMaker does not)
    nodes: list[str] | None = None  # only these steps (a partial run); None: every script step


@dataclass
class PreparedDeps:
    steps: dict[str, StepDeps]
    built: list[str] = field(default_factory=list)

    @property
    def warnings(self) -> list[PlanWarning]:
        """A declared requirement the image does not meet: the run uses the image's version, as SageMaker would."""
        return [PlanWarning(node=node, code=DECLARED_WARNING, message=text, subject="framework_requirements")
                for node, text in unmet_warnings(self.steps)]

    def plan(self, plan: PipelineTestingSpec) -> PipelineTestingSpec:
        """The plan with each step's image replaced by its dependency image, where it has one, and the
        dependency warnings added to its warnings (so every report carries them)."""
        scripts = dict(plan.scripts)
        for node, step in self.steps.items():
            if step.image and node in scripts:
                scripts[node] = scripts[node].model_copy(
                    update={
                        "image": Sourced(value=step.image, source=Source.BUILTIN, field=f"deps of {step.base_image}")
                    }
                )
        known = set(plan.warnings)
        warnings = [*plan.warnings, *(w for w in self.warnings if w not in known)]
        return plan.model_copy(update={"scripts": scripts, "warnings": warnings})

    def launch_extras(self, node: str, launch: StepLaunch) -> StepLaunch:
        """The wheelhouse read-only, and pip pointed at it (offline when the step has no network)."""
        step = self.steps.get(node)
        if step is None or step.house is None:
            return launch
        dirs = [d for d in step.house.dirs if d.is_dir()]
        mounts = [Mount(host=d, container=container_dir(i), read_only=True) for i, d in enumerate(dirs)]
        env = {"PIP_FIND_LINKS": " ".join(m.container for m in mounts), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        if launch.network == "none":
            env.update(PIP_NO_INDEX="1", PIP_RETRIES="0", PIP_TIMEOUT="2")
        return launch.with_extras(mounts, {k: v for k, v in env.items() if k not in launch.environment})


def prepare_dependencies(plan: PipelineTestingSpec, workdir: Path, store: ImageStore,
                         options: DepsOptions | PreparedDeps | bool | None = True) -> PreparedDeps | None:
    """Resolve every step's dependencies and build the dependency images that are missing.

    ``options`` may be already prepared (the CLI prepares before its live display starts), True for
    the defaults, or False/None for no dependency handling at all (``--no-deps``).
    """
    if isinstance(options, PreparedDeps):
        return options
    if not options:
        return None
    options = options if isinstance(options, DepsOptions) else DepsOptions()
    if not options.enabled or not plan.scripts:
        return None
    steps = resolve_images(
        analyse(plan, store, workdir, options.nodes, user_wheelhouses=options.wheelhouses,
                download=options.download, install_declared=options.install_declared)
    )
    prepared = PreparedDeps(steps=steps)
    pending: dict[str, StepDeps] = {}
    for step in steps.values():
        if step.image and step.image not in pending and not store.exists(step.image):
            pending[step.image] = step
    prepared.built.extend(_build_all(store, pending, options.on_progress))
    return prepared


def _build_all(store, pending: dict[str, StepDeps], on_progress: Progress | None) -> list[str]:
    """The missing images at once (each is one pip install from wheels on disk, mostly waiting on the
    engine), so a pipeline with four sets waits for its slowest, not their sum; the first failure raises."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    def build(item: tuple[str, StepDeps]) -> str:
        tag, step = item
        assert step.house is not None  # analyse gives every step its wheelhouse
        return build_dependency_image(store, base_ref=step.base_image, info=step.info, tag=tag,
                                      specs=install_specs(step), wheels=step.wheels, dirs=step.house.dirs,
                                      on_progress=on_progress)

    if len(pending) <= 1:
        return [build(item) for item in pending.items()]
    with ThreadPoolExecutor(max_workers=min(len(pending), max(2, os.cpu_count() or 2)),
                            thread_name_prefix="rtest-deps-build") as pool:
        futures = [pool.submit(build, item) for item in pending.items()]
        return [future.result() for future in futures]
