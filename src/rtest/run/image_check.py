"""Every image a plan needs, checked before any step runs; all missing ones reported at once."""

from __future__ import annotations

from rtest.catalog import BUILD_COMMAND, IMAGE_DIRS, missing_image_fix
from rtest.errors import ImageNotFoundError
from rtest.plan.model import PipelineTestingSpec, Source


def image_ids(plan: PipelineTestingSpec, backend, nodes: list[str] | None = None) -> dict[str, str]:
    """Image reference -> id for every image of the plan (or of ``nodes``); ONE error naming every missing image."""
    ids, missing = present_images(plan, backend, nodes)
    if missing:
        raise ImageNotFoundError(missing_images_message(plan, missing))
    return ids


def present_images(plan: PipelineTestingSpec, backend, nodes: list[str] | None = None) -> tuple[dict[str, str],
                                                                                                   list[str]]:
    """(reference -> id of the images there, references missing) over the images ``nodes`` (default all) need."""
    ids: dict[str, str] = {}
    missing: list[str] = []
    wanted = plan.scripts if nodes is None else {n: plan.scripts[n] for n in nodes}
    for ref in sorted({spec.image.value for spec in wanted.values()}):
        try:
            ids[ref] = backend.image_id(ref)
        except ImageNotFoundError:
            missing.append(ref)
    return ids, missing


def missing_image_failures(plan: PipelineTestingSpec, missing: list[str], nodes: list[str]) -> dict[str, str]:
    """node -> its failure reason, for each of ``nodes`` whose image is missing (--keep-going)."""
    return {node: missing_images_message(plan, [plan.scripts[node].image.value]) for node in nodes
            if plan.scripts[node].image.value in missing}


def missing_images_message(plan: PipelineTestingSpec, missing: list[str]) -> str:
    """One sentence per image, each with the nodes that need it and what makes it; then one build command."""
    parts = []
    for ref in missing:
        nodes = [node for node, spec in plan.scripts.items() if spec.image.value == ref]
        first = plan.scripts[nodes[0]]
        fix = missing_image_fix(
            ref, first.framework.value, first.framework_version.value, mapped=first.image.source is not Source.BUILTIN
        )
        parts.append(f"Image {ref} is not in the local Docker engine (needed by {', '.join(nodes)}); {fix}")
    buildable = [IMAGE_DIRS[ref] for ref in missing if ref in IMAGE_DIRS]
    text = "; ".join(parts) + "."
    if len(missing) > 1:
        text = f"{len(missing)} images are missing: {text}"
    if len(buildable) > 1:
        text += f" One command builds them all: `{BUILD_COMMAND} --offline {' '.join(buildable)}`."
    return text


def not_built_notes(plan: PipelineTestingSpec, backend, nodes: list[str]) -> dict[str, str]:
    """node -> a note for each of ``nodes`` (steps a partial run leaves out) whose image is missing, so the
    report says what running it would need."""
    _, missing = present_images(plan, backend, nodes)
    notes = {}
    for node in nodes:
        spec = plan.scripts[node]
        if spec.image.value in missing:
            fix = missing_image_fix(spec.image.value, spec.framework.value, spec.framework_version.value,
                                    mapped=spec.image.source is not Source.BUILTIN)
            notes[node] = f"it needs image {spec.image.value}, which is not in the local Docker engine: {fix}"
    return notes
