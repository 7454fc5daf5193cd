"""Making a hard partition a local optimum of Q: vectorised single-node moves, merges and splits.

Moving node i from community a to community b changes Q by (derivation in docs/networks.md)

    ΔQ_i(a → b) = (w_ib − w_ia) / m − γ k_i (K_b − K_a + k_i) / 2m²,

with w_ic the weight from i to the other members of c, K_c the total degree of c and m the total
edge weight. All w_ic at once are one sparse product ``A P`` (P the one-hot membership), so a
sweep over all n nodes costs O(E) numpy work instead of a Python loop over nodes.

Moving many nodes at once is not the sum of their single ΔQ when movers are adjacent, so each
round moves only the candidates whose gain beats that of every neighbouring candidate (an
independent set, one step of Luby's algorithm). Q is recomputed after the round; if the
remaining null-model coupling made it drop, only the single best move is made. Q therefore
increases strictly every round, and the loop ends exactly at a partition that no single-node move
improves: a local optimum of Q.

:func:`merge_communities` runs the same moves on the coarse graph of communities (so a "node" move
is a whole community joining another, as in the second phase of Louvain, Blondel et al. 2008),
and :func:`split_disconnected` splits communities that are not connected, which always raises Q
(Traag, Waltman & van Eck 2019 show local moves can leave such communities behind).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from mlpot.networks.graph import Graph, aggregate, membership
from mlpot.networks.modularity import modularity_of_labels

__all__ = ["local_moving", "merge_communities", "split_disconnected", "refine"]

_TOLERANCE = 1e-13  # gains below this are round-off in Q (a sum of O(1) terms in float64)


def _compact(labels: np.ndarray) -> np.ndarray:
    return np.unique(labels, return_inverse=True)[1].astype(np.int64).reshape(-1)


def _best_moves(graph: Graph, labels: np.ndarray, resolution: float, allow_new: bool):
    """For every node, the best single move: ``(gain [n], target [n])``; target −1 means a new community."""
    a, k, m = graph.adjacency, graph.degrees, 0.5 * graph.two_m
    n = graph.num_nodes
    n_comm = int(labels.max()) + 1
    totals = np.bincount(labels, weights=k, minlength=n_comm)
    links = (a @ membership(labels, n_comm)).tocsr()  # [n, C]: weight from i into each community
    links.sort_indices()
    rows = np.repeat(np.arange(n), np.diff(links.indptr))
    own = np.zeros(n)
    is_own = links.indices == labels[rows]
    own[rows[is_own]] = links.data[is_own]
    own -= a.diagonal()  # w_ia counts the other members only
    k_over = resolution * k / (2.0 * m * m)
    # The part of ΔQ that depends on the target; the source part is subtracted after.
    score = links.data / m - k_over[rows] * totals[links.indices]
    score[is_own] = -np.inf
    stay = own / m - k_over * (totals[labels] - k)
    gain = np.full(n, -np.inf)
    target = np.full(n, -1, dtype=np.int64)
    has = np.flatnonzero(np.diff(links.indptr) > 0)
    if has.size:
        best = np.maximum.reduceat(score, links.indptr[has])
        gain[has] = best
        hit = score == best[np.searchsorted(has, rows)]
        first = np.unique(rows[hit], return_index=True)
        target[first[0]] = links.indices[np.flatnonzero(hit)[first[1]]]
    gain -= stay
    if allow_new:  # moving alone into a new community: w_ib = 0, K_b = 0
        alone = -stay
        better = alone > gain
        gain[better], target[better] = alone[better], -1
    return gain, target


def local_moving(graph: Graph, labels: np.ndarray, resolution: float = 1.0, allow_new: bool = True,
                 max_rounds: int = 100_000) -> np.ndarray:
    """Single-node moves until none raises Q (see the module docstring).

    Args:
        graph: the graph.
        labels: ``[n]`` starting labels (any integers).
        resolution: γ.
        allow_new: whether a node may leave for a new community of its own (off when the number
            of communities is capped).

    Returns:
        ``[n]`` compact labels, a local optimum of Q under single-node moves.
    """
    labels = _compact(np.asarray(labels))
    quality = modularity_of_labels(graph, labels, resolution)
    off_diagonal = graph.adjacency.copy()
    off_diagonal.setdiag(0)
    off_diagonal.eliminate_zeros()
    for _ in range(max_rounds):
        gain, target = _best_moves(graph, labels, resolution, allow_new)
        movers = gain > _TOLERANCE
        if not movers.any():
            break
        # Independent set: a mover whose gain is not beaten by any adjacent mover (ties by index).
        rank = np.empty(graph.num_nodes)
        rank[np.lexsort((np.arange(graph.num_nodes), gain))] = np.arange(graph.num_nodes)
        priority = np.where(movers, rank, -np.inf)
        neighbour_best = _row_max(off_diagonal, priority)
        chosen = movers & (priority > neighbour_best)
        proposal = _apply(labels, np.flatnonzero(chosen), target)
        new_quality = modularity_of_labels(graph, proposal, resolution)
        if new_quality <= quality:
            proposal = _apply(labels, np.array([np.argmax(gain)]), target)
            new_quality = modularity_of_labels(graph, proposal, resolution)
        labels, quality = proposal, new_quality
    return labels


def _row_max(off: sp.csr_array, values: np.ndarray) -> np.ndarray:
    """``max_j values[j]`` over the neighbours j of each node (``off``: adjacency without loops)."""
    out = np.full(off.shape[0], -np.inf)
    counts = np.diff(off.indptr)
    has = np.flatnonzero(counts)
    if has.size:
        out[has] = np.maximum.reduceat(values[off.indices], off.indptr[has])
    return out


def _apply(labels: np.ndarray, nodes: np.ndarray, target: np.ndarray) -> np.ndarray:
    new = labels.copy()
    dest = target[nodes]
    new[nodes] = np.where(dest >= 0, dest, labels.max() + 1 + np.arange(nodes.size))
    return _compact(new)


def merge_communities(graph: Graph, labels: np.ndarray, resolution: float = 1.0) -> np.ndarray:
    """Merge whole communities while that raises Q: local moving on the coarse graph, repeated."""
    labels = _compact(np.asarray(labels))
    while True:
        coarse = aggregate(graph, labels)
        merged = local_moving(coarse, np.arange(coarse.num_nodes), resolution, allow_new=False)
        if merged.max() + 1 == coarse.num_nodes:
            return labels
        labels = merged[labels]


def split_disconnected(graph: Graph, labels: np.ndarray) -> np.ndarray:
    """Give every connected piece of a community its own label.

    Splitting a community into parts with no edge between them changes Q by +2γ K_1 K_2 / (2m)² ≥ 0.
    """
    a = graph.adjacency.tocoo()
    keep = labels[a.row] == labels[a.col]
    intra = sp.coo_array((a.data[keep], (a.row[keep], a.col[keep])), shape=a.shape)
    _, pieces = connected_components(intra, directed=False)
    return _compact(pieces)


def refine(graph: Graph, labels: np.ndarray, resolution: float = 1.0, max_communities: int | None = None) -> np.ndarray:
    """Local moves, merges, splits, then local moves again: a local optimum of Q.

    With ``max_communities`` set, no stage makes more communities than that (new communities and
    splits are allowed only while the count stays within the cap).
    """
    capped = max_communities is not None
    labels = local_moving(graph, labels, resolution, allow_new=not capped)
    labels = merge_communities(graph, labels, resolution)
    split = split_disconnected(graph, labels)
    if not capped or split.max() + 1 <= max_communities:
        labels = split
    return local_moving(graph, labels, resolution, allow_new=not capped)
