"""Hostile and broken user input at the CLI (issue 7, points 2, 4, 5): exit 2, one sentence, no traceback, nothing of the user's changed."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from pipelines import write_python_pipeline
from rtest.cli.main import main

STEP = {"script": "print('ok')\n", "inputs": {"DATA": "/opt/ml/processing/input/data"}, "outputs": {"r": "/opt/ml/processing/output/r"}}


@pytest.fixture(autouse=True)
def _keep_logging():
    """`sandbox run` in-process points structlog at capsys' stream; put the previous set-up back for later tests."""
    import structlog

    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


def snapshot(folder: Path, skip: str = ".rtest") -> dict[str, str]:
    """Every file and link of the user's folder with its content hash, to prove nothing changed."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if skip in path.relative_to(folder).parts:
            continue
        if path.is_symlink():
            found[str(path)] = "link:" + os.readlink(path)
        elif path.is_file():
            found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture
def project(tmp_path: Path) -> dict[str, Path]:
    p = write_python_pipeline(tmp_path / "project", {"A": STEP}, [])
    data = tmp_path / "project" / "data"
    data.mkdir()
    (data / "a.csv").write_text("a\n1\n")
    return {**p, "data": data, "root": tmp_path / "project"}


def _args(p: dict[str, Path], *extra: str, data: str | None = None) -> list[str]:
    return ["--dag", str(p["dag"]), "--config", str(p["config"]), "--input", f"A.DATA={data or p['data']}", *extra]


def refused(capsys, p: dict[str, Path], *args: str, chdir: Path | None = None) -> str:
    """Run the CLI, check it refused with exit 2 and one sentence, touching none of the user's files; return the sentence."""
    before = snapshot(p["root"])
    cwd = os.getcwd()
    try:
        if chdir:
            os.chdir(chdir)
        code, out, err = run_cli(capsys, *args)
    finally:
        os.chdir(cwd)
    assert code == 2, out + err
    assert "Traceback" not in out + err and err.startswith("Error: "), err
    assert snapshot(p["root"]) == before
    return " ".join(err.split())  # rich wraps long lines


# ---- user inputs (point 2) ---------------------------------------------------------------------

def test_input_root_is_refused(capsys, project, tmp_path):
    err = refused(capsys, project, "sandbox", "run", *_args(project, "--workdir", str(tmp_path / "wd"), data="/"))
    assert "A.DATA: path / is the file system root" in err
    assert not (tmp_path / "wd" / "runs").exists()


def test_input_dot_with_default_workdir_is_refused(capsys, project):
    err = refused(capsys, project, "sandbox", "run", *_args(project, data="."), chdir=project["root"])
    assert f"A.DATA: path {project['root']} holds rtest's workdir {project['root'] / '.rtest'}" in err
    assert not (project["root"] / ".rtest" / "runs").exists()


def test_input_symlink_loop_and_fifo_and_link_out_are_sentences(capsys, project, tmp_path):
    (project["data"] / "loop").symlink_to("loop")
    err = refused(capsys, project, "plan", *_args(project))
    assert "symlink loop at" in err and "loop" in err
    looped = refused(capsys, project, "plan", *_args(project, data=str(project["data"] / "loop")))  # the input path itself
    assert f"path {project['data'] / 'loop'} is a symlink loop" in looped
    (project["data"] / "loop").unlink()
    os.mkfifo(project["data"] / "pipe")
    assert "pipe, which is a FIFO" in refused(capsys, project, "plan", *_args(project))
    (project["data"] / "pipe").unlink()
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret")
    (project["data"] / "leak").symlink_to(secret)
    err = refused(capsys, project, "plan", *_args(project))
    assert f"leak -> {secret} that points outside the input folder" in err and "--follow-input-links" in err
    code, out, err = run_cli(capsys, "plan", *_args(project), "--follow-input-links", "--format", "json")
    assert code == 0 and json.loads(out)["follow_input_links"] is True


def test_spec_file_input_and_follow_links(capsys, project, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret")
    (project["data"] / "leak").symlink_to(secret)
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"scripts:\n  A:\n    inputs:\n      DATA: {project['data']}\n")
    base = ["--dag", str(project["dag"]), "--config", str(project["config"]), "--spec", str(spec)]
    assert "points outside the input folder" in refused(capsys, project, "plan", *base)
    spec.write_text(f"follow_input_links: true\nscripts:\n  A:\n    inputs:\n      DATA: {project['data']}\n")
    code, _, err = run_cli(capsys, "plan", *base)
    assert code == 0, err


def test_factory_refuses_the_same_inputs(project, tmp_path):
    from rtest import InteractiveRuntimeTestingFactory

    factory = InteractiveRuntimeTestingFactory(project["dag"], project["config"], interface_dirs=[project["interfaces"]],
                                               workspace_dir=project["root"] / ".rtest")
    for bad, said in (("/", "file system root"), (project["root"], "holds rtest's workdir")):
        with pytest.raises(ValueError, match=said):
            factory.configure_script_testing("A", expected_inputs={"DATA": bad})
    (tmp_path / "shared").mkdir()
    (project["data"] / "leak").symlink_to(tmp_path / "shared")
    with pytest.raises(ValueError, match="follow-input-links"):
        factory.configure_script_testing("A", expected_inputs={"DATA": project["data"]})
    allowing = InteractiveRuntimeTestingFactory(project["dag"], project["config"], interface_dirs=[project["interfaces"]],
                                                workspace_dir=tmp_path / "wd", follow_input_links=True)
    allowing.configure_script_testing("A", expected_inputs={"DATA": project["data"]})


