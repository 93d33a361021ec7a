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
# ---- issue 15: where the pipeline's config classes run (rtest.plan.framework_classes) ----
FrameworkPythonOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--framework-python",
        help="Python of your project's venv; the pipeline's config classes run there, in a subprocess, "
             "to give the exact env vars and arguments.",
    ),
]
NoConfigClassesOpt = Annotated[
    bool, typer.Option("--no-config-classes", help="Use rtest's rules even where the config classes are reachable.")
]
# ---- end issue 15 ----
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
    framework_python: Path | None = None,
    no_config_classes: bool = False,
) -> Selection:
    """Resolve which pipeline the flags name (explicit flags > spec file > --example) and the user's overrides."""
    from rtest.cli.preflight import check_interface_dirs
    from rtest.logs import ensure_logging
    from rtest.plan.location import load_located
    from rtest.plan.sources import parse_source_map_flags
    from rtest.plan.userspec import UserSpec, load_user_spec, parse_image_flags, parse_input_flags

    ensure_logging()  # log lines go to stderr, so `--format json` output on stdout stays parseable
    check_interface_dirs(interfaces)
    user = load_user_spec(spec) if spec else UserSpec()
    if example:
        from rtest.example import example_location
        from rtest.workspace import Workspace

        user, found = example_location(user, Workspace(workdir), generate_data=generate_example_data)
        dag, config = dag or found["dag"], config or found["config"]
        interfaces, source_root = interfaces or found["interfaces"], source_root or found["source_root"]
    inputs = load_located(user, dag=dag, config=config, interfaces=interfaces, source_root=source_root,
                          source_map=parse_source_map_flags(source_map_flags), config_classes=config_classes,
                          allow_source_outside_root=allow_source_outside_root,
                          framework_python=_interpreter(framework_python), use_config_classes=not no_config_classes)
    overrides = parse_input_flags(input_flags)
    overrides.image_map.update(parse_image_flags(image_flags))
    overrides.strict = strict
    overrides.follow_input_links = follow_input_links
    return Selection(inputs=inputs, user=user.merged_with(overrides))


def _interpreter(path: Path | None) -> str | None:
    """--framework-python as an absolute path to an executable, or a sentence saying what is wrong."""
    import os

    from rtest.errors import PlanError

    if path is None:
        return None
    found = path.expanduser().absolute()
    if not found.is_file() or not os.access(found, os.X_OK):
        raise PlanError(f"--framework-python {path}: not an executable file; pass your project venv's python, "
                        "e.g. --framework-python ~/project/.venv/bin/python.")
    return str(found)
