"""Spectral bisection by the leading eigenvector of the modularity matrix (Newman 2006).

The Ising form of the modularity Hamiltonian, Q = (1 − γ)/2 + sᵀBs / 4m with s_i = ±1, is relaxed to
real s with |s|² = n; its maximum is the leading eigenvector u of B, and the split is s = sign(u).
B is applied as the sparse operator of :func:`~mlpot.networks.modularity.modularity_matrix`, so the
eigen-solve (ARPACK's Lanczos, through scipy) costs O(E) per iteration. This is the benchmark's
spectral baseline; it always returns at most two communities.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse.linalg as spla

from mlpot.networks.graph import Graph, as_graph
from mlpot.networks.modularity import modularity_matrix

__all__ = ["spectral_bisection"]


def spectral_bisection(edge_index, num_nodes: int | None = None, weights=None, resolution: float = 1.0,
                       seed: int = 0) -> np.ndarray:
    """``[n]`` labels 0/1 from the sign of B's leading eigenvector (one community if λ_max ≤ 0).

    Args:
        edge_index, num_nodes, weights: the graph, as in :func:`mlpot.networks.modularity`, or a
            :class:`~mlpot.networks.graph.Graph`.
        seed: seed of the Lanczos start vector (the result is otherwise deterministic).
    """
    graph = edge_index if isinstance(edge_index, Graph) else as_graph(edge_index, num_nodes, weights)
    operator = modularity_matrix(graph, resolution)
    n = graph.num_nodes
    if n < 3:
        return np.zeros(n, dtype=np.int64)
    if n <= 500:  # dense is exact and faster for small graphs
        values, vectors = np.linalg.eigh(operator.matmat(np.eye(n)))
        value, vector = values[-1], vectors[:, -1]
    else:
        v0 = np.random.default_rng(seed).standard_normal(n)
        values, vectors = spla.eigsh(operator, k=1, which="LA", v0=v0, tol=1e-8, maxiter=50 * n)
        value, vector = values[0], vectors[:, 0]
    if value <= 1e-12 * graph.two_m:  # no split raises Q: the graph is indivisible
        return np.zeros(n, dtype=np.int64)
    vector = vector * np.sign(vector[np.argmax(np.abs(vector))])  # fix the arbitrary sign
    return (vector < 0).astype(np.int64)
