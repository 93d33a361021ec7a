"""A scratch copy of the source folders the config names, where the config classes may write freely.

Config classes resolve and sometimes write files under the folders their config names, relative to
the working folder. They run with ``cwd`` = ``<scratch>/cwd``, and each folder a config path field
names is copied to where that relative path lands there (an absolute one to ``<scratch>/abs/...``
with the field rewritten), so the user's tree and working folder are never written. A path the
classes compute is mapped back to the config path it stands for; rtest's own path rules
(``--source-map``, the source root) then resolve it as they resolve any config path.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from rtest.plan.discovery import DiscoveredScript
from rtest.plan.sources import SourceContext, resolve_config_path

MAX_COPY_FILES = 5000  # a folder bigger than this is not copied (the class sees it missing)
MAX_COPY_BYTES = 200 * 1024 * 1024
MAX_WRITES_LISTED = 50
CWD_DEPTH = 3  # how many ".." a relative config path may climb and stay in the scratch
SKIP = {".git", "__pycache__", ".venv", "venv", "node_modules", ".rtest"}


def is_path_field(name: str) -> bool:
    return name.endswith("_dir") or (name.endswith("_folder") and name != "project_root_folder")


@dataclass
class Scratch:
    root: Path
    copies: dict[str, Path] = field(default_factory=dict)  # scratch copy (as text) -> the real folder
    skipped: list[str] = field(default_factory=list)  # folders too big to copy
    before: dict[str, str] = field(default_factory=dict)

    @property
    def cwd(self) -> Path:
        # nested, so a config path that climbs ("../shared/x") still lands inside the scratch
        return self.root.joinpath(*["up"] * CWD_DEPTH, "cwd")

    @classmethod
    def make(cls) -> Scratch:
        scratch = cls(Path(tempfile.mkdtemp(prefix="rtest-classes-")))
        scratch.cwd.mkdir(parents=True)
        return scratch

    def fields_for(self, ctx: SourceContext, found: DiscoveredScript) -> dict[str, Any]:
        """The node's config fields, its folders copied into the scratch; absolute ones rewritten to the copy."""
        fields = dict(found.config.fields)
        for name, value in found.config.fields.items():
            if not (is_path_field(name) and isinstance(value, str) and value.strip()):
                continue
            real = resolve_config_path(ctx, found.node, found.config, name, value)
            if real is None or not real.is_dir():
                continue
            target = self._target(value.strip())
            if target is None:
                continue
            if not target.exists() and not self._copy(real, target):
                self.skipped.append(f"{name} = '{value}' ({real})")
                continue
            self.copies.setdefault(str(target), real)
            if Path(value.strip()).is_absolute():
                fields[name] = str(target)
        return fields

    def _target(self, value: str) -> Path | None:
        path = PurePosixPath(value)
        if path.is_absolute():
            return None if ".." in path.parts else self.root / "abs" / Path(*path.parts[1:])
        target = Path(os.path.normpath(self.cwd / Path(*path.parts)))
        return target if target.is_relative_to(self.root) and target != self.root else None

    def _copy(self, real: Path, target: Path) -> bool:
        files, size = 0, 0
        for item in real.rglob("*"):
            if any(part in SKIP for part in item.relative_to(real).parts) or item.is_symlink():
                continue
            if item.is_file():
                files, size = files + 1, size + item.stat().st_size
                if files > MAX_COPY_FILES or size > MAX_COPY_BYTES:
                    return False
        # symlinks are left out: a class writing through one would write the user's files
        shutil.copytree(real, target, symlinks=True, ignore=_ignore, dirs_exist_ok=True)
        return True

    def snapshot(self) -> None:
        self.before = _hashes(self.root)

    def written(self) -> list[str]:
        """Files the classes created or changed, as config paths (relative to the working folder)."""
        after = _hashes(self.root)
        changed = sorted(path for path, digest in after.items() if self.before.get(path) != digest)
        return [self.config_path_text(str(self.root / path)) for path in changed]

    def config_path_text(self, text: str) -> str:
        """A path inside the scratch as the config path it stands for; anything else unchanged."""
        abs_root = str(self.root / "abs")
        if text == abs_root or text.startswith(abs_root + "/"):
            return text[len(abs_root):] or "/"
        if text == str(self.root) or text.startswith(str(self.root) + "/"):
            return os.path.relpath(text, self.cwd)
        return text

    def mapped_back(self, text: str) -> str:
        """Scratch paths in a value the classes computed, as the real folders they copy; other scratch
        paths (files the classes made) as config paths relative to the working folder."""
        for target in sorted(self.copies, key=len, reverse=True):
            text = text.replace(target, str(self.copies[target]))
        return self.config_paths_in(text)

    def config_paths_in(self, line: str) -> str:
        """A log line with scratch paths shown as the config paths they stand for."""
        line = line.replace(str(self.cwd) + "/", "").replace(str(self.root / "abs"), "")
        return line.replace(str(self.root), "<scratch>")

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _ignore(folder: str, names: list[str]) -> set[str]:
    return {n for n in names if n in SKIP or (Path(folder) / n).is_symlink()}


def _hashes(root: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in root.rglob("*"):
        if "__pycache__" in item.parts or item.is_symlink() or not item.is_file():
            continue
        if len(found) >= MAX_COPY_FILES * 2:
            break
        found[str(item.relative_to(root))] = hashlib.sha256(item.read_bytes()).hexdigest()
    return found
