"""The pipeline's config classes by default, isolated in a subprocess, and rules that know their limits (issue 15).

Real subprocesses, real files; the classes are framework-SHAPED packages written for these tests
(tests/shaped_framework, and a small on-disk package below laid out like a framework checkout)."""

from __future__ import annotations

import hashlib
import json
import sys
import textwrap
import time
from pathlib import Path

import yaml

from rtest.plan import framework_classes
from rtest.plan.builder import draft_plan, load_pipeline_inputs
from rtest.plan.model import Source
from rtest.run import diagnose
from test_plan_values import env_step, plan_of, write

TESTS = Path(__file__).resolve().parent


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def writer_pipeline(tmp_path: Path) -> dict:
    contract = {"env_vars": {"required": [], "optional": {"RULES_PATH": "/opt/ml/code/rules.json"}}}
    p = write(tmp_path / "project", {"Writer": {"contract": contract, "files": {"rules.json": '["a", "b"]'}}})
    return p


def test_a_class_that_writes_leaves_the_users_tree_and_cwd_untouched(tmp_path, monkeypatch):
    p = writer_pipeline(tmp_path)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    before = tree_digest(tmp_path)
    plan = plan_of(p, config_classes=["shaped_framework"])
    assert tree_digest(tmp_path) == before  # neither the project nor the working folder was written
    rules = tmp_path / "project" / "src" / "Writer" / "rules.json"
    assert rules.read_text() == '["a", "b"]'
    env = plan.scripts["Writer"].environment["RULES_PATH"]
    assert (env.value, env.source) == (str(rules), Source.CONFIG_CLASS)  # the scratch path mapped back to the real one
    wrote = [n for n in plan.notes if n.startswith("the config classes wrote")]
    assert any("src/Writer/rules.json" in n for n in wrote) and any("generated/prompts/p.txt" in n for n in wrote)
    assert "WriterConfig says hello on stdout" in plan.framework_log
    assert any(line.endswith("shaped_framework: WriterConfig built") for line in plan.framework_log)
    assert any(f"logged {len(plan.framework_log)} line(s)" in n for n in plan.notes)
    assert plan.values_resolver.startswith("shaped_framework config classes via rtest's Python")


def test_a_class_that_raises_is_a_warning_naming_the_node_and_the_exception(tmp_path):
    p = write(tmp_path, {"Raiser": env_step({"LEVEL": "low"}, level="high"),
                         "Legacy": env_step({"THRESHOLD": "0.1"}, threshold=0.9)})
    plan = plan_of(p, config_classes=["shaped_framework"])
    failed = [w for w in plan.warnings if w.code == "config-class-failed"]
    assert [w.node for w in failed] == ["Raiser"]
    assert "RuntimeError: the framework cannot compute this step's env here" in failed[0].message
    assert plan.scripts["Raiser"].environment["LEVEL"].source == Source.CONFIG  # the rules took over
    assert plan.scripts["Legacy"].environment["EXTRA"].value == "legacy"  # the others still use their class


def test_a_class_that_hangs_is_stopped_and_its_node_takes_the_rules(tmp_path, monkeypatch):
    monkeypatch.setattr(framework_classes, "NODE_TIME_LIMIT_S", 1)
    p = write(tmp_path, {"Hanger": env_step({"LEVEL": "low"}), "Legacy": env_step({"THRESHOLD": "0.1"})})
    started = time.monotonic()
    plan = plan_of(p, config_classes=["shaped_framework"])
    assert time.monotonic() - started < 30
    failed = {w.node: w.message for w in plan.warnings if w.code == "config-class-failed"}
    assert set(failed) == {"Hanger"} and "ran past the time limit" in failed["Hanger"]
    assert plan.scripts["Legacy"].environment["EXTRA"].value == "legacy"


def test_framework_python_runs_the_classes_in_that_interpreter(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(TESTS))  # the "project venv": here the same python with the package on its path
    p = write(tmp_path, {"Legacy": env_step({"THRESHOLD": "0.1"}, threshold=0.9)})
    plan = plan_of(p, config_classes=["shaped_framework"], framework_python=sys.executable)
    assert plan.scripts["Legacy"].environment["THRESHOLD"].value == "0.9"
    assert f"via --framework-python {sys.executable}" in plan.values_resolver


