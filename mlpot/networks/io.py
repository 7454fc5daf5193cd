"""Graphs in, partitions out: networkx graphs, edge-list files, torch-geometric ``Data``, JSON.

Every reader returns ``(edge_index [2, E] int64 numpy, weights [E] float64 or None, num_nodes, names)``
where ``names`` maps the node index back to the original node label (a networkx node or an
edge-list token), so a partition can be written with the user's node names.

Edge-list files are whitespace-separated text, one edge per line: ``u v`` or ``u v weight``;
``#`` starts a comment. Node tokens are kept as strings and numbered in order of first appearance.
Lines with 3 columns make the graph weighted; a file mixing 2 and 3 columns is rejected.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["from_networkx", "to_networkx", "from_pyg", "read_edge_list", "read_graph", "partition_to_json"]


def from_networkx(graph, weight: str | None = "weight"):
    """Edge list of an undirected networkx graph; ``weight=None`` ignores edge weights.

    Weights are used only when every edge has the ``weight`` attribute (else the graph is unweighted).
    """
    if graph.is_directed():
        raise ValueError("modularity here is for undirected graphs; convert with graph.to_undirected()")
    names = list(graph.nodes())
    index = {node: i for i, node in enumerate(names)}
    edges = list(graph.edges(data=True))
    edge_index = np.array([[index[u] for u, _, _ in edges], [index[v] for _, v, _ in edges]], dtype=np.int64)
    weights = None
    if weight is not None and edges and all(weight in data for _, _, data in edges):
        weights = np.array([float(data[weight]) for _, _, data in edges])
    return edge_index.reshape(2, -1), weights, len(names), names


def to_networkx(edge_index, num_nodes: int | None = None, weights=None):
    """An undirected networkx graph (edges listed both ways collapse to one edge)."""
    import networkx as nx

    edge_index = np.asarray(edge_index.cpu() if hasattr(edge_index, "cpu") else edge_index)
    graph = nx.Graph()
    graph.add_nodes_from(range(int(edge_index.max()) + 1 if num_nodes is None else num_nodes))
    if weights is None:
        graph.add_edges_from(edge_index.T.tolist())
    else:
        graph.add_weighted_edges_from(
            (int(u), int(v), float(w)) for (u, v), w in zip(edge_index.T, np.asarray(weights)))
    return graph


def from_pyg(data):
    """Edge list of a torch-geometric ``Data`` (``edge_index``, optional ``edge_weight``/``edge_attr`` [E])."""
    weights = getattr(data, "edge_weight", None)
    if weights is None and getattr(data, "edge_attr", None) is not None and data.edge_attr.dim() == 1:
        weights = data.edge_attr
    weights = None if weights is None else weights.detach().cpu().numpy().astype(np.float64)
    edge_index = data.edge_index.detach().cpu().numpy().astype(np.int64)
    return edge_index, weights, int(data.num_nodes), list(range(int(data.num_nodes)))


def read_edge_list(path):
    """Read a whitespace-separated edge-list file (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such graph file: {path}")
    index: dict[str, int] = {}
    ends, weights, columns = [], [], set()
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) not in (2, 3):
            raise ValueError(f"{path}:{number}: expected 'u v' or 'u v weight', got {line!r}")
        columns.add(len(fields))
        ends.append([index.setdefault(token, len(index)) for token in fields[:2]])
        if len(fields) == 3:
            try:
                weights.append(float(fields[2]))
            except ValueError:
                raise ValueError(f"{path}:{number}: weight {fields[2]!r} is not a number") from None
    if len(columns) > 1:
        raise ValueError(f"{path}: some lines have a weight and others do not")
    if not ends:
        raise ValueError(f"{path}: no edges")
    edge_index = np.array(ends, dtype=np.int64).T
    return edge_index, (np.array(weights) if weights else None), len(index), list(index)


def read_graph(path):
    """Read a graph file by extension: ``.gml``/``.graphml`` through networkx, anything else as an edge list."""
    path = Path(path)
    if path.suffix in (".gml", ".graphml"):
        import networkx as nx

        if not path.exists():
            raise FileNotFoundError(f"no such graph file: {path}")
        graph = nx.read_gml(path) if path.suffix == ".gml" else nx.read_graphml(path)
        return from_networkx(nx.Graph(graph))
    return read_edge_list(path)


def partition_to_json(labels, names=None, **extra) -> str:
    """JSON text ``{"num_communities", "labels": {name: label}, "communities": [[names]], **extra}``."""
    labels = np.asarray(labels).astype(int)
    names = [str(i) for i in range(labels.size)] if names is None else [str(name) for name in names]
    groups = [[names[i] for i in np.flatnonzero(labels == c)] for c in range(int(labels.max()) + 1)]
    return json.dumps({"num_communities": len(groups), **extra,
                       "labels": dict(zip(names, labels.tolist())), "communities": groups}, indent=1)
