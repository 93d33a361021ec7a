"""Discovery + planning time for a generated 1,000-node pipeline against a 10-node one.

Goal (issue 2): the 1,000-node pipeline takes under one second more than the
10-node one. Prints the figures side by side; it asserts nothing.

    python benchmarks/bench_plan.py [--nodes 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from rtest.plan.builder import build_plan, load_pipeline_inputs
from rtest.plan.userspec import parse_input_flags

INTERFACES = {
    "DataLoading": {"step_type": "DataLoading", "registry": {"sagemaker_step_type": "DataLoad"}},
    "Register": {"step_type": "Register", "registry": {"sagemaker_step_type": "RegisterModel"}},
    "Preprocess": {
        "step_type": "Preprocess", "registry": {"sagemaker_step_type": "Processing"},
        "compute": {"kind": "sklearn", "framework_version_field": "processing_framework_version"},
        "contract": {"inputs": {"DATA": {"path": "/opt/ml/processing/input/data"}},
                     "outputs": {"processed_data": {"path": "/opt/ml/processing/output"}},
                     "job_arguments": [{"flag": "--job_type", "source": "job_type"}],
                     "env_vars": {"required": ["LABEL_FIELD"], "optional": {"TRAIN_RATIO": "0.7"}}},
        "spec": {"outputs": {"processed_data": {"aliases": ["input_path"]}}},
    },
    "Train": {
        "step_type": "Train", "registry": {"sagemaker_step_type": "Training"},
        "compute": {"kind": "xgboost", "framework_version_field": "framework_version"},
        "contract": {"inputs": {"input_path": {"path": "/opt/ml/input/data"}},
                     "outputs": {"model_output": {"path": "/opt/ml/model"}}},
        "spec": {"outputs": {"model_output": {"aliases": ["model_input"]}}},
    },
    "Evaluate": {
        "step_type": "Evaluate", "registry": {"sagemaker_step_type": "Processing"}, "compute": {"kind": "python"},
        "contract": {"inputs": {"model_input": {"path": "/opt/ml/processing/input/model"}},
                     "outputs": {"metrics": {"path": "/opt/ml/processing/output/metrics"}}},
    },
}
CHAIN = ["DataLoading", "Preprocess", "Train", "Evaluate", "Register"]


def generate(root: Path, nodes: int) -> tuple[Path, Path, Path, list[str]]:
    """Chains of five nodes (two skipped, three scripts), all in one DAG and one config."""
    (root / "interfaces").mkdir(parents=True)
    (root / "scripts").mkdir()
    for name, iface in INTERFACES.items():
        (root / "interfaces" / f"{name}.step.yaml").write_text(yaml.safe_dump(iface))
    for script in ("preprocess.py", "train.py", "evaluate.py"):
        (root / "scripts" / script).write_text("print('hi')\n")
    (root / "data").mkdir()
    names, edges, specific, user_inputs = [], [], {}, []
    for chain in range(max(1, nodes // len(CHAIN))):
        previous = None
        for step_type in CHAIN:
            node = f"{step_type}_{chain}"
            names.append(node)
            if previous:
                edges.append([previous, node])
            previous = node
            fields = {"__model_type__": f"{step_type}Config", "job_type": f"job{chain}"}
            entry = {"Preprocess": "processing_entry_point", "Train": "training_entry_point", "Evaluate": "processing_entry_point"}.get(step_type)
            if entry:
                fields[entry] = f"{step_type.lower()}.py"
                fields["source_dir"] = "scripts"
            if step_type == "Train":
                fields["hyperparameters"] = {"__model_type__": "Hp", "max_depth": 6, "fields": {"__type_info__": "list", "value": ["a", "b"]}}
            specific[node] = fields
            if step_type == "Preprocess":
                user_inputs.append(f"{node}.DATA={root / 'data'}")
    config = {"configuration": {"shared": {"framework_version": "1.7-1", "processing_framework_version": "1.2-1", "label_name": "y"},
                                "specific": specific},
              "metadata": {"config_types": {n: f["__model_type__"] for n, f in specific.items()}}}
    (root / "dag.json").write_text(json.dumps({"nodes": names, "edges": edges}))
    (root / "config.json").write_text(json.dumps(config))
    return root / "dag.json", root / "config.json", root / "interfaces", user_inputs


def time_plan(nodes: int, repeat: int) -> tuple[float, int, int]:
    with tempfile.TemporaryDirectory() as tmp:
        dag, config, interfaces, user_inputs = generate(Path(tmp), nodes)
        timings = []
        for _ in range(repeat):
            started = time.perf_counter()
            inputs = load_pipeline_inputs(dag, config, [interfaces])
            plan = build_plan(inputs, parse_input_flags(user_inputs))
            timings.append(time.perf_counter() - started)
        return statistics.median(timings), len(plan.dag_nodes), len(plan.scripts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    small, small_nodes, small_scripts = time_plan(10, args.repeat)
    large, large_nodes, large_scripts = time_plan(args.nodes, args.repeat)
    print(f"{'pipeline':>10} {'nodes':>6} {'scripts':>8} {'discover+plan (median)':>24} {'per node':>10}")
    print(f"{'small':>10} {small_nodes:>6} {small_scripts:>8} {small * 1000:>21.1f} ms {small / small_nodes * 1000:>7.2f} ms")
    print(f"{'large':>10} {large_nodes:>6} {large_scripts:>8} {large * 1000:>21.1f} ms {large / large_nodes * 1000:>7.2f} ms")
    extra = large - small
    print(f"extra time for {large_nodes} nodes over {small_nodes}: {extra * 1000:.1f} ms (goal: < 1000 ms) -> {'MET' if extra < 1 else 'MISSED'}")


if __name__ == "__main__":
    main()