def test_an_interpreter_that_cannot_start_is_a_warning_per_node(tmp_path):
    p = write(tmp_path, {"Legacy": env_step({"THRESHOLD": "0.1"}, threshold=0.9)})
    plan = plan_of(p, config_classes=["shaped_framework"], framework_python=str(tmp_path / "no-python"))
    assert plan.values_resolver.startswith("rtest's rules: the config classes could not run")
    assert [w.node for w in plan.warnings if w.code == "config-class-failed"] == ["Legacy"]


def test_no_config_classes_opts_out(tmp_path):
    p = write(tmp_path, {"Legacy": env_step({"THRESHOLD": "0.1"}, threshold=0.9)})
    plan = plan_of(p, config_classes=["shaped_framework"], use_config_classes=False)
    assert plan.values_resolver == "rtest's rules: config classes turned off (--no-config-classes)"
    assert "EXTRA" not in plan.scripts["Legacy"].environment


# ---- a framework checkout on disk: classes found beside the interfaces, or read when not importable --------

BASE = '''
from typing import Optional
from pydantic import BaseModel

class BasePipelineConfig(BaseModel):
    job_type: Optional[str] = None
    def get_environment_variables(self, declared=None):
        return {n: str(getattr(self, n.lower())) for n in declared or [] if getattr(self, n.lower(), None) is not None}
    def get_job_arguments(self):
        return None
    def _job_type_arg(self, flag="--job_type"):
        return None if self.job_type is None else [flag, self.job_type]
'''
EVAL = '''
import json
from typing import List
from pydantic import Field
from ...core.config_base import BasePipelineConfig

class ShapedEvalConfig(BasePipelineConfig):
    id_name: str
    categories: List[int] = [0, 1]
    binary: bool = True
    optimize_memory: bool = Field(default=False)
    include_examples: bool = False
    output_format: str = "CSV"
    processing_entry_point: str = "main.py"
    source_dir: str = "."

    def get_environment_variables(self):
        env = {"ID_FIELD": self.id_name, "OPTIMIZE_MEMORY": "true" if self.optimize_memory else "false",
               "REPORT_NAME": f"report-{self.id_name}", "OUTPUT_FORMAT": self.output_format}
        if not self.binary:
            env["CATEGORIES"] = json.dumps(self.categories)
        return env

    def get_job_arguments(self):
        args = []
        if self.include_examples:
            args.append("--include-examples")
        return args + (self._job_type_arg() or [])
'''


def framework_checkout(tmp_path: Path) -> dict:
    top = tmp_path / "checkout" / "src" / "shapedfw"
    for rel, text in {"__init__.py": "", "core/__init__.py": "", "core/config_base.py": BASE,
                      "steps/__init__.py": "", "steps/configs/__init__.py": "from .config_eval import ShapedEvalConfig\n",
                      "steps/configs/config_eval.py": EVAL}.items():
        (top / rel).parent.mkdir(parents=True, exist_ok=True)
        (top / rel).write_text(textwrap.dedent(text))
    contract = {"entry_point": "main.py", "inputs": {}, "outputs": {"out": {"path": "/opt/ml/processing/output"}},
                "env_vars": {"required": [], "optional": {"ID_FIELD": "id", "OPTIMIZE_MEMORY": "true",
                                                          "CATEGORIES": "", "OUTPUT_FORMAT": "CSV"}},
                "job_arguments": [{"flag": "--include-examples", "source": "include_examples"},
                                  {"flag": "--job_type", "source": "job_type"}]}
    iface = {"step_type": "ShapedEval", "registry": {"sagemaker_step_type": "Processing"},
             "compute": {"kind": "python"}, "contract": contract}
    (top / "steps" / "interfaces").mkdir()
    (top / "steps" / "interfaces" / "shaped_eval.step.yaml").write_text(yaml.safe_dump(iface))
    project = tmp_path / "project"
    (project / "code").mkdir(parents=True)
    (project / "code" / "main.py").write_text("print('hi')\n")
    fields = {"__model_type__": "ShapedEvalConfig", "processing_entry_point": "main.py", "source_dir": "code",
              "id_name": "order_id", "categories": [0, 1], "include_examples": True, "job_type": "training"}
    config = {"configuration": {"shared": {}, "specific": {"ShapedEval": fields}}, "metadata": {}}
    (project / "config.json").write_text(json.dumps(config))
    (project / "dag.json").write_text('{"nodes": ["ShapedEval"], "edges": []}')
    return {"dag": project / "dag.json", "config": project / "config.json",
            "interfaces": [top / "steps" / "interfaces"], "root": project, "path": top.parent}


