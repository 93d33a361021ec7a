"""Per step: its requirement set, what its image satisfies, what is missing, and the image that has it all.

``collect`` reads files only. ``analyse`` also reads each image's packages (once per image id).
``resolve_images`` fills the wheelhouse and names each distinct dependency image; it is where an
unsatisfiable pin stops the run, before any step starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rtest.deps import requirements as reqs_mod
from rtest.deps.installed import ImageInfo, image_info
from rtest.deps.policy import Decision, compute_kind, decide, unmet_message
from rtest.deps.requirements import DependencyError, Requirement, RequirementSet
from rtest.deps.scan import scan_script
from rtest.deps.wheelhouse import Wheelhouse, ensure_wheels, wheelhouse_for
from rtest.plan.model import PipelineTestingSpec, ScriptExecutionSpec

if TYPE_CHECKING:
    from rtest.run.backends.images import ImageStore


@dataclass
class StepDeps:
    node: str
    base_image: str
    info: ImageInfo
    requirements: RequirementSet
    satisfied: dict[str, str] = field(default_factory=dict)  # requirement text -> installed version
    missing: list[Requirement] = field(default_factory=list)  # to install: SageMaker would, the image lacks it
    decisions: dict[Requirement, Decision] = field(default_factory=dict)  # installed or not, and why
    unmet_declared: list[tuple[Requirement, str | None]] = field(default_factory=list)  # (req, image's version)
    image: str | None = None  # the dependency image's tag, when something is missing
    wheels: list[Path] = field(default_factory=list)
    house: Wheelhouse | None = None


def collect(spec: ScriptExecutionSpec, config_fields: dict[str, Any] | None = None) -> RequirementSet:
    """Every requirement of one step, with its source, and the env switches its install code reads."""
    found = RequirementSet(node=spec.node)
    found.requirements += reqs_mod.from_interface(spec.interface_file)
    found.requirements += reqs_mod.from_requirements_files(spec.source_dir, config_fields)
    scanned = scan_script(spec.script_path, spec.source_dir)
    found.requirements += scanned.requirements
    found.switches = scanned.switches
    for extra in getattr(spec, "requirements", []) or []:
        found.requirements.append(
            reqs_mod.parse_requirement(str(extra.value), "user", f"scripts.{spec.node}.requirements")
        )
    return found


def decisions(spec: ScriptExecutionSpec, found: RequirementSet, install_declared: bool = False
              ) -> dict[Requirement, Decision]:
    """Per requirement: does SageMaker install it, and why; pins of what is installed must agree."""
    kind = compute_kind(spec.interface_file)
    decided = {req: decide(req, spec, kind, install_declared) for req in found.requirements}
    check_conflicts(spec.node, RequirementSet(node=spec.node, requirements=[r for r in decided if decided[r].install]))
    return decided


def check_conflicts(node: str, installed: RequirementSet) -> None:
    """Two pins of what is installed that no version satisfies: an error before any step."""
    conflicts = installed.conflicts()
    if conflicts:
        pinned, other = conflicts[0]
        raise DependencyError(f"Node {node}: '{pinned.text}' (from {pinned.where}) conflicts with '{other.text}' "
                              f"(from {other.where}); no version satisfies both.", hint="Make the two pins agree.")


def config_fields_by_node(plan: PipelineTestingSpec) -> dict[str, dict[str, Any]]:
    if plan.config_path is None:
        return {}
    from rtest.inputs.config import load_pipeline_config

    try:
        config = load_pipeline_config(plan.config_path)
    except Exception:  # noqa: BLE001 - planning already read it; a missing file only loses the config-named files
        return {}
    fields = {}
    for node in plan.scripts:
        step = config.step_config(node)
        fields[node] = step.fields if step else {}
    return fields


def analyse(plan: PipelineTestingSpec, store: ImageStore, workdir: Path, nodes: list[str] | None = None,
            user_wheelhouses: list[Path] | None = None, download: bool = True,
            install_declared: bool = False) -> dict[str, StepDeps]:
    """Requirement sets against each image's installed packages (images probed once per id).

    Only what SageMaker would install counts as missing (``rtest.deps.policy``); a declared requirement the
    image does not meet is listed in ``unmet_declared`` instead (installed with ``install_declared``).
    """
    workdir = Path(workdir).resolve()
    fields = config_fields_by_node(plan)
    result: dict[str, StepDeps] = {}
    infos: dict[str, ImageInfo] = {}
    for node in nodes if nodes is not None else list(plan.scripts):
        spec = plan.scripts[node]
        ref = spec.image.value
        if ref not in infos:
            infos[ref] = image_info(store, ref, store.image_id(ref), probe_cache_dir())
        info = infos[ref]
        found = collect(spec, fields.get(node))
        step = StepDeps(node=node, base_image=ref, info=info, requirements=found,
                        house=wheelhouse_for(workdir, info, user_wheelhouses, download, store=store))
        step.decisions = decisions(spec, found, install_declared)
        for req in found.requirements:
            version = _installed(info, req, step.decisions[req].install)
            if version is not None:
                step.satisfied[req.text] = version
            elif step.decisions[req].install:
                step.missing.append(req)
            elif req.origin == "interface":  # others not installed are listed with their reason only
                step.unmet_declared.append((req, info.python if req.name == "python" else info.dists.get(req.name)))
        result[node] = step
    return result


def _installed(info: ImageInfo, req: Requirement, installs: bool) -> str | None:
    """The image's version meeting ``req``; a Python it does not meet stops only what would be installed."""
    try:
        return info.satisfies(req)
    except DependencyError:
        if installs:
            raise
        return None


def unmet_warnings(steps: dict[str, StepDeps]) -> list[tuple[str, str]]:
    """(node, sentence) per declared requirement its image does not meet."""
    return [(step.node, unmet_message(step.node, req, step.base_image, version))
            for step in steps.values() for req, version in step.unmet_declared]


def resolve_images(steps: dict[str, StepDeps]) -> dict[str, StepDeps]:
    """Wheels and dependency image tag per step with something missing; one error for the first unsatisfiable set."""
    from rtest.deps.image import dependency_tag

    by_set: dict[tuple, tuple[dict[Path, str], str]] = {}
    for step in steps.values():
        if not step.missing:
            continue
        specs = install_specs(step)
        key = (step.info.image_id, tuple(specs))
        if key not in by_set:
            assert step.house is not None  # analyse gives every step its wheelhouse
            try:
                wheels = ensure_wheels(_with_pip(step), step.house, step.info)
            except DependencyError as exc:
                raise DependencyError(
                    f"Node {step.node} (image {step.base_image}, Python {step.info.python}): {exc.message}",
                    hint=exc.hint,
                ) from exc
            by_set[key] = (wheels, dependency_tag(step.info.image_id, specs, wheels))
        wheels, step.image = by_set[key]
        step.wheels = list(wheels)
    return steps


def probe_cache_dir() -> Path:
    """Shared by every workdir: an image id names immutable content, so its package list never goes stale."""
    import os

    return Path(os.environ.get("RTEST_CACHE_DIR") or Path.home() / ".cache" / "rtest") / "image-packages"


def install_specs(step: StepDeps) -> list[str]:
    """What pip installs into the dependency image: the missing specs, plus pip itself when the image lacks it."""
    return sorted({r.text for r in step.missing} | ({"pip"} if not step.info.has_pip else set()))


def _with_pip(step: StepDeps) -> list[Requirement]:
    if step.info.has_pip:
        return step.missing
    return [*step.missing, Requirement(text="pip", name="pip", specifier="", origin="rtest")]
