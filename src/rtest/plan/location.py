"""Where the pipeline lives: one policy for the CLI, the factory and the service.

Explicit values are merged over the spec file once, in ``rtest.options.PipelineOptions.user_spec``;
here the keyword arguments only fill what the spec leaves out (the bundled example's folders, or a
DAG object). A DAG and a config are required, the rest defaults later.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtest.errors import PlanError
from rtest.plan.userspec import PipelineLocation, UserSpec


@dataclass(frozen=True)
class Located:
    dag: Any  # a file path, "module:function", or a DAG object
    config: Path
    interfaces: list[Path] | None
    source_root: Path | None


def locate_pipeline(spec: PipelineLocation | None, *, dag: Any = None, config: Path | str | None = None,
                    interfaces: list[Path | str] | None = None, source_root: Path | str | None = None,
                    hint: str = "pass --dag and --config (or --example, or a --spec file that names them)") -> Located:
    spec = spec or PipelineLocation()
    dag = dag if dag is not None else spec.dag
    config = config or spec.config
    if dag is None or not config:
        missing = " and ".join(name for name, value in (("a DAG", dag), ("a config", config)) if not value)
        raise PlanError(f"No pipeline given: {missing} missing; {hint}.")
    folders = interfaces or spec.interfaces
    root = source_root or spec.source_root
    return Located(dag=dag, config=Path(config), interfaces=[Path(d) for d in folders] or None,
                   source_root=Path(root) if root else None)


def load_located(user: UserSpec, *, dag: Any = None, config: Path | str | None = None,
                 interfaces: list[Path | str] | None = None, source_root: Path | str | None = None,
                 framework_python: str | None = None, use_config_classes: bool = True, **hint: str):
    """The located pipeline, loaded with the spec's source map, config classes and allow-outside switch
    (``framework_python``/``use_config_classes``: where the config classes run, rtest.plan.framework_classes).

    ``user`` is already merged (explicit values over the spec file: ``rtest.options.PipelineOptions.user_spec``);
    the keyword arguments are what the spec leaves out (the example's folders) or a DAG object."""
    from rtest.plan.builder import load_pipeline_inputs

    where = locate_pipeline(user.pipeline, dag=dag, config=config, interfaces=interfaces, source_root=source_root,
                            **hint)
    spec = user.pipeline
    return load_pipeline_inputs(
        where.dag, where.config, where.interfaces, where.source_root, source_map=dict(spec.source_map),
        allow_source_outside_root=spec.allow_source_outside_root, config_classes=list(spec.config_classes),
        framework_python=framework_python, use_config_classes=use_config_classes,
    )
