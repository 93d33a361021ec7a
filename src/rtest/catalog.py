"""Which image runs a step: (compute kind, framework version) -> image reference.

The look-alike images built from ``images/`` carry these tags. A user who can
pull the real SageMaker images points at them with ``--image-map`` or the spec
file's ``image_map``.
"""

from __future__ import annotations

from rtest.errors import PlanError

BASE_IMAGE = "rtest/sagemaker-base:py3"
BUILD_COMMAND = "rtest sandbox images build"

# (kind, framework version) -> tag of the look-alike image built by `rtest sandbox images build`.
IMAGE_CATALOG: dict[tuple[str, str], str] = {
    ("sklearn", "1.2-1"): "rtest/sagemaker-scikit-learn:1.2-1-cpu-py3",
    ("xgboost", "1.7-1"): "rtest/sagemaker-xgboost:1.7-1",
    ("python", "3"): BASE_IMAGE,
}

# Kind aliases seen in interfaces and configs.
KIND_ALIASES = {"scikit-learn": "sklearn", "sk-learn": "sklearn", "xgb": "xgboost", "base": "python"}

# Which catalog folder under images/ builds which tag, in build order (base first).
IMAGE_DIRS: dict[str, str] = {
    BASE_IMAGE: "base",
    IMAGE_CATALOG[("sklearn", "1.2-1")]: "sklearn",
    IMAGE_CATALOG[("xgboost", "1.7-1")]: "xgboost",
}


def normalize_kind(kind: str) -> str:
    kind = kind.strip().lower()
    return KIND_ALIASES.get(kind, kind)


def default_image(kind: str, version: str | None) -> str:
    """The look-alike image for a kind and version; an unknown pair gets a predictable tag."""
    kind = normalize_kind(kind)
    if kind == "python":
        return BASE_IMAGE
    if version and (kind, version) in IMAGE_CATALOG:
        return IMAGE_CATALOG[(kind, version)]
    return f"rtest/sagemaker-{kind}:{version or 'latest'}"


def parse_image_map(entries: list[str] | dict[str, str] | None) -> dict[tuple[str, str], str]:
    """Parse ``KIND:VERSION=IMAGE`` entries (or a {"KIND:VERSION": IMAGE} mapping)."""
    if not entries:
        return {}
    pairs = entries.items() if isinstance(entries, dict) else (_split_entry(e) for e in entries)
    parsed: dict[tuple[str, str], str] = {}
    for key, image in pairs:
        kind, sep, version = key.partition(":")
        if not sep or not kind or not version or not image:
            raise PlanError(
                f"Image map entry '{key}={image}' is not of the form KIND:VERSION=IMAGE;"
                " write it like sklearn:1.2-1=123456789012.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3."
            )
        parsed[(normalize_kind(kind), version)] = image
    return parsed


def _split_entry(entry: str) -> tuple[str, str]:
    key, sep, image = entry.partition("=")
    if not sep:
        raise PlanError(f"Image map entry '{entry}' has no '='; write it as KIND:VERSION=IMAGE.")
    return key.strip(), image.strip()


def missing_image_message(ref: str) -> str:
    """What to do about a missing image: build ours, pull anybody else's."""
    if ref in IMAGE_DIRS:
        return (f"Image {ref} is not in the local Docker engine; build it with `{BUILD_COMMAND}`"
                f" (add `--offline` on a machine with no registry).")
    return (f"Image {ref} is not in the local Docker engine; pull it with `docker pull {ref}`"
            f" or map the step to an image you have with --image-map.")
