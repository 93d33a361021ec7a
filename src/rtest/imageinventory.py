"""The images rtest made, for `rtest sandbox images list`: the SageMaker look-alikes and the dependency images.

A dependency image is built FROM a look-alike, so it inherits ``rtest.image=1``; its own label
``rtest.kind=deps`` is what tells them apart, so the kind is read first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rtest.deps.image import KIND, KIND_LABEL, dependency_images

if TYPE_CHECKING:
    from rtest.run.backends.images import ImageStore

LOOKALIKE_LABEL = "rtest.image"


def rtest_images(store: ImageStore) -> list[dict[str, Any]]:
    """One row per image: look-alikes first (by name), then dependency images (newest first)."""
    deps = dependency_images(store)
    dep_ids = {image["id"] for image in deps}
    rows: list[dict[str, Any]] = []
    for image in store.list_images(f"{LOOKALIKE_LABEL}=1"):
        labels = image.labels
        if image.id in dep_ids or labels.get(KIND_LABEL) == KIND or not image.tags:
            continue  # untagged: an earlier build a rebuild replaced (`docker image prune` removes those)
        name = labels.get("rtest.image.name") or ""
        rows.append(
            {
                "id": image.id,
                "kind": "look-alike" if name.startswith("sagemaker") else name or "rtest",
                "tags": sorted(image.tags),
                "size": image.size,
                "created": image.created,
                "base": None,
                "requirements": [],
                "name": name or None,
            }
        )
    rows.sort(key=lambda row: (row["tags"] or [row["id"]])[0])
    for dep in sorted(deps, key=lambda dep: dep["created"] or "", reverse=True):
        rows.append({**dep, "kind": KIND, "tags": sorted(dep["tags"]), "name": None})
    return rows
