"""The pipeline's own config classes, where they are importable: exact deployed values.

A config JSON names each step's class (``__model_type__`` or
``metadata.config_types``); the module comes from the step's
``__model_module__`` when the serializer wrote one, or from ``--config-classes
MODULE`` (repeatable). rtest instantiates the step's config from its JSON
fields with that class and asks it, as the framework's builder does:
``get_environment_variables(declared)`` (or with no argument, for collectors
that take none), interface defaults for optional names it did not produce,
and ``get_job_arguments()``. Anything that goes wrong there is a warning and
the convention resolver takes over: the plan still says which one ran.

Importing a module runs its code on this machine: only modules the user named
or the config itself names are imported.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from rtest.errors import PlanError
from rtest.plan.model import JobArgument, PlanWarning, Source, Sourced, format_env_value

MODULE_FIELD = "__model_module__"
MAX_SUBMODULES = 200  # a package's submodules searched for a class, bounded


@dataclass
class ClassValues:
    class_name: str
    ok: bool
    instance: Any = None
    environment: dict[str, Sourced] = field(default_factory=dict)
    job_arguments: list[JobArgument] = field(default_factory=list)
    warnings: list[PlanWarning] = field(default_factory=list)


class ConfigClasses:
    """Finds, instantiates and queries config classes; one instance per plan."""

    def __init__(self, modules: list[str] | None = None) -> None:
        self.module_names = list(modules or [])
        self._modules = [_import(name, named_by_user=True) for name in self.module_names]
        self._instances: dict[str, ClassValues | None] = {}

    def instance_for(self, found) -> ClassValues | None:
        """The step's config object (cached per node), None when no class is known for it."""
        if found.node not in self._instances:
            self._instances[found.node] = self._instantiate(found)
        return self._instances[found.node]

    def values_for(self, found, declared: list[str]) -> ClassValues | None:
        made = self.instance_for(found)
        if made is None or not made.ok:
            return made
        result = ClassValues(made.class_name, True, made.instance)
        try:
            result.environment = _environment(made.instance, declared, made.class_name)
            result.job_arguments = _job_arguments(made.instance, made.class_name)
        except Exception as exc:  # the user's code failed: say so and fall back to the convention
            return _failed(
                found.node, made.class_name, f"its get_environment_variables/get_job_arguments raised {_one_line(exc)}"
            )
        return result

    def _instantiate(self, found) -> ClassValues | None:
        class_name = found.config.config_class
        own_module = found.config.get(MODULE_FIELD)
        modules = list(self._modules)
        if isinstance(own_module, str) and own_module:
            module = _import(own_module, named_by_user=False)
            modules = [module, *modules] if module is not None else modules
        if not class_name or not modules:
            return None
        cls = _find_class(class_name, modules)
        if cls is None:
            searched = ", ".join(m.__name__ for m in modules)
            return _failed(found.node, class_name, f"no class {class_name} in {searched}")
        try:
            instance = _build(cls, found.config.fields)
        except Exception as exc:  # a validation error is the user's config talking: pass it on
            return _failed(found.node, class_name, f"{class_name}(**config) failed: {_one_line(exc)}")
        return ClassValues(class_name, True, instance)


def _import(name: str, *, named_by_user: bool) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except Exception as exc:
        if named_by_user:
            raise PlanError(
                f"--config-classes {name}: the module cannot be imported ({_one_line(exc)}); "
                "run rtest in the environment "
                "where the pipeline's framework is installed, or check the module name."
            ) from exc
        return None


def _find_class(name: str, modules: list[ModuleType]) -> type | None:
    for module in modules:
        found = getattr(module, name, None)
        if isinstance(found, type):
            return found
    for module in modules:  # a package: look one level into its submodules
        for i, info in enumerate(pkgutil.iter_modules(getattr(module, "__path__", []) or [])):
            if i >= MAX_SUBMODULES:
                break
            try:
                sub = importlib.import_module(f"{module.__name__}.{info.name}")
            except Exception:  # a broken sibling module must not hide the class we want
                continue
            found = getattr(sub, name, None)
            if isinstance(found, type):
                return found
    return None


def _build(cls: type, fields: dict[str, Any]) -> Any:
    data = {k: v for k, v in fields.items() if not k.startswith("__")}
    model_fields = getattr(cls, "model_fields", None)
    if isinstance(model_fields, dict):  # pydantic: derived values the serializer dumped are not init fields
        names = set(model_fields) | {f.alias for f in model_fields.values() if getattr(f, "alias", None)}
        return cls.model_validate({k: v for k, v in data.items() if k in names})
    params = inspect.signature(cls).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return cls(**data)
    return cls(**{k: v for k, v in data.items() if k in params})


def _environment(instance: Any, declared: list[str], class_name: str) -> dict[str, Sourced]:
    collector = getattr(instance, "get_environment_variables", None)
    if callable(collector):
        produced = collector(declared) if _takes_argument(collector) else collector()
    else:
        produced = getattr(instance, "environment_variables", None)
    if not isinstance(produced, dict):
        return {}
    return {
        str(k): Sourced(value=format_env_value(v), source=Source.CONFIG_CLASS, field=class_name)
        for k, v in produced.items()
        if v is not None
    }


def _job_arguments(instance: Any, class_name: str) -> list[JobArgument]:
    from rtest.plan.values import job_arguments_from_argv

    getter = getattr(instance, "get_job_arguments", None)
    argv = getter() if callable(getter) else None
    return job_arguments_from_argv(list(argv), class_name) if argv else []


def _takes_argument(function: Any) -> bool:
    try:
        params = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params)


def _failed(node: str, class_name: str, why: str) -> ClassValues:
    warning = PlanWarning(
        node=node,
        code="config-class-failed",
        message=f"{node}: could not use the config class {class_name} ({why}); "
                "its env vars and job arguments follow the "
        "framework's naming convention instead, which misses values the class computes.",
    )
    return ClassValues(class_name, False, warnings=[warning])


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__
