"""Which image runs a step, chosen as SageMaker's image lookup chooses it.

An interface's ``compute`` names the framework either directly (``kind: sklearn``)
or through the SDK class that builds the job (``kind: estimator`` +
``sdk_class: XGBoost``, ``kind: model`` + ``framework_name: xgboost``). The
framework and its version pick a look-alike image built from ``images/``; a
version with no look-alike takes the nearest one, with a warning naming both.
A user who can pull the real SageMaker images points at them with
``--image-map`` or the spec file's ``image_map``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rtest.errors import PlanError

BASE_IMAGE = "rtest/sagemaker-base:py3"
BUILD_COMMAND = "rtest sandbox images build"

# (framework, version) -> tag of the look-alike image built by `rtest sandbox images build`.
IMAGE_CATALOG: dict[tuple[str, str], str] = {
    ("sklearn", "1.2-1"): "rtest/sagemaker-scikit-learn:1.2-1-cpu-py3",
    ("xgboost", "1.7-1"): "rtest/sagemaker-xgboost:1.7-1",
    ("python", "3"): BASE_IMAGE,
}

# Kind aliases seen in interfaces and configs; `script` is a plain python processor.
KIND_ALIASES = {
    "scikit-learn": "sklearn",
    "sk-learn": "sklearn",
    "xgb": "xgboost",
    "base": "python",
    "script": "python",
}
# Kinds that build their job from an SDK class: the class (or framework_name) names the framework.
SDK_KINDS = ("estimator", "model", "framework")
SDK_CLASS_FRAMEWORKS = {
    "xgboost": "xgboost",
    "xgboostmodel": "xgboost",
    "sklearn": "sklearn",
    "sklearnmodel": "sklearn",
    "pytorch": "pytorch",
    "pytorchmodel": "pytorch",
    "tensorflow": "tensorflow",
    "huggingface": "huggingface",
}
BYO_KIND = "byo_container"  # the image is the config field compute.image_uri_field names

# Which catalog folder under images/ builds which tag, in build order (base first).
IMAGE_DIRS: dict[str, str] = {
    BASE_IMAGE: "base",
    IMAGE_CATALOG[("sklearn", "1.2-1")]: "sklearn",
    IMAGE_CATALOG[("xgboost", "1.7-1")]: "xgboost",
}


def normalize_kind(kind: str) -> str:
    kind = kind.strip().lower()
    return KIND_ALIASES.get(kind, kind)


def framework_of(kind: str, sdk_class: str | None = None, framework_name: str | None = None,
                 retrieve_framework: str | None = None, retrieve_image: bool = False) -> str:
    """The framework whose image runs the step: ``estimator`` + ``XGBoost`` -> ``xgboost``."""
    kind = normalize_kind(kind)
    if kind not in SDK_KINDS:
        return kind
    if framework_name:
        return normalize_kind(framework_name)
    if retrieve_image:  # the framework retrieves a training image by name (PyTorch unless told otherwise)
        return normalize_kind(retrieve_framework or "pytorch")
    if sdk_class:
        name = sdk_class.strip().lower()
        return SDK_CLASS_FRAMEWORKS.get(name, normalize_kind(name.removesuffix("model")))
    return kind


@dataclass(frozen=True)
class ImageChoice:
    image: str
    mapped: bool = False  # the user's image map chose it
    look_alike: str | None = None  # the look-alike's framework version, when one is used
    warning_code: str | None = None
    warning: str | None = None


def choose_image(kind: str, version: str | None, image_map: dict[tuple[str, str], str] | None = None) -> ImageChoice:
    """The image for a framework and version: the user's map, the look-alike, the nearest look-alike, or none."""
    kind = normalize_kind(kind)
    mapped = (image_map or {}).get((kind, version or ""))
    if mapped:
        return ImageChoice(image=mapped, mapped=True)
    if kind == "python":
        return ImageChoice(image=BASE_IMAGE, look_alike="3")
    if kind == BYO_KIND:
        if version:  # the config's image URI
            return ImageChoice(image=version, mapped=True)
        return ImageChoice(image=f"rtest/sagemaker-{kind}:unset", warning_code="image-unset",
                           warning=f"the interface runs a {kind} image but the config names none; set the config "
                                   "field that the interface's compute.image_uri_field names")
    versions = [v for (k, v) in IMAGE_CATALOG if k == kind]
    if not versions:
        shown = f"{kind} {version}" if version else kind
        return ImageChoice(
            image=f"rtest/sagemaker-{kind}:{version or 'latest'}",
            warning_code="image-no-look-alike",
            warning=f"rtest has no look-alike image for {shown}; pass --image-map {kind}:{version or 'VERSION'}=IMAGE "
            f"with an image you can run (e.g. the real SageMaker {kind} image)",
        )
    if version in versions:
        return ImageChoice(image=IMAGE_CATALOG[(kind, version)], look_alike=version)
    nearest = min(versions, key=lambda v: _distance(v, version))
    image = IMAGE_CATALOG[(kind, nearest)]
    asked = f"{kind} {version}" if version else f"{kind} (no version set)"
    return ImageChoice(
        image=image,
        look_alike=nearest,
        warning_code="image-nearest-version",
        warning=f"{asked} -> {kind} {nearest}: no look-alike image for {version or 'an unset version'}, "
        f"so the nearest one ({image}) runs it; pass --image-map {kind}:{version or 'VERSION'}=IMAGE to choose",
    )


def _version_numbers(version: str | None) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version or ""))


def _distance(candidate: str, wanted: str | None) -> tuple[int, ...]:
    """Closest major first, then minor, then build; a newer look-alike wins a tie (it reads what older wrote)."""
    have, want = _version_numbers(candidate), _version_numbers(wanted)
    width = max(len(have), len(want), 1)
    have, want = have + (0,) * (width - len(have)), want + (0,) * (width - len(want))
    return tuple(abs(h - w) for h, w in zip(have, want)) + (0 if have >= want else 1,)


def default_image(kind: str, version: str | None) -> str:
    """The look-alike image for a kind and version (the nearest version when there is no exact one)."""
    return choose_image(kind, version).image


def missing_image_fix(image: str, kind: str | None, version: str | None, mapped: bool = False) -> str:
    """How to get an image that is not in the engine: build it, pull it, or map the step to one you have."""
    key = f"{normalize_kind(kind)}:{version or 'VERSION'}" if kind else "KIND:VERSION"
    if image in IMAGE_DIRS:
        return f"build it with `{BUILD_COMMAND}` (add `--offline` on a machine with no registry)"
    if image.startswith("rtest/") and not mapped:
        return f"rtest has no look-alike for it; pass --image-map {key}=IMAGE with an image you can run"
    return f"pull or build it yourself (it is not an rtest image), or pass --image-map {key}=IMAGE with one you have"


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
                " write it like "
                "sklearn:1.2-1=123456789012.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3."
            )
        parsed[(normalize_kind(kind), version)] = image
    return parsed


def _split_entry(entry: str) -> tuple[str, str]:
    key, sep, image = entry.partition("=")
    if not sep:
        raise PlanError(f"Image map entry '{entry}' has no '='; write it as KIND:VERSION=IMAGE.")
    return key.strip(), image.strip()


def missing_image_message(ref: str) -> str:
    """One sentence for one missing image; ``rtest.run.image_check`` names the nodes too."""
    kind, _, version = (
        ref.removeprefix("rtest/sagemaker-").partition(":") if ref.startswith("rtest/sagemaker-") else (None, "", None)
    )
    return f"Image {ref} is not in the local Docker engine; {missing_image_fix(ref, kind, version or None)}."
