"""The undirected graph behind every modularity computation: a symmetric sparse adjacency matrix.

Everything in :mod:`mlpot.networks` starts from :func:`as_graph`, which turns an ``edge_index``
(``[2, E]`` integers, a torch tensor or a numpy array) and optional non-negative ``weights``
(``[E]``) into a :class:`Graph`:

* **Listing.** An undirected edge may be listed **once** (``(i, j)`` only, networkx's
  ``G.edges`` order) or in **both directions** (``(i, j)`` and ``(j, i)`` with equal weights,
  torch-geometric's convention). The two are told apart exactly: if the multiset of
  off-diagonal ``(i, j, w)`` equals that of ``(j, i, w)`` the list is taken as symmetric;
  if no pair appears in both orientations it is taken as listed once; anything else (some
  edges listed twice, others once, or unequal weights both ways) is ambiguous and rejected.
* **Self-loops.** Each occurrence of ``(i, i)`` is one loop of weight ``w`` and adds ``2w`` to
  ``k_i`` (Newman's and networkx's convention), so ``A_ii = 2w``.
* **Parallel edges** (the same pair listed repeatedly in one direction) add their weights.

With that convention ``k = A·1`` and ``2m = Σ_ij A_ij`` in both cases, and the coarse graph of a
partition (``Pᵀ A P``) is again a :class:`Graph` of the same kind (:func:`aggregate`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["Graph", "as_graph", "as_labels", "membership", "aggregate"]


@dataclass(frozen=True)
class Graph:
    """A weighted undirected graph as a symmetric CSR matrix.

    Attributes:
        adjacency: ``[n, n]`` symmetric ``scipy.sparse.csr_array`` (float64), ``A_ii = 2w`` for a
            self-loop of weight ``w``.
        degrees: ``[n]`` float64, ``k_i = Σ_j A_ij`` (weighted degree).
        two_m: ``Σ_i k_i``, twice the total edge weight.
    """

    adjacency: sp.csr_array
    degrees: np.ndarray
    two_m: float

    @property
    def num_nodes(self) -> int:
        return self.adjacency.shape[0]

    @classmethod
    def from_adjacency(cls, adjacency) -> "Graph":
        """Wrap a symmetric sparse matrix already in this module's convention (``A_ii = 2w``)."""
        adjacency = sp.csr_array(adjacency, dtype=np.float64)
        adjacency.sum_duplicates()
        adjacency.sort_indices()
        degrees = np.asarray(adjacency.sum(axis=1)).ravel()
        two_m = float(degrees.sum())
        if not two_m > 0:
            raise ValueError("the graph has no edges (total weight 0): modularity is undefined")
        return cls(adjacency, degrees, two_m)


def _to_numpy(array, name: str) -> np.ndarray:
    if hasattr(array, "detach"):  # a torch tensor, on any device
        array = array.detach().cpu().numpy()
    return np.asarray(array)


def as_graph(edge_index, num_nodes: int | None = None, weights=None) -> Graph:
    """Build a :class:`Graph` from an edge list (see the module docstring for the conventions).

    Args:
        edge_index: ``[2, E]`` integer tensor or array; row 0 and row 1 are the two ends.
        num_nodes: number of nodes (isolated nodes allowed); default ``max(edge_index) + 1``.
        weights: ``[E]`` non-negative finite edge weights; default 1 for every edge.

    Raises:
        ValueError: wrong shape, negative or out-of-range indices, NaN/negative weights, an
            ambiguous listing, or a graph without edges.
        TypeError: non-integer indices.
    """
    if isinstance(edge_index, Graph):
        return edge_index
    ei = _to_numpy(edge_index, "edge_index")
    if ei.ndim != 2 or ei.shape[0] != 2:
        raise ValueError(f"edge_index must have shape [2, E], got {list(ei.shape)}")
    if ei.size and not np.issubdtype(ei.dtype, np.integer):
        raise TypeError(f"edge_index must hold integers, got dtype {ei.dtype}")
    ei = ei.astype(np.int64)
    if ei.size and ei.min() < 0:
        raise ValueError("edge_index has negative node indices")
    n_min = int(ei.max()) + 1 if ei.size else 0
    n = n_min if num_nodes is None else int(num_nodes)
    if n < n_min:
        raise ValueError(f"edge_index refers to node {n_min - 1} but num_nodes is {n}")
    if weights is None:
        w = np.ones(ei.shape[1])
    else:
        w = _to_numpy(weights, "weights").astype(np.float64)
        if w.shape != (ei.shape[1],):
            raise ValueError(f"weights must have shape [E] = [{ei.shape[1]}], got {list(w.shape)}")
        if not np.all(np.isfinite(w)):
            raise ValueError("weights contain NaN or infinity")
        if np.any(w < 0):
            raise ValueError("weights must be non-negative (modularity assumes A_ij ≥ 0)")
    row, col = ei
    loop = row == col
    r, c, wo = row[~loop], col[~loop], w[~loop]
    key, reverse = r * n + c, c * n + r
    # Compare (key, w) with (reverse key, w) as sorted multisets: equal means listed both ways.
    order, rorder = np.lexsort((wo, key)), np.lexsort((wo, reverse))
    symmetric = np.array_equal(key[order], reverse[rorder]) and np.array_equal(wo[order], wo[rorder])
    if symmetric:
        rows, cols, vals = r, c, wo
    elif not np.isin(key, reverse).any():
        rows, cols, vals = np.concatenate([r, c]), np.concatenate([c, r]), np.concatenate([wo, wo])
    else:
        raise ValueError(
            "edge_index lists some edges in both directions and others once (or with different "
            "weights each way); list every undirected edge either once or in both directions"
        )
    loops = row[loop]
    rows, cols = np.concatenate([rows, loops]), np.concatenate([cols, loops])
    vals = np.concatenate([vals, 2.0 * w[loop]])
    adjacency = sp.coo_array((vals, (rows, cols)), shape=(n, n)).tocsr()
    return Graph.from_adjacency(adjacency)


def as_labels(partition, num_nodes: int) -> np.ndarray:
    """Community labels as compact integers ``0..C-1`` (first-appearance order is not kept).

    Args:
        partition: ``[num_nodes]`` integer labels (any values), a tensor or an array.
    """
    labels = _to_numpy(partition, "partition")
    if labels.shape != (num_nodes,):
        raise ValueError(f"partition must have shape [num_nodes] = [{num_nodes}], got {list(labels.shape)}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"partition must hold integer labels, got dtype {labels.dtype}")
    return np.unique(labels, return_inverse=True)[1].astype(np.int64).reshape(-1)


def membership(labels: np.ndarray, num_communities: int | None = None) -> sp.csr_array:
    """The ``[n, C]`` one-hot matrix ``P`` with ``P_ic = 1`` when node i is in community c."""
    n = labels.shape[0]
    c = int(labels.max()) + 1 if num_communities is None else num_communities
    return sp.csr_array((np.ones(n), (np.arange(n), labels)), shape=(n, c))


def aggregate(graph: Graph, labels: np.ndarray) -> Graph:
    """The coarse graph whose nodes are the communities: ``A' = Pᵀ A P``.

    ``A'_cc`` sums both orientations of every internal edge, i.e. twice the internal weight, which
    is exactly this module's self-loop convention; so the modularity of any partition of the
    coarse graph equals that of the corresponding partition of ``graph``.
    """
    p = membership(labels)
    return Graph.from_adjacency(p.T @ graph.adjacency @ p)
