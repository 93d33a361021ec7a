"""The one check that a step's container paths can be mounted, made when the plan is built.

A container fails to start when a path is relative, when two folders share one path
(an input, an output, or a folder rtest mounts itself: code, config, output, executor,
meta, log), or when an output, or an input something feeds, lies inside the read-only
code folder. An input there that nothing feeds is not mounted: the script sees what the
source folder holds at that place, as SageMaker ships ``source_dir`` (cursus's training
interfaces declare ``/opt/ml/code/hyperparams/hyperparameters.json`` so). The run side
(run/layout) trusts a plan that passed this check.
"""

from __future__ import annotations

import posixpath
from typing import Collection

from rtest.plan.model import ScriptExecutionSpec


def container_path_problems(spec: ScriptExecutionSpec, fed: Collection[str] = ()) -> list[tuple[str, str]]:
    """(field, message) for each input or output path that would stop the container from starting.

    ``fed``: the inputs an upstream wire feeds (a user's path counts by itself).
    """
    kind = spec.kind
    code = kind.code_path
    seen = {path: label for label, path in kind.reserved_paths().items()}
    found: list[tuple[str, str]] = []
    items = [(f"input {n}", f"inputs.{n}", i.container_path) for n, i in spec.inputs.items()
             if not (in_code_folder(spec, i.container_path) and i.host_path is None and n not in fed)]
    items += [(f"output {n}", f"outputs.{n}", o.container_path) for n, o in spec.outputs.items()]
    for label, field, path in items:
        if not path.startswith("/"):
            found.append((field, f"{spec.node}: {label} has the relative container path '{path}'; "
                                 "make it absolute in the interface"))
            continue
        normal = posixpath.normpath(path)
        if normal in seen:
            found.append((field, f"{spec.node}: {label} and {seen[normal]} share the container path {normal}; "
                                 "give each its own path in the step interface"))
        elif in_code_folder(spec, normal):
            found.append((field, f"{spec.node}: {label} at {normal} lies inside the read-only code folder {code}; "
                                 "move it out of the code folder in the step interface"))
        seen.setdefault(normal, label)
    return found


def in_code_folder(spec: ScriptExecutionSpec, container_path: str) -> bool:
    """True for a path beneath the kind's read-only code folder (never mounted on its own)."""
    return posixpath.normpath(container_path).startswith(spec.kind.code_path + "/")
