"""Source folders found as the framework finds them, --source-map, and code confined to the source root."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from pipelines import raised_message
from rtest.cli.main import main
from rtest.errors import DiscoveryError, PlanError
from rtest.plan.builder import draft_plan, load_pipeline_inputs
from rtest.plan.sources import SEARCH_MAX_DEPTH


def pipeline(tmp_path: Path, fields: dict, *, shared: dict | None = None, scripts: tuple[str, ...] = ()) -> dict:
    """One processing node 'Step' running main.py; ``scripts``: where main.py files are written (relative to tmp_path)."""
    (tmp_path / "interfaces").mkdir(parents=True, exist_ok=True)
    iface = {"step_type": "Step", "registry": {"sagemaker_step_type": "Processing"}, "compute": {"kind": "python"},
             "contract": {"entry_point": "main.py", "outputs": {"out": {"path": "/opt/ml/processing/output"}}}}
    (tmp_path / "interfaces" / "step.step.yaml").write_text(yaml.safe_dump(iface))
    for folder in scripts:
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / folder / "main.py").write_text("print('hi')\n")
    config = {"configuration": {"shared": shared or {}, "specific": {"Step": {"__model_type__": "StepConfig", **fields}}}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "dag.json").write_text(json.dumps({"nodes": ["Step"], "edges": []}))
    return {"dag": tmp_path / "dag.json", "config": tmp_path / "config.json", "interfaces": tmp_path / "interfaces"}


def found(p: dict, root: Path, **options):
    inputs = load_pipeline_inputs(p["dag"], p["config"], [p["interfaces"]], root, **options)
    return inputs.discovery.scripts["Step"], inputs.discovery.warnings


ENTRY = {"processing_entry_point": "main.py"}


# ---- the resolution order ----------------------------------------------------------------------------


def test_an_absolute_effective_source_dir_that_exists_comes_first(tmp_path):
    p = pipeline(tmp_path, {**ENTRY, "effective_source_dir": str(tmp_path / "abs"), "processing_source_dir": "rel"}, scripts=("abs", "rel"))
    script, warnings = found(p, tmp_path)
    assert (script.source_dir, script.source_dir_field, warnings) == (tmp_path / "abs", "effective_source_dir", [])


def test_an_effective_source_dir_from_another_machine_falls_through_to_the_relative_one(tmp_path):
    p = pipeline(tmp_path, {**ENTRY, "effective_source_dir": "/home/someone/proj/code", "processing_source_dir": "rel"}, scripts=("rel",))
    script, warnings = found(p, tmp_path)
    assert (script.source_dir, script.source_dir_field, warnings) == (tmp_path / "rel", "processing_source_dir", [])


def test_a_relative_folder_resolves_under_the_project_root_folder(tmp_path):
    p = pipeline(tmp_path, {**ENTRY, "processing_source_dir": "dockers/model/scripts"}, shared={"project_root_folder": "my_project"},
                 scripts=("my_project/dockers/model/scripts",))
    script, warnings = found(p, tmp_path)
    assert script.source_dir == tmp_path / "my_project/dockers/model/scripts" and warnings == []


def test_a_folder_found_by_searching_is_used_with_a_warning_showing_the_source_map(tmp_path):
    p = pipeline(tmp_path, {**ENTRY, "processing_source_dir": "dockers/xgboost_atoz/scripts"}, shared={"project_root_folder": "adapter"},
                 scripts=("projects/atoz/dockers/scripts",))
    script, [warning] = found(p, tmp_path)
    assert script.source_dir == tmp_path / "projects/atoz/dockers/scripts" and script.source_dir_field == "search"
    assert warning.code == "source-dir-searched" and warning.node == "Step"
    assert f"--source-map dockers/xgboost_atoz={tmp_path / 'projects/atoz/dockers'}" in warning.message


def test_the_search_is_bounded_in_depth(tmp_path):
    deep = "/".join(f"d{i}" for i in range(SEARCH_MAX_DEPTH + 1))
    p = pipeline(tmp_path, {**ENTRY, "processing_source_dir": "gone"}, scripts=(deep,))
    message = raised_message(DiscoveryError, found, p, tmp_path)
    assert "node 'Step' names processing_entry_point='main.py'" in message and f"{SEARCH_MAX_DEPTH} folder levels beneath" in message
    assert "--source-map" in message


def test_an_ambiguous_search_is_an_error_unless_the_config_path_tells_them_apart(tmp_path):
    p = pipeline(tmp_path, {**ENTRY, "processing_source_dir": "old/x"}, scripts=("a/one", "b/two"))
    message = raised_message(DiscoveryError, found, p, tmp_path)
    assert "main.py is in several folders" in message and "--source-map old/x=FOLDER" in message
    q = pipeline(tmp_path / "q", {**ENTRY, "processing_source_dir": "old/scripts"}, scripts=("a/scripts", "b/other"))
    assert found(q, tmp_path / "q")[0].source_dir == tmp_path / "q" / "a/scripts"


# ---- --source-map -----------------------------------------------------------------------------------------


def test_source_map_replaces_a_config_path_prefix(tmp_path):
    p = pipeline(tmp_path / "cfg", {**ENTRY, "processing_source_dir": "dockers/xgboost_atoz/scripts",
                                    "effective_source_dir": "/home/ec2-user/proj/dockers/xgboost_atoz/scripts"}, scripts=())
    local = tmp_path / "checkout" / "dockers"
    (local / "scripts").mkdir(parents=True)
    (local / "scripts" / "main.py").write_text("print('hi')\n")
    script, warnings = found(p, tmp_path / "cfg", source_map={"dockers/xgboost_atoz": str(local)})
    assert script.source_dir == local / "scripts" and warnings == []  # a map target is trusted: outside the root is fine
    script, _ = found(p, tmp_path / "cfg", source_map={"/home/ec2-user/proj/dockers/xgboost_atoz": str(local)})
    assert script.source_dir == local / "scripts" and script.source_dir_field == "effective_source_dir"


def test_source_map_from_the_command_line_and_the_spec_file(tmp_path, capsys):
    p = pipeline(tmp_path, {**ENTRY, "processing_source_dir": "old/place"}, scripts=("new/place",))
    flags = ["--dag", str(p["dag"]), "--config", str(p["config"]), "--interfaces", str(p["interfaces"]), "--source-root", str(tmp_path)]
    with pytest.raises(SystemExit) as done:
        main(["discover", *flags, "--source-map", f"old={tmp_path / 'new'}", "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    assert done.value.code == 0 and data["scripts"][0]["script_path"] == str(tmp_path / "new/place/main.py") and data["warnings"] == []
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"pipeline": {"dag": "dag.json", "config": "config.json", "interfaces": ["interfaces"],
                                                 "source_root": ".", "source_map": {"old": "new"}}}))
    with pytest.raises(SystemExit) as done:
        main(["plan", "--spec", str(spec), "--format", "json"])
    plan = json.loads(capsys.readouterr().out)
    assert done.value.code == 0 and plan["scripts"]["Step"]["source_dir"] == str(tmp_path / "new/place") and plan["warnings"] == []


def test_a_source_map_target_that_is_not_a_folder_is_a_sentence(tmp_path):
    p = pipeline(tmp_path, {**ENTRY, "processing_source_dir": "x"}, scripts=("x",))
    message = raised_message(PlanError, lambda: found(p, tmp_path, source_map={"x": str(tmp_path / "missing")}))
    assert message.startswith(f"--source-map x={tmp_path / 'missing'}: ") and "is not a folder" in message


# ---- confinement to the source root ----------------------------------------------------------------------


def test_an_absolute_entry_point_outside_the_root_is_an_error_naming_node_field_and_path(tmp_path):
    outside = tmp_path / "outside"
    p = pipeline(tmp_path / "proj", {"processing_entry_point": str(outside / "main.py")}, scripts=())
    outside.mkdir()
    (outside / "main.py").write_text("print('x')\n")
    message = raised_message(PlanError, found, p, tmp_path / "proj")
    assert message.startswith(f"Node 'Step': processing_entry_point points outside the source root {tmp_path / 'proj'}: {outside}")
    assert "--allow-source-outside-root" in message
    script, _ = found(p, tmp_path / "proj", allow_source_outside_root=True)
    assert script.script_path == outside / "main.py"


def test_a_dotdot_entry_point_that_leaves_the_root_is_an_error(tmp_path):
    (tmp_path / "secret.py").write_text("print('x')\n")
    p = pipeline(tmp_path / "proj", {"processing_entry_point": "../../secret.py", "processing_source_dir": "code"}, scripts=("code",))
    message = raised_message(PlanError, found, p, tmp_path / "proj")
    assert "Node 'Step': processing_entry_point points outside the source root" in message
    assert f"(resolves to {tmp_path / 'secret.py'})" in message


def test_a_source_folder_symlinked_out_of_the_root_is_an_error(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "main.py").write_text("print('x')\n")
    p = pipeline(tmp_path / "proj", {**ENTRY, "processing_source_dir": "code"})
    os.symlink(tmp_path / "elsewhere", tmp_path / "proj" / "code")
    message = raised_message(PlanError, found, p, tmp_path / "proj")
    assert f"Node 'Step': processing_source_dir points outside the source root {tmp_path / 'proj'}: {tmp_path / 'proj' / 'code'} (resolves to {tmp_path / 'elsewhere'})" in message


@pytest.mark.parametrize("folder", ["/", "/etc"])
def test_system_folders_are_refused_whatever_the_options(tmp_path, folder):
    p = pipeline(tmp_path, {"processing_entry_point": "passwd" if folder == "/etc" else "etc/passwd", "processing_source_dir": folder})
    for allow in (False, True):
        message = raised_message(PlanError, lambda: found(p, tmp_path, allow_source_outside_root=allow))  # noqa: B023
        assert f"names the system folder {folder}" in message and "whatever the options" in message


def test_a_config_fed_input_outside_the_root_is_refused_too(tmp_path):
    iface = {"step_type": "Step", "registry": {"sagemaker_step_type": "Processing"}, "compute": {"kind": "python"},
             "contract": {"entry_point": "main.py", "inputs": {"rules": {"path": "/opt/ml/processing/input/rules", "required": False}},
                          "outputs": {"out": {"path": "/opt/ml/processing/output"}}, "input_source_overrides": {"rules": "rules_dir"}}}
    p = pipeline(tmp_path / "proj", {**ENTRY, "processing_source_dir": "code", "rules_dir": str(tmp_path)}, scripts=("proj/code",))
    (p["interfaces"] / "step.step.yaml").write_text(yaml.safe_dump(iface))
    inputs = load_pipeline_inputs(p["dag"], p["config"], [p["interfaces"]], tmp_path / "proj")
    message = raised_message(PlanError, draft_plan, inputs)
    assert message.startswith(f"Node 'Step': rules_dir points outside the source root {tmp_path / 'proj'}: {tmp_path}")
