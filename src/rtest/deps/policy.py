"""Which of a step's requirements SageMaker itself would install, and why: rtest installs those and no others.

- ``requirements.txt`` at the top of the source folder: installed where the job's service installs it
  (the training toolkit always; a processing job only under a FrameworkProcessor): the job kind says
  (``JobKind.installs_requirements_txt``).
- other ``requirements*.txt`` a config field names: SageMaker installs no file by another name.
- a script's own import-time ``pip install``: it runs in SageMaker too, so it runs here.
- the user's extras (spec file, ``rtest deps --add``): asked for explicitly.
- the interface's ``contract.framework_requirements``: metadata no builder reads. They are compared with
  the image (an unmet one is a warning) and installed only with ``--install-declared``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from rtest.deps.requirements import Requirement
from rtest.plan.model import ScriptExecutionSpec
from rtest.yamltext import load_yaml

DECLARED_WARNING = "declared-requirement-unmet"


@dataclass(frozen=True)
class Decision:
    install: bool
    reason: str  # one phrase saying who installs it (or why nobody does)


def decide(req: Requirement, spec: ScriptExecutionSpec, compute_kind: str | None,
           install_declared: bool = False) -> Decision:
    if req.origin == "interface":
        if install_declared:
            return Decision(True, "interface framework_requirements: installed as --install-declared asks")
        return Decision(False, "interface framework_requirements: SageMaker never installs them; compared "
                               "with the image")
    if req.origin == "requirements.txt":
        path = Path(req.file or "")
        if path.name != "requirements.txt" or path.parent.resolve() != spec.source_dir.resolve():
            return Decision(False, f"{path.name} is named by the config; SageMaker installs only the source "
                                   "folder's requirements.txt")
        return Decision(*spec.kind.installs_requirements_txt(compute_kind))
    if req.origin == "script":
        return Decision(True, "the script pip-installs it at import time, as it would on SageMaker")
    return Decision(True, f"you added it ({req.where})")


def compute_kind(interface_file: Path | None) -> str | None:
    """The interface's ``compute.kind``: which SDK processor or estimator builds the job."""
    if interface_file is None or not interface_file.is_file():
        return None
    try:
        text = interface_file.read_text(encoding="utf-8")
        data = json.loads(text) if interface_file.suffix == ".json" else load_yaml(text)
    except (OSError, ValueError, yaml.YAMLError):
        return None  # the interface loader already reported it
    compute = data.get("compute") if isinstance(data, dict) else None
    kind = compute.get("kind") if isinstance(compute, dict) else None
    return str(kind).strip().lower() if kind else "python"


def unmet_message(node: str, req: Requirement, image: str, installed: str | None) -> str:
    """The warning for a declared requirement the image does not meet: package, declared spec, image version."""
    has, runs = (f"has {req.name} {installed}", "with the image's version") if installed else (
        f"has no {req.name}", "without it")
    return (f"{node}: the interface declares {req.text} ({req.where}), but image {image} {has}; SageMaker does not "
            f"install declared requirements, so the step runs {runs}. Pass --install-declared to install it "
            "anyway, or change the declaration or the image.")
