"""`rtest serve`: check the bind, connect the backend, recover the registry, then serve until stopped."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import structlog

from rtest.serve.auth import check_bind

log = structlog.get_logger("rtest.serve")


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    workdir: Path = Path(".rtest")
    slots: int | None = None  # default: the number of CPUs
    token: str | None = None
    backend: str = "docker"
    registry: str | None = None  # swarm: where the images the runs need are pushed


def build(options: ServeOptions):
    """The app and its run manager, ready to serve (the registry recovered)."""
    from rtest.run.backends import create_backend
    from rtest.serve.app import create_app
    from rtest.serve.manager import RunManager
    from rtest.serve.metrics import Metrics

    check_bind(options.host, options.token)  # before anything else, and long before binding
    backend = create_backend(options.backend, registry=options.registry)  # no engine: exit 3 now, not at the first run
    metrics = Metrics()
    total_cpus = getattr(backend, "total_cpus", None)  # a cluster shares out every node's CPUs
    slots = options.slots or (total_cpus() if total_cpus else None) or os.cpu_count() or 1
    manager = RunManager(Path(options.workdir), slots=slots, backend=backend,
                         metrics=metrics)
    metrics.attach(manager)
    server_id = secrets.token_hex(16)
    (manager.serve_dir / "server-id").write_text(server_id)
    recovered = manager.recover()
    log.info("registry recovered", **recovered)
    return create_app(manager, token=options.token, server_id=server_id, metrics=metrics), manager


def serve(options: ServeOptions, announce=print) -> int:
    import uvicorn

    app, manager = build(options)
    config = uvicorn.Config(app, host=options.host, port=options.port, log_level="warning",
                            timeout_graceful_shutdown=3, access_log=False)
    announce(f"rtest serve: http://{options.host}:{options.port}/  workdir {manager.workspace.root}  "
             f"slots {manager.pool.size}{'  token required' if options.token else ''}")
    try:
        uvicorn.Server(config).run()
    finally:
        manager.shutdown()
    return 0
