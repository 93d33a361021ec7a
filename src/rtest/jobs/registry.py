"""The job kinds rtest knows, by name and by the SageMaker step type they serve.

Processing, Training and the inference check are registered here; a new kind is one module with a ``JobKind``
subclass plus one ``register`` call (and a bootstrap branch if its container differs).
Order matters where kinds are tried in turn (script scan): registration order.
"""

from __future__ import annotations

from rtest.jobs.base import JobKind
from rtest.jobs.inference import InferenceCheck
from rtest.jobs.processing import Processing
from rtest.jobs.training import Training

_KINDS: dict[str, JobKind] = {}
DEFAULT_KIND = "processing"  # a runnable step whose kind nothing names runs its script as processing does


def register(kind: JobKind) -> JobKind:
    """Make ``kind`` known by its name and step types (replacing one of the same name)."""
    _KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    if name == DEFAULT_KIND:
        raise ValueError(f"the default job kind {name!r} cannot be removed")
    _KINDS.pop(name, None)


def all_kinds() -> list[JobKind]:
    return list(_KINDS.values())


def names() -> list[str]:
    return list(_KINDS)


def get(name: str) -> JobKind:
    """The kind called ``name``; ValueError (a plan's bad value) naming the known ones otherwise."""
    try:
        return _KINDS[name]
    except KeyError:
        raise ValueError(f"unknown job kind {name!r}; known kinds: {', '.join(_KINDS)}") from None


def job_kind_for(step_type: str | None) -> JobKind | None:
    """The kind serving a SageMaker step type (case-insensitive), or None when rtest runs no script for it."""
    return next((k for k in _KINDS.values() if k.serves(step_type or "")), None)


def is_runnable_step_type(step_type: str | None) -> bool:
    return job_kind_for(step_type) is not None


def runnable_step_types() -> tuple[str, ...]:
    """The step types of SageMaker jobs that run a user's script (what "not a ... job" messages name)."""
    return tuple(t for k in _KINDS.values() if k.script_job for t in k.step_types)


def kind_for_entry_field(field: str) -> JobKind:
    """Without an interface: the kind whose entry-point config field the step sets, else the default."""
    return next((k for k in _KINDS.values() if field in k.entry_point_fields), _KINDS[DEFAULT_KIND])


def entry_point_fields() -> tuple[str, ...]:
    """Every kind's entry-point config fields by priority: each kind's first (its own), then the others."""
    kinds = _KINDS.values()
    ordered = [k.entry_point_fields[0] for k in kinds if k.entry_point_fields]
    ordered += [f for k in kinds for f in k.entry_point_fields[1:]]
    return tuple(dict.fromkeys(ordered))


def default_kind() -> JobKind:
    return _KINDS[DEFAULT_KIND]


register(Processing())
register(Training())
register(InferenceCheck())
