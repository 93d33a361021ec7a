"""`rtest serve`: check the bind, take the workdir, connect the backend, recover the registry, then serve."""

from __future__ import annotations

import os
import secrets
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from rtest.serve.auth import check_bind, is_loopback
from rtest.serve.upload import MAX_UPLOAD

log = structlog.get_logger("rtest.serve")


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    workdir: Path = Path(".rtest")
    slots: int | None = None  # default: the number of CPUs
    token: str | None = None  # default: one is generated (see no_token)
    backend: str = "docker"
    step_user: str | None = None  # issue 14: UID:GID steps run as (default: never root, see plan.settings)
    max_log_bytes: int | None = None  # issue 14: per step log cap (default: run.logcap's)
    # -- issue 14: who may reach the service, and what a submission may name
    no_token: bool = False  # loopback only
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    allow_paths: tuple[Path, ...] = field(default_factory=tuple)
    allow_code: bool = False
    plan_timeout_s: float = 120.0
    keep_runs: int | None = None
    keep_days: float | None = None
    max_upload: int = MAX_UPLOAD
    registry: str | None = None  # a cluster backend: where the images the runs need are pushed


def resolve_token(options: ServeOptions) -> str | None:
    """The token: given, or generated; none only with --no-token on loopback (checked by check_bind)."""
    if options.no_token:
        from rtest.serve.auth import UnsafeBindError

        if options.token:
            raise UnsafeBindError("--no-token and --token contradict each other; pass one of them.")
        if not is_loopback(options.host):
            raise UnsafeBindError(f"--no-token is for loopback only; rtest serve refuses to listen on "
                                  f"{options.host} without a token.")
        return None
    return options.token or secrets.token_urlsafe(32)


def build(options: ServeOptions, token: str | None = None):
    """The app and its run manager, ready to serve (the registry recovered)."""
    from rtest.run.backends import create_backend
    from rtest.serve.app import create_app
    from rtest.serve.manager import RunManager
    from rtest.serve.metrics import Metrics
    from rtest.serve.policy import SubmitPolicy
    from rtest.serve.retention import Retention

    check_bind(options.host, token)  # before anything else, and long before binding
    backend = create_backend(options.backend, registry=options.registry)  # no engine: exit 3 now, not at the first run
    metrics = Metrics()
    slots = options.slots or backend.total_cpus() or os.cpu_count() or 1  # a cluster shares out every node's CPUs
    manager = RunManager(Path(options.workdir), slots=slots, backend=backend,
                         metrics=metrics, step_user=options.step_user, max_log_bytes=options.max_log_bytes)
    manager.policy = SubmitPolicy(allow_paths=tuple(Path(p).resolve() for p in options.allow_paths),
                                  allow_code=options.allow_code)
    manager.plan_timeout_s = options.plan_timeout_s
    manager.retention = Retention(keep_runs=options.keep_runs, keep_days=options.keep_days)
    metrics.attach(manager)
    server_id = secrets.token_hex(16)
    (manager.serve_dir / "server-id").write_text(server_id)
    recovered = manager.recover()
    manager.retention.apply(manager)
    log.info("registry recovered", **recovered)
    app = create_app(manager, token=token, server_id=server_id, metrics=metrics, bound=options.host,
                     port=options.port, allowed_hosts=options.allowed_hosts, allowed_origins=options.allowed_origins,
                     max_upload=options.max_upload)
    return app, manager


def serve(options: ServeOptions, announce=print) -> int:
    import uvicorn

    from rtest.serve import local

    token = resolve_token(options)
    check_bind(options.host, token)
    local.hold_workdir(Path(options.workdir), options.port)  # a second service on this workdir exits 2 here
    if token:
        local.write_secret(local.token_file(Path(options.workdir)), token)
    app, manager = build(options, token)
    local.announce(options.port, token)  # local clients find the token by the port
    config = uvicorn.Config(app, host=options.host, port=options.port, log_level="warning",
                            timeout_graceful_shutdown=3, access_log=False)
    shown = "127.0.0.1" if options.host in ("0.0.0.0", "::", "") else options.host
    query = f"?token={token}" if token else ""
    announce(f"rtest serve: http://{shown}:{options.port}/{query}  workdir {manager.workspace.root}  "
             f"slots {manager.pool.size}")
    if not token:
        announce("warning: --no-token: any program or web page on this machine that reaches the port may run "
                 "containers here.")
    # uvicorn re-raises SIGTERM once it has stopped serving; as SystemExit, the clean-up below still runs
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        uvicorn.Server(config).run()
    finally:
        local.retract(options.port)
        manager.shutdown()
    return 0
