"""Generated bad input (issue 7, point 7): names, env keys, sizes and terminal text. No containers in these loops."""

from __future__ import annotations

import io
import json
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.text import Text

from pipelines import write_python_pipeline
from properties import examples
from rtest.cli.preflight import MIN_MEMORY_BYTES, OptionError, parse_memory
from rtest.cli.text import clean, markup_safe
from rtest.errors import RtestError
from rtest.plan.builder import draft_plan, load_pipeline_inputs
from rtest.plan.checks import ENV_NAME, MAX_NAME_BYTES, env_name_problem
from rtest.plan.userspec import UserSpec
from rtest.run.layout import step_folders

FAST = settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
# Text that attacks: markup brackets, escapes, controls of both ranges, path separators, long runs and any Unicode.
HOSTILE_TEXT = st.text(alphabet=st.one_of(st.sampled_from("[]/\\=\x1b\x07\x9b\r\n\t.:;#@ "), st.characters()), max_size=300)
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@pytest.fixture(scope="module")
def project():
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        step = {"script": "print('ok')\n", "outputs": {"r": "/opt/ml/processing/output/r"}}
        yield write_python_pipeline(root, {"A": step}, []), root


def _with_node(project, node: str) -> tuple:
    p, root = project
    config = json.loads(p["config"].read_text())
    specific = config["configuration"]["specific"]
    config["configuration"]["specific"] = {node: next(iter(specific.values()))}
    config["metadata"]["config_types"] = {node: "AConfig"}
    dag, cfg = root / "dag-gen.json", root / "config-gen.json"
    dag.write_text(json.dumps({"nodes": [node], "edges": []}))
    cfg.write_text(json.dumps(config))
    return dag, cfg, p["interfaces"]


@FAST
@given(HOSTILE_TEXT)
def test_any_node_name_is_planned_or_refused_with_a_sentence(project, node):
    """A DAG node may be named anything: the plan accepts it (and its folder can be made) or says why not."""
    dag, cfg, interfaces = _with_node(project, node)
    try:
        plan = draft_plan(load_pipeline_inputs(dag, cfg, [interfaces]))
    except RtestError as exc:
        message = str(exc)
        stderr = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")  # strict, as a terminal's stream is
        Console(file=stderr).print(f"[bold red]Error:[/] {markup_safe(message)}")  # what main() does: no MarkupError, no UnicodeEncodeError
        stderr.flush()
        return
    for name in plan.scripts:
        assert len(name.encode("utf-8", "surrogatepass")) <= MAX_NAME_BYTES
        with tempfile.TemporaryDirectory() as scratch:
            folder = step_folders(Path(scratch), name).root
            folder.mkdir()
            assert folder.parent == Path(scratch)  # one folder, never a path out of the run folder


@FAST
@given(st.one_of(HOSTILE_TEXT, st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)))
def test_env_keys_are_valid_names_or_refused(project, key):
    p, _ = project
    user = UserSpec.model_validate({"scripts": {"A": {"environment": {key: "x"}}}})
    try:
        plan = draft_plan(load_pipeline_inputs(p["dag"], p["config"], [p["interfaces"]]), user)
    except RtestError as exc:
        assert env_name_problem(key) is not None and "environment variable name" in str(exc)
        return
    assert ENV_NAME.fullmatch(key) and plan.scripts["A"].environment[key].value == "x"


SIZES = st.one_of(
    HOSTILE_TEXT,
    st.builds(lambda sign, n, unit: f"{sign}{n}{unit}", st.sampled_from(["", "-", "+", " "]),
              st.one_of(st.integers(0, 10**6), st.floats(0, 1e6, allow_nan=False), st.integers(10**300, 10**400)),
              st.sampled_from(["", "k", "m", "g", "t", "K", "MB", "Gi", "GiB", "x", " m"])),
)


@FAST
@given(SIZES)
def test_memory_is_a_usable_limit_or_a_sentence(text):
    try:
        nbytes = parse_memory(text)
    except OptionError as exc:
        assert str(exc).startswith("--memory ") and str(exc).endswith(".")
        return
    assert isinstance(nbytes, int) and MIN_MEMORY_BYTES <= nbytes <= 2**50


@FAST
@given(HOSTILE_TEXT)
def test_terminal_text_is_clean_and_markup_safe(text):
    cleaned = clean(text)
    cleaned.encode("utf-8")  # a strict UTF-8 terminal stream takes it
    assert not CONTROL.search(cleaned.replace("\n", "").replace("\t", "")) and clean(cleaned) == cleaned
    # Shown exactly as written, markup never applied, also right before a closing tag (a trailing backslash!).
    assert Text.from_markup(f"[dim]{markup_safe(text)}[/dim]").plain == cleaned
    sink = io.StringIO()
    Console(file=sink, force_terminal=True, color_system=None, width=80).print(f"[bold]node:[/] {markup_safe(text)}")
    assert "\x1b]" not in sink.getvalue() and "\x07" not in sink.getvalue()


@FAST
@given(HOSTILE_TEXT)
@example("~\x00")  # found by this test: the home-folder lookup raised ValueError before the NUL check
def test_any_input_flag_is_taken_or_refused_with_a_sentence(value):
    """`--input A.DATA=<anything>`: parsed and checked, or one sentence; never a traceback."""
    from rtest.plan.input_paths import input_path_problem
    from rtest.plan.userspec import parse_input_flags

    try:
        path = parse_input_flags([f"A.DATA={value}"]).scripts["A"].inputs["DATA"]
    except RtestError:
        return
    problem = input_path_problem(path, workdir=Path.cwd() / ".rtest")
    assert problem is None or isinstance(problem, str)
