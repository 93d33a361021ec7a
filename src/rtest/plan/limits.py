"""CPU and memory limits from a SageMaker instance type, capped at what this machine has.

A step asking for an ml.m5.4xlarge on a laptop gets the laptop: the limit is the
smaller of the two, so scripts still start, and a script that would run out of
memory on its instance type usually runs out here too.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass

GIB = 2**30
NANO = 10**9

# (vCPU, memory GiB), from the SageMaker instance type table in the contract doc.
INSTANCE_TYPES: dict[str, tuple[int, float]] = {
    "ml.t3.medium": (2, 4),
    "ml.m5.large": (2, 8),
    "ml.m5.xlarge": (4, 16),
    "ml.m5.2xlarge": (8, 32),
    "ml.m5.4xlarge": (16, 64),
    "ml.c5.xlarge": (4, 8),
    "ml.c5.2xlarge": (8, 16),
    "ml.r5.xlarge": (4, 32),
    "ml.g4dn.xlarge": (4, 16),
}
DEFAULT_SHAPE = INSTANCE_TYPES["ml.m5.xlarge"]  # the SageMaker SDK's usual processing default

# GiB per vCPU of each family letter, for types missing from the table (AWS's published ratios).
_GIB_PER_VCPU = {"c": 2, "m": 4, "t": 2, "g": 4, "r": 8, "x": 16, "z": 8, "p": 8}
_SIZE = re.compile(r"^ml\.([a-z]+)\d+[a-z]*\.(?:(\d+)?xlarge|(large|medium|small))$")
# SageMaker's own local mode takes these; they mean "this machine", so no limit at all.
_LOCAL_TYPES = {"local", "local_gpu"}


@dataclass(frozen=True)
class ResourceLimits:
    nano_cpus: int | None  # docker's NanoCpus: 1e9 per CPU
    mem_bytes: int | None


def limits_for(instance_type: str | None, *, enabled: bool = True) -> ResourceLimits | None:
    """The container limits for a step's instance type; None when limits are off or mean nothing."""
    if not enabled or not instance_type or instance_type in _LOCAL_TYPES:
        return None
    vcpus, mem_gib = instance_shape(instance_type)
    cpus = min(vcpus, os.cpu_count() or vcpus)
    mem = min(int(mem_gib * GIB), host_memory_bytes() or int(mem_gib * GIB))
    return ResourceLimits(nano_cpus=cpus * NANO, mem_bytes=mem)


@functools.cache
def instance_shape(instance_type: str) -> tuple[int, float]:
    """(vCPU, GiB) from the table, from the type's name, or the default; the plan notes a guess once
    (``shape_note``), so this only logs at debug level."""
    if instance_type in INSTANCE_TYPES:
        return INSTANCE_TYPES[instance_type]
    parsed = _parse_shape(instance_type)
    import structlog  # only here: planning should not pay for the logging library

    structlog.get_logger("rtest.limits").debug("instance type not in rtest's table", instance_type=instance_type,
                                               derived=parsed is not None)
    return parsed if parsed is not None else DEFAULT_SHAPE


def shape_note(instance_type: str | None) -> str | None:
    """One plan note for an instance type missing from the table: how its limits were chosen."""
    if not instance_type or instance_type in INSTANCE_TYPES or instance_type in _LOCAL_TYPES:
        return None
    vcpus, gib = instance_shape(instance_type)
    if _parse_shape(instance_type) is not None:
        return f"instance type {instance_type} is not in rtest's table; its limits ({vcpus} vCPUs, {gib:g} GiB, " \
               "capped at this machine) are derived from its name"
    return f"instance type {instance_type} is unknown to rtest; the steps asking for it get ml.m5.xlarge limits " \
           f"({vcpus} vCPUs, {gib:g} GiB)"


def _parse_shape(instance_type: str) -> tuple[int, float] | None:
    match = _SIZE.match(instance_type)
    if match is None:
        return None
    family, multiple, small = match.groups()
    if small is not None:
        vcpus = 2
    else:
        vcpus = 4 * int(multiple or 1)
    per_vcpu = _GIB_PER_VCPU.get(family[0], 4)
    return vcpus, float(vcpus * per_vcpu)


def host_memory_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None
