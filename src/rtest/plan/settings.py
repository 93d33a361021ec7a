"""One frozen StepSettings per step: the effective timeout, network, limits, user, image and cache switch.

Computed once, before a run, from the plan (config and spec file values, already sourced)
and the command line. Launch, cache key, judging and the job's JSON files all read it, so
one setting has one formula; every value keeps where it came from for `rtest plan` and the
HTML report.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from pydantic import ConfigDict

from rtest.modelbase import Model
from rtest.plan.limits import NANO, limits_for
from rtest.plan.model import PipelineTestingSpec, ScriptExecutionSpec, Source, Sourced

DEFAULT_MAX_RUNTIME_S = 86400  # SageMaker's default StoppingCondition


@dataclass(frozen=True)
class CommandLine:
    """The settings flags of `rtest sandbox run` (or the factory's keyword arguments); None: not given."""

    timeout_s: float | None = None
    network: str | None = None
    limits: bool = True
    memory_bytes: int | None = None
    cache: bool = True
    pack_model: bool = True
    user: str | None = None  # "uid:gid" (--step-user); default: invoking_user()


class StepSettings(Model):
    """The effective settings of one step, each with its source."""

    model_config = ConfigDict(frozen=True)

    timeout_s: Sourced  # None: no limit on this machine (SageMaker's default still goes in the job config)
    network: Sourced  # "none" or a named network
    cpus: Sourced  # float CPUs or None
    memory_bytes: Sourced  # int or None
    user: Sourced
    image: Sourced
    cache: Sourced  # bool
    pack_model: Sourced  # bool: training's /opt/ml/model becomes model.tar.gz

    def max_runtime_s(self) -> int:
        """The job config's StoppingCondition: the effective timeout, else SageMaker's default."""
        return int(self.timeout_s.value) if self.timeout_s.value else DEFAULT_MAX_RUNTIME_S

    def cache_material(self) -> dict[str, Any]:
        """What of these settings can change a step's outputs (the image goes in by id, not by name)."""
        limits = [self.cpus.value, self.memory_bytes.value] if self.cpus.value or self.memory_bytes.value else False
        return {"network": self.network.value, "limits": limits, "pack_model": self.pack_model.value,
                "timeout": self.timeout_s.value}

    def rows(self) -> dict[str, tuple[Any, str]]:
        """name -> (value, where it came from), for display."""
        return {name: (getattr(self, name).value, getattr(self, name).describe()) for name in type(self).model_fields}


# -- issue 14 (h14b): steps never run as root
UNPRIVILEGED_USER = "65534:65534"  # nobody:nogroup


def invoking_user() -> str:
    """Containers run as whoever runs rtest, so every output file is theirs; but never as root (uid 0):
    then an unprivileged uid, and the host hands the files back afterwards (run/ownership.py)."""
    if os.getuid() == 0:
        return UNPRIVILEGED_USER
    return f"{os.getuid()}:{os.getgid()}"
# -- end issue 14


def step_settings(spec: ScriptExecutionSpec, cli: CommandLine | None = None) -> StepSettings:
    cli = cli or CommandLine()
    flag = lambda value, name: Sourced(value=value, source=Source.USER, field=name)  # noqa: E731
    builtin = lambda value, name=None: Sourced(value=value, source=Source.BUILTIN, field=name)  # noqa: E731
    cpus, memory = _limits(spec, cli, flag, builtin)
    return StepSettings(
        timeout_s=flag(float(cli.timeout_s), "--timeout") if cli.timeout_s else _timeout(spec, builtin),
        network=flag(cli.network, "--network") if cli.network else _network(spec, builtin),
        cpus=cpus,
        memory_bytes=memory,
        user=flag(cli.user, "--step-user") if cli.user else builtin(invoking_user(), _user_source()),
        image=spec.image,
        cache=builtin(True) if cli.cache else flag(False, "--no-cache"),
        pack_model=builtin(True) if cli.pack_model else flag(False, "--model-folder"),
    )


def _user_source() -> str:
    return "unprivileged, as rtest runs as root" if os.getuid() == 0 else "invoking user"


def plan_settings(plan: PipelineTestingSpec, cli: CommandLine | None = None) -> dict[str, StepSettings]:
    return {node: step_settings(spec, cli) for node, spec in plan.scripts.items()}


def _timeout(spec: ScriptExecutionSpec, builtin) -> Sourced:
    given = spec.max_runtime_s
    if given is not None and given.value:
        return given.model_copy(update={"value": float(given.value)})
    return builtin(None, "no timeout")


def _network(spec: ScriptExecutionSpec, builtin) -> Sourced:
    isolation = spec.network_isolation
    if isolation is not None and isolation.value is False:  # the config turned isolation off
        return isolation.model_copy(update={"value": "bridge"})
    if isolation is not None:
        return isolation.model_copy(update={"value": "none"})
    return builtin("none", "sandbox default")


def _limits(spec: ScriptExecutionSpec, cli: CommandLine, flag, builtin) -> tuple[Sourced, Sourced]:
    if not cli.limits:
        cpus, memory = flag(None, "--no-limits"), flag(None, "--no-limits")
    else:
        limits = limits_for(spec.instance_type.value)
        given = spec.instance_type  # the limits are the instance type's, capped at this machine
        field = f"{given.field} ({given.value})" if given.field else str(given.value)
        cpus = Sourced(value=limits.nano_cpus / NANO if limits and limits.nano_cpus else None, source=given.source,
                       field=field)
        memory = Sourced(value=limits.mem_bytes if limits else None, source=given.source, field=field)
    if cli.memory_bytes:
        memory = flag(int(cli.memory_bytes), "--memory")
    return cpus, memory
