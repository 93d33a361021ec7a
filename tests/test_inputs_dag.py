"""load_dag: every accepted source, and the exact sentence for every mistake."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from pipelines import raised_message
from rtest.errors import DagError
from rtest.inputs.dag import PipelineDAG, load_dag

DATA = Path(__file__).parent / "data" / "inputs"


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def dag_error(source) -> str:
    return raised_message(DagError, load_dag, source)


# --- happy paths -------------------------------------------------------------------------


def test_flat_json_shape_keeps_declaration_order(tmp_path):
    path = tmp_path / "dag.json"
    path.write_text(json.dumps({"nodes": ["C", "A", "B"], "edges": [["A", "B"], ["C", "B"], ["C", "A"]]}))
    dag = load_dag(path)
    assert dag.nodes == ["C", "A", "B"]
    assert dag.edges == [("A", "B"), ("C", "B"), ("C", "A")]
    assert dag.origin == str(path.resolve())
    assert list(dag.graph.predecessors("B")) == ["A", "C"]  # rtest.graph.Digraph: networkx's methods, not its import


def test_wrapped_json_shape_from_data_file():
    dag = load_dag(str(DATA / "dag_wrapped.json"))
    assert dag.nodes == ["DataLoading_training", "Preprocess_training", "Train", "Registration"]
    assert dag.edges == [
        ("DataLoading_training", "Preprocess_training"),
        ("Preprocess_training", "Train"),
        ("Train", "Registration"),
    ]


def test_yaml_dag(tmp_path):
    path = write(
        tmp_path / "dag.yml",
        """\
        nodes: [A, B, C]
        edges:
          - [A, B]
          - [B, C]
        """,
    )
    dag = load_dag(path)
    assert dag.nodes == ["A", "B", "C"]
    assert dag.edges == [("A", "B"), ("B", "C")]


def test_wrapped_yaml_dag_and_dict_edges(tmp_path):
    path = write(
        tmp_path / "dag.yaml",
        """\
        version: 1.0.0
        dag:
          nodes: [A, B, C]
          edges:
            - {from: A, to: B}
            - {source: B, target: C}
        """,
    )
    assert load_dag(path).edges == [("A", "B"), ("B", "C")]


def test_nodes_without_edges(tmp_path):
    path = tmp_path / "dag.json"
    path.write_text('{"nodes": ["Only"]}')
    dag = load_dag(path)
    assert dag.nodes == ["Only"] and dag.edges == []


def test_repeated_edge_is_kept_once(tmp_path):
    path = tmp_path / "dag.json"
    path.write_text('{"nodes": ["A", "B"], "edges": [["A", "B"], ["A", "B"]]}')
    assert load_dag(path).edges == [("A", "B")]


@pytest.fixture
def nx():
    """networkx, imported by the tests that use it: collecting this module on every worker should not pay for it."""
    import networkx

    return networkx


def test_networkx_digraph(nx):
    graph = nx.DiGraph()
    graph.add_edges_from([("A", "B"), ("B", "C")])
    dag = load_dag(graph)
    assert dag.nodes == ["A", "B", "C"]
    assert set(dag.edges) == {("A", "B"), ("B", "C")}
    assert dag.origin == "<object>"


def test_object_with_nodes_and_edges_attributes():
    class CursusLikeDag:
        def __init__(self):
            self.nodes = ["X", "Y"]
            self.edges = [("X", "Y")]

    dag = load_dag(CursusLikeDag())
    assert dag.nodes == ["X", "Y"] and dag.edges == [("X", "Y")]


def test_pipeline_dag_is_returned_as_is(tmp_path, nx):
    graph = nx.DiGraph([("A", "B")])
    original = PipelineDAG(graph=graph, origin="somewhere")
    assert load_dag(original) is original


@pytest.fixture
def dag_module(tmp_path, monkeypatch):
    """A package of the user's, found relative to the working directory (not installed)."""
    package = tmp_path / "userpipe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    write(
        package / "dags.py",
        """\
        import networkx as nx

        class Dag:
            def __init__(self, nodes, edges):
                self.nodes, self.edges = nodes, edges

        def build_object():
            return Dag(["A", "B", "C"], [("A", "B"), ("B", "C")])

        def build_dict():
            return {"nodes": ["A", "B"], "edges": [["A", "B"]]}

        def build_graph():
            return nx.DiGraph([("P", "Q")])

        def build_number():
            return 42

        def build_broken():
            raise ValueError("no config here")

        def build_cyclic():
            return {"nodes": ["A", "B"], "edges": [["A", "B"], ["B", "A"]]}

        NOT_CALLABLE = {"nodes": ["M"], "edges": []}
        """,
    )
    write(package / "crashes.py", "raise RuntimeError('boom at import')\n")
    write(package / "needs_missing.py", "import surely_not_installed_pkg_xyz\n")
    monkeypatch.chdir(tmp_path)
    yield "userpipe"
    for name in [m for m in sys.modules if m == "userpipe" or m.startswith("userpipe.")]:
        del sys.modules[name]


