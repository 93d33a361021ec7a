"""A submission -> a plan, on the service: the same policy as the CLI (explicit > spec file > example).

The service's own copy of what `rtest.cli.common.select_pipeline` does for `sandbox run`, so the
service does not import the CLI: a spec file (every path absolute, or inside a bundle) and the
bundled example, whose sample data and wheelhouse the service keeps in its own workdir. The spec's
source map, config classes, allow-outside, strict and wheelhouse mean what the CLI flags mean.
"""

from __future__ import annotations

from pathlib import Path

from rtest.plan.builder import build_plan, load_pipeline_inputs
from rtest.plan.location import locate_pipeline
from rtest.plan.model import PipelineTestingSpec
from rtest.plan.userspec import UserSpec, load_user_spec, parse_input_flags
from rtest.workspace import Workspace


def submitted_spec(spec_path: Path | None, *, example: bool, workspace: Workspace) -> tuple[UserSpec, dict]:
    """The run's user spec (the example's data and wheelhouse filled in) and where its pipeline is."""
    user = load_user_spec(spec_path) if spec_path else UserSpec()
    found: dict = {"dag": None, "config": None, "interfaces": None, "source_root": None}
    if example:
        from rtest.example import example_paths, generate_example_inputs

        paths = example_paths(copy_to=workspace.example_dir)
        found = {"dag": str(paths.dag), "config": paths.config, "interfaces": [paths.interfaces],
                 "source_root": paths.source_root}
        if paths.wheelhouse and not user.wheelhouse:  # the example's own wheels: its dependency steps stay offline
            user.wheelhouse = str(paths.wheelhouse)
        generated = generate_example_inputs(workspace.example_data_dir)
        user = parse_input_flags([f"{key}={path}" for key, path in generated.items()]).merged_with(user)
    return user, found


def plan_submission(spec_path: Path | None, *, example: bool, workspace: Workspace,
                    ) -> tuple[PipelineTestingSpec, UserSpec]:
    """The plan (PlanError when it cannot run, or has warnings under ``strict``) and the spec it came from."""
    user, found = submitted_spec(spec_path, example=example, workspace=workspace)
    where = locate_pipeline(user.pipeline, **found,
                            hint="name them in the run request's spec (pipeline.dag and pipeline.config), or ask "
                                 "for the example")
    spec_where = user.pipeline
    inputs = load_pipeline_inputs(
        where.dag, where.config, where.interfaces, where.source_root,
        source_map=dict(spec_where.source_map), config_classes=list(spec_where.config_classes),
        allow_source_outside_root=spec_where.allow_source_outside_root,
    )
    return build_plan(inputs, user, workspace.root, strict=user.strict), user
