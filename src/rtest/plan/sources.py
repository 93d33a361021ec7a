"""Where a step's code lives on this machine, found the way the framework finds it.

A config records paths relative to the project that wrote it (``source_dir``,
``processing_source_dir``, under ``project_root_folder``) and sometimes an
absolute ``effective_source_dir`` from the author's machine. Locally they
resolve, in order: the absolute ``effective_source_dir`` when it exists, else
``source_root/<dir>``, else ``source_root/<project_root_folder>/<dir>``, else a
bounded search beneath the source root for the one folder that holds the entry
point (used with a warning that shows the ``--source-map`` making it explicit).
``--source-map FROM=TO`` replaces a config path prefix with a local folder.

Every folder and script must stay inside the source root or a source-map
target (both named by the user) unless ``allow_outside_root`` is set; system
folders such as ``/`` and ``/etc`` are refused whatever the options.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from rtest.errors import DiscoveryError, PlanError
from rtest.inputs.config import SOURCE_DIR_FIELDS, StepConfig
from rtest.plan.model import PlanWarning

EFFECTIVE_FIELD = "effective_source_dir"
PROJECT_ROOT_FIELD = "project_root_folder"
SEARCH_MAX_DEPTH = 6  # folders below the source root
SEARCH_MAX_FOLDERS = 5000  # folders visited, so a huge root costs a bounded time
SEARCH_SKIP = {"node_modules", "__pycache__", "site-packages", "venv", ".venv", ".git", ".tox", ".rtest"}
# Never a step's code folder, whatever the options: mounting them would show the host to a step.
SYSTEM_FOLDERS = ("/etc", "/proc", "/sys", "/dev", "/boot", "/run", "/root", "/var/run")


@dataclass(frozen=True)
class SourceContext:
    root: Path  # absolute, resolved
    source_map: tuple[tuple[PurePosixPath, Path], ...] = ()  # (config prefix, local folder), longest prefix first
    allow_outside_root: bool = False

    @property
    def trusted_roots(self) -> list[Path]:
        return [self.root, *(target for _, target in self.source_map)]


@dataclass
class Located:
    folder: Path
    entry_point: str  # relative to folder
    field: str  # the config field the folder came from ("search" when found by searching)
    warning: PlanWarning | None = None
    searched: list[Path] = dataclasses.field(default_factory=list)  # `field` is also a field's name here


def make_source_context(
    root: Path, source_map: dict[str, str] | None = None, *, allow_outside_root: bool = False
) -> SourceContext:
    """Check the map's targets (they must be existing folders) and order it longest prefix first."""
    pairs: list[tuple[PurePosixPath, Path]] = []
    for prefix, target in (source_map or {}).items():
        local = Path(target).expanduser().resolve()
        if not prefix.strip():
            raise PlanError(
                f"--source-map '{prefix}={target}' has an empty FROM; write it as CONFIG_PATH_PREFIX=LOCAL_FOLDER."
            )
        if not local.is_dir():
            raise PlanError(
                f"--source-map {prefix}={target}: {local} is not a folder; "
                "map the config path to the local folder that holds the code."
            )
        refuse_system_folder(local, f"--source-map {prefix}", None)
        pairs.append((PurePosixPath(prefix.strip().rstrip("/") or "/"), local))
    pairs.sort(key=lambda pair: -len(pair[0].parts))
    return SourceContext(
        root=Path(root).expanduser().resolve(), source_map=tuple(pairs), allow_outside_root=allow_outside_root
    )


def parse_source_map_flags(flags: list[str] | None) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for flag in flags or []:
        prefix, sep, target = flag.partition("=")
        if not sep or not prefix.strip() or not target.strip():
            raise PlanError(
                f"--source-map '{flag}' is not of the form FROM=TO; write it like --source-map "
                "dockers/my_model=./src/my_model."
            )
        mapping[prefix.strip()] = str(Path(target.strip()).expanduser().resolve())
    return mapping


