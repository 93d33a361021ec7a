"""A submission -> a plan, on the service: the same policy as the CLI (explicit > spec file > example).

The spec arrives merged (`rtest.options.PipelineOptions.user_spec`, on the client) and is located through
the same `rtest.located.locate` as a local run: every path absolute, or inside a bundle; the bundled
example's sample data and wheelhouse are kept in the service's own workdir.
"""

from __future__ import annotations

from pathlib import Path

from rtest.located import locate
from rtest.plan.model import PipelineTestingSpec
from rtest.plan.userspec import UserSpec, load_user_spec
from rtest.workspace import Workspace

HINT = "name them in the run request's spec (pipeline.dag and pipeline.config), or ask for the example"


def plan_submission(spec_path: Path | None, *, example: bool, workspace: Workspace, config_classes: bool = False,
                    ) -> tuple[PipelineTestingSpec, UserSpec]:
    """The plan (PlanError when it cannot run, or has warnings under ``strict``) and the spec it came from.

    ``config_classes``: whether the config's classes may run (isolated, see rtest.plan.framework_classes); a
    submitted config names their modules, so the service allows it only with --allow-code (or the example)."""
    user = load_user_spec(spec_path) if spec_path else UserSpec()
    chosen = locate(user, example=example, workspace=workspace, hint=HINT,
                    use_config_classes=config_classes or example)
    return chosen.plan(workspace.root, strict=chosen.user.strict), chosen.user
