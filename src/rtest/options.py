"""Every option of a run, declared once: what the CLI parses, the factory takes and the service receives.

Each field is one option: its type, default, limits, help text, `--help` panel and flags. The CLI builds
these models from its parsed parameters (field names are the parameters' names), the factory from its keyword
arguments (`run_keywords`), the service reads `RunRequest` as its request body and the client sends one.
`PipelineOptions.user_spec` is the ONE merge of "explicit beats the spec file"; `rtest.session.run_request`
is the one run path that reads them all. How to add an option: docs/design.md, "Options".
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from rtest.errors import OptionError
from rtest.modelbase import Model
from rtest.sizes import parse_log_bytes, parse_memory, parse_output_bytes, parse_step_user

if TYPE_CHECKING:  # planning loads only when a command runs
    from rtest.located import Selection
    from rtest.plan import selection
    from rtest.plan.settings import CommandLine
    from rtest.plan.userspec import UserSpec

PANELS = {"pipeline": "Pipeline", "run": "Run", "sandbox": "Sandbox (each step's container)",
          "service": "Service (rtest serve)"}


class CacheKey(str, Enum):
    """What of the source folder a step's cache key covers (the one representation of --cache-key)."""

    imports = "imports"
    full = "full"


def option(default: Any, help: str, panel: str, *flags: str, **limits: Any) -> Any:
    """A model field that is also a command-line option: ``flags`` and ``panel`` are read by rtest.cli.common."""
    return Field(default, description=help, json_schema_extra={"panel": panel, "flags": list(flags)}, **limits)


