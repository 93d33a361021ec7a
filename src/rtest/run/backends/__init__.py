"""Backends by name: `--backend NAME` picks one; a new engine registers a factory here."""

from __future__ import annotations

from importlib import import_module
from typing import Any, Callable

from rtest.errors import PlanError
from rtest.run.backends.base import Backend

# name -> "module:attribute" (imported on first use, so `docker` loads only when it runs) or a factory.
_REGISTRY: dict[str, str | Callable[..., Backend]] = {
    "docker": "rtest.run.backends.docker:DockerBackend",
    "swarm": "rtest.run.backends.swarm:SwarmBackend",
}
DEFAULT_BACKEND = "docker"


def register_backend(name: str, factory: str | Callable[..., Backend]) -> None:
    _REGISTRY[name] = factory


def backend_names() -> list[str]:
    return sorted(_REGISTRY)


def create_backend(name: str = DEFAULT_BACKEND, **options: Any) -> Backend:
    """A connected backend; raises EngineUnavailableError when its engine does not answer.

    ``options`` are the backend's own (the swarm's registry and placement); None values are dropped.
    """
    if name not in _REGISTRY:
        raise PlanError(f"No backend named '{name}'; choose one of: {', '.join(backend_names())}.")
    factory = _REGISTRY[name]
    if isinstance(factory, str):
        module, _, attribute = factory.partition(":")
        factory = getattr(import_module(module), attribute)
    return factory(**{k: v for k, v in options.items() if v is not None})
