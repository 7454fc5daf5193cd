"""Q, the modularity operator and the Potts/Ising Hamiltonians against networkx and closed forms."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch

from mlpot.networks import modularity, normalized_mutual_information
from mlpot.networks.graph import aggregate, as_graph
from mlpot.networks.io import from_networkx
from mlpot.networks.modularity import (
    edge_tensors,
    ising_energy,
    modularity_matrix,
    modularity_of_labels,
    potts_energy,
    relaxed_modularity,
)


def random_graph(seed: int, n: int = 40, edges: int = 120, weighted: bool = True, self_loop: bool = True):
    rng = np.random.default_rng(seed)
    graph = nx.gnm_random_graph(n, edges, seed=seed)
    for u, v in graph.edges:
        graph[u][v]["weight"] = float(rng.uniform(0.1, 3.0))
    if self_loop:
        graph.add_edge(3, 3, weight=1.7)
    return graph, rng


def both_directions(edge_index, weights):
    """Each off-diagonal edge listed both ways, self-loops once (torch-geometric's convention)."""
    loops = edge_index[0] == edge_index[1]
    reverse = edge_index[::-1, ~loops]
    both = np.concatenate([edge_index, reverse], axis=1)
    return both, None if weights is None else np.concatenate([weights, weights[~loops]])


@pytest.mark.parametrize("weighted", [True, False])
@pytest.mark.parametrize("resolution", [1.0, 0.5, 2.0])
def test_q_matches_networkx_on_random_partitions(weighted, resolution):
    for seed in range(8):
        graph, rng = random_graph(seed)
        partition = rng.integers(0, 1 + seed % 6, graph.number_of_nodes())
        sets = [set(np.flatnonzero(partition == c).tolist()) for c in np.unique(partition)]
        reference = nx.community.modularity(graph, sets, weight="weight" if weighted else None, resolution=resolution)
        edge_index, weights, n, _ = from_networkx(graph, "weight" if weighted else None)
        once = modularity(edge_index, partition, n, weights, resolution)
        both = modularity(*both_directions(edge_index, weights)[:1], partition, n,
                          both_directions(edge_index, weights)[1], resolution)
        as_tensor = modularity(torch.as_tensor(edge_index), torch.as_tensor(partition), n,
                               None if weights is None else torch.as_tensor(weights), resolution)
        # Q is a sum of O(E) terms of size ≤ 1: float64 round-off is ~1e-15, far inside 1e-12.
        assert abs(once - reference) < 1e-12
        assert abs(both - reference) < 1e-12
        assert abs(as_tensor - reference) < 1e-12


def test_isolated_trailing_nodes_count_through_the_partition_length():
    edge_index = np.array([[0, 1], [1, 2]])
    partition = np.array([0, 0, 1, 2])  # node 3 is isolated: it changes nothing
    assert modularity(edge_index, partition) == pytest.approx(modularity(edge_index, partition[:3]), abs=1e-15)


def test_trivial_partitions_have_closed_forms():
    graph, _ = random_graph(1, self_loop=False)
    edge_index, weights, n, _ = from_networkx(graph)
    # One community: Q = 1 − γ.  Singletons without self-loops: Q = −γ Σ k²/(2m)².
    assert modularity(edge_index, np.zeros(n, int), n, weights, 0.7) == pytest.approx(0.3, abs=1e-14)
    g = as_graph(edge_index, n, weights)
    expected = -(g.degrees**2).sum() / g.two_m**2
    assert modularity(edge_index, np.arange(n), n, weights) == pytest.approx(expected, abs=1e-15)


def test_bad_input_is_rejected_with_a_clear_message():
    edge_index = np.array([[0, 1, 2], [1, 2, 0]])
    partition = np.array([0, 0, 1])
    with pytest.raises(ValueError, match="both directions"):
        modularity(np.array([[0, 1, 1], [1, 0, 2]]), partition)  # (0,1) twice, (1,2) once
    with pytest.raises(ValueError, match="different weights"):
        modularity(np.array([[0, 1], [1, 0]]), np.array([0, 1]), weights=np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="NaN"):
        modularity(edge_index, partition, weights=np.array([1.0, np.nan, 1.0]))
    with pytest.raises(ValueError, match="non-negative"):
        modularity(edge_index, partition, weights=np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match=r"shape \[2, E\]"):
        modularity(edge_index.T, partition)
    with pytest.raises(ValueError, match="partition must have shape"):
        modularity(edge_index, np.array([0, 1]), num_nodes=3)
    with pytest.raises(TypeError, match="integer"):
        modularity(edge_index, np.array([0.0, 1.0, 1.0]))
    with pytest.raises(TypeError, match="integers"):
        modularity(edge_index.astype(float), partition)
    with pytest.raises(ValueError, match="no edges"):
        modularity(np.zeros((2, 0), dtype=np.int64), np.array([0, 1]), num_nodes=2)
    with pytest.raises(ValueError, match="resolution"):
        modularity(edge_index, partition, resolution=float("nan"))


def test_modularity_matrix_operator_equals_the_dense_matrix():
    graph, rng = random_graph(2)
    edge_index, weights, n, _ = from_networkx(graph)
    g = as_graph(edge_index, n, weights)
    a = g.adjacency.toarray()
    dense = a - 0.8 * np.outer(g.degrees, g.degrees) / g.two_m
    operator = modularity_matrix(g, 0.8)
    x = rng.standard_normal((n, 3))
    np.testing.assert_allclose(operator.matmat(x), dense @ x, rtol=0, atol=1e-12)
    np.testing.assert_allclose(operator.matvec(x[:, 0]), dense @ x[:, 0], rtol=0, atol=1e-12)
    # Q = (1/2m) Σ_ij B_ij δ(c_i, c_j) with the dense B.
    labels = rng.integers(0, 4, n)
    same = labels[:, None] == labels[None, :]
    assert modularity_of_labels(g, labels, 0.8) == pytest.approx((dense * same).sum() / g.two_m, abs=1e-14)


def test_potts_and_ising_energies_agree_for_two_communities():
    graph, rng = random_graph(3)
    edge_index, weights, n, _ = from_networkx(graph)
    g = as_graph(edge_index, n, weights)
    for resolution in (1.0, 0.6):
        spins = rng.choice([-1, 1], n)
        labels = (spins > 0).astype(int)
        potts = potts_energy(g, labels, resolution)
        assert potts == pytest.approx(-g.two_m * modularity_of_labels(g, labels, resolution), abs=1e-11)
        assert ising_energy(g, spins, resolution) == pytest.approx(potts, abs=1e-11)
    with pytest.raises(ValueError, match="±1"):
        ising_energy(g, np.zeros(n))


def test_relaxed_modularity_is_exact_on_hard_and_closed_form_on_uniform_assignments():
    graph, rng = random_graph(4)
    edge_index, weights, n, _ = from_networkx(graph)
    g = as_graph(edge_index, n, weights)
    ei, w, k = edge_tensors(g, dtype=torch.float64)
    labels = rng.integers(0, 5, n)
    one_hot = torch.nn.functional.one_hot(torch.as_tensor(labels), 5).double()
    relaxed = relaxed_modularity(one_hot, ei, w, k, g.two_m, 1.3)
    assert float(relaxed) == pytest.approx(modularity_of_labels(g, labels, 1.3), abs=1e-13)
    # Uniform S = 1/K: Tr(SᵀAS) = 2m/K and |kᵀS|² = (2m)²/K, so Q(S) = (1 − γ)/K.
    uniform = torch.full((n, 4), 0.25, dtype=torch.float64)
    assert float(relaxed_modularity(uniform, ei, w, k, g.two_m, 0.4)) == pytest.approx(0.6 / 4, abs=1e-14)


def test_aggregation_preserves_modularity():
    graph, rng = random_graph(5)
    edge_index, weights, n, _ = from_networkx(graph)
    g = as_graph(edge_index, n, weights)
    fine = rng.integers(0, 12, n)
    coarse_graph = aggregate(g, np.unique(fine, return_inverse=True)[1])
    coarse_partition = rng.integers(0, 3, coarse_graph.num_nodes)
    projected = coarse_partition[np.unique(fine, return_inverse=True)[1]]
    assert modularity_of_labels(coarse_graph, coarse_partition) == pytest.approx(
        modularity_of_labels(g, projected), abs=1e-14)


def test_nmi_closed_forms():
    labels = np.array([0, 0, 1, 1, 2, 2])
    assert normalized_mutual_information(labels, 5 - labels) == pytest.approx(1.0, abs=1e-15)
    # x and y independent (a product partition): I = 0 exactly.
    x, y = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    assert normalized_mutual_information(x, y) == pytest.approx(0.0, abs=1e-15)
    # x = halves, y = one node split off: H(x) = ln 2, H(y) = ln 4 − (3/4) ln 3, I = H(y) − H(y|x)
    # with H(y|x) = ½·H(1/2, 1/2) = ½ ln 2.
    x, y = np.array([0, 0, 1, 1]), np.array([0, 0, 1, 2])
    hx, hy = np.log(2), -(0.5 * np.log(0.5) + 2 * 0.25 * np.log(0.25))
    mutual = hy - 0.5 * np.log(2)
    assert normalized_mutual_information(x, y) == pytest.approx(2 * mutual / (hx + hy), abs=1e-14)
    with pytest.raises(ValueError, match="lengths"):
        normalized_mutual_information(x, y[:3])