def checkout_plan(p: dict):
    return draft_plan(load_pipeline_inputs(p["dag"], p["config"], p["interfaces"], p["root"]))


def test_the_framework_beside_the_interfaces_decides_by_default_when_importable(tmp_path, monkeypatch):
    p = framework_checkout(tmp_path)
    monkeypatch.syspath_prepend(str(p["path"]))
    plan = checkout_plan(p)
    spec = plan.scripts["ShapedEval"]
    assert "config classes via rtest's Python" in plan.values_resolver and "shapedfw.steps.configs" in \
        plan.values_resolver
    env = {k: v.value for k, v in spec.environment.items()}
    assert env == {"ID_FIELD": "order_id", "OPTIMIZE_MEMORY": "false", "REPORT_NAME": "report-order_id",
                   "OUTPUT_FORMAT": "CSV", "CATEGORIES": ""}
    assert spec.argv() == ["--include-examples", "--job_type", "training"]
    assert [w for w in plan.warnings if w.code in ("class-computes", "config-class-failed")] == []


def test_without_the_framework_every_value_the_class_decides_differently_is_warned(tmp_path, monkeypatch):
    p = framework_checkout(tmp_path)
    monkeypatch.syspath_prepend(str(p["path"]))
    truth = checkout_plan(p).scripts["ShapedEval"]  # what the class itself gives
    monkeypatch.undo()
    plan = checkout_plan(p)
    assert plan.values_resolver.startswith("rtest's rules: framework not importable because there is no module "
                                           "shapedfw.steps.configs or steps.configs")
    spec = plan.scripts["ShapedEval"]
    warned = {w.subject: w.message for w in plan.warnings if w.code == "class-computes"}
    differ = {name for name in set(truth.environment) | set(spec.environment)
              if getattr(truth.environment.get(name), "value", None) != getattr(spec.environment.get(name), "value", None)}
    assert differ == {"ID_FIELD", "OPTIMIZE_MEMORY", "REPORT_NAME", "CATEGORIES"}
    assert differ <= {s.split(".", 1)[1] for s in warned}  # zero silent differences
    assert "OPTIMIZE_MEMORY took the interface default 'true'; the framework's ShapedEvalConfig computes it" in \
        warned["environment.OPTIMIZE_MEMORY"]
    assert "environment.OUTPUT_FORMAT" not in warned  # the class's default is the interface's: nothing to warn
    assert spec.argv() == truth.argv() == ["--include-examples", "--job_type", "training"]  # a boolean: bare flag
    assert "job_arguments" not in warned


def test_a_boolean_argument_is_a_bare_flag_when_true_and_left_out_when_false(tmp_path):
    contract = {"job_arguments": [{"flag": "--include-examples", "source": "include_examples"},
                                  {"flag": "--job_type", "source": "job_type"}]}
    p = write(tmp_path, {"On": {"contract": contract, "config": {"include_examples": True, "job_type": "x"}},
                         "Off": {"contract": contract, "config": {"include_examples": False, "job_type": "x"}}})
    plan = plan_of(p)
    assert plan.scripts["On"].argv() == ["--include-examples", "--job_type", "x"]
    assert plan.scripts["Off"].argv() == ["--job_type", "x"]


# ---- quiet by default (15.6) -----------------------------------------------------------------------------


def test_pips_root_notice_is_not_the_scripts_warning():
    log = ("2026-01-01 10:00:00 - prep - WARNING - 3 rows dropped\n"
           # pip 23.2.1's exact line when it runs as root outside a venv
           "WARNING: Running pip as the 'root' user can result in broken permissions and conflicting behaviour "
           "with the system package manager. It is recommended to use a virtual environment instead: "
           "https://pip.pypa.io/warnings/venv\n"
           # a newer pip's line, as the xgboost 1.7-1 look-alike's pip printed it in a real cursus step
           "WARNING: Running pip as the 'root' user can result in broken permissions and conflicting behaviour "
           "with the system package manager, possibly rendering your system unusable. It is recommended to use a "
           "virtual environment instead: https://pip.pypa.io/warnings/venv. Use the --root-user-action option if "
           "you know what you are doing and want to suppress this warning.\n")
    found = diagnose.warnings_in(log)
    assert (found.count, found.lines) == (1, ["2026-01-01 10:00:00 - prep - WARNING - 3 rows dropped"])