def mapped(ctx: SourceContext, value: str) -> Path | None:
    """The local folder a config path maps to, or None when no --source-map prefix matches it."""
    path = PurePosixPath(value.strip())
    for prefix, target in ctx.source_map:
        if path.parts[: len(prefix.parts)] == prefix.parts:
            return target.joinpath(*path.parts[len(prefix.parts):])
    return None


def config_path_candidates(ctx: SourceContext, config: StepConfig, value: str) -> list[Path]:
    """Where a path the config records may be here: its mapping, else itself (absolute) or under the root."""
    target = mapped(ctx, value)
    if target is not None:
        return [target]
    path = Path(value.strip())
    if path.is_absolute():
        return [path]
    project = config.get(PROJECT_ROOT_FIELD)
    found = [ctx.root / path]
    if isinstance(project, str) and project.strip() and not Path(project).is_absolute():
        found.append(ctx.root / project.strip() / path)
    return found


def resolve_config_path(ctx: SourceContext, node: str, config: StepConfig, field_name: str, value: str) -> Path | None:
    """A path field of the config resolved to an existing local path (confined), or None."""
    for candidate in config_path_candidates(ctx, config, value):
        if candidate.exists():
            return confine(ctx, node, field_name, candidate)
    return None


def locate_source(
    ctx: SourceContext, node: str, config: StepConfig, entry_field: str, entry_point: str
) -> Located | list[Path]:
    """The source folder and entry point of one node (confined), or the paths searched in vain."""
    entry = Path(entry_point)
    if entry.is_absolute():
        return (
            _confined(ctx, node, Located(entry.parent, entry.name, entry_field), entry_field)
            if entry.is_file()
            else [entry]
        )
    searched: list[Path] = []
    for field_name, folder in _folder_candidates(ctx, config):
        searched.append(folder / entry)
        if (folder / entry).is_file():
            return _confined(ctx, node, Located(folder, entry_point, field_name), entry_field)
    found = _search(ctx, node, config, entry_point) if ".." not in entry.parts else None
    if found is not None:
        return _confined(ctx, node, found, entry_field)
    return searched


def _folder_candidates(ctx: SourceContext, config: StepConfig) -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    effective = config.get(EFFECTIVE_FIELD)
    if isinstance(effective, str) and effective.strip():
        target = mapped(ctx, effective)
        if target is not None or Path(effective.strip()).is_absolute():
            out.append((EFFECTIVE_FIELD, target or Path(effective.strip())))
    named = [(name, config.get(name)) for name in SOURCE_DIR_FIELDS]
    named = [(name, value) for name, value in named if isinstance(value, str) and value.strip()]
    for name, value in named:
        out += [(name, folder) for folder in config_path_candidates(ctx, config, value)]
    if not named:
        out.append(("source_root", ctx.root))  # no folder field at all: paths start at the source root
    unique: dict[Path, str] = {}
    for name, folder in out:
        unique.setdefault(folder, name)
    return [(name, folder) for folder, name in unique.items()]


def _search(ctx: SourceContext, node: str, config: StepConfig, entry_point: str) -> Located | None:
    """The one folder beneath the root that holds the entry point; ambiguous finds are an error."""
    matches = _walk_for(ctx.root, entry_point)
    if not matches:
        return None
    wanted = _configured_dir(config)
    if len(matches) > 1:
        scored = sorted(((_tail_match(wanted, m), m) for m in matches), key=lambda pair: -pair[0])
        if scored[0][0] == 0 or scored[0][0] == scored[1][0]:
            listing = ", ".join(str(m) for m in matches[:5])
            raise DiscoveryError(
                f"Node '{node}': {entry_point} is in several folders beneath {ctx.root} ({listing}) and the config's "
                "folder "
                f"'{wanted or '-'}' is not among them; say which with --source-map {wanted or 'CONFIG_PATH'}=FOLDER."
            )
        matches = [scored[0][1]]
    folder = matches[0]
    hint = _map_hint(wanted, folder)
    warning = PlanWarning(
        node=node,
        code="source-dir-searched",
        message=f"{node}: the config's source folder '{wanted or '(none)'}' does not exist here; found {entry_point} "
        f"by searching in {folder}. Make it explicit with --source-map {hint}.",
    )
    return Located(folder, entry_point, "search", warning)