def test_module_function_returning_object(dag_module):
    before = list(sys.path)
    dag = load_dag("userpipe.dags:build_object")
    assert dag.nodes == ["A", "B", "C"]
    assert dag.edges == [("A", "B"), ("B", "C")]
    assert dag.origin == "userpipe.dags:build_object"
    assert sys.path == before, "the working directory must only be on sys.path while importing"


def test_module_function_returning_dict_graph_or_variable(dag_module):
    assert load_dag("userpipe.dags:build_dict").edges == [("A", "B")]
    assert load_dag("userpipe.dags:build_graph").nodes == ["P", "Q"]
    assert load_dag("userpipe.dags:NOT_CALLABLE").nodes == ["M"]


# --- errors, with the exact sentence -----------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.json"
    assert dag_error(path) == f"DAG file not found: {path}"
    assert dag_error(str(path)) == f"DAG file not found: {path}"


def test_a_folder_given_as_the_dag_uses_the_dag_file_in_it(tmp_path):
    folder = tmp_path / "mypipe"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert dag_error(folder) == (f"DAG path {folder} is a folder with no DAG file in it (looked for *dag*.json, "
                                 f"*dag*.yaml); pass the DAG file itself, e.g. --dag {folder}/dag.json.")
    write(folder / "pipeline_dag.yaml", "nodes: [A, B]\nedges: [[A, B]]\n")
    assert load_dag(str(folder)).edges == [("A", "B")]
    write(folder / "dag.json", '{"nodes": ["A"], "edges": []}')
    assert dag_error(folder) == (f"DAG path {folder} is a folder with several DAG files (dag.json, pipeline_dag.yaml); "
                                 f"pass the one you mean, e.g. --dag {folder}/dag.json.")


def test_invalid_json_names_line_and_column(tmp_path):
    path = write(tmp_path / "dag.json", '{\n  "nodes": ["A", "B"]\n  "edges": []\n}\n')
    assert dag_error(path) == f"DAG file {path} is not valid JSON at line 3, column 3: Expecting ',' delimiter."


def test_invalid_yaml_names_line_and_column(tmp_path):
    path = write(tmp_path / "dag.yaml", "nodes: [A, B]\nedges: [[A, B]\n")
    message = dag_error(path)
    assert message.startswith(f"DAG file {path} is not valid YAML at line 3, column 1: ")
    assert message.endswith(".")


def test_top_level_not_a_mapping(tmp_path):
    path = write(tmp_path / "dag.json", '["A", "B"]')
    assert dag_error(path) == f"DAG file {path} is a list; it must be a mapping with 'nodes' and 'edges'."
    empty = write(tmp_path / "empty.yaml", "")
    assert dag_error(empty) == f"DAG file {empty} is empty; it must be a mapping with 'nodes' and 'edges'."


def test_missing_nodes(tmp_path):
    path = write(tmp_path / "dag.json", '{"dag": {"edges": []}}')
    assert dag_error(path) == (
        f"DAG {path} has no 'nodes'; list the step names under \"nodes\" (top level or inside \"dag\")."
    )


def test_nodes_not_a_list(tmp_path):
    path = write(tmp_path / "dag.json", '{"nodes": "A, B"}')
    assert dag_error(path) == f"DAG {path} has 'nodes' of type str; 'nodes' must be a list."


def test_cycle_names_nodes_in_order(tmp_path):
    path = tmp_path / "dag.json"
    path.write_text(json.dumps({"nodes": ["A", "B", "C", "D"], "edges": [["D", "A"], ["A", "B"], ["B", "C"], ["C", "A"]]}))
    assert dag_error(path) == f"DAG {path} has a cycle: A -> B -> C -> A; remove one of these edges."


def test_self_loop_is_a_cycle(tmp_path):
    path = write(tmp_path / "dag.json", '{"nodes": ["A"], "edges": [["A", "A"]]}')
    assert dag_error(path) == f"DAG {path} has a cycle: A -> A; remove one of these edges."


