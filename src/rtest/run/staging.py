"""Moving artifacts: user files and upstream outputs into a step's inputs, outputs out of it.

Inputs are always real copies: a script may write into its inputs, as it may
on SageMaker, and neither the user's files nor an upstream step's outputs
(which other consumers also read) may change because of it. Everything a step
wrote is moved by the rules of ``rtest.run.untrusted``: no link is followed,
special files are refused, copies are capped.
"""

from __future__ import annotations

import gzip
import os
import tarfile
from pathlib import Path

from rtest.run import untrusted
from rtest.run.untrusted import UNCAPPED, OutputLimits

MODEL_ARCHIVE = "model.tar.gz"


def stage_output(source: Path, target_dir: Path, *, label: str, limits: OutputLimits = OutputLimits()) -> None:
    """Copy an upstream step's output (file or folder contents) into target_dir;
    nothing is copied when it breaks a rule."""
    untrusted.copy_tree(untrusted.scan_tree(source, label, limits), target_dir)


def link_tree(source: Path, target: Path, *, label: str = "a cached output") -> None:
    """Hard-link a tree where possible (cache stores and restores); nobody writes into these, consumers copy.

    Links are recreated inside the tree, never followed; no cap, the tree was checked when it was collected.
    """
    untrusted.copy_tree(untrusted.scan_tree(source, label, UNCAPPED), target, hard_link=True)


def pack_model(model_dir: Path, archive_dir: Path, *, label: str = "the model folder /opt/ml/model",
               limits: OutputLimits = OutputLimits()) -> Path:
    """Pack /opt/ml/model's contents as model.tar.gz, as SageMaker does when a training job ends.

    The archive is byte-for-byte reproducible (sorted names, zero mtimes, fixed owner), so an
    unchanged model gives an unchanged input to its consumers and their cache still hits.
    Links inside the folder are stored as links; the folder is checked before anything is packed.
    """
    tree = untrusted.scan_tree(model_dir, label, limits)
    archive_dir.mkdir(parents=True, exist_ok=True)
    archive = archive_dir / MODEL_ARCHIVE
    buffer_path = archive.with_suffix(".tmp")
    try:
        with open(buffer_path, "wb") as raw:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped:
                with tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar:
                    for entry in sorted(tree.entries, key=lambda e: e.rel.split("/")):
                        _add_entry(tar, model_dir, entry)
        os.replace(buffer_path, archive)
    finally:
        buffer_path.unlink(missing_ok=True)
    return archive_dir


def _add_entry(tar: tarfile.TarFile, root: Path, entry: untrusted.Entry) -> None:
    info = tarfile.TarInfo(entry.rel)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if entry.kind == "dir":
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
    elif entry.kind == "link":
        info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, entry.link_target
        tar.addfile(info)
    else:
        with untrusted.open_regular(os.path.join(root, entry.rel)) as (fd, st):
            info.size, info.mode = st.st_size, 0o644
            with os.fdopen(os.dup(fd), "rb") as content:
                tar.addfile(info, content)


def export_output(
    source: Path, target: Path, *, label: str = "an exported output", limits: OutputLimits = OutputLimits()
) -> None:
    """Copy a collected output to a folder the user asked for (expected_outputs), by the same rules."""
    untrusted.copy_tree(untrusted.scan_tree(source, label, limits), target)
