"""Step cache: a step is not rerun when nothing that can change its outputs has changed.

The key covers the whole source folder, the image id, the staged input
contents, env, arguments, hyperparameters and instance settings. An entry is
written under a temporary name and renamed into place last, so a half-written
entry (crash, Ctrl-C) never counts as a hit. Each entry records the shape of its
outputs (names, kinds, sizes); an entry that no longer matches, or whose
metadata cannot be read, is a miss and is replaced by the next successful run.
Temporary entries of killed runs are swept when the cache is opened.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

import structlog

from rtest.plan.model import ScriptExecutionSpec
from rtest.run.staging import link_tree
from rtest.run.untrusted import open_regular, read_small_text, walk

log = structlog.get_logger("rtest.cache")

CACHE_FORMAT = "2"  # 2: links digested as links, entries carry a shape manifest
META_MAX_BYTES = 1 << 20
STALE_AFTER_S = 3600  # a temporary entry this old is a killed run's, whoever wrote it
_CHUNK = 1 << 20


def tree_digest(root: Path) -> str:
    """Content hash of a file or folder: relative names, modes and bytes, in sorted order.

    Links count by their target text and are never followed; FIFOs and devices by their name
    only. So neither a source folder nor a step's output can make it read outside, or block.
    """
    digest = hashlib.sha256()
    try:
        mode = os.lstat(root).st_mode
    except FileNotFoundError:
        return digest.hexdigest()
    if stat.S_ISREG(mode):
        _hash_file(digest, root)
        return digest.hexdigest()
    for rel, st in walk(root):
        if "__pycache__" in rel.split("/"):
            continue  # byte-code caches change without the source changing
        digest.update(os.fsencode(rel) + b"\0")
        if stat.S_ISREG(st.st_mode):
            digest.update(b"x" if st.st_mode & stat.S_IXUSR else b"-")
            _hash_file(digest, root / rel)
        elif stat.S_ISLNK(st.st_mode):
            digest.update(b"l" + os.fsencode(os.readlink(root / rel)) + b"\0")
    return digest.hexdigest()


def _hash_file(digest, path: Path) -> None:
    with open_regular(path) as (fd, _):
        while chunk := os.read(fd, _CHUNK):
            digest.update(chunk)
    digest.update(b"\0")


def tree_shape(root: Path) -> str:
    """Names, kinds, sizes and link targets of a tree: cheap to check, and what a killed copy or a full disk breaks."""
    digest = hashlib.sha256()
    for rel, st in walk(root):
        kind = "d" if stat.S_ISDIR(st.st_mode) else "l" if stat.S_ISLNK(st.st_mode) else "f"
        extra = os.fsencode(os.readlink(root / rel)) if kind == "l" else str(st.st_size if kind == "f" else 0).encode()
        digest.update(os.fsencode(rel) + b"\0" + kind.encode() + extra + b"\0")
    return digest.hexdigest()


def step_key(
    spec: ScriptExecutionSpec, *, image_id: str, source_digest: str, input_digests: dict[str, str], settings: dict
) -> str:
    """Everything that can change what the step writes, as one hash."""
    material = {
        "format": CACHE_FORMAT,
        "job_kind": spec.job_kind,
        "entry_point": spec.entry_point,
        "source": source_digest,
        "image_id": image_id,
        "inputs": {name: [spec.inputs[name].container_path, d] for name, d in sorted(input_digests.items())},
        "outputs": {name: o.container_path for name, o in sorted(spec.outputs.items())},
        "env": spec.env(),
        "argv": spec.argv(),
        "hyperparameters": spec.hyperparameter_values(),
        "instance": [spec.instance_type.value, spec.instance_count],
        "settings": settings,  # network, limits, model packing: they can change outcomes too
    }
    synthetic = sorted(n for n, item in spec.inputs.items()
                       if item.host_path and item.host_path.source == "synthesized")
    if synthetic:  # issue 19: sample data keys apart from real data's, so switching to real data reruns
        material["synthesized_inputs"] = synthetic
    text = json.dumps(material, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class StepCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.sweep()

    def entry(self, key: str) -> Path:
        return self.root / key

    def lookup(self, key: str) -> dict | None:
        """The entry's metadata if it is complete and its outputs still have the recorded shape, else None."""
        entry = self.entry(key)
        try:
            text, _ = read_small_text(entry / "meta.json", META_MAX_BYTES, shown_as="meta.json")
            meta = json.loads(text or "")
            shapes = meta["shapes"]
            names = sorted(os.listdir(entry / "outputs"))
            if names != sorted(shapes) or any(tree_shape(entry / "outputs" / n) != shapes[n] for n in names):
                raise ValueError("outputs changed")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            if entry.exists():
                log.warning(
                    "cache entry unusable; treated as a miss and replaced by the next run", key=key, why=str(exc)
                )
            return None
        return meta

    def restore(self, key: str, outputs_dir: Path) -> dict[str, Path]:
        """Hard-link the cached outputs into a run folder; returns logical name -> host path."""
        entry = self.entry(key)
        restored: dict[str, Path] = {}
        for saved in sorted((entry / "outputs").iterdir()):
            target = outputs_dir / saved.name
            link_tree(saved, target)
            restored[saved.name] = target
        if (entry / "log.txt").exists():
            shutil.copy2(entry / "log.txt", outputs_dir.parent / "log.txt")
        return restored

    def store(self, key: str, outputs: dict[str, Path], log_path: Path | None, meta: dict) -> None:
        """Write the entry aside, then rename it into place: readers see all of it or nothing."""
        if self.lookup(key) is not None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key}.{os.getpid()}.", dir=self.root))
        try:
            for name, path in outputs.items():
                link_tree(path, staging / "outputs" / name)
            (staging / "outputs").mkdir(exist_ok=True)
            if log_path and log_path.exists():
                shutil.copy2(log_path, staging / "log.txt")
            shapes = {name: tree_shape(staging / "outputs" / name) for name in outputs}
            (staging / "meta.json").write_text(json.dumps({**meta, "shapes": shapes}, sort_keys=True, default=str))
            self._discard(self.entry(key))  # a broken entry lookup refused: replace it
            os.rename(staging, self.entry(key))
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another run stored it first, or the disk is full

    def _discard(self, entry: Path) -> None:
        if not entry.exists():
            return
        trash = self.root / f".trash.{entry.name}.{os.getpid()}.{time.monotonic_ns()}"
        os.rename(entry, trash)  # out of the way at once; removing it may take a while
        shutil.rmtree(trash, ignore_errors=True)

    def sweep(self) -> int:
        """Remove temporary entries whose writer is gone or that are older than STALE_AFTER_S; returns how many."""
        try:
            leftovers = [p for p in self.root.iterdir() if p.name.startswith(".")]
        except OSError:
            return 0
        swept = 0
        for path in leftovers:
            if _writer_alive(path.name) and not _older_than(path, STALE_AFTER_S):
                continue
            shutil.rmtree(path, ignore_errors=True)
            swept += not path.exists()
        if swept:
            log.info("swept temporary cache entries of killed runs", count=swept)
        return swept

    def clear(self) -> int:
        count = sum(1 for p in self.root.iterdir() if p.is_dir()) if self.root.exists() else 0
        shutil.rmtree(self.root, ignore_errors=True)
        return count


def _writer_alive(name: str) -> bool:
    """Temporary names are .<key>.<pid>.<random> or .trash.<key>.<pid>.<ns>: is that pid still running?"""
    parts = name.split(".")
    pid_text = parts[3] if parts[1] == "trash" and len(parts) > 3 else parts[2] if len(parts) > 2 else ""
    if not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process: alive
    return True


def _older_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - os.lstat(path).st_mtime > seconds
    except OSError:
        return False
