"""SageMaker job kinds as modules: ``base`` (the JobKind interface), ``processing``, ``training``, ``registry``."""

from rtest.jobs.base import JobFiles, JobKind, Placed, ScannedPath
from rtest.jobs.registry import (
    all_kinds,
    default_kind,
    get,
    is_runnable_step_type,
    job_kind_for,
    kind_for_entry_field,
    register,
    runnable_step_types,
    unregister,
)

__all__ = ["JobFiles", "JobKind", "Placed", "ScannedPath", "all_kinds", "default_kind", "get",
           "is_runnable_step_type", "job_kind_for", "kind_for_entry_field", "register", "runnable_step_types",
           "unregister"]
