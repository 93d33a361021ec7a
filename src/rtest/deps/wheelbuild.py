"""A minimal pure-Python wheel, written by hand: for tests, the bundled example and benchmarks.

A wheel is a zip of the package plus a ``.dist-info`` folder (METADATA, WHEEL, RECORD); a
pure-Python one needs nothing else, so no build backend or index is involved.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Sequence
from pathlib import Path

from packaging.utils import canonicalize_name


def build_pure_wheel(
    package_dir: Path, name: str, version: str, out_dir: Path, *, requires: Sequence[str] = ()
) -> Path:
    """Pack the package folder ``package_dir`` (imported as its folder name) into ``out_dir``."""
    dist = canonicalize_name(name).replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    files: dict[str, bytes] = {}
    for path in sorted(Path(package_dir).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            files[f"{Path(package_dir).name}/{path.relative_to(package_dir).as_posix()}"] = path.read_bytes()
    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {version}",
        *(f"Requires-Dist: {r}" for r in requires),
    ]
    files[f"{info}/METADATA"] = ("\n".join(metadata) + "\n").encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: rtest\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = [f"{arc},sha256={_digest(data)},{len(data)}" for arc, data in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{dist}-{version}-py3-none-any.whl"
    tmp = target.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for arc, data in files.items():
            archive.writestr(
                zipfile.ZipInfo(arc, date_time=(2020, 1, 1, 0, 0, 0)), data
            )  # fixed dates: same bytes every build
    tmp.replace(target)
    return target


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
