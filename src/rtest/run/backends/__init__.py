"""Backends by name: `--backend NAME` picks one; a new engine registers a factory here."""

from __future__ import annotations

from importlib import import_module
from typing import Any, Callable

from rtest.errors import ImageError, OptionError, PlanError
from rtest.run.backends.base import Backend
from rtest.run.backends.images import ImageStore

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

    ``options`` are the backend's own (e.g. a registry, placement constraints); None values are dropped, and
    one the backend does not take is an OptionError.
    """
    if name not in _REGISTRY:
        raise PlanError(f"No backend named '{name}'; choose one of: {', '.join(backend_names())}.")
    factory = _factory(name)
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(key for key in given if not _takes(factory, key))
    if unknown:  # e.g. --registry for a backend that pushes nothing: refused before it connects
        takers = [other for other in backend_names()
                  if other != name and all(_takes(_factory(other), key) for key in unknown)]
        fix = f"drop {'it' if len(unknown) == 1 else 'them'}" + (f" or add --backend {takers[0]}" if takers else "")
        raise OptionError(f"The {name} backend takes no {' and '.join(f'--{key}' for key in unknown)}; {fix}.")
    return factory(**given)


def _factory(name: str) -> Callable[..., Backend]:
    factory = _REGISTRY[name]
    if isinstance(factory, str):
        module, _, attribute = factory.partition(":")
        factory = getattr(import_module(module), attribute)
    return factory


def _takes(factory: Callable[..., Backend], option: str) -> bool:
    """Whether a backend's factory takes keyword ``option`` (any, when it takes ``**options``)."""
    import inspect

    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return True  # cannot tell: let the factory answer
    return option in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def image_store(name: str = DEFAULT_BACKEND, **options: Any) -> ImageStore:
    """The images of backend ``name`` (`rtest deps`, `rtest sandbox images`, the look-alike builds)."""
    store = create_backend(name, **options).images
    if store is None:
        raise ImageError(f"The {name} backend has no images of its own to build, list or prune.")
    return store
