""""What changed": a run compared with the previous run of the same pipeline (issue 16 point 6).

At planning time the service writes ``<run dir>/fingerprint.json``: per script node, a digest of its
source folder and entry point, and the values the step is given (env vars, job arguments, hyperparameters,
image, instance type), each with the config field it came from. Comparing two runs then needs nothing but
the registry's step rows and these two files, even after the scripts or the config were edited again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

FINGERPRINT = "fingerprint.json"
FAILED = {"failed", "upstream_failed"}
OK = {"succeeded", "cached"}
DURATION_NOTE_S = 1.0  # smaller differences are noise, not a change worth a line
DURATION_NOTE_RATIO = 0.2


def fingerprint(plan) -> dict[str, Any]:
    """What a run's scripts were and what they were given, per script node."""
    from rtest.run.cache import tree_digest

    scripts = {}
    for node, spec in plan.scripts.items():
        try:
            source = tree_digest(spec.source_dir)
        except OSError:
            source = None
        values = {f"env {name}": _shown(v) for name, v in spec.environment.items()}
        values |= {f"argument {a.flag}": _shown(a.value) for a in spec.job_arguments}
        values |= {f"hyperparameter {name}": _shown(v) for name, v in spec.hyperparameters.items()}
        values |= {"image": _shown(spec.image), "instance type": _shown(spec.instance_type)}
        scripts[node] = {"script": str(spec.entry_point), "script_digest": _file_digest(spec.script_path),
                         "source_digest": source, "values": values}
    return {"config": str(plan.config_path) if plan.config_path else None, "scripts": scripts}


def write_fingerprint(run_dir: Path, plan) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / FINGERPRINT).write_text(json.dumps(fingerprint(plan), sort_keys=True), encoding="utf-8")


def read_fingerprint(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / FINGERPRINT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"scripts": {}}


def compare(run: dict, steps: list[dict], before: dict | None, before_steps: list[dict],
            run_print: dict, before_print: dict) -> dict[str, Any]:
    """The changes from ``before`` (the previous run of the pipeline; None: this is its first) to ``run``."""
    if before is None:
        return {"run": run["id"], "previous": None, "pipeline": run.get("pipeline"), "steps": [], "scripts": [],
                "values": [], "summary": "the first run of this pipeline: nothing to compare with"}
    old = {s["node"]: s for s in before_steps}
    step_changes = [c for s in steps if (c := _step_change(s, old.get(s["node"]))) is not None]
    step_changes += [{"node": n, "change": "removed", "before": s["status"], "after": None}
                     for n, s in old.items() if n not in {s["node"] for s in steps}]
    mine, theirs = run_print.get("scripts", {}), before_print.get("scripts", {})
    scripts = [{"node": node, "script": now.get("script"),
                "changed": [part for part in ("script_digest", "source_digest")
                            if now.get(part) != theirs[node].get(part)]}
               for node, now in mine.items() if node in theirs]
    scripts = [s for s in scripts if s["changed"]]
    values = [{"node": node, "key": key, "before": theirs[node]["values"].get(key), "after": value}
              for node, now in mine.items() if node in theirs
              for key, value in now.get("values", {}).items() if theirs[node]["values"].get(key) != value]
    values += [{"node": node, "key": key, "before": value, "after": None}
               for node, then in theirs.items() if node in mine
               for key, value in then.get("values", {}).items() if key not in mine[node].get("values", {})]
    return {"run": run["id"], "previous": before["id"], "pipeline": run.get("pipeline"), "steps": step_changes,
            "scripts": scripts, "values": values, "summary": _summary(step_changes, scripts, values)}


def _step_change(now: dict, then: dict | None) -> dict | None:
    if then is None:
        return {"node": now["node"], "change": "added", "before": None, "after": now["status"]}
    change = None
    if now["status"] in FAILED and then["status"] not in FAILED:
        change = "newly failing"
    elif then["status"] in FAILED and now["status"] in OK:
        change = "fixed"
    elif now["status"] != then["status"] and not {now["status"], then["status"]} <= OK:
        change = "status"
    delta = None
    if now.get("duration_s") is not None and then.get("duration_s") is not None:
        delta = round(now["duration_s"] - then["duration_s"], 3)
        slower = abs(delta) >= DURATION_NOTE_S and abs(delta) >= DURATION_NOTE_RATIO * max(then["duration_s"], 0.001)
        if change is None and slower:
            change = "slower" if delta > 0 else "faster"
    if change is None:
        return None
    return {"node": now["node"], "change": change, "before": then["status"], "after": now["status"],
            "duration_before_s": then.get("duration_s"), "duration_after_s": now.get("duration_s"),
            "duration_change_s": delta, "reason": now.get("reason")}


def _summary(steps: list[dict], scripts: list[dict], values: list[dict]) -> str:
    counts: dict[str, int] = {}
    for change in steps:
        counts[change["change"]] = counts.get(change["change"], 0) + 1
    parts = [f"{n} {what}" for what, n in counts.items()]
    if scripts:
        parts.append(f"{len(scripts)} script(s) changed")
    if values:
        parts.append(f"{len(values)} value(s) changed")
    return ", ".join(parts) or "nothing changed"


def _shown(sourced) -> Any:
    if sourced is None:
        return None
    value = getattr(sourced, "value", sourced)
    field = getattr(sourced, "field", None)
    text = value if isinstance(value, (str, int, float, bool)) or value is None else json.dumps(value, default=str)
    return f"{text} ({field})" if field else text


def _file_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        return None
