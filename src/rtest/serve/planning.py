"""A submission -> a plan, on the service: the same policy as the CLI (explicit > spec file > example).

The service's own copy of what `rtest.cli.common.select_pipeline` does for `sandbox run`, so the
service does not import the CLI: a spec file (every path absolute, or inside a bundle) and the
bundled example, whose sample data the service generates in its own workdir.
"""

from __future__ import annotations

from pathlib import Path

from rtest.plan.builder import build_plan, load_pipeline_inputs
from rtest.plan.location import locate_pipeline
from rtest.plan.model import PipelineTestingSpec
from rtest.plan.userspec import UserSpec, load_user_spec, parse_input_flags
from rtest.workspace import Workspace


def plan_submission(spec_path: Path | None, *, example: bool, workspace: Workspace) -> PipelineTestingSpec:
    user = load_user_spec(spec_path) if spec_path else UserSpec()
    dag = config = interfaces = source_root = None
    if example:
        from rtest.example import example_paths, generate_example_inputs

        paths = example_paths(copy_to=workspace.example_dir)
        dag, config, interfaces, source_root = str(paths.dag), paths.config, [paths.interfaces], paths.source_root
        generated = generate_example_inputs(workspace.example_data_dir)
        user = parse_input_flags([f"{key}={path}" for key, path in generated.items()]).merged_with(user)
    where = locate_pipeline(user.pipeline, dag=dag, config=config, interfaces=interfaces, source_root=source_root,
                            hint="name them in the run request's spec (pipeline.dag and pipeline.config), or ask "
                                 "for the example")
    inputs = load_pipeline_inputs(where.dag, where.config, where.interfaces, where.source_root)
    return build_plan(inputs, user)
