"""Communities as ground states: a graph neural network minimises the relaxed Potts Hamiltonian.

The pipeline of :func:`communities` (what each stage contributes is measured in
``docs/networks.md`` and ``benchmarks/results/communities.json``):

1. **Features without labels.** The d leading eigenvectors of the normalised adjacency
   D^-½ A D^-½ (a spectral embedding, by ARPACK through scipy), scaled by √n, and log(1 + k).
2. **GNN.** torch-geometric's ``SGConv`` (two hops of GCN message passing) and an MLP give
   logits over K communities; S = softmax(logits / T) are soft assignments. The network is
   trained on this one graph by Adam to minimise the relaxed Potts energy −Q(S)
   (:func:`~mlpot.networks.modularity.relaxed_modularity`) plus a small DMoN collapse penalty
   (Tsitsulin et al. 2023) that makes it over-segment rather than merge, while the temperature T
   is annealed from 1 towards 0 so that S approaches a hard partition. K is an upper bound
   (``max_communities``, else 3⌈√n⌉ + 8); argmax leaves some communities empty, and they are pruned.
3. **Refinement** (:func:`~mlpot.networks.refine.refine`): vectorised single-node moves, merges of
   whole communities and splits of disconnected ones, ending at a local optimum of Q under
   single-node moves.

The GNN is restarted from ``restarts`` seeds derived from ``seed`` and the partition of highest Q is
returned, so the result is deterministic for a seed on a given device.

For graphs larger than ``coarsen_above`` nodes the [n, K] softmax would not fit (10⁵ nodes × 10³
communities), so the graph is first coarsened by one round of local moving from singletons
(the first phase of Louvain) and the GNN partitions the coarse graph, whose partitions have the
same modularity as the corresponding partitions of the original graph.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
from torch_geometric.nn import SGConv

from mlpot.networks.graph import Graph, aggregate, as_graph
from mlpot.networks.modularity import edge_tensors, modularity_of_labels, relaxed_modularity
from mlpot.networks.refine import local_moving, refine, split_disconnected

__all__ = ["ModularityGNN", "GNNSettings", "communities", "detect_communities", "spectral_features"]


class ModularityGNN(torch.nn.Module):
    """Node features ``[n, F]`` → community logits ``[n, K]``.

    The first layer is torch-geometric's ``SGConv`` (Wu et al. 2019): ``hops`` rounds of GCN
    message passing, Â = D̃^-½ (A + I) D̃^-½, followed by a linear map. Its propagation Â^hops X is
    linear in the fixed features, so it is computed once and cached: each of the hundreds of
    training steps on a graph then costs a dense layer, not a sparse pass (a GCNConv stack was
    10× slower per step at the same quality). An MLP turns the propagated features into logits.
    """

    def __init__(self, in_features: int, num_communities: int, hidden: int = 64, hops: int = 2):
        super().__init__()
        self.propagate = SGConv(in_features, hidden, K=hops, cached=True)
        self.hidden = torch.nn.Linear(hidden, hidden)
        self.head = torch.nn.Linear(hidden, num_communities)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor) -> torch.Tensor:
        """Logits ``[n, K]``; ``edge_index`` ``[2, E]`` both directions, ``edge_weight`` ``[E]``."""
        x = torch.selu(self.propagate(x, edge_index, edge_weight))
        return self.head(torch.selu(self.hidden(x)))


@dataclass
class GNNSettings:
    """Knobs of :func:`detect_communities` (the defaults are those of :func:`communities`)."""

    steps: int = 200  # Adam steps per restart
    learning_rate: float = 0.02
    hidden: int = 64
    hops: int = 2  # message-passing rounds
    spectral_dim: int = 16  # eigenvectors used as features
    final_temperature: float = 0.05  # softmax temperature at the last step (geometric schedule from 1)
    restarts: int | None = None  # GNN restarts; default 3 up to 200 nodes, else 1
    collapse_weight: float = 0.3  # weight of the DMoN collapse penalty √K/n·|Σ_i s_i| − 1
    coarsen_above: int = 20_000  # nodes; larger graphs are coarsened once before the GNN
    resolution: float = 1.0
    device: str | None = None
    stages: dict = field(default_factory=dict)  # filled with Q after each stage, for reports


def spectral_features(graph: Graph, dim: int, seed: int) -> np.ndarray:
    """``[n, dim + 1]``: leading eigenvectors of D^-½ A D^-½ times √n, and log(1 + k)."""
    n = graph.num_nodes
    k = graph.degrees
    inv_sqrt = np.where(k > 0, 1.0 / np.sqrt(np.where(k > 0, k, 1.0)), 0.0)
    normalised = sp.diags_array(inv_sqrt) @ graph.adjacency @ sp.diags_array(inv_sqrt)
    dim = max(0, min(dim, n - 2))
    if dim == 0:
        vectors = np.zeros((n, 0))
    elif n <= 500:  # dense is faster and exact for small graphs
        vectors = np.linalg.eigh(normalised.toarray())[1][:, ::-1][:, :dim]
    else:
        v0 = np.random.default_rng(seed).standard_normal(n)
        _, vectors = spla.eigsh(normalised, k=dim, which="LA", v0=v0, tol=1e-6, maxiter=20 * n)
        vectors = vectors[:, ::-1]
    # The sign of an eigenvector is arbitrary: fix it so the features are reproducible.
    signs = np.sign(vectors[np.argmax(np.abs(vectors), axis=0), np.arange(vectors.shape[1])])
    return np.hstack([vectors * signs * math.sqrt(n), np.log1p(k)[:, None]])


def _train(graph: Graph, features: torch.Tensor, num_communities: int, settings: GNNSettings, seed: int) -> np.ndarray:
    """One restart: train the GNN on ``graph`` and return the argmax labels ``[n]``."""
    device = features.device
    torch.manual_seed(seed)
    edge_index, edge_weight, degrees = edge_tensors(graph, device=device)
    model = ModularityGNN(features.shape[1], num_communities, settings.hidden, settings.hops).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    # Geometric annealing T: 1 → final_temperature, so S hardens toward a one-hot partition.
    decay = settings.final_temperature ** (1.0 / max(settings.steps - 1, 1))
    temperature = 1.0
    for _ in range(settings.steps):
        optimiser.zero_grad()
        logits = model(features, edge_index, edge_weight)
        assignments = torch.softmax(logits / temperature, dim=1)
        loss = -relaxed_modularity(assignments, edge_index, edge_weight, degrees, graph.two_m, settings.resolution)
        if settings.collapse_weight:
            sizes = assignments.sum(dim=0)
            loss = loss + settings.collapse_weight * (math.sqrt(num_communities) / graph.num_nodes * sizes.norm() - 1)
        loss.backward()
        optimiser.step()
        temperature *= decay
    with torch.no_grad():
        logits = model(features, edge_index, edge_weight)
    return logits.argmax(dim=1).cpu().numpy().astype(np.int64)


def detect_communities(graph: Graph, max_communities: int | None = None, seed: int = 0,
                       settings: GNNSettings | None = None) -> np.ndarray:
    """:func:`communities` on a :class:`~mlpot.networks.graph.Graph`, with all the settings exposed.

    ``settings.stages`` is filled with Q after each stage of the best restart:
    ``coarsening`` (if any), ``gnn`` (argmax of the trained GNN, empty communities pruned) and
    ``refined`` (the returned partition).
    """
    settings = settings or GNNSettings()
    if max_communities is not None and (int(max_communities) != max_communities or max_communities < 1):
        raise ValueError(f"max_communities must be a positive integer, got {max_communities!r}")
    gamma = settings.resolution
    device = torch.device(settings.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    n = graph.num_nodes
    stages = settings.stages
    stages.clear()
    # Coarsen big graphs once: the GNN then partitions communities of the first Louvain phase.
    fine_to_coarse = np.arange(n)
    work = graph
    if n > settings.coarsen_above and max_communities is None:
        fine_to_coarse = split_disconnected(graph, local_moving(graph, np.arange(n), gamma))
        work = aggregate(graph, fine_to_coarse)
        stages["coarsening"] = modularity_of_labels(graph, fine_to_coarse, gamma)
    size = work.num_nodes
    if max_communities is not None:
        k_bound = int(max_communities)
    elif work is not graph:  # coarse nodes are already near-communities: each may stay alone
        k_bound = min(size, 2048)
    else:
        k_bound = 3 * math.ceil(math.sqrt(size)) + 8
    k_bound = max(1, min(k_bound, size))
    restarts = settings.restarts if settings.restarts is not None else (3 if n <= 200 else 1)
    features = torch.as_tensor(spectral_features(work, settings.spectral_dim, seed), dtype=torch.float32,
                               device=device)
    rng = np.random.default_rng(seed)
    best = None
    for restart_seed in rng.integers(0, 2**31 - 1, size=max(1, restarts)):
        coarse_labels = _train(work, features, k_bound, settings, int(restart_seed))
        labels = np.unique(coarse_labels[fine_to_coarse], return_inverse=True)[1].reshape(-1)
        q_gnn = modularity_of_labels(graph, labels, gamma)
        labels = refine(graph, labels, gamma, max_communities)
        q = modularity_of_labels(graph, labels, gamma)
        if best is None or q > best[0] + 1e-12:
            best = (q, labels, q_gnn)
    stages["gnn"], stages["refined"] = best[2], best[0]
    return best[1]


def communities(edge_index, num_nodes: int | None = None, weights=None, max_communities: int | None = None,
                seed: int = 0) -> np.ndarray:
    """Communities of an undirected graph as a (local) ground state of the modularity Hamiltonian.

    Args:
        edge_index: ``[2, E]`` integer tensor or array, each undirected edge listed once or in both
            directions (see :mod:`mlpot.networks.graph`).
        num_nodes: number of nodes (default ``max(edge_index) + 1``).
        weights: ``[E]`` non-negative edge weights (default 1).
        max_communities: upper bound on the number of communities (default automatic).
        seed: seed of the features' eigen-solver start vector and of the GNN restarts.

    Returns:
        ``[num_nodes]`` int64 numpy array of community labels 0..C−1; isolated nodes are each a
        community of their own.
    """
    return detect_communities(as_graph(edge_index, num_nodes, weights), max_communities, seed)
