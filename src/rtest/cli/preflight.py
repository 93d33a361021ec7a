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

from rtest.errors import OptionError
from rtest.sizes import MIN_MEMORY_BYTES, parse_memory

RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
# The option values themselves (sizes, formats, limits) are checked by their fields in rtest.options.
__all__ = ["MIN_MEMORY_BYTES", "OptionError", "parse_memory", "check_workdir", "check_junit", "check_interface_dirs",
           "check_run_id"]


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
        ) from exc
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


def check_run_id(run_id: str) -> str:
    if not RUN_ID.fullmatch(run_id):
        raise OptionError(f"--run-id {run_id!r} is not a run id; give the id printed when the run started "
                          "(also the folder name under <workdir>/runs), such as 20260101T120000-a1b2c3.")
    return run_id
