"""The pipeline a merged user spec names: located (spec > the bundled example), loaded, then planned.

The CLI (``rtest.options.PipelineOptions.load``), the factory and the service (``serve.planning``) all come
through here, so one spec plans the same way at every front door.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rtest.plan.builder import PipelineInputs
    from rtest.plan.model import PipelineTestingSpec
    from rtest.plan.userspec import UserSpec
    from rtest.workspace import Workspace


@dataclass
class Selection:
    inputs: PipelineInputs
    user: UserSpec

    def plan(self, workdir: Path | str, *, strict: bool | None = None) -> PipelineTestingSpec:
        """The validated plan; with ``synthesize_inputs`` (flag or spec file), inputs a skipped data-loading step
        would deliver get sample data made from the config (rtest.synth) first."""
        from rtest.plan.builder import build_plan

        where = self.user.pipeline
        if not where.synthesize_inputs:
            return build_plan(self.inputs, self.user, workdir, strict=strict)
        from rtest.synth.apply import SynthOptions, build_synthesized_plan

        defaults = SynthOptions()
        choice = SynthOptions(rows=where.rows or defaults.rows,
                              seed=where.seed if where.seed is not None else defaults.seed)
        return build_synthesized_plan(self.inputs, self.user, workdir, choice, strict=strict)


def locate(user: UserSpec, *, example: bool, workspace: Workspace, generate_example_data: bool = True,
           dag: Any = None, hint: str | None = None, framework_python: str | None = None,
           use_config_classes: bool = True) -> Selection:
    """The pipeline a merged user spec names; with ``example``, the bundled example fills what the spec leaves out
    (its sample data too). The CLI, the factory and the service all locate through here."""
    from rtest.plan.location import load_located

    found: dict[str, Any] = {}
    if example:
        from rtest.example import example_location

        user, found = example_location(user, workspace, generate_data=generate_example_data)
    where = user.pipeline
    explicit = {"dag": where.dag, "config": where.config, "interfaces": where.interfaces,
                "source_root": where.source_root}
    defaults = {key: value for key, value in found.items() if not explicit.get(key)}
    if dag is not None:
        defaults["dag"] = dag
    named_hint: dict[str, Any] = {"hint": hint} if hint else {}
    inputs = load_located(user, **defaults, framework_python=framework_python, use_config_classes=use_config_classes,
                          **named_hint)
    return Selection(inputs=inputs, user=user)
