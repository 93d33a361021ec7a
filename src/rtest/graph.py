"""A small directed graph of step names: the part of networkx rtest uses, without its 60-200 ms import.

Every command builds a DAG, and most finish in well under a second, so importing networkx (it loads
all its algorithms up front) was a large share of `rtest plan` and `rtest sandbox run`. The order
rules are networkx's (nodes, and each node's neighbours, in insertion order), so listings, the
execution order and cycle messages stay as they were. A networkx DiGraph handed in by a user is
still read (rtest.inputs.dag takes its nodes and edges).
"""

from __future__ import annotations

import heapq
from typing import Callable, Generic, Hashable, Iterable, Iterator, TypeVar

N = TypeVar("N", bound=Hashable)  # a node: a step name, or a layout's (edge, rank) dummy


class Digraph(Generic[N]):
    """Insertion-ordered adjacency in both directions; the method names are networkx's."""

    def __init__(self, edges: Iterable[tuple[N, N]] = ()) -> None:
        self._succ: dict[N, dict[N, None]] = {}
        self._pred: dict[N, dict[N, None]] = {}
        self.add_edges_from(edges)

    def add_node(self, node: N) -> None:
        if node not in self._succ:
            self._succ[node], self._pred[node] = {}, {}

    def add_nodes_from(self, nodes: Iterable[N]) -> None:
        for node in nodes:
            self.add_node(node)

    def add_edge(self, upstream: N, downstream: N) -> None:
        self.add_node(upstream)
        self.add_node(downstream)
        self._succ[upstream][downstream] = None
        self._pred[downstream][upstream] = None

    def add_edges_from(self, edges: Iterable[tuple[N, N]]) -> None:
        for upstream, downstream in edges:
            self.add_edge(upstream, downstream)

    def has_edge(self, upstream: N, downstream: N) -> bool:
        return downstream in self._succ.get(upstream, ())

    def __contains__(self, node: object) -> bool:
        return node in self._succ

    def __iter__(self) -> Iterator[N]:
        return iter(self._succ)

    def __len__(self) -> int:
        return len(self._succ)

    @property
    def nodes(self) -> list[N]:
        return list(self._succ)

    @property
    def edges(self) -> list[tuple[N, N]]:
        """Grouped by upstream node, as networkx lists them."""
        return [(upstream, downstream) for upstream, targets in self._succ.items() for downstream in targets]

    def number_of_edges(self) -> int:
        return sum(len(targets) for targets in self._succ.values())

    def predecessors(self, node: N) -> Iterator[N]:
        return iter(self._pred[node])

    def successors(self, node: N) -> Iterator[N]:
        return iter(self._succ[node])


def descendants(graph: Digraph[N], node: N) -> set[N]:
    seen: set[N] = set()
    frontier = list(graph.successors(node))
    while frontier:
        current = frontier.pop()
        if current not in seen:
            seen.add(current)
            frontier.extend(graph.successors(current))
    return seen


def find_cycle(graph: Digraph[N]) -> list[tuple[N, N]] | None:
    """The first cycle a depth-first search meets (nodes in insertion order), as its edges; None if acyclic."""
    done: set[N] = set()
    for start in graph:
        if start in done:
            continue
        path, on_path = [start], {start: 0}
        stack = [iter(graph.successors(start))]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                finished = path.pop()
                done.add(finished)
                del on_path[finished]
                stack.pop()
                continue
            if child in on_path:
                loop = path[on_path[child]:] + [child]
                return list(zip(loop, loop[1:]))
            if child not in done:
                on_path[child] = len(path)
                path.append(child)
                stack.append(iter(graph.successors(child)))
    return None


def lexicographical_topological_sort(graph: Digraph[N], key: Callable[[N], object]) -> list[N]:
    """Kahn's algorithm, always taking the ready node with the smallest key (networkx's tie rule)."""
    waiting = {node: len(graph._pred[node]) for node in graph}
    ready = [(key(node), index, node) for index, node in enumerate(graph) if not waiting[node]]
    heapq.heapify(ready)
    index = {node: i for i, node in enumerate(graph)}
    order: list[N] = []
    while ready:
        _, _, node = heapq.heappop(ready)
        order.append(node)
        for child in graph.successors(node):
            waiting[child] -= 1
            if not waiting[child]:
                heapq.heappush(ready, (key(child), index[child], child))
    if len(order) != len(graph):
        raise ValueError("the graph has a cycle")
    return order


def topological_generations(graph: Digraph[N]) -> list[list[N]]:
    """Layers: nodes without parents, then nodes whose parents are all in earlier layers; ValueError on a cycle."""
    waiting = {node: len(graph._pred[node]) for node in graph}
    layer = [node for node in graph if not waiting[node]]
    layers, placed = [], 0
    while layer:
        layers.append(layer)
        placed += len(layer)
        following = []
        for node in layer:
            for child in graph.successors(node):
                waiting[child] -= 1
                if not waiting[child]:
                    following.append(child)
        layer = following
    if placed != len(graph):
        raise ValueError("the graph has a cycle")
    return layers
