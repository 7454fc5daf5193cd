"""Single-node moves, merges and splits: exact ΔQ and a true local optimum, checked by brute force."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from mlpot.networks.graph import as_graph
from mlpot.networks.io import from_networkx
from mlpot.networks.modularity import modularity_of_labels
from mlpot.networks.refine import _best_moves, local_moving, merge_communities, refine, split_disconnected


def weighted_graph(seed: int, n: int = 30, edges: int = 80):
    rng = np.random.default_rng(seed)
    graph = nx.gnm_random_graph(n, edges, seed=seed)
    for u, v in graph.edges:
        graph[u][v]["weight"] = float(rng.uniform(0.2, 2.0))
    graph.add_edge(0, 0, weight=0.5)
    edge_index, weights, n, _ = from_networkx(graph)
    return as_graph(edge_index, n, weights), rng


def brute_force_gains(graph, labels, resolution):
    """Q after every single-node move (to each existing community or a new one) minus Q now."""
    base = modularity_of_labels(graph, labels, resolution)
    n_comm = labels.max() + 1
    gains = np.full((graph.num_nodes, n_comm + 1), -np.inf)
    for i in range(graph.num_nodes):
        for c in range(n_comm + 1):
            if c == labels[i]:
                continue
            moved = labels.copy()
            moved[i] = c
            gains[i, c] = modularity_of_labels(graph, np.unique(moved, return_inverse=True)[1], resolution) - base
    return gains


@pytest.mark.parametrize("resolution", [1.0, 1.7])
def test_best_single_move_gain_equals_brute_force(resolution):
    graph, rng = weighted_graph(0)
    labels = rng.integers(0, 4, graph.num_nodes)
    gain, target = _best_moves(graph, labels, resolution, allow_new=True)
    exact = brute_force_gains(graph, labels, resolution)
    # Moves into non-adjacent communities never beat a move into a new one (w_ib = 0, K_b ≥ 0),
    # so the best over neighbours and "alone" is the best over all moves.
    np.testing.assert_allclose(gain, exact.max(axis=1), rtol=0, atol=1e-14)
    chosen = np.where(target >= 0, target, labels.max() + 1)
    np.testing.assert_allclose(exact[np.arange(graph.num_nodes), chosen], gain, rtol=0, atol=1e-14)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_local_moving_reaches_a_local_optimum_without_losing_q(seed):
    graph, rng = weighted_graph(seed)
    start = rng.integers(0, 6, graph.num_nodes)
    labels = local_moving(graph, start)
    assert modularity_of_labels(graph, labels) >= modularity_of_labels(graph, start)
    assert brute_force_gains(graph, labels, 1.0).max() <= 1e-13


def test_capped_moves_never_open_a_community():
    graph, rng = weighted_graph(4)
    start = rng.integers(0, 3, graph.num_nodes)
    labels = refine(graph, start, max_communities=3)
    assert labels.max() + 1 <= 3
    gains = brute_force_gains(graph, labels, 1.0)[:, :-1]  # moves into existing communities only
    assert gains.max() <= 1e-13


def test_merges_only_raise_q_and_find_planted_cliques():
    # Four 6-cliques in a ring of single edges: the optimum is one community per clique.
    graph = nx.ring_of_cliques(4, 6)
    edge_index, _, n, _ = from_networkx(graph)
    g = as_graph(edge_index, n)
    halves = np.arange(n) // 3  # every clique cut in two
    merged = merge_communities(g, halves)
    assert modularity_of_labels(g, merged) >= modularity_of_labels(g, halves)
    np.testing.assert_array_equal(np.unique(merged, return_inverse=True)[1], np.arange(n) // 6)


def test_splitting_a_disconnected_community_adds_2_gamma_k1_k2_over_4m2():
    # Three 5-cliques in a path 0 - 1 - 2; cliques 0 and 2 share a label but no edge.
    graph = nx.ring_of_cliques(3, 5)
    graph.remove_edges_from([(u, v) for u, v in list(graph.edges) if {u // 5, v // 5} == {0, 2}])
    edge_index, _, n, _ = from_networkx(graph)
    g = as_graph(edge_index, n)
    joined = np.array([0] * 5 + [1] * 5 + [0] * 5)
    split = split_disconnected(g, joined)
    assert split.max() + 1 == 3
    k1, k2 = g.degrees[:5].sum(), g.degrees[10:].sum()
    expected = 2 * k1 * k2 / g.two_m**2  # the null-model term −γ(K1 + K2)² becomes −γ(K1² + K2²)
    assert modularity_of_labels(g, split) - modularity_of_labels(g, joined) == pytest.approx(expected, abs=1e-14)
