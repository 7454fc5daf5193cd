"""Newman's modularity and the Potts Hamiltonian whose ground state maximises it.

For a weighted undirected graph with adjacency A, degrees k and total weight m (``2m = Σ k``), the
modularity of a partition c at resolution γ is (Newman & Girvan 2004; Reichardt & Bornholdt 2006)

    Q = (1/2m) Σ_ij B_ij δ(c_i, c_j),    B_ij = A_ij − γ k_i k_j / 2m,

so maximising Q is finding the ground state of the Potts Hamiltonian H(c) = −Σ_ij B_ij δ(c_i, c_j)
= −2m Q. With two communities and spins s_i = ±1, δ(c_i, c_j) = (1 + s_i s_j)/2 gives the Ising form
H(s) = −½ sᵀBs − ½ Σ_ij B_ij, where Σ_ij B_ij = 2m(1 − γ).

Soft assignments S (``[n, K]``, rows on the probability simplex) relax δ(c_i, c_j) to s_i·s_j:

    Q(S) = (1/2m) [ Tr(Sᵀ A S) − γ |kᵀS|² / 2m ],

which equals Q exactly when S is one-hot. The modularity matrix B is dense (every k_i k_j ≠ 0), so
it is only ever applied as an operator: ``B x = A x − γ k (kᵀx) / 2m`` costs O(E + n).

Graph conventions (edges listed once or both ways, self-loops) are those of
:mod:`mlpot.networks.graph`; results agree with ``networkx.community.modularity``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse.linalg as spla
import torch

from mlpot.networks.graph import Graph, as_graph, as_labels

__all__ = [
    "modularity",
    "modularity_of_labels",
    "modularity_matrix",
    "potts_energy",
    "ising_energy",
    "relaxed_modularity",
    "edge_tensors",
]


def _check_resolution(resolution: float) -> float:
    resolution = float(resolution)
    if not np.isfinite(resolution) or resolution < 0:
        raise ValueError(f"resolution must be a finite number ≥ 0, got {resolution}")
    return resolution


def modularity_of_labels(graph: Graph, labels: np.ndarray, resolution: float = 1.0) -> float:
    """Q of compact labels ``0..C-1`` (``[n]`` int64) on a :class:`Graph`; O(E + n)."""
    a = graph.adjacency.tocoo()
    intra = a.data[labels[a.row] == labels[a.col]].sum()
    totals = np.bincount(labels, weights=graph.degrees)
    return float(intra / graph.two_m - resolution * np.dot(totals, totals) / graph.two_m**2)


def modularity(edge_index, partition, num_nodes: int | None = None, weights=None, resolution: float = 1.0) -> float:
    """Newman's modularity Q of a partition of an undirected graph.

    Args:
        edge_index: ``[2, E]`` integer tensor or array; each undirected edge listed once or in both
            directions (detected, see :mod:`mlpot.networks.graph`), or a :class:`Graph`.
        partition: ``[num_nodes]`` integer community labels (any integer values).
        num_nodes: number of nodes; default ``max(edge_index) + 1`` (or ``len(partition)`` when
            that is larger, so trailing isolated nodes are allowed).
        weights: ``[E]`` non-negative edge weights (default 1).
        resolution: γ ≥ 0 (1 is Newman's modularity; larger favours smaller communities).

    Returns:
        Q, a float in [−1/2, 1).
    """
    resolution = _check_resolution(resolution)
    if num_nodes is None and not isinstance(edge_index, Graph):
        num_nodes = max(len(partition), 0) or None
    graph = as_graph(edge_index, num_nodes, weights)
    return modularity_of_labels(graph, as_labels(partition, graph.num_nodes), resolution)


def modularity_matrix(graph: Graph, resolution: float = 1.0) -> spla.LinearOperator:
    """The modularity matrix ``B = A − γ k kᵀ / 2m`` as a symmetric ``[n, n]`` LinearOperator.

    Never formed densely: one product costs a sparse mat-vec plus a rank-one correction.
    """
    resolution = _check_resolution(resolution)
    a, k, two_m = graph.adjacency, graph.degrees, graph.two_m

    def apply(x):
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            return a @ x - resolution * k * (k @ x) / two_m
        return a @ x - resolution * np.outer(k, k @ x) / two_m

    n = graph.num_nodes
    return spla.LinearOperator((n, n), matvec=apply, rmatvec=apply, matmat=apply, rmatmat=apply, dtype=np.float64)


def potts_energy(graph: Graph, labels, resolution: float = 1.0) -> float:
    """H(c) = −Σ_ij B_ij δ(c_i, c_j) = −2m·Q (in units of edge weight)."""
    resolution = _check_resolution(resolution)
    return -graph.two_m * modularity_of_labels(graph, as_labels(labels, graph.num_nodes), resolution)


def ising_energy(graph: Graph, spins, resolution: float = 1.0) -> float:
    """The two-community Potts energy in spin form, H(s) = −½ sᵀBs − ½ Σ_ij B_ij, for s_i = ±1.

    Equals :func:`potts_energy` of the partition {s = +1}, {s = −1}.
    """
    s = np.asarray(spins, dtype=np.float64)
    if s.shape != (graph.num_nodes,) or not np.all(np.abs(s) == 1):
        raise ValueError(f"spins must be ±1 with shape [{graph.num_nodes}]")
    b_total = graph.two_m * (1.0 - resolution)  # Σ_ij B_ij = 2m − γ (2m)² / 2m
    return float(-0.5 * s @ modularity_matrix(graph, resolution).matvec(s) - 0.5 * b_total)


def edge_tensors(graph: Graph, device=None, dtype=torch.float32):
    """The adjacency as torch COO pieces for message passing and the relaxed Hamiltonian.

    Returns:
        ``(edge_index [2, nnz] int64, edge_weight [nnz], degrees [n])`` on ``device``; every
        undirected edge appears in both directions and a self-loop once with weight ``A_ii``.
    """
    a = graph.adjacency.tocoo()
    edge_index = torch.as_tensor(np.stack([a.row, a.col]).astype(np.int64), device=device)
    weight = torch.as_tensor(a.data, dtype=dtype, device=device)
    degrees = torch.as_tensor(graph.degrees, dtype=dtype, device=device)
    return edge_index, weight, degrees


def relaxed_modularity(assignments: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor,
                       degrees: torch.Tensor, two_m: float, resolution: float = 1.0) -> torch.Tensor:
    """Q(S) = (1/2m)[Tr(Sᵀ A S) − γ |kᵀS|²/2m] for soft assignments; differentiable.

    Args:
        assignments: ``[n, K]`` soft assignments S (rows summing to 1; one-hot gives Q exactly).
        edge_index, edge_weight, degrees: from :func:`edge_tensors` (both directions, A_ii once).
        two_m: ``Σ k``.

    Returns:
        A scalar tensor; −2m times it is the relaxed Potts energy minimised by the GNN.
    """
    n = assignments.shape[0]
    # A S as a sparse-dense product: memory [n, K], never [E, K] (E·K is 10⁹ for the large graphs).
    adjacency = torch.sparse_coo_tensor(edge_index, edge_weight.to(assignments.dtype), (n, n), check_invariants=False)
    links = (assignments * torch.sparse.mm(adjacency, assignments)).sum()
    totals = degrees.to(assignments.dtype) @ assignments  # [K] total degree of each soft community
    return (links - resolution * (totals * totals).sum() / two_m) / two_m
