"""Limits a service worker process puts on itself first thing: CPU time, address space, and death with the
service (a worker must never outlive it, e.g. a plan blocked in signal.pause after the service was killed)."""

from __future__ import annotations

import ctypes
import os
import resource
import signal

_PR_SET_PDEATHSIG = 1


def limit_self(cpu_s: int, memory_bytes: int, parent: int | None = None) -> None:
    """``parent``: the service's pid. A service killed while this worker was still starting, before the death
    signal below was asked for, leaves it orphaned already: then it ends here."""
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    try:  # Linux: SIGKILL when the parent (the service) goes, however it goes
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if parent is not None and os.getppid() != parent:
        os._exit(3)
