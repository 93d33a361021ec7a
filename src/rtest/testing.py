"""Builders of small, real pipelines whose steps run in the base image: for tests, benchmarks and demos."""

from __future__ import annotations

import json
from pathlib import Path

import yaml


def write_python_pipeline(root: Path, steps: dict[str, dict], edges: list[tuple[str, str]], *, shared: dict | None = None) -> dict[str, Path]:
    """A pipeline whose every step runs in the base image, one step type per node.

    ``steps[node]`` holds: ``script`` (source text), ``inputs``/``outputs`` ({name: container path}),
    optional ``kind`` ("processing"/"training"), ``config`` (extra config fields), ``aliases``
    ({output: [input names]}), ``env`` ({"required": [...], "optional": {...}}), ``args``.
    """
    (root / "interfaces").mkdir(parents=True, exist_ok=True)
    (root / "src").mkdir(exist_ok=True)
    specific = {}
    for node, step in steps.items():
        kind = step.get("kind", "processing")
        iface = {
            "step_type": node,
            "registry": {"sagemaker_step_type": "Training" if kind == "training" else "Processing"},
            "compute": {"kind": "python"},
            "contract": {
                "inputs": {n: {"path": p, "required": True} for n, p in step.get("inputs", {}).items()},
                "outputs": {n: {"path": p} for n, p in step.get("outputs", {}).items()},
                "job_arguments": step.get("args", []),
                "env_vars": step.get("env", {"required": [], "optional": {}}),
            },
            "spec": {"outputs": {o: {"aliases": a} for o, a in step.get("aliases", {}).items()}},
        }
        (root / "interfaces" / f"{node}.step.yaml").write_text(yaml.safe_dump(iface))
        folder = root / "src" / node
        folder.mkdir(exist_ok=True)
        (folder / "main.py").write_text(step["script"])
        entry_field = "training_entry_point" if kind == "training" else "processing_entry_point"
        specific[node] = {"__model_type__": f"{node}Config", entry_field: "main.py", "source_dir": f"src/{node}", **step.get("config", {})}
    config = {"configuration": {"shared": shared or {}, "specific": specific},
              "metadata": {"config_types": {n: f"{n}Config" for n in steps}}}
    (root / "dag.json").write_text(json.dumps({"nodes": list(steps), "edges": [list(e) for e in edges]}))
    (root / "config.json").write_text(json.dumps(config, indent=2))
    return {"dag": root / "dag.json", "config": root / "config.json", "interfaces": root / "interfaces", "src": root / "src"}
