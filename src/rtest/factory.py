"""InteractiveRuntimeTestingFactory: the Python API for configuring and running a pipeline's scripts.

It asks only for what no config can know (sample data for source inputs),
validates each answer at once, and runs the same engine as `rtest sandbox run`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rtest import factory_view
from rtest.errors import RtestError
from rtest.logs import quiet_unless_configured
from rtest.plan.builder import (
    PipelineInputs,
    Problem,
    draft_plan,
    plan_problems,
    require_complete,
)
from rtest.plan.input_paths import absolute_path
from rtest.plan.location import locate_pipeline
from rtest.plan.model import PipelineTestingSpec, ScriptExecutionSpec
from rtest.plan.userspec import ScriptOverrides, UserSpec, load_user_spec, save_user_spec

if TYPE_CHECKING:
    from rtest.options import RunFlags


class InteractiveRuntimeTestingFactory:
    def __init__(
        self,
        dag: Any,
        config_path: Path | str,
        *,
        interface_dirs: Sequence[Path | str] | None = None,
        source_root: Path | str | None = None,
        workspace_dir: Path | str = ".rtest",
        user_spec: UserSpec | None = None,
        source_map: dict[str, str] | None = None,
        config_classes: list[str] | None = None,
        allow_source_outside_root: bool = False,
        strict: bool = False,
        follow_input_links: bool = False,
    ) -> None:
        """``source_map``: config path prefix -> local folder; ``config_classes``: modules of the pipeline's own
        config classes; ``strict``: plan warnings are errors when running (see README, "Values and sources")."""
        from rtest.options import PipelineOptions

        options = PipelineOptions(  # merged over ``user_spec`` as the CLI's flags are over a spec file
            dag=dag, config=config_path, interfaces=interface_dirs, source_root=source_root, source_map=source_map,
            config_classes=config_classes, allow_source_outside_root=allow_source_outside_root, strict=strict,
            follow_input_links=follow_input_links, workdir=workspace_dir)
        chosen = options.load(base=user_spec)
        self._setup(chosen.inputs, chosen.user, Path(workspace_dir))

    @classmethod
    def from_inputs(cls, inputs: PipelineInputs, user_spec: UserSpec | None = None, *,
                    workspace_dir: Path | str = ".rtest") -> InteractiveRuntimeTestingFactory:
        """Build from pipeline inputs already loaded (the CLI's path)."""
        factory = cls.__new__(cls)
        factory._setup(inputs, user_spec or UserSpec(), Path(workspace_dir))
        return factory

    def _setup(self, inputs: PipelineInputs, user: UserSpec, workspace_dir: Path) -> None:
        quiet_unless_configured()
        self.workspace_dir = workspace_dir
        self._inputs = inputs
        self._user = user
        self._manual: set[str] = set(user.scripts)
        self._set_plan(draft_plan(inputs, user))
        self._auto = {n for n in self._plan.scripts if n not in self._manual and not self._problems_of(n)}

    # ---- what is there and what is missing -----------------------------------------
    @property
    def plan(self) -> PipelineTestingSpec:
        return self._plan

    def get_scripts_requiring_testing(self) -> list[str]:
        return list(self._plan.scripts)

    def get_skipped_nodes(self) -> dict[str, str]:
        return dict(self._plan.skipped)

    def get_pending_script_configurations(self) -> list[str]:
        return [node for node in self._plan.scripts if self._problems_of(node)]

    def get_script_testing_requirements(self, name: str) -> dict[str, Any]:
        """Inputs, outputs, env vars, job arguments and hyperparameters of one script, each with its source
        (``name``: a node, or a script name only one node runs); the design's keys, see rtest.factory_view."""
        spec = self._spec(name)
        return factory_view.requirements_of(spec, self._plan, [p.message for p in self._problems_of(spec.node)],
                                            auto_configurable=spec.node in self._auto)

    # ---- configuring -------------------------------------------------------------------
    def configure_script_testing(
        self,
        name: str,
        expected_inputs: dict[str, str | Path] | None = None,
        expected_outputs: dict[str, str | Path] | None = None,
        environment_variables: dict[str, Any] | None = None,
        job_arguments: dict[str, Any] | None = None,
        hyperparameters: dict[str, Any] | None = None,
        image: str | None = None,
        requirements: list[str] | None = None,
        **design_names: Any,
    ) -> ScriptExecutionSpec:
        """Apply the user's values to one script and validate at once; nothing changes if they are wrong.

        The design's names are accepted too: input_paths, output_paths, environ_vars, job_args."""
        expected_inputs, expected_outputs, environment_variables, job_arguments = factory_view.with_design_names(
            design_names, expected_inputs, expected_outputs, environment_variables, job_arguments)
        name = self._spec(name).node
        overrides = ScriptOverrides(
            inputs={k: absolute_path(v) for k, v in (expected_inputs or {}).items()},
            outputs={k: absolute_path(v) for k, v in (expected_outputs or {}).items()},
            environment=dict(environment_variables or {}),
            job_arguments=dict(job_arguments or {}),
            hyperparameters=dict(hyperparameters or {}),
            image=image,
            requirements=list(requirements or []),
        )
        candidate = self._user.merged_with(UserSpec(scripts={name: overrides}))
        try:
            plan = draft_plan(self._inputs, candidate)
        except RtestError as exc:  # a PlanError reads well as a ValueError for API users
            raise ValueError(str(exc)) from exc
        problems = [p for p in plan_problems(plan, self.workspace_dir) if p.node == name]
        if problems:
            listing = "; ".join(p.message for p in problems)
            raise ValueError(f"Configuration of script '{name}' is incomplete: {listing}.")
        self._user = candidate
        self._set_plan(plan)
        self._manual.add(name)
        self._auto.discard(name)
        return plan.scripts[name]

    def get_testing_factory_summary(self) -> dict[str, Any]:
        pending = self.get_pending_script_configurations()
        return {
            "total_scripts": len(self._plan.scripts),
            "auto_configured": sorted(self._auto),
            "manually_configured": sorted(self._manual),
            "pending": pending,
            "auto_configured_scripts": sorted(self._auto),  # the design's names for the two lists above
            "pending_scripts": pending,
            "ready_to_execute": not pending,
            "skipped_nodes": dict(self._plan.skipped),
            "wires": [w.describe() for w in self._plan.wires],
            "notes": list(self._plan.notes),
            "warnings": [w.message for w in self._plan.warnings],
        }

    # ---- saving and running -----------------------------------------------------------------
    def save_spec(self, path: Path | str) -> Path:
        """Write everything configured so far, plus where the pipeline lives, so it can run again."""
        spec = self._user.model_copy(deep=True)
        inputs = self._inputs
        origin = inputs.dag.origin
        spec.pipeline.dag = origin if not origin.startswith("<") else None
        spec.pipeline.config = str(inputs.config.path)
        registry = inputs.interfaces
        spec.pipeline.interfaces = sorted({str(registry.source_of(t).parent) for t in registry.step_types()})
        spec.pipeline.source_root = str(inputs.source_root)
        sources = inputs.discovery.sources
        if sources is not None:
            spec.pipeline.source_map = {str(prefix): str(target) for prefix, target in sources.source_map}
            spec.pipeline.allow_source_outside_root = sources.allow_outside_root
        spec.pipeline.config_classes = list(inputs.config_classes)
        return save_user_spec(spec, path, relative=True)  # a spec to share: paths relative to it

    @classmethod
    def from_spec(cls, path: Path | str, *, dag: Any = None,
                  workspace_dir: Path | str = ".rtest") -> InteractiveRuntimeTestingFactory:
        spec = load_user_spec(path)
        try:
            where = locate_pipeline(spec.pipeline, dag=dag,
                                    hint=f"pass dag= or add pipeline.dag and pipeline.config to {path}")
        except RtestError as exc:
            raise ValueError(str(exc)) from exc
        return cls(where.dag, where.config, interface_dirs=where.interfaces, source_root=where.source_root,
                   workspace_dir=workspace_dir, user_spec=spec)

    load_spec = from_spec

    def get_plan_warnings(self) -> list[str]:
        """Guessed or missing values (see rtest.plan.warnings); errors under strict=True."""
        return [w.message for w in self._plan.warnings]

    def complete_plan(self) -> PipelineTestingSpec:
        return require_complete(self._plan, self.workspace_dir, strict=self._user.strict)

    def _synthesized_plan(self, choice: Any) -> PipelineTestingSpec:  # issue 19
        from rtest.synth.apply import SynthOptions, synthesize_pending_inputs
        from rtest.workspace import Workspace

        spec = self._user.pipeline
        options = choice if isinstance(choice, SynthOptions) else SynthOptions(
            rows=spec.rows or SynthOptions().rows, seed=spec.seed if spec.seed is not None else SynthOptions().seed)
        plan = self._plan.model_copy(deep=True)
        synthesize_pending_inputs(plan, self._inputs, Workspace(self.workspace_dir).root / "synth", options)
        return require_complete(plan, self.workspace_dir, strict=self._user.strict)

    def execute_dag_guided_testing(self, *, junit_path: Path | str | None = None, html: bool = True,
                                   server: str | None = None, token: str | None = None, upload: bool | None = None,
                                   synthesize_inputs: Any = False, **run_options: Any) -> dict[str, Any]:
        """Run every script in containers, in DAG order, and write its reports.

        ``run_options``: every run option of `rtest sandbox run`, by its ``rtest.options.RunFlags`` field name
        (jobs, no_cache, cache_key, no_deps, network, no_limits, timeout, memory, model_folder, max_output_files,
        max_output_bytes) or its older keyword (timeout_s, limits, memory_bytes, use_cache, pack_model, deps), plus
        backend, run_id, stop_grace_s. ``deps`` may also be a ``rtest.deps.runtime.DepsOptions``. With ``server``
        (an `rtest serve` URL) the run goes to that service, with every run option, and its reports are
        downloaded into the workspace.
        ``synthesize_inputs`` (True, or ``rtest.synth.apply.SynthOptions(rows=, seed=)``): inputs a skipped
        data-loading step would deliver get sample data made from the config; inputs you set always win.
        """
        from rtest.deps.runtime import DepsOptions
        from rtest.options import run_keywords
        from rtest.session import run_request

        deps_options = run_options.pop("deps") if isinstance(run_options.get("deps"), DepsOptions) else None
        flags, local = run_keywords({**run_options, "junit": junit_path, "html": html})
        if server:  # rtest serve (issue 11)
            report = self._run_on_server(server, token, upload, flags, local.junit)
        else:
            wanted = synthesize_inputs or self._user.pipeline.synthesize_inputs  # issue 19
            planner = lambda: (self._synthesized_plan(wanted) if wanted else self.complete_plan(), self._user)  # noqa: E731
            report = run_request(planner, flags, local, workdir=self.workspace_dir, deps_options=deps_options)
        return self._design_results(report)

    def _design_results(self, report: Any) -> factory_view.TestingResults:
        """The run's outcome in the design's shape; each script's configuration has its status."""
        configurations = {node: {**self.get_script_testing_requirements(node),
                                 "status": "manually_configured" if node in self._manual else "auto_configured"}
                          for node in self._plan.scripts}
        return factory_view.testing_results(report, configurations, len(self._manual), len(self._auto))

    def _run_on_server(self, server: str, token: str | None, upload: bool | None, flags: RunFlags,
                       junit_path: Path | None):
        """The configured plan, run by an `rtest serve` service with every run flag (rtest.serve.remote talks)."""
        import tempfile

        from rtest.options import RunRequest
        from rtest.serve.client import ServiceClient
        from rtest.serve.remote import run_remote

        self.complete_plan()  # an incomplete plan fails here, as it does locally
        with tempfile.TemporaryDirectory(prefix="rtest-spec-") as scratch:
            spec = load_user_spec(self.save_spec(Path(scratch) / "spec.json"))
        with ServiceClient(server, token) as client:
            outcome = run_remote(client, spec=spec, request=RunRequest(**dict(flags)), workdir=self.workspace_dir,
                                 junit=junit_path, upload=upload)
        if outcome.report is None:
            raise RtestError(outcome.message or f"Run {outcome.run_id} on {server} ended without a report.")
        return outcome.report

    # ---- internals ---------------------------------------------------------------------
    def _repr_html_(self) -> str:
        missing = {node: [p.message for p in problems] for node, problems in self._problems.items()}
        return factory_view.factory_html(self.get_testing_factory_summary(), self._plan.scripts, missing)

    def _spec(self, name: str) -> ScriptExecutionSpec:
        """The script a node name or an unambiguous script name means; ValueError otherwise."""
        node = factory_view.node_for(self._plan, name)
        if node is not None:
            return self._plan.scripts[node]
        if name not in self._plan.scripts:
            valid = ", ".join(sorted(self._plan.scripts)) or "none"
            skipped = f" ('{name}' is skipped: {self._plan.skipped[name]})" if name in self._plan.skipped else ""
            raise ValueError(f"Script '{name}' not found in validated scripts{skipped}. Valid scripts: {valid}.")
        return self._plan.scripts[name]

    def _set_plan(self, plan: PipelineTestingSpec) -> None:
        self._plan = plan
        self._problems: dict[str, list[Problem]] = {}
        for problem in plan_problems(plan, self.workspace_dir):
            self._problems.setdefault(problem.node, []).append(problem)

    def _problems_of(self, node: str) -> list[Problem]:
        return self._problems.get(node, [])
