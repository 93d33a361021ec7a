"""What an image already has: its Python, platform and installed distributions.

Read once per image id, by a short container the backend's image store runs (``python3 -c`` over
importlib.metadata, Python 3.8+), and kept on disk under ``<workdir>/deps/images/<id>.json``: an image id names
immutable content, so the answer never goes stale.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from rtest.deps.requirements import DependencyError, Requirement

if TYPE_CHECKING:
    from rtest.run.backends.images import ImageStore

PROBE = r"""
import json, sys, importlib.util
from importlib import metadata
dists = {}
for d in metadata.distributions():
    name = d.metadata.get("Name")
    if name:
        dists[name] = d.version
print(json.dumps({"python": "%d.%d.%d" % sys.version_info[:3], "machine": __import__("platform").machine(),
                  "pip": importlib.util.find_spec("pip") is not None, "dists": dists}))
"""


@dataclass
class ImageInfo:
    image_id: str
    python: str  # "3.9.2"
    machine: str  # "x86_64"
    has_pip: bool
    dists: dict[str, str] = field(default_factory=dict)  # canonical name -> version

    @property
    def python_minor(self) -> str:
        return ".".join(self.python.split(".")[:2])

    @property
    def python_tag(self) -> str:
        return "cp" + self.python_minor.replace(".", "")

    @property
    def platform(self) -> str:
        return "manylinux2014_aarch64" if self.machine in ("aarch64", "arm64") else "manylinux2014_x86_64"

    def satisfies(self, req: Requirement) -> str | None:
        """The installed version when it meets ``req``, else None.

        ``python`` (interfaces write `python: '>=3.7'`) is the interpreter, not a package pip could add: a
        mismatch is an error naming the image's Python, never a wheel to look for.
        """
        if req.name == "python":
            if SpecifierSet(req.specifier).contains(Version(self.python), prereleases=True):
                return self.python
            raise DependencyError(f"'{req.text}' (from {req.where}) asks for a Python the image does not have "
                                  f"(it has Python {self.python}); map the step to another image with --image-map.")
        version = self.dists.get(req.name)
        if version is None:
            return None
        try:
            return version if SpecifierSet(req.specifier).contains(Version(version), prereleases=True) else None
        except InvalidVersion:
            return None


def image_info(store: ImageStore, image_ref: str, image_id: str, cache_dir: Path) -> ImageInfo:
    """The image's Python and distributions, from the disk cache or a probe container."""
    cache_file = cache_dir / f"{image_id.replace(':', '-')}.json"
    try:
        return _from_json(json.loads(cache_file.read_text()), image_id)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    raw = _probe(store, image_ref)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(raw, sort_keys=True))
        tmp.replace(cache_file)
    except OSError:  # a cache we cannot write (another user's home, read-only) only costs a probe next time
        pass
    return _from_json(raw, image_id)


def _from_json(raw: dict, image_id: str) -> ImageInfo:
    return ImageInfo(
        image_id=image_id,
        python=str(raw["python"]),
        machine=str(raw.get("machine") or "x86_64"),
        has_pip=bool(raw.get("pip")),
        dists={canonicalize_name(k): str(v) for k, v in raw["dists"].items()},
    )


def _probe(store: ImageStore, image_ref: str) -> dict:
    from rtest.errors import ImageNotFoundError

    try:
        ran = store.run_command(image_ref, ["python3", "-c", PROBE], stdout_only=True,
                                labels={"rtest.kind": "deps-probe"})
    except ImageNotFoundError as exc:
        raise DependencyError(f"Image {image_ref} is not present; build or pull it first.") from exc
    if ran.exit_code != 0:
        raise DependencyError(
            f"Could not list the packages of image {image_ref}: python3 in it failed ({ran.exit_code}); "
            "rtest needs python3 >= 3.8 in the image."
        )
    try:
        return json.loads(ran.output.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise DependencyError(
            f"Could not read the package list of image {image_ref}; its python3 printed no JSON."
        ) from exc
