"""Warnings about the images a plan runs in: a stand-in version, no look-alike, an ignored interface key.

Pure functions of the plan (and the interface registry), so the builder only appends
what they return to ``PipelineTestingSpec.warnings``.
"""

from __future__ import annotations

from rtest.catalog import choose_image
from rtest.inputs.interfaces import InterfaceRegistry
from rtest.plan.model import PlanWarning, ScriptExecutionSpec, Source


def image_warnings(
    specs: dict[str, ScriptExecutionSpec], image_map: dict[tuple[str, str], str] | None = None
) -> list[PlanWarning]:
    """One warning per node whose image is not the one its framework version asks for."""
    found: list[PlanWarning] = []
    for node, spec in specs.items():
        if spec.image.source is Source.USER:  # the user chose this node's image
            continue
        choice = choose_image(spec.framework.value, spec.framework_version.value, image_map)
        if choice.warning and choice.image == spec.image.value:
            found.append(
                PlanWarning(node=node, code=choice.warning_code, subject="image", message=f"{node}: {choice.warning}.")
            )
    return found


def interface_warnings(interfaces: InterfaceRegistry) -> list[PlanWarning]:
    """Keys the interface schema does not know, and interface files that could not be read (unused ones)."""
    return [
        PlanWarning(
            code="interface-unknown-key" if w.key else "interface-unreadable",
            subject=f"interface.{w.key}" if w.key else None,
            message=w.message + ".",
        )
        for w in interfaces.warnings
    ]
