"""Step cache: a step is not rerun when nothing that can change its outputs has changed.

The key covers the whole source folder, the image id, the staged input
contents, env, arguments, hyperparameters and instance settings. An entry is
written under a temporary name and renamed into place last, so a half-written
entry (crash, Ctrl-C) never counts as a hit.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from rtest.plan.model import ScriptExecutionSpec
from rtest.run.staging import link_tree

CACHE_FORMAT = "1"
_CHUNK = 1 << 20


def tree_digest(root: Path) -> str:
    """Content hash of a file or folder: relative names, modes and bytes, in sorted order."""
    digest = hashlib.sha256()
    if root.is_file():
        _hash_file(digest, root)
        return digest.hexdigest()
    for path in sorted(root.rglob("*")):
        if "__pycache__" in path.parts:
            continue  # byte-code caches change without the source changing
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        if path.is_file():
            digest.update(b"x" if os.access(path, os.X_OK) else b"-")
            _hash_file(digest, path)
    return digest.hexdigest()


def _hash_file(digest, path: Path) -> None:
    with open(path, "rb") as content:
        while chunk := content.read(_CHUNK):
            digest.update(chunk)
    digest.update(b"\0")


def step_key(spec: ScriptExecutionSpec, *, image_id: str, source_digest: str, input_digests: dict[str, str], settings: dict) -> str:
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
    text = json.dumps(material, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class StepCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def entry(self, key: str) -> Path:
        return self.root / key

    def lookup(self, key: str) -> dict | None:
        """The entry's metadata if it is complete, else None."""
        meta = self.entry(key) / "meta.json"
        try:
            return json.loads(meta.read_text())
        except (OSError, ValueError):
            return None

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
        staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=self.root))
        try:
            for name, path in outputs.items():
                link_tree(path, staging / "outputs" / name)
            (staging / "outputs").mkdir(exist_ok=True)
            if log_path and log_path.exists():
                shutil.copy2(log_path, staging / "log.txt")
            (staging / "meta.json").write_text(json.dumps(meta, sort_keys=True, default=str))
            os.rename(staging, self.entry(key))
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another run stored it first, or the disk is full

    def clear(self) -> int:
        count = sum(1 for p in self.root.iterdir() if p.is_dir()) if self.root.exists() else 0
        shutil.rmtree(self.root, ignore_errors=True)
        return count
