"""A submission -> a plan, on the service: the same policy as the CLI (explicit > spec file > example).

The same pieces as `rtest.cli.common.select_pipeline` (`plan.location.load_located`,
`example.example_location`), without the CLI: a spec file (every path absolute, or inside a bundle)
and the bundled example, whose sample data and wheelhouse the service keeps in its own workdir. The spec's
source map, config classes, allow-outside, strict and wheelhouse mean what the CLI flags mean.
"""

from __future__ import annotations

from pathlib import Path

from rtest.plan.builder import build_plan
from rtest.plan.location import load_located
from rtest.plan.model import PipelineTestingSpec
from rtest.plan.userspec import UserSpec, load_user_spec
from rtest.workspace import Workspace


def submitted_spec(spec_path: Path | None, *, example: bool, workspace: Workspace) -> tuple[UserSpec, dict]:
    """The run's user spec (the example's data and wheelhouse filled in) and where its pipeline is."""
    user = load_user_spec(spec_path) if spec_path else UserSpec()
    if example:
        from rtest.example import example_location

        return example_location(user, workspace)
    return user, {}


def plan_submission(spec_path: Path | None, *, example: bool, workspace: Workspace, config_classes: bool = False,
                    ) -> tuple[PipelineTestingSpec, UserSpec]:
    """The plan (PlanError when it cannot run, or has warnings under ``strict``) and the spec it came from.

    ``config_classes``: whether the config's classes may run (isolated, see rtest.plan.framework_classes); a
    submitted config names their modules, so the service allows it only with --allow-code (or the example)."""
    user, found = submitted_spec(spec_path, example=example, workspace=workspace)
    inputs = load_located(user, **found, use_config_classes=config_classes or example,
                          hint="name them in the run request's spec (pipeline.dag and pipeline.config), or ask for "
                               "the example")
    return build_plan(inputs, user, workspace.root, strict=user.strict), user
