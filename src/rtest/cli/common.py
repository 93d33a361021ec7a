"""The commands' options, each taken from its field in rtest.options (help, flags and `--help` panel declared
there once), and turning them into pipeline inputs plus user overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from pydantic import BaseModel

from rtest.located import Selection
from rtest.options import (
    PANELS,
    CacheKey,
    LocalFlags,
    PipelineOptions,
    RunFlags,
    ServiceFlags,
    text_or_json,
)


def option(model: type[BaseModel], name: str, **click: Any) -> Any:
    """The typer option of one model field: its flags, help and panel as the model declares them."""
    field = model.model_fields[name]
    meta = field.json_schema_extra
    assert isinstance(meta, dict), f"{model.__name__}.{name} is not declared with rtest.options.option"
    flags = meta["flags"]
    assert isinstance(flags, list), f"{model.__name__}.{name}: its flags are a list (rtest.options.option)"
    return typer.Option(*map(str, flags), help=field.description, rich_help_panel=PANELS[str(meta["panel"])], **click)


def _format(value: str) -> str:
    from rtest.errors import OptionError

    try:
        return text_or_json(value, flag="")
    except OptionError as exc:  # a usage error: click names the option itself
        raise typer.BadParameter(str(exc).strip()) from None


# ---- which pipeline (PipelineOptions) ----
DagOpt = Annotated[Optional[str], option(PipelineOptions, "dag")]
ConfigOpt = Annotated[Optional[Path], option(PipelineOptions, "config")]
InterfacesOpt = Annotated[Optional[list[Path]], option(PipelineOptions, "interfaces")]
SourceRootOpt = Annotated[Optional[Path], option(PipelineOptions, "source_root")]
ExampleOpt = Annotated[bool, option(PipelineOptions, "example")]
SpecOpt = Annotated[Optional[Path], option(PipelineOptions, "spec")]
InputOpt = Annotated[Optional[list[str]], option(PipelineOptions, "inputs")]
ImageMapOpt = Annotated[Optional[list[str]], option(PipelineOptions, "image_map")]
SourceMapOpt = Annotated[Optional[list[str]], option(PipelineOptions, "source_map")]
ConfigClassesOpt = Annotated[Optional[list[str]], option(PipelineOptions, "config_classes")]
AllowOutsideOpt = Annotated[bool, option(PipelineOptions, "allow_source_outside_root")]
StrictOpt = Annotated[bool, option(PipelineOptions, "strict")]
FollowLinksOpt = Annotated[bool, option(PipelineOptions, "follow_input_links")]
WheelhouseOpt = Annotated[Optional[Path], option(PipelineOptions, "wheelhouse")]
WorkdirOpt = Annotated[Path, option(PipelineOptions, "workdir")]
SynthesizeInputsOpt = Annotated[bool, option(PipelineOptions, "synthesize_inputs")]  # issue 19
RowsOpt = Annotated[Optional[int], option(PipelineOptions, "rows", min=1)]
SeedOpt = Annotated[Optional[int], option(PipelineOptions, "seed")]
FrameworkPythonOpt = Annotated[Optional[Path], option(PipelineOptions, "framework_python")]  # issue 15
NoConfigClassesOpt = Annotated[bool, option(PipelineOptions, "no_config_classes")]
# ---- what a run does (RunFlags), only here (LocalFlags), or on a service (ServiceFlags) ----
JobsOpt = Annotated[Optional[int], option(RunFlags, "jobs", min=1)]
NoCacheOpt = Annotated[bool, option(RunFlags, "no_cache")]
CacheKeyOpt = Annotated[CacheKey, option(RunFlags, "cache_key")]
NoDepsOpt = Annotated[bool, option(RunFlags, "no_deps")]
NetworkOpt = Annotated[Optional[str], option(RunFlags, "network")]
NoLimitsOpt = Annotated[bool, option(RunFlags, "no_limits")]
TimeoutOpt = Annotated[Optional[float], option(RunFlags, "timeout", min=1)]
MemoryOpt = Annotated[Optional[str], option(RunFlags, "memory")]
ModelFolderOpt = Annotated[bool, option(RunFlags, "model_folder")]
MaxOutputFilesOpt = Annotated[Optional[int], option(RunFlags, "max_output_files", min=1)]
MaxOutputBytesOpt = Annotated[Optional[str], option(RunFlags, "max_output_bytes")]
OnlyOpt = Annotated[Optional[list[str]], option(RunFlags, "only", metavar="NODE")]  # issue 15: partial runs
SkipOpt = Annotated[Optional[list[str]], option(RunFlags, "skip", metavar="NODE")]
FromOpt = Annotated[Optional[str], option(RunFlags, "from_node", metavar="NODE")]
ReuseOpt = Annotated[Optional[str], option(RunFlags, "reuse", metavar="RUN_ID")]
KeepGoingOpt = Annotated[bool, option(RunFlags, "keep_going")]
InstallDeclaredOpt = Annotated[bool, option(RunFlags, "install_declared")]
BackendOpt = Annotated[str, option(LocalFlags, "backend")]
RegistryOpt = Annotated[Optional[str], option(LocalFlags, "registry")]  # issue 17: swarm
PlacementOpt = Annotated[Optional[list[str]], option(LocalFlags, "placement")]
JunitOpt = Annotated[Optional[Path], option(LocalFlags, "junit")]
LogFormatOpt = Annotated[str, option(LocalFlags, "log_format")]
VerboseOpt = Annotated[bool, option(LocalFlags, "verbose")]
StepUserOpt = Annotated[Optional[str], option(LocalFlags, "step_user")]  # issue 14
MaxLogBytesOpt = Annotated[Optional[str], option(LocalFlags, "max_log_bytes")]
ServerOpt = Annotated[Optional[str], option(ServiceFlags, "server", envvar="RTEST_SERVER")]
TokenOpt = Annotated[Optional[str], option(ServiceFlags, "token", envvar="RTEST_TOKEN", show_default=False)]
UploadOpt = Annotated[Optional[bool], option(ServiceFlags, "upload")]
# --format is how a command prints, not an option of the run: validated here, the one way (text_or_json)
FormatOpt = Annotated[str, typer.Option("--format", help="text or json.", callback=_format)]


M = TypeVar("M", bound=BaseModel)


def options_from(ctx: typer.Context, model: type[M]) -> M:
    """One options model from a command's parsed parameters (named as its fields; tests/test_options.py checks
    that every parameter is a field). A value the model refuses is the one sentence of a bad option (exit 2)."""
    from pydantic import ValidationError

    from rtest.errors import OptionError

    try:
        return model.model_validate({name: value for name, value in ctx.params.items() if name in model.model_fields})
    except ValidationError as exc:
        first = exc.errors()[0]
        flag = "--" + str(first["loc"][0]).replace("_", "-") if first["loc"] else "an option"
        raise OptionError(f"{flag}: {first['msg']}.") from None


def load_pipeline(options: PipelineOptions, *, generate_example_data: bool = True) -> Selection:
    """The pipeline the options name (explicit values > spec file > --example) and the user's overrides."""
    from rtest.cli.preflight import check_interface_dirs
    from rtest.logs import ensure_logging

    ensure_logging()  # log lines go to stderr, so `--format json` output on stdout stays parseable
    check_interface_dirs(options.interfaces)
    return options.load(generate_example_data=generate_example_data)


def select_pipeline(*, dag: str | None, config: Path | None, interfaces: list[Path] | None,
                    source_root: Path | None, example: bool, spec: Path | None = None,
                    input_flags: list[str] | None = None, image_flags: list[str] | None = None,
                    workdir: Path = Path(".rtest"), generate_example_data: bool = True,
                    source_map_flags: list[str] | None = None, config_classes: list[str] | None = None,
                    allow_source_outside_root: bool = False, strict: bool = False,
                    follow_input_links: bool = False, framework_python: Path | None = None,
                    no_config_classes: bool = False) -> Selection:
    """Keyword form of ``load_pipeline`` for commands not yet moved to PipelineOptions (`rtest deps`)."""
    options = PipelineOptions(
        dag=dag, config=config, interfaces=interfaces, source_root=source_root, example=example, spec=spec,
        inputs=input_flags, image_map=image_flags, workdir=workdir, source_map=source_map_flags,
        config_classes=config_classes, allow_source_outside_root=allow_source_outside_root, strict=strict,
        follow_input_links=follow_input_links, framework_python=framework_python,
        no_config_classes=no_config_classes)
    return load_pipeline(options, generate_example_data=generate_example_data)
