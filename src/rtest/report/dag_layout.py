"""Where each DAG node sits in report.html, and the route of each edge.

A small layered (Sugiyama-style) layout: layers from
rtest.graph.topological_generations, edges spanning several layers get invisible
waypoints in the layers they cross (so they run between boxes, not through
them), and a few barycentre sweeps order each layer to cut crossings. Layers
wider than the page wrap onto extra rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from rtest.graph import Digraph, topological_generations

BOX_W, BOX_H = 250, 44
WAYPOINT_W = 10
GAP_X, ROW_GAP, LAYER_GAP, MARGIN = 26, 18, 56, 16
MAX_ROW_W = 1180  # four boxes: the report's content width
MAX_WAYPOINTS = 4000  # beyond this, long edges are drawn straight rather than routed
SWEEPS = 4

Item = str | tuple[int, int]  # a node name, or (edge index, layer) for a waypoint


@dataclass
class Layout:
    boxes: dict[str, tuple[float, float]] = field(default_factory=dict)  # node -> top-left corner
    routes: list[tuple[str, str, list[tuple[float, float]]]] = field(default_factory=list)  # edge, points
    width: float = 0.0
    height: float = 0.0


def layout_dag(nodes: list[str], edges: list[tuple[str, str]]) -> Layout:
    graph: Digraph[str] = Digraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from(edges)
    rank: dict[Item, int] = {node: i for i, node in enumerate(nodes)}
    try:
        layers: list[list[Item]] = [sorted(layer, key=rank.__getitem__) for layer in topological_generations(graph)]
    except ValueError:  # a cyclic DAG never reaches a run, but its report must still render
        layers = [list(nodes)]
    layer_of = {item: i for i, layer in enumerate(layers) for item in layer}
    chains = _add_waypoints(list(graph.edges), layer_of, layers)
    _order_layers(layers, chains)
    places = _place(layers)
    result = Layout(width=max((x + w for x, _, w in places.values()), default=0) + MARGIN)
    result.height = max((y for _, y, _ in places.values()), default=0) + BOX_H + MARGIN
    result.boxes = {item: (x, y) for item, (x, y, _) in places.items() if isinstance(item, str)}
    # a chain runs from a node to a node; waypoints only sit between
    result.routes = [(cast(str, chain[0]), cast(str, chain[-1]), _route(chain, places)) for chain in chains]
    return result


def _add_waypoints(edges: list[tuple[str, str]], layer_of: dict, layers: list[list[Item]]) -> list[list[Item]]:
    """Each edge as the chain of items it passes through; waypoints are appended to their layers."""
    spans = sum(max(0, layer_of[b] - layer_of[a] - 1) for a, b in edges)
    chains = []
    for index, (a, b) in enumerate(edges):
        chain: list[Item] = [a]
        if spans <= MAX_WAYPOINTS:
            for layer in range(layer_of[a] + 1, layer_of[b]):
                chain.append((index, layer))
                layers[layer].append((index, layer))
        chains.append([*chain, b])
    return chains


def _order_layers(layers: list[list[Item]], chains: list[list[Item]]) -> None:
    parents: dict[Item, list[Item]] = {}
    children: dict[Item, list[Item]] = {}
    for chain in chains:
        for up, down in zip(chain, chain[1:]):
            parents.setdefault(down, []).append(up)
            children.setdefault(up, []).append(down)
    position = {item: _relative(i, len(layer)) for layer in layers for i, item in enumerate(layer)}
    for sweep in range(SWEEPS):
        downward = sweep % 2 == 0
        neighbours = parents if downward else children
        for layer in layers if downward else reversed(layers):
            # Stable sort: items without neighbours on that side keep their place.
            layer.sort(key=lambda item: _mean([position[n] for n in neighbours.get(item, ())], position[item]))
            position.update({item: _relative(i, len(layer)) for i, item in enumerate(layer)})


def _relative(index: int, count: int) -> float:
    return (index + 0.5) / count  # layers are centred, so compare positions as fractions of their width


def _mean(values: list[float], default: float) -> float:
    return sum(values) / len(values) if values else default


def _place(layers: list[list[Item]]) -> dict[Item, tuple[float, float, float]]:
    rows: list[list[Item]] = []
    for layer in layers:
        rows += _wrap(layer)
        rows.append([])  # a marker: the next row starts a new layer
    widths = [_row_width(row) for row in rows]
    page_width = max(widths, default=0) + 2 * MARGIN
    places: dict[Item, tuple[float, float, float]] = {}
    y = MARGIN
    for row, row_width in zip(rows, widths):
        if not row:
            y += LAYER_GAP - ROW_GAP
            continue
        x = (page_width - row_width) / 2
        for item in row:
            w = _width(item)
            places[item] = (x, y, w)
            x += w + GAP_X
        y += BOX_H + ROW_GAP
    return places


def _wrap(layer: list[Item]) -> list[list[Item]]:
    rows: list[list[Item]] = [[]]
    for item in layer:
        if rows[-1] and _row_width(rows[-1]) + GAP_X + _width(item) > MAX_ROW_W:
            rows.append([])
        rows[-1].append(item)
    return rows


def _width(item: Item) -> float:
    return BOX_W if isinstance(item, str) else WAYPOINT_W


def _row_width(row: list[Item]) -> float:
    return sum(_width(item) for item in row) + GAP_X * max(0, len(row) - 1)


def _route(chain: list[Item], places: dict[Item, tuple[float, float, float]]) -> list[tuple[float, float]]:
    """Points along an edge: out of the source's bottom, down through each waypoint, into the target's top."""
    x, y, w = places[chain[0]]
    points = [(x + w / 2, y + BOX_H)]
    for waypoint in chain[1:-1]:
        x, y, w = places[waypoint]
        points += [(x + w / 2, y), (x + w / 2, y + BOX_H)]
    x, y, w = places[chain[-1]]
    points.append((x + w / 2, y - 2))  # stop short so the arrow head is not under the box border
    return points
