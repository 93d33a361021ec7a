"""Dependencies that only the image's Python needs, which a host-side pip silently skips.

`pip download --python-version 3.9` picks wheels for 3.9 but evaluates environment markers
against the host's interpreter: on a 3.11 host, matplotlib's
`importlib-resources>=3.2.0; python_version < "3.10"` is never fetched, and the install inside
the 3.9 image then fails offline. Reading each wheel's own metadata and evaluating its markers
for the image finds those requirements, so the wheelhouse can be completed before any build.
"""

from __future__ import annotations

import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from rtest.deps.installed import ImageInfo


def image_environment(info: ImageInfo) -> dict[str, str]:
    """Marker variables as the image's CPython on Linux sees them."""
    env = _host_environment()
    env.update(python_version=info.python_minor, python_full_version=info.python, platform_machine=info.machine,
               sys_platform="linux", platform_system="Linux", os_name="posix", implementation_name="cpython",
               platform_python_implementation="CPython")
    return env


def image_only_requirements(wheels: list[Path], info: ImageInfo) -> list[str]:
    """Requirements of ``wheels`` that apply on the image but not on this host, and that no wheel there meets."""
    have = {_wheel_name(w) for w in wheels}
    target, host = image_environment(info), _host_environment()
    wanted: dict[str, str] = {}
    for wheel in wheels:
        for req in _requires_dist(wheel):
            if req.marker is None or canonicalize_name(req.name) in have:
                continue
            if req.marker.evaluate({**target, "extra": ""}) and not req.marker.evaluate({**host, "extra": ""}):
                wanted.setdefault(canonicalize_name(req.name), f"{req.name}{req.specifier}")
    return sorted(wanted.values())


def _host_environment() -> dict[str, str]:
    """Marker variables as this interpreter sees them (all strings: packaging's TypedDict copies as object values)."""
    return {name: str(value) for name, value in default_environment().items()}


def _wheel_name(wheel: Path) -> str:
    return canonicalize_name(wheel.name.split("-", 1)[0])


def _requires_dist(wheel: Path) -> list[Requirement]:
    """The wheel's Requires-Dist lines; an unreadable wheel has none (pip will say why when it installs)."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            name = next((n for n in archive.namelist() if n.endswith(".dist-info/METADATA")), None)
            text = archive.read(name).decode("utf-8", "replace") if name else ""
    except (OSError, zipfile.BadZipFile, KeyError):
        return []
    found = []
    for value in Parser().parsestr(text, headersonly=True).get_all("Requires-Dist") or []:  # METADATA is RFC 822
        try:
            found.append(Requirement(value.strip()))
        except InvalidRequirement:
            continue
    return found
