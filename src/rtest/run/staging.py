"""Moving artifacts: user files and upstream outputs into a step's inputs, outputs out of it.

Inputs are always real copies: a script may write into its inputs, as it may
on SageMaker, and neither the user's files nor an upstream step's outputs
(which other consumers also read) may change because of it.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
from pathlib import Path

MODEL_ARCHIVE = "model.tar.gz"


def stage_copy(source: Path, target_dir: Path) -> None:
    """Copy a file into target_dir, or a folder's contents into it (SageMaker's download of an S3 prefix)."""
    target_dir.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target_dir, dirs_exist_ok=True, symlinks=False)
    else:
        shutil.copy2(source, target_dir / source.name)


def link_tree(source: Path, target: Path) -> None:
    """Hard-link a tree where possible (cache restores); nobody writes into these, consumers copy."""
    shutil.copytree(source, target, dirs_exist_ok=True, copy_function=_link_or_copy)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def pack_model(model_dir: Path, archive_dir: Path) -> Path:
    """Pack /opt/ml/model's contents as model.tar.gz, as SageMaker does when a training job ends.

    The archive is byte-for-byte reproducible (sorted names, zero mtimes, fixed owner), so an
    unchanged model gives an unchanged input to its consumers and their cache still hits.
    """
    archive_dir.mkdir(parents=True, exist_ok=True)
    archive = archive_dir / MODEL_ARCHIVE
    buffer_path = archive.with_suffix(".tmp")
    with open(buffer_path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped:
            with tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for path in sorted(model_dir.rglob("*")):
                    info = _tar_info(path, path.relative_to(model_dir).as_posix())
                    if info.isdir():
                        tar.addfile(info)
                        continue
                    with open(path, "rb") as content:
                        tar.addfile(info, content)
    os.replace(buffer_path, archive)
    return archive_dir


def _tar_info(path: Path, name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if path.is_dir():
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    else:
        info.size, info.mode = path.stat().st_size, 0o644
    return info


def export_output(source: Path, target: Path) -> None:
    """Copy a collected output to a folder the user asked for (expected_outputs)."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, target, dirs_exist_ok=True)
