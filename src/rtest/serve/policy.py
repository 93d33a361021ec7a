"""What a submission may name on the service's machine: the operator decides, the default is little.

* Paths (a spec submitted by path: its DAG, config, sources, inputs, exports, wheelhouse) only under the
  folders given with ``--allow-path`` (none by default: bundles and the example only). Paths are resolved
  first, so a link inside an allowed folder that points out of it is refused.
* Code: a ``module:function`` DAG or config-class modules run Python on the service's machine, so they
  are taken only with ``--allow-code``, and then planned in a worker process (rtest.serve.plan_worker).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rtest.errors import RtestError
from rtest.plan.userspec import UserSpec


class SubmissionRefused(RtestError):
    """The service's operator did not allow what the submission names (the service answers 403)."""


def names_code(spec: UserSpec) -> bool:
    """Whether planning ``spec`` would import Python the submitter chose."""
    dag = spec.pipeline.dag or ""
    return (":" in dag and not dag.startswith("/")) or bool(spec.pipeline.config_classes)


def named_paths(spec: UserSpec) -> list[str]:
    """Every server path ``spec`` names (a module:function DAG is not a path)."""
    where = spec.pipeline
    paths = [where.config, where.source_root, *where.interfaces, *where.source_map.values(), spec.wheelhouse]
    paths += [where.dag] if where.dag and not (":" in where.dag and not where.dag.startswith("/")) else []
    for overrides in spec.scripts.values():
        paths += [*overrides.inputs.values(), *overrides.outputs.values()]
    return [p for p in paths if p]


@dataclass(frozen=True)
class SubmitPolicy:
    allow_paths: tuple[Path, ...] = ()
    allow_code: bool = False

    def check_code(self, spec: UserSpec) -> None:
        if names_code(spec) and not self.allow_code:
            raise SubmissionRefused(
                "This service does not run code named by a submission (a module:function DAG or config-class "
                "modules); send the DAG as a file and leave config_classes empty, or ask its operator for "
                "--allow-code.")

    def may_read(self, path: Path) -> bool:
        resolved = path.resolve()
        return any(resolved == root or root in resolved.parents for root in (r.resolve() for r in self.allow_paths))

    def check_paths(self, spec: UserSpec) -> None:
        """For a spec submitted by path (not a bundle, whose paths stay inside it)."""
        if not self.allow_paths:
            raise SubmissionRefused(
                "This service takes no submissions by path (its operator allowed no folders with --allow-path); "
                "upload a bundle instead (rtest sandbox run --server URL --upload), or ask for the example.")
        for path in named_paths(spec):
            if Path(path).is_absolute() and not self.may_read(Path(path)):  # relative: refused by the manager
                raise SubmissionRefused(f"The submission names '{path}', outside the folders this service may read "
                                        "(--allow-path); upload a bundle instead, or move the files.")

    def check(self, spec: UserSpec, *, by_path: bool) -> None:
        self.check_code(spec)
        if by_path:
            self.check_paths(spec)



def plans_code(policy: SubmitPolicy, spec_path: Path | None) -> bool:
    """Whether planning the saved spec imports submitted code (refused here if the policy says no: a bundle's spec
    is first read at planning)."""
    from rtest.plan.userspec import load_user_spec

    if spec_path is None:
        return False
    spec = load_user_spec(spec_path)
    policy.check_code(spec)
    return names_code(spec)


def restart_refusal(policy: SubmitPolicy, raw_spec: dict | None) -> str | None:
    """Why a run still queued when the service stopped must not start again: it names code (which may be what
    stopped the service), or what it names is not allowed any more. None: start it again."""
    if raw_spec is None:
        return None
    try:
        spec = UserSpec.model_validate(raw_spec)
        if names_code(spec):
            return "The service stopped before this run's code-naming plan was made; it is not retried. Submit again."
        policy.check(spec, by_path=True)
    except (SubmissionRefused, ValueError) as exc:
        return str(exc)
    return None
