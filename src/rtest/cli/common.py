"""Options shared by the commands, and turning them into pipeline inputs plus user overrides."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from rtest.errors import PlanError

if TYPE_CHECKING:  # the planning stack loads only when a command runs, so --help and --version stay quick
    from rtest.plan.builder import PipelineInputs
    from rtest.plan.userspec import UserSpec

DagOpt = Annotated[Optional[str], typer.Option("--dag", help="DAG file (JSON/YAML) or module:function.")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="Pipeline config JSON.")]
InterfacesOpt = Annotated[
    Optional[list[Path]], typer.Option("--interfaces", help="Folder of step interface files; repeatable. Default: <config folder>/interfaces.")
]
SourceRootOpt = Annotated[
    Optional[Path], typer.Option("--source-root", help="Folder the config's relative source paths start from. Default: the config's folder.")
]
ExampleOpt = Annotated[bool, typer.Option("--example", help="Use the bundled example pipeline.")]
SpecOpt = Annotated[Optional[Path], typer.Option("--spec", help="Spec file (YAML/JSON) with inputs, env, arguments, image map.")]
InputOpt = Annotated[Optional[list[str]], typer.Option("--input", help="NODE.NAME=PATH for an input no upstream script feeds; repeatable.")]
ImageMapOpt = Annotated[Optional[list[str]], typer.Option("--image-map", help="KIND:VERSION=IMAGE, e.g. to use the real SageMaker images; repeatable.")]
FormatOpt = Annotated[str, typer.Option("--format", help="text or json.")]
WorkdirOpt = Annotated[Path, typer.Option("--workdir", help="Where runs, caches and generated example data live.")]


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
) -> Selection:
    """Resolve which pipeline the flags name (explicit flags > spec file > --example) and the user's overrides."""
    from rtest.plan.builder import load_pipeline_inputs
    from rtest.plan.userspec import UserSpec, load_user_spec, parse_image_flags, parse_input_flags

    user = load_user_spec(spec) if spec else UserSpec()
    where = user.pipeline
    if example:
        from rtest.example import example_paths, generate_example_inputs

        paths = example_paths(copy_to=Path(workdir) / "example" if generate_example_data else None)
        dag, config = dag or str(paths.dag), config or paths.config
        interfaces = interfaces or [paths.interfaces]
        source_root = source_root or paths.source_root
        if paths.wheelhouse and not user.wheelhouse:  # the example's own wheels: its dependency steps stay offline
            user.wheelhouse = str(paths.wheelhouse)
        if generate_example_data:  # sample data is the one thing the example cannot ship as config
            generated = generate_example_inputs(Path(workdir) / "example-data")
            user = parse_input_flags([f"{key}={path}" for key, path in generated.items()]).merged_with(user)
    dag = dag or where.dag
    config = config or (Path(where.config) if where.config else None)
    interfaces = interfaces or [Path(d) for d in where.interfaces] or None
    source_root = source_root or (Path(where.source_root) if where.source_root else None)
    if not dag or not config:
        missing = " and ".join(flag for flag, value in (("--dag", dag), ("--config", config)) if not value)
        raise PlanError(f"No pipeline given: pass {missing} (or --example, or a --spec file that names them).")
    inputs = load_pipeline_inputs(dag, config, interfaces, source_root)
    overrides = parse_input_flags(input_flags)
    overrides.image_map.update(parse_image_flags(image_flags))
    return Selection(inputs=inputs, user=user.merged_with(overrides))
