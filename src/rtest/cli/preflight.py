"""Checks of `rtest sandbox` options before anything runs, each failing with one sentence (exit 2).

A bad option found only when the first container starts shows up as a step
failure, a bare engine 404 or a traceback; found here, it names the option and
the fix, and nothing has been created yet.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from rtest.errors import RtestError

# Docker refuses a memory limit below 6 MiB; anything smaller is a typo, not a limit.
MIN_MEMORY_BYTES = 6 * 2**20
MAX_MEMORY_BYTES = 2**50  # a PiB: beyond that the number is a typo
_SIZE = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[kmgt]?)(?:i?b)?", re.IGNORECASE)
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
LOG_FORMATS = ("text", "json")


class OptionError(RtestError):
    """A command-line option rtest cannot use."""


def parse_memory(text: str | None) -> int | None:
    """``--memory 512m`` -> bytes; None when not given."""
    if text is None:
        return None
    found = _SIZE.fullmatch(text.strip())
    if not found:
        raise OptionError(f"--memory {text!r} is not a size; write it like 512m or 2g.")
    size = float(found["number"]) * _UNITS[found["unit"].lower()]
    if not size < MAX_MEMORY_BYTES:  # also inf, from a number too long for a float
        raise OptionError(f"--memory {text[:40]!r} is larger than any machine's memory; write it like 512m or 2g.")
    nbytes = int(size)
    if nbytes < MIN_MEMORY_BYTES:
        raise OptionError(
            f"--memory {text!r} is {nbytes} bytes, below the 6m a container needs to start; write it like 512m or 2g."
        )
    return nbytes


def output_caps(max_files: int | None, max_bytes: str | None) -> dict[str, int]:
    """--max-output-files/--max-output-bytes as RunOptions fields; only those given."""
    caps = {"max_output_files": max_files} if max_files else {}
    if max_bytes is not None:
        found = _SIZE.fullmatch(max_bytes.strip())
        if not found or float(found["number"]) * _UNITS[found["unit"].lower()] < 1:
            raise OptionError(f"--max-output-bytes {max_bytes[:40]!r} is not a size; write it like 500m or 100g.")
        caps["max_output_bytes"] = int(min(float(found["number"]) * _UNITS[found["unit"].lower()], 2**62))
    return caps


def check_log_format(fmt: str) -> str:
    if fmt not in LOG_FORMATS:
        raise OptionError(f"--log-format {fmt!r} is not a log format; use text or json.")
    return fmt


def check_workdir(workdir: Path, *, create: bool) -> Path:
    """The workdir is a folder that takes a file, so a run cannot fail half-way for it.

    With ``create`` False a missing workdir passes (nothing is made before the plan is known to be good).
    """
    home = Path(workdir).expanduser()
    if home.exists() and not home.is_dir():
        raise OptionError(
            f"--workdir {workdir} is a file, not a folder; pass --workdir with a folder rtest may write to."
        )
    if not create and not home.exists():
        return home
    try:
        home.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".rtest-probe-", dir=home)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise OptionError(
            f"--workdir {workdir} cannot be written ({exc.strerror or exc}); "
            "pass --workdir with a folder rtest may write to."
        )
    return home


def check_junit(path: Path | None) -> None:
    if path is None:
        return
    if Path(path).is_dir():
        raise OptionError(f"--junit {path} is a folder; give a file path such as {Path(path) / 'junit.xml'}.")
    parent = Path(path).parent
    if parent.exists() and not parent.is_dir():
        raise OptionError(f"--junit {path}: {parent} is a file, not a folder; give a file path in a folder.")


def check_interface_dirs(dirs: list[Path] | None) -> None:
    """The file system root as an interfaces folder would make rtest read the whole host."""
    for folder in dirs or []:
        if Path(folder).expanduser().resolve() == Path(Path(folder).resolve().anchor):
            raise OptionError(
                f"--interfaces {folder} is the file system root; point it at the folder of *.step.yaml files."
            )


def check_network(backend, name: str | None) -> None:
    """The engine must know the network, or the first step fails with a bare 404."""
    if name and not backend.network_exists(name):
        raise OptionError(
            f"--network {name!r} does not exist on the container engine; use none (the default) or bridge, "
            f"or create it first with `docker network create {name}`."
        )


def check_run_id(run_id: str) -> str:
    if not RUN_ID.fullmatch(run_id):
        raise OptionError(f"--run-id {run_id!r} is not a run id; give the id printed when the run started "
                          "(also the folder name under <workdir>/runs), such as 20260101T120000-a1b2c3.")
    return run_id


def backend_options(backend: str, registry: str | None, placement: list[str] | None, user_spec=None) -> dict:
    """The swarm backend's own options, from flags (`[NODE=]CONSTRAINT`) and the spec file's per-script `placement`."""
    per_node: dict[str, list[str]] = {}
    for node, overrides in (user_spec.scripts.items() if user_spec is not None else ()):
        if overrides.placement:
            per_node.setdefault(node, []).extend(overrides.placement)
    for flag in placement or []:
        node, sep, rule = flag.partition("=")
        if sep and not rule.startswith("=") and "." not in node:  # NODE=node.hostname==x
            per_node.setdefault(node, []).append(rule)
        else:
            per_node.setdefault("*", []).append(flag)
    if backend != "swarm":
        if registry or per_node:
            raise OptionError("--registry and placement constraints are for --backend swarm; "
                              "drop them or add --backend swarm.")
        return {}
    return {"registry": registry, "placement": per_node}