def _walk_for(root: Path, entry_point: str) -> list[Path]:
    matches: list[Path] = []
    visited = 0
    base_depth = len(root.parts)
    for current, dirs, _files in os.walk(root, followlinks=False):
        visited += 1
        here = Path(current)
        if (here / entry_point).is_file() and not (here / entry_point).is_symlink():
            matches.append(here)
        if visited >= SEARCH_MAX_FOLDERS:
            break
        if len(here.parts) - base_depth >= SEARCH_MAX_DEPTH:
            dirs[:] = []
        else:
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SEARCH_SKIP)
    return matches


def _configured_dir(config: StepConfig) -> str | None:
    chosen = config.source_dir()
    return chosen[1] if chosen else None


def _tail_match(wanted: str | None, found: Path) -> int:
    """How many trailing folder names the config's path and a found folder share."""
    if not wanted:
        return 0
    a, b = PurePosixPath(wanted).parts[::-1], found.parts[::-1]
    count = 0
    while count < min(len(a), len(b)) and a[count] == b[count]:
        count += 1
    return count


def _map_hint(wanted: str | None, found: Path) -> str:
    """FROM=TO for --source-map, shortened by the trailing folders both sides share."""
    if not wanted or Path(wanted).is_absolute():
        return f"{wanted or 'CONFIG_PATH'}={found}"
    shared = _tail_match(wanted, found)
    parts = PurePosixPath(wanted).parts
    if 0 < shared < len(parts):
        return f"{PurePosixPath(*parts[: len(parts) - shared])}={Path(*found.parts[: len(found.parts) - shared])}"
    return f"{wanted}={found}"


def _confined(ctx: SourceContext, node: str, located: Located, entry_field: str) -> Located:
    folder = confine(
        ctx, node, located.field if located.field not in ("search", "source_root") else "source_root", located.folder
    )
    script = confine(ctx, node, entry_field, folder / located.entry_point)
    if not _inside(script, folder):
        # '../x.py' leaves its folder: mount the folder that really holds it, so it is in the container
        folder, located.entry_point = script.parent, script.name
    located.folder = folder
    return located


def confine(ctx: SourceContext, node: str, field_name: str, path: Path) -> Path:
    """``path`` resolved (symlinks followed); outside every trusted root is an error unless allowed."""
    resolved = path.resolve()
    refuse_system_folder(resolved, f"node '{node}' field {field_name}", path)
    if ctx.allow_outside_root or any(_inside(resolved, root) for root in ctx.trusted_roots):
        return resolved
    shown = f"{path} (resolves to {resolved})" if path != resolved else str(resolved)
    raise PlanError(
        f"Node '{node}': {field_name} points outside the source root {ctx.root}: {shown}. "
        "rtest mounts only code beneath the source root or a --source-map target; point --source-root at the project, "
        "map the path with --source-map, or pass --allow-source-outside-root if you trust it."
    )


def refuse_system_folder(resolved: Path, what: str, given: Path | None) -> None:
    text = str(resolved)
    if text == "/" or any(text == folder or text.startswith(folder + "/") for folder in SYSTEM_FOLDERS):
        shown = f"{given} -> {resolved}" if given is not None and given != resolved else text
        raise PlanError(
            f"{what[0].upper()}{what[1:]} names the system folder {shown}; rtest never mounts /, /etc or other system "
            "folders into a step, whatever the options. Point it at the folder that holds the step's code."
        )


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)
