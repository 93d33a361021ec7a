"""Options shared by the commands, and turning them into pipeline inputs plus user overrides."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

if TYPE_CHECKING:  # the planning stack loads only when a command runs, so --help and --version stay quick
    from rtest.plan.builder import PipelineInputs
    from rtest.plan.userspec import UserSpec

DagOpt = Annotated[Optional[str], typer.Option("--dag", help="DAG file (JSON/YAML) or module:function.")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="Pipeline config JSON.")]
InterfacesOpt = Annotated[
    Optional[list[Path]],
    typer.Option(
        "--interfaces", help="Folder of step interface files; repeatable. Default: <config folder>/interfaces."
    ),
]
SourceRootOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--source-root", help="Folder the config's relative source paths start from. Default: the config's folder."
    ),
]
ExampleOpt = Annotated[bool, typer.Option("--example", help="Use the bundled example pipeline.")]
SpecOpt = Annotated[
    Optional[Path], typer.Option("--spec", help="Spec file (YAML/JSON) with inputs, env, arguments, image map.")
]
InputOpt = Annotated[
    Optional[list[str]],
    typer.Option("--input", help="NODE.NAME=PATH for an input no upstream script feeds; repeatable."),
]
ImageMapOpt = Annotated[
    Optional[list[str]],
    typer.Option("--image-map", help="KIND:VERSION=IMAGE, e.g. to use the real SageMaker images; repeatable."),
]
FormatOpt = Annotated[str, typer.Option("--format", help="text or json.")]
# ---- how config paths and values resolve (rtest.plan.sources / values / framework_classes) ----
SourceMapOpt = Annotated[
    Optional[list[str]],
    typer.Option("--source-map", help="FROM=TO: a config path prefix and the local folder it is here; repeatable."),
]
ConfigClassesOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--config-classes",
        help="Python module of the pipeline's own config classes (exact env vars and arguments); repeatable.",
    ),
]
AllowOutsideOpt = Annotated[
    bool,
    typer.Option("--allow-source-outside-root", help="Accept source folders and entry points outside the source root."),
]
StrictOpt = Annotated[
    bool, typer.Option("--strict", help="Plan warnings (guessed or missing values) are errors (exit 2).")
]
WorkdirOpt = Annotated[Path, typer.Option("--workdir", help="Where runs, caches and generated example data live.")]
FollowLinksOpt = Annotated[
    bool,
    typer.Option(
        "--follow-input-links", help="Copy what symlinks in an --input folder point at even outside that folder."
    ),
]


@dataclass
class Selection:
    inputs: PipelineInputs
    user: UserSpec


def select_pipeline(
    *,
    dag: str | None,
    config: Path | None,
    interfaces: list[Path] | None,
    source_root: Path | None,
    example: bool,
    spec: Path | None = None,
    input_flags: list[str] | None = None,
    image_flags: list[str] | None = None,
    workdir: Path = Path(".rtest"),
    generate_example_data: bool = True,
    source_map_flags: list[str] | None = None,
    config_classes: list[str] | None = None,
    allow_source_outside_root: bool = False,
    strict: bool = False,
    follow_input_links: bool = False,
) -> Selection:
    """Resolve which pipeline the flags name (explicit flags > spec file > --example) and the user's overrides."""
    from rtest.logs import ensure_logging

    ensure_logging()  # log lines go to stderr, so `--format json` output on stdout stays parseable
    from rtest.cli.preflight import check_interface_dirs
    from rtest.plan.builder import load_pipeline_inputs
    from rtest.plan.location import locate_pipeline
    from rtest.plan.sources import parse_source_map_flags
    from rtest.plan.userspec import UserSpec, load_user_spec, parse_image_flags, parse_input_flags
    from rtest.workspace import Workspace

    check_interface_dirs(interfaces)
    user = load_user_spec(spec) if spec else UserSpec()
    if example:
        from rtest.example import example_paths, generate_example_inputs

        workspace = Workspace(workdir)
        paths = example_paths(copy_to=workspace.example_dir if generate_example_data else None)
        dag, config = dag or str(paths.dag), config or paths.config
        interfaces = interfaces or [paths.interfaces]
        source_root = source_root or paths.source_root
        if paths.wheelhouse and not user.wheelhouse:  # the example's own wheels: its dependency steps stay offline
            user.wheelhouse = str(paths.wheelhouse)
        if generate_example_data:  # sample data is the one thing the example cannot ship as config
            generated = generate_example_inputs(workspace.example_data_dir)
            user = parse_input_flags([f"{key}={path}" for key, path in generated.items()]).merged_with(user)
    where = locate_pipeline(user.pipeline, dag=dag, config=config, interfaces=interfaces, source_root=source_root)
    spec_where = user.pipeline
    inputs = load_pipeline_inputs(
        where.dag, where.config, where.interfaces, where.source_root,
        source_map={**spec_where.source_map, **parse_source_map_flags(source_map_flags)},
        allow_source_outside_root=allow_source_outside_root or spec_where.allow_source_outside_root,
        config_classes=list(dict.fromkeys([*spec_where.config_classes, *(config_classes or [])])),
    )
    overrides = parse_input_flags(input_flags)
    overrides.image_map.update(parse_image_flags(image_flags))
    overrides.strict = strict
    overrides.follow_input_links = follow_input_links
    return Selection(inputs=inputs, user=user.merged_with(overrides))
