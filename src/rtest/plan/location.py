"""Where the pipeline lives: one policy for the CLI and the factory.

Explicitly given values (flags, keyword arguments, the bundled example) win over the spec
file's ``pipeline:`` section; a DAG and a config are required, the rest defaults later.
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
                 source_map: dict[str, str] | None = None, config_classes: list[str] | None = None,
                 allow_source_outside_root: bool = False, framework_python: str | None = None,
                 use_config_classes: bool = True, **hint: str):
    """The located pipeline, loaded with the spec file's source map, config classes and allow-outside
    switch merged under the explicit ones (the CLI's flags, or nothing on the service)."""
    from rtest.plan.builder import load_pipeline_inputs

    where = locate_pipeline(user.pipeline, dag=dag, config=config, interfaces=interfaces, source_root=source_root,
                            **hint)
    spec = user.pipeline
    return load_pipeline_inputs(
        where.dag, where.config, where.interfaces, where.source_root,
        source_map={**spec.source_map, **(source_map or {})},
        allow_source_outside_root=allow_source_outside_root or spec.allow_source_outside_root,
        config_classes=list(dict.fromkeys([*spec.config_classes, *(config_classes or [])])),
        framework_python=framework_python, use_config_classes=use_config_classes,
    )