def test_edge_to_unknown_node(tmp_path):
    path = write(tmp_path / "dag.json", '{"nodes": ["A", "B"], "edges": [["A", "B"], ["B", "X"]]}')
    assert dag_error(path) == f"DAG {path} has an edge B -> X to unknown node 'X'; add 'X' to nodes or fix the edge."


def test_edge_from_unknown_node(tmp_path):
    path = write(tmp_path / "dag.json", '{"nodes": ["A", "B"], "edges": [["Z", "B"]]}')
    assert dag_error(path) == f"DAG {path} has an edge Z -> B from unknown node 'Z'; add 'Z' to nodes or fix the edge."


def test_duplicate_nodes_are_named(tmp_path):
    path = write(tmp_path / "dag.json", '{"nodes": ["A", "B", "A", "C", "B"], "edges": []}')
    assert dag_error(path) == f"DAG {path} lists nodes 'A', 'B' more than once; list each node once."
    one = write(tmp_path / "one.json", '{"nodes": ["A", "A"]}')
    assert dag_error(one) == f"DAG {one} lists node 'A' more than once; list each node once."


def test_edge_that_is_not_a_pair(tmp_path):
    path = write(tmp_path / "dag.json", '{"nodes": ["A", "B", "C"], "edges": [["A", "B"], ["A", "B", "C"]]}')
    assert dag_error(path) == (
        f"DAG {path} has edge #2 ['A', 'B', 'C'] that is not a pair; write each edge as [upstream, downstream]."
    )
    text = write(tmp_path / "text.json", '{"nodes": ["A", "B"], "edges": ["A->B"]}')
    assert dag_error(text) == f"DAG {text} has edge #1 'A->B' that is not a pair; write each edge as [upstream, downstream]."


def test_node_that_is_not_a_name(tmp_path):
    path = write(tmp_path / "dag.json", '{"nodes": ["A", 7]}')
    assert dag_error(path) == f"DAG {path} has a node 7 that is not a step name; node names must be non-empty strings."


def test_cyclic_digraph_object(nx):
    graph = nx.DiGraph([("A", "B"), ("B", "A")])
    assert dag_error(graph) == "The DAG object has a cycle: A -> B -> A; remove one of these edges."


def test_unusable_object():
    assert dag_error(3.5) == (
        "The DAG object is a float, not a DAG; use a JSON/YAML file, a networkx DiGraph, "
        "a dict or an object with 'nodes' and 'edges'."
    )


def test_module_that_cannot_be_imported(dag_module):
    assert dag_error("userpipe.absent:build") == (
        "DAG source userpipe.absent:build: module 'userpipe.absent' cannot be imported "
        "(No module named 'userpipe.absent'); run rtest from the folder that holds it or add that folder to PYTHONPATH."
    )


def test_module_whose_own_import_is_missing(dag_module):
    assert dag_error("userpipe.needs_missing:build") == (
        "DAG source userpipe.needs_missing:build: importing module 'userpipe.needs_missing' failed: "
        "No module named 'surely_not_installed_pkg_xyz'; install the missing package."
    )


def test_module_that_crashes_on_import(dag_module):
    assert dag_error("userpipe.crashes:build") == (
        "DAG source userpipe.crashes:build: importing module 'userpipe.crashes' failed with RuntimeError: "
        "boom at import; fix the module."
    )


def test_missing_function(dag_module):
    assert dag_error("userpipe.dags:build_nothing") == (
        "DAG source userpipe.dags:build_nothing: module 'userpipe.dags' has no attribute 'build_nothing'; "
        "check the name after ':'."
    )


def test_function_that_raises(dag_module):
    assert dag_error("userpipe.dags:build_broken") == (
        "DAG function userpipe.dags:build_broken raised ValueError: no config here; "
        "fix the function (it is called with no arguments)."
    )


def test_function_returning_the_wrong_thing(dag_module):
    assert dag_error("userpipe.dags:build_number") == (
        "DAG from userpipe.dags:build_number returned an int, not a DAG; use a JSON/YAML file, a networkx DiGraph, "
        "a dict or an object with 'nodes' and 'edges'."
    )


def test_function_returning_a_cyclic_dag(dag_module):
    assert dag_error("userpipe.dags:build_cyclic") == (
        "DAG from userpipe.dags:build_cyclic has a cycle: A -> B -> A; remove one of these edges."
    )
