"""Env vars and job arguments resolved the way the framework resolves them.

The interface declares WHICH env vars a step has (``env_vars.required`` plus
the keys of ``env_vars.optional``); the config supplies the VALUES. With the
pipeline's own config classes reachable, their ``get_environment_variables``
and ``get_job_arguments`` give the exact deployed values (``framework_classes``
asks them and hands back plain values, ``class_answers``). Without them, the framework's convention applies: the
config field of the lower-cased name, else that key of the config's
``hyperparameters``, formatted as the framework formats it; a name that
resolves to nothing is omitted, so an optional var takes its interface
default. A config's ``env`` map wins last, as in the framework's builder.
Job arguments come from the interface's ``job_arguments``; a flag whose
source field is unset is omitted, as the framework's ``_job_type_arg`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rtest.plan.class_answers import ClassAnswer
from rtest.plan.discovery import DiscoveredScript
from rtest.plan.model import JobArgument, PlanWarning, Source, Sourced, format_env_value

__all__ = ["ResolvedValues", "declared_env", "format_env_value", "resolve_values"]


@dataclass
class ResolvedValues:
    environment: dict[str, Sourced]
    job_arguments: list[JobArgument]
    resolver: str  # "convention" or "config-class:<Class>"
    warnings: list[PlanWarning] = field(default_factory=list)


def declared_env(found: DiscoveredScript) -> tuple[list[str], dict[str, str | None]]:
    """(required names, optional name -> interface default) the step's interface declares."""
    contract = found.interface.contract if found.interface else None
    if contract is None:
        return [], {}
    return list(contract.env_vars.required), dict(contract.env_vars.optional)


def resolve_values(found: DiscoveredScript, from_class: ClassAnswer | None = None) -> ResolvedValues:
    """``from_class``: the node's config-class answer when its class gave values; None: rtest's rules."""
    required, optional = declared_env(found)
    names = list(dict.fromkeys([*required, *optional]))
    if from_class is not None and from_class.ok:
        name = from_class.class_name or "config class"
        env = {
            key: Sourced(value=value, source=Source.CONFIG_CLASS, field=name)
            for key, value in from_class.environment.items()
        }
        arguments = job_arguments_from_argv(from_class.argv or [], name)
        resolver = f"config-class:{name}"
    else:
        env = {name: value for name in names if (value := convention_value(found, name)) is not None}
        arguments, resolver = convention_job_arguments(found), "convention"
    for name, default in optional.items():
        if name not in env and default is not None:
            env[name] = Sourced(value=str(default), source=Source.INTERFACE, field=f"env_vars.optional.{name}")
    env.update(_explicit_env(found))
    return ResolvedValues(env, arguments, resolver)


def convention_value(found: DiscoveredScript, name: str) -> Sourced | None:
    """NAME -> config field ``name``, else ``hyperparameters.name``; None when neither is set."""
    attr = name.lower()
    if found.config.has(attr):
        return Sourced(value=format_env_value(found.config.get(attr)), source=Source.CONFIG, field=attr)
    hyper = found.config.get("hyperparameters")
    if isinstance(hyper, dict) and hyper.get(attr) is not None:
        return Sourced(value=format_env_value(hyper[attr]), source=Source.CONFIG, field=f"hyperparameters.{attr}")
    return None


def convention_job_arguments(found: DiscoveredScript) -> list[JobArgument]:
    contract = found.interface.contract if found.interface else None
    arguments: list[JobArgument] = []
    for decl in contract.job_arguments if contract is not None else []:
        if decl.source is None:
            default = getattr(decl, "default", None)
            value = (
                None
                if default is None
                else Sourced(value=str(default), source=Source.INTERFACE, field=f"job_arguments.{decl.flag}")
            )
            arguments.append(JobArgument(flag=decl.flag, value=value))
        elif isinstance(found.config.get(decl.source), bool):
            if found.config.get(decl.source):  # a boolean is a bare flag when true and absent when false
                arguments.append(JobArgument(flag=decl.flag, value=None))
        elif found.config.has(decl.source):
            arguments.append(
                JobArgument(
                    flag=decl.flag,
                    value=Sourced(value=str(found.config.get(decl.source)), source=Source.CONFIG, field=decl.source),
                )
            )
        elif getattr(decl, "default", None) is not None:
            arguments.append(
                JobArgument(
                    flag=decl.flag,
                    value=Sourced(value=str(decl.default), source=Source.INTERFACE, field=f"job_arguments.{decl.flag}"),
                )
            )
        # else: the source field is unset and the framework omits the flag entirely
    return arguments


def job_arguments_from_argv(argv: list[Any], class_name: str) -> list[JobArgument]:
    """A config class's argv as flag/value pairs; the argv the container gets stays exactly the same."""
    tokens = [str(token) for token in argv]
    arguments: list[JobArgument] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        has_value = token.startswith("-") and i + 1 < len(tokens) and not tokens[i + 1].startswith("--")
        value = Sourced(value=tokens[i + 1], source=Source.CONFIG_CLASS, field=class_name) if has_value else None
        arguments.append(JobArgument(flag=token, value=value))
        i += 2 if has_value else 1
    return arguments


def _explicit_env(found: DiscoveredScript) -> dict[str, Sourced]:
    """The config's own ``env`` map: the framework applies it last, over everything."""
    explicit = found.config.get("env")
    if not isinstance(explicit, dict):
        return {}
    return {
        str(k): Sourced(value=format_env_value(v), source=Source.CONFIG, field=f"env.{k}")
        for k, v in explicit.items()
        if v is not None
    }
