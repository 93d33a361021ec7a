"""The base of every rtest pydantic model: its schema is built when it is first used, not when it is imported."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    # A command imports far more models than it validates (`rtest plan` never touches the service's or the
    # report's): building every schema at import cost 40-50 ms per process. The runner and the service
    # validate on threads, so a first use may race: pydantic >= 2.14 builds a deferred schema under a lock.
    model_config = ConfigDict(defer_build=True)