class PipelineOptions(Model):
    """Which pipeline, and how its paths and values resolve: a spec file's `pipeline:` section, made explicit."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    dag: Any = option(None, "DAG file (JSON/YAML) or module:function.", "pipeline", "--dag")
    config: Path | None = option(None, "Pipeline config JSON.", "pipeline", "--config")
    interfaces: list[Path] | None = option(
        None, "Folder of step interface files; repeatable. Default: <config folder>/interfaces.", "pipeline",
        "--interfaces")
    source_root: Path | None = option(
        None, "Folder the config's relative source paths start from. Default: the config's folder.", "pipeline",
        "--source-root")
    example: bool = option(False, "Use the bundled example pipeline.", "pipeline", "--example")
    spec: Path | None = option(None, "Spec file (YAML/JSON) with inputs, env, arguments, image map.", "pipeline",
                               "--spec")
    inputs: list[str] | None = option(
        None, "NODE.NAME=PATH for an input no upstream script feeds; repeatable.", "pipeline", "--input")
    image_map: list[str] | None = option(
        None, "KIND:VERSION=IMAGE, e.g. to use the real SageMaker images; repeatable.", "pipeline", "--image-map")
    source_map: list[str] | None = option(
        None, "FROM=TO: a config path prefix and the local folder it is here; repeatable.", "pipeline",
        "--source-map")
    config_classes: list[str] | None = option(
        None, "Python module of the pipeline's own config classes (exact env vars and arguments); repeatable.",
        "pipeline", "--config-classes")
    allow_source_outside_root: bool = option(
        False, "Accept source folders and entry points outside the source root.", "pipeline",
        "--allow-source-outside-root")
    strict: bool = option(False, "Plan warnings (guessed or missing values) are errors (exit 2).", "pipeline",
                          "--strict")
    follow_input_links: bool = option(
        False, "Copy what symlinks in an --input folder point at even outside that folder.", "pipeline",
        "--follow-input-links")
    wheelhouse: Path | None = option(None, "Folder of wheels for steps' requirements; never use an index.", "run",
                                     "--wheelhouse")
    # -- issue 19: sample data for loader-fed inputs, synthesized from the config (rtest.synth)
    synthesize_inputs: bool = option(
        False, "Feed inputs that skipped data-loading steps would deliver with sample data made from the config "
        "(written to <workdir>/synth); --input still wins.", "pipeline", "--synthesize-inputs")
    rows: int | None = option(None, "Rows of each synthesized dataset (default 2000).", "pipeline", "--rows", ge=1)
    seed: int | None = option(None, "Seed of the synthesized data (default 0).", "pipeline", "--seed")
    # -- issue 15: where the pipeline's config classes run (rtest.plan.framework_classes); this machine only
    framework_python: Path | None = option(
        None, "Python of your project's venv; the pipeline's config classes run there, in a subprocess, to give the "
        "exact env vars and arguments.", "pipeline", "--framework-python")
    no_config_classes: bool = option(False, "Use rtest's rules even where the config classes are reachable.",
                                     "pipeline", "--no-config-classes")

    @field_validator("framework_python")
    @classmethod
    def _interpreter(cls, path: Path | None) -> Path | None:
        """An absolute path to an executable, or a sentence saying what is wrong."""
        import os

        from rtest.errors import PlanError

        if path is None:
            return None
        found = path.expanduser().absolute()
        if not found.is_file() or not os.access(found, os.X_OK):
            raise PlanError(f"--framework-python {path}: not an executable file; pass your project venv's python, "
                            "e.g. --framework-python ~/project/.venv/bin/python.")
        return found
    workdir: Path = option(Path(".rtest"), "Where runs, caches and generated example data live.", "pipeline",
                           "--workdir")

    @field_validator("source_map", mode="before")
    @classmethod
    def _source_map(cls, value: Any) -> Any:
        """The factory's ``{prefix: folder}`` as the CLI's FROM=TO."""
        return [f"{prefix}={folder}" for prefix, folder in value.items()] if isinstance(value, dict) else value

    def user_spec(self, base: UserSpec | None = None) -> UserSpec:
        """THE merge: the spec file (or ``base``, the factory's spec object) with every explicit value over it, paths
        absolute, so the same spec plans the same here, in the factory and on a service."""
        from rtest.plan.sources import parse_source_map_flags
        from rtest.plan.userspec import UserSpec, load_user_spec, parse_image_flags, parse_input_flags

        user = base.model_copy(deep=True) if base else load_user_spec(self.spec) if self.spec else UserSpec()
        where = user.pipeline
        if isinstance(self.dag, (str, Path)) and str(self.dag):
            dag = str(self.dag)
            where.dag = dag if ":" in dag and not Path(dag).exists() else str(Path(dag).expanduser().resolve())
        where.config = _absolute(self.config) or where.config
        where.interfaces = [str(Path(d).expanduser().resolve()) for d in self.interfaces] if self.interfaces \
            else where.interfaces
        where.source_root = _absolute(self.source_root) or where.source_root
        where.source_map = {**where.source_map, **parse_source_map_flags(self.source_map)}
        where.config_classes = list(dict.fromkeys([*where.config_classes, *(self.config_classes or [])]))
        where.allow_source_outside_root = where.allow_source_outside_root or self.allow_source_outside_root
        overrides = parse_input_flags(self.inputs)
        overrides.image_map.update(parse_image_flags(self.image_map))
        overrides.strict = self.strict
        overrides.follow_input_links = self.follow_input_links
        merged = user.merged_with(overrides)
        merged.wheelhouse = _absolute(self.wheelhouse) or merged.wheelhouse
        where = merged.pipeline
        where.synthesize_inputs = where.synthesize_inputs or self.synthesize_inputs
        where.rows = self.rows or where.rows
        where.seed = self.seed if self.seed is not None else where.seed
        return merged

    def load(self, *, generate_example_data: bool = True, base: UserSpec | None = None) -> Selection:
        """The pipeline's inputs and the merged user spec (a DAG object given as ``dag`` is used as it is)."""
        from rtest.located import locate
        from rtest.workspace import Workspace

        user = self.user_spec(base)
        dag = self.dag if self.dag is not None and not isinstance(self.dag, (str, Path)) else None
        return locate(user, example=self.example, workspace=Workspace(self.workdir),
                      generate_example_data=generate_example_data, dag=dag,
                      framework_python=str(self.framework_python) if self.framework_python else None,
                      use_config_classes=not self.no_config_classes)


class RunFlags(Model):
    """What a run is asked to do; the same on this machine, in the factory and on a service."""

    jobs: int | None = option(None, "Steps run at once. Default: the number of CPUs.", "run", "--jobs", "-j", ge=1)
    no_cache: bool = option(False, "Rerun every step even if nothing changed.", "run", "--no-cache")
    cache_key: CacheKey = option(CacheKey.imports, (
        "What of the source folder a step's cache key covers: "
        "imports (its script, the modules it imports, files it names, requirements) or full."), "run", "--cache-key")
    no_deps: bool = option(False, "Run steps in their images as they are: no dependency images, no wheelhouse.",
                           "run", "--no-deps")
    network: str | None = option(None, "Container network; default none (no network), e.g. bridge.", "sandbox",
                                 "--network")
    no_limits: bool = option(False, "No CPU/memory limits from the instance type.", "sandbox", "--no-limits")
    timeout: float | None = option(None, "Max runtime of every step, in seconds.", "sandbox", "--timeout", gt=0)
    memory: int | None = option(None, "Memory limit of every step, e.g. 512m or 2g (overrides the instance type).",
                                "sandbox", "--memory")
    model_folder: bool = option(False, "Pass /opt/ml/model on as a folder, not model.tar.gz.", "sandbox",
                                "--model-folder")
    max_output_files: int | None = option(
        None, "Most files and folders one step output may hold (default 200000); more fails the step.", "sandbox",
        "--max-output-files", ge=1)
    max_output_bytes: int | None = option(
        None, "Most bytes one step output may hold, e.g. 100g (default 50g); more fails the step.", "sandbox",
        "--max-output-bytes", ge=1)
    # -- issue 15: partial runs and SageMaker's install rules
    only: list[str] | None = option(None, "Run only these steps (repeat, or comma-separate); the outputs of upstream "
                                    "steps come from an earlier run.", "run", "--only")
    skip: list[str] | None = option(None, "Do not run these steps (repeat, or comma-separate).", "run", "--skip")
    from_node: str | None = option(None, "Run this step and everything downstream of it.", "run", "--from")
    reuse: str | None = option(None, "Take the outputs of steps not run from this earlier run (default: the newest "
                               "run that has them).", "run", "--reuse")
    keep_going: bool = option(False, "A step whose image is missing fails alone (with the reason); the other steps "
                              "still run.", "run", "--keep-going")
    install_declared: bool = option(False, "Also install the interfaces' framework_requirements (SageMaker does not: "
                                    "they are metadata).", "run", "--install-declared")
    # -- issue 21: the inference check
    skip_inference_check: bool = option(
        False, "Skip registration nodes instead of serving the packaged model its payload samples.", "run",
        "--skip-inference-check")
    # -- new run options go above this line, each with its panel and flag (docs/design.md, "Options")

    @field_validator("only", "skip", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        """`--only A,B --only C`: comma-separated or repeated."""
        if value is None or isinstance(value, str):
            value = [value] if value else None
        return [n.strip() for v in value for n in str(v).split(",") if n.strip()] if value is not None else None

    @field_validator("memory", "max_output_bytes", mode="before")
    @classmethod
    def _sizes(cls, value: Any, info: ValidationInfo) -> Any:
        return _written(value, info)

    @model_validator(mode="before")
    @classmethod
    def _older_names(cls, data: Any) -> Any:
        """The names of earlier requests and factory keywords (``settings: {cache: false}``, ``use_cache``,
        ``deps``) read as today's fields."""
        if not isinstance(data, dict):
            return data
        data = {**data, **(data.get("settings") or {})}
        data.pop("settings", None)
        for old, (new, negate) in _OLDER_NAMES.items():
            if old in data:
                value = data.pop(old)
                data.setdefault(new, (not value) if negate else value)
        return data

    def step_flags(self) -> CommandLine:
        """The per-step settings these flags set (rtest.plan.settings turns them into each step's settings)."""
        from rtest.plan.settings import CommandLine

        return CommandLine(timeout_s=self.timeout, network=self.network, limits=not self.no_limits,
                           memory_bytes=self.memory, cache=not self.no_cache, pack_model=not self.model_folder)

    def selection(self) -> selection.Selection:
        """Which steps run (rtest.plan.selection)."""
        from rtest.plan.selection import Selection

        return Selection(only=tuple(self.only or ()), skip=tuple(self.skip or ()), from_node=self.from_node,
                         reuse_run=self.reuse)

    def output_caps(self) -> dict[str, int]:
        caps = {"max_output_files": self.max_output_files, "max_output_bytes": self.max_output_bytes}
        return {name: value for name, value in caps.items() if value is not None}


# earlier request fields and factory keywords -> (field, negated)
_OLDER_NAMES = {"cache": ("no_cache", True), "use_cache": ("no_cache", True), "limits": ("no_limits", True),
                "pack_model": ("model_folder", True), "deps": ("no_deps", True), "timeout_s": ("timeout", False),
                "memory_bytes": ("memory", False)}


class LocalFlags(Model):
    """What only a run on this machine takes (a service has its own backend and writes its own reports)."""

    backend: str = option("docker", "Where steps run: docker (the default) or swarm (the Swarm whose manager "
                          "DOCKER_HOST is).", "run", "--backend")
    # -- issue 17: the swarm backend's own options
    registry: str | None = option(None, "swarm: push the images the plan needs to this registry (HOST:PORT) so every "
                                  "node can pull them.", "run", "--registry")
    placement: list[str] | None = option(None, "swarm: a placement constraint, [NODE=]KEY==VALUE (e.g. "
                                         "node.hostname==gpu1); repeatable.", "run", "--placement")
    junit: Path | None = option(None, "Also write JUnit XML here.", "run", "--junit")
    log_format: str = option("text", "text or json (for machines).", "run", "--log-format")
    verbose: bool = option(False, "Log what the engine does.", "run", "--verbose", "-v")
    # -- issue 14: the operator's bounds (a service sets them with `rtest serve`, never a submission)
    step_user: str | None = option(
        None, "UID:GID steps run as. Default: yours; 65534:65534 when rtest runs as root (steps never run as root).",
        "sandbox", "--step-user")
    max_log_bytes: int | None = option(
        None, "Most log one step keeps, e.g. 64m (the default): its first and last half, and a line saying what was "
        "dropped.", "sandbox", "--max-log-bytes")
    html: bool = True  # the factory's html=False: no report.html
    run_id: str | None = None  # the factory may name its run
    stop_grace_s: float = 10.0  # SIGTERM to SIGKILL when a step is stopped

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        return text_or_json(value, "--log-format", "log format")

    def backend_options(self, user: UserSpec | None = None) -> dict[str, Any]:
        """The backend's own options: a registry, and placement constraints from --placement (`[NODE=]RULE`) and
        the spec file's per-script `placement`; unset ones are None."""
        per_node: dict[str, list[str]] = {}
        for node, overrides in (user.scripts.items() if user is not None else ()):
            if overrides.placement:
                per_node.setdefault(node, []).extend(overrides.placement)
        for flag in self.placement or []:
            node, sep, rule = flag.partition("=")
            if sep and not rule.startswith("=") and "." not in node:  # NODE=node.hostname==x
                per_node.setdefault(node, []).append(rule)
            else:
                per_node.setdefault("*", []).append(flag)
        # a backend that takes none of them refuses them (rtest.run.backends.create_backend)
        return {"registry": self.registry, "placement": per_node or None}

    @field_validator("step_user", "max_log_bytes", mode="before")
    @classmethod
    def _bounds(cls, value: Any, info: ValidationInfo) -> Any:
        return _written(value, info)


class ServiceFlags(Model):
    """Hand the run to an `rtest serve` service instead (a client's flags; the service never sees them)."""

    server: str | None = option(None, "Run on an `rtest serve` service at this URL.", "service", "--server")
    token: str | None = option(None, "The service's bearer token.", "service", "--token")
    upload: bool | None = option(
        None, "Send a bundle (default: only when the service does not share this file system).", "service",
        "--upload/--no-upload")


class RunRequest(RunFlags):
    """The service's request body: the run flags, plus the pipeline as ONE user spec (`PipelineOptions.user_spec`,
    absolute server paths; with a bundle upload its paths are relative to the bundle and it travels inside it)."""

    example: bool = False
    spec: dict[str, Any] | None = None
    submitter: str | None = None
    bundle: bool = False  # set by the service when a bundle came with the request

    def flags(self) -> RunFlags:
        return RunFlags.model_validate(self.model_dump(include=set(RunFlags.model_fields)))


# options written as text on a command line (512m, 65534:65534) and the one parser of each
_PARSERS = {"memory": parse_memory, "max_output_bytes": parse_output_bytes, "max_log_bytes": parse_log_bytes,
            "step_user": parse_step_user}


def _written(value: Any, info: ValidationInfo) -> Any:
    return _PARSERS[str(info.field_name)](value) if isinstance(value, str) else value


def text_or_json(value: str, flag: str = "--format", what: str = "format") -> str:
    """The one check of --format and --log-format."""
    if value not in ("text", "json"):
        raise OptionError(f"{flag} {value[:20]!r} is not a {what}; use text or json.".strip())
    return value


def run_keywords(keywords: dict[str, Any]) -> tuple[RunFlags, LocalFlags]:
    """The factory's keyword arguments (today's field names, or the older ones) as the models; unknown names
    are a TypeError, as for any function."""
    known = set(RunFlags.model_fields) | set(LocalFlags.model_fields) | set(_OLDER_NAMES)
    unknown = set(keywords) - known
    if unknown:
        raise TypeError(f"execute_dag_guided_testing() got unknown options: {', '.join(sorted(unknown))}")
    local = {k: v for k, v in keywords.items() if k in LocalFlags.model_fields}
    run = {k: v for k, v in keywords.items() if k not in LocalFlags.model_fields}
    return RunFlags.model_validate(run), LocalFlags.model_validate(local)


def _absolute(path: Path | str | None) -> str | None:
    return str(Path(path).expanduser().resolve()) if path else None
