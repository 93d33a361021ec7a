"""Which registration nodes get their inference check (rtest.jobs.inference), and why the others are skipped.

A registration node becomes a check only when the plan feeds it both a packaged model and payload
samples; otherwise it is skipped with that reason, as a registration was before the check existed.
``--skip-inference-check`` skips every check.
"""

from __future__ import annotations

from rtest.jobs.inference import is_payload_input
from rtest.plan.model import PipelineTestingSpec

TURNED_OFF = "inference check turned off (--skip-inference-check): model registration is a service call"


def is_inference_check(plan: PipelineTestingSpec, node: str) -> bool:
    spec = plan.scripts.get(node)
    return spec is not None and spec.kind.results_file is not None


def settle_inference_checks(plan: PipelineTestingSpec) -> PipelineTestingSpec:
    """Skip each check that has no payload samples or no model to serve, saying which."""
    for node in [n for n in plan.scripts if is_inference_check(plan, n)]:
        reason = _unfed_reason(plan, node)
        if reason:
            skip_node(plan, node, reason)
    return plan


def skip_inference_checks(plan: PipelineTestingSpec, reason: str = TURNED_OFF) -> PipelineTestingSpec:
    for node in [n for n in plan.scripts if is_inference_check(plan, n)]:
        skip_node(plan, node, reason)
    return plan


def skip_node(plan: PipelineTestingSpec, node: str, reason: str) -> None:
    del plan.scripts[node]
    plan.skipped[node] = reason
    plan.wires = [w for w in plan.wires if w.target_node != node]
    plan.warnings = [w for w in plan.warnings if w.node != node]


def _unfed_reason(plan: PipelineTestingSpec, node: str) -> str | None:
    spec = plan.scripts[node]
    fed = {w.target_input for w in plan.wires_into(node)} | {n for n, i in spec.inputs.items() if i.host_path}
    payloads = [n for n in spec.inputs if is_payload_input(n)]
    models = [n for n in spec.inputs if not is_payload_input(n)]
    if not payloads:
        return ("no inference check: its interface declares no payload input (an input whose name says payload), "
                "so there are no samples to send")
    if not fed.intersection(payloads):
        return f"no inference check: no upstream step or --input feeds its payload samples ({', '.join(payloads)})"
    if not fed.intersection(models):
        what = ", ".join(models) or "none declared"
        return f"no inference check: no upstream step or --input feeds the packaged model ({what})"
    return None
