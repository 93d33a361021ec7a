"""What the pipeline's config classes answered: plain data, the same whichever resolver ran them.

The resolver (``rtest.plan.framework_classes``) asks the classes once per plan, in a subprocess or
in this process, and hands back these values; ``values`` and ``config_inputs`` read them and never
see a live config object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rtest.plan.model import PlanWarning


@dataclass(frozen=True)
class ClassChoice:
    """How the plan may use config classes: the user's flags and the spec file, merged."""

    modules: tuple[str, ...] = ()  # --config-classes (named by the user: an import failure is an error)
    framework_python: str | None = None  # --framework-python: the user's project interpreter
    enabled: bool = True  # False: --no-config-classes


@dataclass
class ClassAnswer:
    """One node's values as its config class computes them (env values already formatted as text)."""

    class_name: str | None
    ok: bool
    error: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    argv: list[str] | None = None
    attributes: dict[str, str | None] = field(default_factory=dict)  # attribute -> text (paths mapped back)

    @classmethod
    def from_json(cls, data: Any) -> ClassAnswer:
        data = data if isinstance(data, dict) else {}
        env = data.get("environment") if isinstance(data.get("environment"), dict) else {}
        argv = data.get("argv") if isinstance(data.get("argv"), list) else None
        attrs = data.get("attributes") if isinstance(data.get("attributes"), dict) else {}
        return cls(
            class_name=str(data.get("class_name") or "") or None,
            ok=data.get("ok") is True,
            error=str(data["error"])[:500] if data.get("error") else None,
            environment={str(k): str(v) for k, v in env.items() if v is not None},
            argv=[str(a) for a in argv] if argv else None,
            attributes={str(k): (None if v is None else str(v)) for k, v in attrs.items()},
        )


@dataclass
class ClassResults:
    """The whole batch: which resolver decided, each node's answer, and what the plan should say about it."""

    description: str  # the plan's first line: "cursus 2.9.32 config classes via ..." or "rtest's rules: ..."
    answers: dict[str, ClassAnswer] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # files the classes wrote (in the scratch copy), log count
    warnings: list[PlanWarning] = field(default_factory=list)  # classes that raised, hung or were not found
    log: list[str] = field(default_factory=list)  # the framework's captured log lines (shown with --verbose)
    used: bool = False  # True: the classes ran and at least one node took their values

    def answer(self, node: str) -> ClassAnswer | None:
        """The node's answer when its class gave values, else None (the rules decide)."""
        found = self.answers.get(node)
        return found if found is not None and found.ok else None

    def attribute(self, node: str, name: str) -> str | None:
        found = self.answer(node)
        return found.attributes.get(name) if found is not None else None


def rules_only(why: str) -> ClassResults:
    return ClassResults(description=f"rtest's rules: {why}")
