"""The pipeline DAG, from whatever the user has: a JSON/YAML file, a Python
``module:function``, a networkx graph or any object with ``nodes`` and ``edges``.

Every source ends in the same checks (names are strings, listed once, edges are
pairs between known nodes, no cycle) so a bad DAG fails here, naming the file,
instead of deep inside the planner.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from rtest.errors import DagError, DagNotFoundError
from rtest.graph import Digraph, find_cycle

_MODULE_FUNCTION = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class PipelineDAG:
    graph: Digraph[str]  # or a networkx DiGraph built by the caller: the same methods are used
    origin: str  # absolute file path, "module:function" or "<object>"
    declared_edges: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)

    @property
    def nodes(self) -> list[str]:
        """Nodes in declaration order (networkx keeps insertion order)."""
        return list(self.graph.nodes)

    @property
    def edges(self) -> list[tuple[str, str]]:
        """Edges in declaration order when known; networkx itself groups them by upstream node."""
        if self.declared_edges and len(self.declared_edges) == self.graph.number_of_edges():
            return list(self.declared_edges)
        return list(self.graph.edges)


def load_dag(source: Any) -> PipelineDAG:
    """Read and check a DAG; every user mistake raises ``DagError``."""
    if isinstance(source, PipelineDAG):
        return source
    if isinstance(source, Path):
        return _from_file(source.expanduser())
    if isinstance(source, str):
        if _MODULE_FUNCTION.match(source) and not Path(source).exists():
            return _from_object(_call_module_function(source), source, f"DAG from {source}")
        return _from_file(Path(source).expanduser())
    return _from_object(source, "<object>", "The DAG object")


def _from_file(path: Path) -> PipelineDAG:
    if path.is_dir():
        path = _dag_file_in(path)
    if not path.is_file():
        raise DagNotFoundError(f"DAG file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DagError(f"DAG file {path} cannot be read: {exc}.") from exc
    data = _parse(text, path)
    if not isinstance(data, Mapping):
        found = "empty" if data is None else _kind_of(data)
        raise DagError(f"DAG file {path} is {found}; it must be a mapping with 'nodes' and 'edges'.")
    return _from_mapping(data, str(path.resolve()), f"DAG {path}")


def _dag_file_in(folder: Path) -> Path:
    """A folder given as the DAG: the one DAG file in it (a name holding 'dag', .json/.yaml/.yml)."""
    found = sorted(p for p in folder.iterdir()
                   if p.is_file() and "dag" in p.name.lower() and p.suffix.lower() in (".json", *_YAML_SUFFIXES))
    if len(found) == 1:
        return found[0]
    if not found:
        raise DagError(f"DAG path {folder} is a folder with no DAG file in it (looked for *dag*.json, *dag*.yaml); "
                       "pass the DAG file itself, e.g. --dag {}/dag.json.".format(folder))
    names = ", ".join(p.name for p in found)
    raise DagError(f"DAG path {folder} is a folder with several DAG files ({names}); pass the one you mean, "
                   f"e.g. --dag {found[0]}.")


def _parse(text: str, path: Path) -> Any:
    if path.suffix.lower() in _YAML_SUFFIXES:
        import yaml  # only for YAML DAGs: JSON ones start faster without it

        from rtest.yamltext import load_yaml

        try:
            return load_yaml(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            raise DagError(
                f"DAG file {path} is not valid YAML at line {mark.line + 1}, column {mark.column + 1}: {exc.problem}."
            ) from exc
        except yaml.YAMLError as exc:
            raise DagError(f"DAG file {path} is not valid YAML: {exc}.") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DagError(f"DAG file {path} is not valid JSON at line {exc.lineno}, column {exc.colno}: "
                       f"{exc.msg}.") from exc


def _call_module_function(spec: str) -> Any:
    module_name, function_name = spec.split(":")
    module = _import_from_cwd(module_name, spec)
    if not hasattr(module, function_name):
        raise DagError(f"DAG source {spec}: module '{module_name}' has no attribute '{function_name}'; "
                       "check the name after ':'.")
    target = getattr(module, function_name)
    if not callable(target):
        return target  # a module-level DAG object is as good as a function returning one
    try:
        return target()
    except Exception as exc:
        raise DagError(f"DAG function {spec} raised {type(exc).__name__}: {exc}; "
                       "fix the function (it is called with no arguments).") from exc


def _import_from_cwd(module_name: str, spec: str) -> Any:
    # Users name modules of their own project, run from its root, often without installing it.
    cwd = str(Path.cwd())
    sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise DagError(
                f"DAG source {spec}: module '{module_name}' cannot be imported ({exc}); "
                "run rtest from the folder that holds it or add that folder to PYTHONPATH."
            ) from exc
        raise DagError(f"DAG source {spec}: importing module '{module_name}' failed: {exc}; "
                       "install the missing package.") from exc
    except Exception as exc:
        raise DagError(f"DAG source {spec}: importing module '{module_name}' failed with "
                       f"{type(exc).__name__}: {exc}; fix the module.") from exc
    finally:
        if cwd in sys.path:
            sys.path.remove(cwd)


def _from_object(obj: Any, origin: str, label: str) -> PipelineDAG:
    if isinstance(obj, PipelineDAG):
        return obj
    if _is_networkx_graph(obj):
        return _build(list(obj.nodes), list(obj.edges), origin, label)
    if isinstance(obj, Mapping):
        return _from_mapping(obj, origin, label)
    if hasattr(obj, "nodes") and hasattr(obj, "edges"):
        nodes, edges = _attribute(obj, "nodes"), _attribute(obj, "edges")
        return _build(_as_list(nodes, "nodes", label), _as_list(edges, "edges", label), origin, label)
    what = "returned" if origin != "<object>" else "is"
    raise DagError(
        f"{label} {what} {_kind_of(obj)}, not a DAG; use a JSON/YAML file, a networkx DiGraph, "
        "a dict or an object with 'nodes' and 'edges'."
    )


def _attribute(obj: Any, name: str) -> Any:
    value = getattr(obj, name)
    return value() if callable(value) and not isinstance(value, (list, tuple)) else value


def _from_mapping(data: Mapping, origin: str, label: str) -> PipelineDAG:
    body = data["dag"] if isinstance(data.get("dag"), Mapping) else data
    if "nodes" not in body:
        raise DagError(f"{label} has no 'nodes'; list the step names under \"nodes\" (top level or inside \"dag\").")
    nodes = _as_list(body["nodes"], "nodes", label)
    edges = _as_list(body.get("edges") or [], "edges", label)
    return _build(nodes, edges, origin, label)


def _as_list(value: Any, key: str, label: str) -> list:
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise DagError(f"{label} has '{key}' of type {type(value).__name__}; '{key}' must be a list.")
    return list(value)


def _build(nodes: list, edges: list, origin: str, label: str) -> PipelineDAG:
    _check_nodes(nodes, label)
    graph: Digraph[str] = Digraph()
    graph.add_nodes_from(nodes)
    declared: list[tuple[str, str]] = []
    for index, edge in enumerate(edges, start=1):
        upstream, downstream = _edge_pair(edge, index, label)
        for node, direction in ((upstream, "from"), (downstream, "to")):
            if node not in graph:
                raise DagError(
                    f"{label} has an edge {upstream} -> {downstream} {direction} unknown node '{node}'; "
                    f"add '{node}' to nodes or fix the edge."
                )
        if not graph.has_edge(upstream, downstream):
            declared.append((upstream, downstream))
            graph.add_edge(upstream, downstream)
    _check_acyclic(graph, label)
    return PipelineDAG(graph=graph, origin=origin, declared_edges=tuple(declared))


def _check_nodes(nodes: list, label: str) -> None:
    for node in nodes:
        if not isinstance(node, str) or not node:
            raise DagError(f"{label} has a node {node!r} that is not a step name; "
                           "node names must be non-empty strings.")
    repeated = [name for name, count in Counter(nodes).items() if count > 1]
    if repeated:
        names = ", ".join(f"'{name}'" for name in repeated)
        plural = "s" if len(repeated) > 1 else ""
        raise DagError(f"{label} lists node{plural} {names} more than once; list each node once.")


def _edge_pair(edge: Any, index: int, label: str) -> tuple[Any, Any]:
    if isinstance(edge, Mapping):
        upstream = edge.get("from", edge.get("source"))
        downstream = edge.get("to", edge.get("target"))
        if upstream is not None and downstream is not None:
            return upstream, downstream
    elif isinstance(edge, (list, tuple)) and len(edge) == 2:
        return edge[0], edge[1]
    raise DagError(f"{label} has edge #{index} {edge!r} that is not a pair; write each edge as [upstream, downstream].")


def _is_networkx_graph(obj: Any) -> bool:
    """Without importing networkx: a caller who built a DiGraph has imported it already."""
    networkx = sys.modules.get("networkx")
    return networkx is not None and isinstance(obj, networkx.DiGraph)


def _check_acyclic(graph: Digraph[str], label: str) -> None:
    cycle = find_cycle(graph)
    if cycle is None:
        return
    path = " -> ".join([str(u) for u, _ in cycle] + [str(cycle[0][0])])
    raise DagError(f"{label} has a cycle: {path}; remove one of these edges.")


def _kind_of(value: object) -> str:
    """'a list', 'an int': the type of a wrong value, for a sentence."""
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"