def test_an_instance_type_missing_from_the_table_is_one_plan_note(tmp_path):
    p = write(tmp_path, {"A": {"config": {"processing_instance_type": "ml.m5.12xlarge"}},
                         "B": {"config": {"processing_instance_type": "ml.m5.12xlarge"}}})
    plan = plan_of(p)
    notes = [n for n in plan.notes if "ml.m5.12xlarge" in n]
    assert plan.scripts["A"].instance_type.value == plan.scripts["B"].instance_type.value == "ml.m5.12xlarge"
    assert notes == ["instance type ml.m5.12xlarge is not in rtest's table; its limits (48 vCPUs, 192 GiB, "
                     "capped at this machine) are derived from its name"]


# ---- the resolver seam carries values, not objects (issue 20.4) ------------------------------------------


def test_values_and_the_class_resolver_do_not_import_each_other():
    import ast

    src = Path(framework_classes.__file__).parent

    def imports(name: str) -> set[str]:
        tree = ast.parse((src / f"{name}.py").read_text())
        return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}

    assert "rtest.plan.framework_classes" not in imports("values") | imports("config_inputs")
    assert "rtest.plan.values" not in imports("framework_classes")
    tree = ast.parse((src / "classes_child.py").read_text())  # runs in the user's interpreter: stdlib only
    used = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    used |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert used <= set(sys.stdlib_module_names) | {"__future__"}, used


def test_plan_says_first_who_decided_and_shows_the_framework_log_only_with_verbose(tmp_path, monkeypatch, capsys):
    import pytest

    from rtest.cli.main import main

    p = writer_pipeline(tmp_path)
    monkeypatch.chdir(tmp_path)
    args = ["plan", "--dag", str(p["dag"]), "--config", str(p["config"]), "--interfaces", str(p["interfaces"]),
            "--source-root", str(p["root"]), "--config-classes", "shaped_framework"]
    outputs = []
    for extra in ([], ["--verbose"]):
        with pytest.raises(SystemExit) as exited:
            main(args + extra)
        outputs.append(" ".join(capsys.readouterr().out.split()))  # the console wraps long lines
        assert exited.value.code == 0
    quiet, verbose = outputs
    assert quiet.startswith("values: shaped_framework config classes via rtest's Python")
    assert "WriterConfig says hello" not in quiet and "(--verbose shows them)" in quiet
    assert "framework: WriterConfig says hello on stdout" in verbose
    with pytest.raises(SystemExit) as exited:
        main(args + ["--no-config-classes"])
    assert exited.value.code == 0
    assert " ".join(capsys.readouterr().out.split()).startswith(
        "values: rtest's rules: config classes turned off (--no-config-classes)")


def test_the_scratch_holds_config_paths_that_climb_and_maps_them_back(tmp_path):
    from rtest.plan.class_scratch import Scratch

    scratch = Scratch.make()
    try:
        climbed = scratch._target("../shared/code")
        assert climbed is not None and climbed.is_relative_to(scratch.root)
        assert scratch.config_path_text(str(climbed / "x.json")) == "../shared/code/x.json"
        assert scratch.config_path_text(str(scratch._target("/home/u/proj"))) == "/home/u/proj"
        assert scratch._target("../../../../../etc") is None  # climbing out of the scratch is not followed
    finally:
        scratch.remove()
    assert not scratch.root.exists()


def test_a_framework_python_that_is_not_an_executable_is_one_sentence(tmp_path, capsys):
    import pytest

    from rtest.cli.main import main

    p = writer_pipeline(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["plan", "--dag", str(p["dag"]), "--config", str(p["config"]), "--interfaces", str(p["interfaces"]),
              "--source-root", str(p["root"]), "--framework-python", str(tmp_path / "venv" / "bin" / "python")])
    err = " ".join(capsys.readouterr().err.split())
    assert exited.value.code == 2
    assert f"--framework-python {tmp_path}/venv/bin/python: not an executable file" in err
    assert "Traceback" not in err
