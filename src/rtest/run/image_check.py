"""Every image a plan needs, checked before any step runs; all missing ones reported at once."""

from __future__ import annotations

from rtest.catalog import BUILD_COMMAND, IMAGE_DIRS, missing_image_fix
from rtest.errors import ImageNotFoundError
from rtest.plan.model import PipelineTestingSpec, Source


def image_ids(plan: PipelineTestingSpec, backend) -> dict[str, str]:
    """Image reference -> id for every image of the plan; raises ONE error naming every missing image."""
    ids: dict[str, str] = {}
    missing: list[str] = []
    for ref in sorted({spec.image.value for spec in plan.scripts.values()}):
        try:
            ids[ref] = backend.image_id(ref)
        except ImageNotFoundError:
            missing.append(ref)
    if missing:
        raise ImageNotFoundError(missing_images_message(plan, missing))
    return ids


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
