"""Ctrl-C and SIGTERM during a run, local or on a service: they ask the run to stop; the runner does the stopping.

Its own module so that a client of a service (`sandbox run --server`) need not import the local run path.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def trapped(cancel: threading.Event) -> Iterator[None]:
    """Ctrl-C and SIGTERM ask the run to stop cleanly (the runner does the stopping), in the main thread only."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda signum, frame: cancel.set())
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
