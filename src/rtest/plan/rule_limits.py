"""Where rtest's rules and the framework's config class part ways: one warning per value (code ``class-computes``).

Used only when the rules decided a node's values. The class's source (``class_source``, read not run)
says which env names and arguments it computes itself; each value the rules produced for such a name
(from the interface default, from a field the class transforms, or left out) is a warning naming the
class and how to get the real value. A value the user set is not a guess and is not warned about.
"""

from __future__ import annotations

from rtest.plan.class_source import ClassFacts
from rtest.plan.discovery import DiscoveredScript
from rtest.plan.model import PlanWarning, ScriptExecutionSpec, Source

FIX = "install the framework where rtest runs, or pass --framework-python PATH, to get the real value"


def rule_limit_warnings(found: DiscoveredScript, spec: ScriptExecutionSpec, facts: ClassFacts) -> list[PlanWarning]:
    return _env_warnings(found, spec, facts) + _argument_warnings(spec, facts)


def builder_path_warnings(found: DiscoveredScript, spec: ScriptExecutionSpec) -> list[PlanWarning]:
    """``contract.computed_env_paths``: S3 paths the framework's builder joins at execution time (whatever
    resolver ran): no local value can match, so each is said (code ``builder-computed``)."""
    contract = found.interface.contract if found.interface else None
    out = []
    for name, segments in (getattr(contract, "computed_env_paths", None) or {}).items():
        value = spec.environment.get(name)
        if value is not None and value.source == Source.USER:
            continue
        shown = "left out" if value is None else f"'{value.value}'"
        out.append(PlanWarning(
            node=spec.node, code="builder-computed", subject=f"environment.{name}",
            message=f"{spec.node}: {name} is an S3 path the framework's builder joins at execution time (the "
                    f"pipeline's output prefix + {'/'.join(map(str, segments))}); here it is {shown}. Set it under "
                    f"scripts.{spec.node}.environment.{name} in a spec file if the script needs a real value.",
        ))
    return out


def _env_warnings(found: DiscoveredScript, spec: ScriptExecutionSpec, facts: ClassFacts) -> list[PlanWarning]:
    contract = found.interface.contract if found.interface else None
    declared = [*contract.env_vars.required, *contract.env_vars.optional] if contract else []
    out = []
    for name in dict.fromkeys(declared):
        value = spec.environment.get(name)
        if value is not None and value.source == Source.USER:
            continue
        computed = name in facts.env and not facts.env[name]
        from_own_field = value is not None and value.source == Source.CONFIG and value.field == name.lower()
        defined = name.lower() in facts.attributes or name in facts.env
        same_default = value is not None and value.source == Source.INTERFACE and \
            facts.defaults.get(name.lower()) == value.value  # the class's field default is the interface's
        if computed or (defined and not from_own_field and not same_default):
            out.append(_warning(spec, name, f"{name} {_took(value)}; the framework's {facts.class_name} computes it"))
    if facts.own_collector:  # its own collector may emit names the interface does not declare
        for name in facts.env:
            if name not in declared and name not in spec.environment:
                out.append(_warning(spec, name, f"{name} is not set by rtest's rules, but the framework's "
                                                f"{facts.class_name} may set it"))
    return out


def _argument_warnings(spec: ScriptExecutionSpec, facts: ClassFacts) -> list[PlanWarning]:
    if not facts.has_job_arguments:
        return []
    given = {a.flag: a for a in spec.job_arguments}
    problems = []
    for flag, argument in given.items():
        if argument.value is not None and argument.value.source == Source.USER:
            continue
        if flag not in facts.flags:
            problems.append(f"pass {flag}, which the class's get_job_arguments does not write")
        elif flag in facts.bare_flags and argument.value is not None:
            problems.append(f"pass {flag} {argument.value.value!r}, where the class writes {flag} as a bare flag")
    missing = sorted(f for f in facts.flags - set(given) - facts.helper_flags if f not in facts.bare_flags)
    if missing:
        problems.append(f"leave out {', '.join(missing)}, which the class may write")
    if not problems:
        return []
    return [PlanWarning(node=spec.node, code="class-computes", subject="job_arguments",
                        message=f"{spec.node}: rtest's rules {'; '.join(problems)} (the framework's "
                                f"{facts.class_name} builds the job arguments); {FIX}.")]


def _took(value) -> str:
    if value is None:
        return "has no value (left out)"
    if value.source == Source.INTERFACE:
        return f"took the interface default '{value.value}'"
    return f"took '{value.value}' from {value.describe()}"


def _warning(spec: ScriptExecutionSpec, name: str, what: str) -> PlanWarning:
    return PlanWarning(node=spec.node, code="class-computes", subject=f"environment.{name}",
                       message=f"{spec.node}: {what}; {FIX}, or set it under "
                               f"scripts.{spec.node}.environment.{name} in a spec file.")