# ---- bad input is exit 2 with a sentence (point 5) ---------------------------------------------

def test_empty_dag(capsys, project):
    project["dag"].write_text(json.dumps({"nodes": [], "edges": []}))
    err = refused(capsys, project, "sandbox", "run", "--dag", str(project["dag"]), "--config", str(project["config"]), chdir=project["root"])
    assert "The DAG has no nodes, so there is nothing to run" in err
    assert not (project["root"] / ".rtest").exists()  # a refused run makes no workdir


@pytest.mark.parametrize("key, said", [("K=V", "holds '='"), ("", "is empty"), ("1ABC", "is not a valid name"), ("A B", "is not a valid name")])
def test_bad_env_key_from_spec_file(capsys, project, tmp_path, key, said):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"scripts": {"A": {"environment": {key: "x"}}}}))
    err = refused(capsys, project, "sandbox", "run", *_args(project, "--spec", str(spec), "--workdir", str(tmp_path / "wd")))
    assert f"Node A: environment variable name {key!r} {said}" in err and "scripts.A.environment" in err


def test_bad_env_key_from_interface(capsys, project):
    iface = project["interfaces"] / "A.step.yaml"
    iface.write_text(iface.read_text().replace("optional: {}", "optional: {'K=V': x}"))
    err = refused(capsys, project, "plan", *_args(project))
    assert "environment variable name 'K=V' holds '='" in err and str(iface) in err


def test_bad_env_key_from_factory(project):
    from rtest import InteractiveRuntimeTestingFactory

    factory = InteractiveRuntimeTestingFactory(project["dag"], project["config"], interface_dirs=[project["interfaces"]])
    with pytest.raises(ValueError, match="holds '='"):
        factory.configure_script_testing("A", expected_inputs={"DATA": project["data"]}, environment_variables={"K=V": "x"})


@pytest.mark.parametrize("memory, said", [("1k", "below the 6m"), ("-1g", "is not a size"), ("0", "below the 6m"), ("lots", "is not a size"),
                                          ("9" * 400, "larger than any machine")])
def test_bad_memory(capsys, project, tmp_path, memory, said):
    err = refused(capsys, project, "sandbox", "run", *_args(project, "--memory", memory, "--workdir", str(tmp_path / "wd")))
    assert "--memory" in err and said in err
    assert not (tmp_path / "wd").exists()  # refused before anything was made


def test_bad_log_format(capsys, project, tmp_path):
    err = refused(capsys, project, "sandbox", "run", *_args(project, "--log-format", "xml", "--workdir", str(tmp_path / "wd")))
    assert "--log-format 'xml' is not a log format; use text or json." in err


def test_unusable_paths(capsys, project, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    assert "is a file, not a folder" in refused(capsys, project, "sandbox", "run", *_args(project, "--workdir", str(afile)))
    assert "cannot be written" in refused(capsys, project, "sandbox", "run", *_args(project, "--workdir", "/proc/rtest-workdir"))
    (tmp_path / "jdir").mkdir()
    err = refused(capsys, project, "sandbox", "run", *_args(project, "--junit", str(tmp_path / "jdir"), "--workdir", str(tmp_path / "wd")))
    assert f"--junit {tmp_path / 'jdir'} is a folder" in err
    assert "--interfaces / is the file system root" in refused(capsys, project, "plan", *_args(project, "--interfaces", "/"))
    assert afile.read_text() == "not a folder"


def test_node_name_too_long(capsys, project):
    long = "N" * 300
    dag = json.loads(project["dag"].read_text())
    config = json.loads(project["config"].read_text())
    dag["nodes"] = [long]
    config["configuration"]["specific"][long] = config["configuration"]["specific"].pop("A")
    config["metadata"]["config_types"][long] = config["metadata"]["config_types"].pop("A")
    project["dag"].write_text(json.dumps(dag))
    project["config"].write_text(json.dumps(config))
    err = refused(capsys, project, "plan", "--dag", str(project["dag"]), "--config", str(project["config"]), "--input", f"{long}.DATA={project['data']}")
    assert "is 300 bytes long, over the 255 a file name may have" in err and "(300 characters)" in err and "rename it in the DAG" in err


def test_edge_format_message_keeps_its_brackets(capsys, project):
    project["dag"].write_text(json.dumps({"nodes": ["A"], "edges": [["A"]]}))
    err = refused(capsys, project, "plan", *_args(project))
    assert "write each edge as [upstream, downstream]" in err


def test_markup_in_an_error_message_is_shown_as_text(capsys, project):
    err = refused(capsys, project, "plan", "--dag", str(project["dag"]), "--config", str(project["config"]), "--input", "Hop[/x].DATA=/tmp")
    assert "Script 'Hop[/x]' not found" in err


# ---- shared engines (point 4) ------------------------------------------------------------------

@pytest.mark.parametrize("args, said", [
    ([], "Say which containers to remove: --run-id ID"),
    (["--run-id", ""], "--run-id '' is not a run id"),
    (["--run-id", "a,b=c"], "is not a run id"),
    (["--all-users"], "--all-users goes with --all"),
    (["--run-id", "x", "--all"], "either --run-id ID or --all"),
])
def test_clean_needs_a_scope(capsys, args, said):
    code, out, err = run_cli(capsys, "sandbox", "clean", *args)
    assert code == 2 and said in " ".join(err.split()) and "Removed" not in out
