"""The modularity GNN: karate-club optima, determinism, local optimality, caps, interop, generators."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch

from mlpot.networks import communities, modularity, normalized_mutual_information, spectral_bisection
from mlpot.networks.generators import karate_club, lfr_graph, planted_partition_graph
from mlpot.networks.gnn import GNNSettings, detect_communities
from mlpot.networks.graph import as_graph
from mlpot.networks.io import from_pyg, to_networkx
from mlpot.networks.refine import _best_moves


@pytest.fixture(scope="module")
def karate():
    return karate_club()


def test_karate_reaches_the_proven_optimum(karate):
    edge_index, _ = karate
    labels = communities(edge_index)
    # Brandes et al. (2008) proved 0.4198 optimal (four communities); the issue asks for ≥ 0.4190.
    assert modularity(edge_index, labels) >= 0.4190
    assert labels.shape == (34,) and labels.dtype == np.int64


def test_karate_split_in_two_matches_the_factions(karate):
    edge_index, factions = karate
    labels = communities(edge_index, max_communities=2)
    assert labels.max() + 1 == 2
    assert modularity(edge_index, labels) >= 0.3710  # optimum 0.3718
    mismatches = min((labels != factions).sum(), (labels == factions).sum())
    assert mismatches <= 2


QUICK = dict(restarts=1, steps=60)  # a short GNN run: these tests check plumbing, not quality


def test_result_is_deterministic_and_independent_of_the_listing(karate):
    edge_index, _ = karate
    both = np.concatenate([edge_index, edge_index[::-1]], axis=1)
    runs = [detect_communities(as_graph(e), seed=3, settings=GNNSettings(**QUICK))
            for e in (edge_index, edge_index, torch.as_tensor(both))]
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0], runs[2])


def test_result_is_a_local_optimum_of_q():
    edge_index, truth = planted_partition_graph(300, 0.3, seed=2, average_degree=10, max_degree=20,
                                                min_community=20, max_community=60)
    graph = as_graph(edge_index, 300)
    labels = detect_communities(graph, seed=0)
    gain, _ = _best_moves(graph, labels, 1.0, allow_new=True)
    assert gain.max() <= 1e-13  # no single-node move (to any community or a new one) raises Q
    assert normalized_mutual_information(truth, labels) > 0.9


def test_isolated_nodes_and_caps():
    edge_index = np.array(list(nx.ring_of_cliques(4, 5).edges())).T
    labels = communities(edge_index, num_nodes=22, seed=1)
    assert labels.shape == (22,)
    np.testing.assert_array_equal(labels[:20], np.repeat(labels[:20:5], 5))  # one community per clique
    assert len({labels[20], labels[21]}) == 2 and not np.isin(labels[20:], labels[:20]).any()
    graph = as_graph(edge_index)
    for cap in (1, 3):
        assert detect_communities(graph, max_communities=cap, settings=GNNSettings(**QUICK)).max() + 1 <= cap
    with pytest.raises(ValueError, match="max_communities"):
        communities(edge_index, max_communities=0)


def test_stages_record_what_each_stage_contributes(karate):
    settings = GNNSettings(**QUICK)
    detect_communities(as_graph(karate[0]), seed=0, settings=settings)
    assert set(settings.stages) == {"gnn", "refined"}
    assert settings.stages["refined"] >= settings.stages["gnn"]


def test_torch_geometric_data_round_trip(karate):
    from torch_geometric.data import Data
    from torch_geometric.utils import to_undirected

    edge_index, _ = karate
    data = Data(edge_index=to_undirected(torch.as_tensor(edge_index)), num_nodes=34)
    pyg_edges, weights, n, _ = from_pyg(data)
    labels = np.arange(34) % 3
    assert modularity(pyg_edges, labels, n, weights) == pytest.approx(modularity(edge_index, labels), abs=1e-15)
    graph = to_networkx(edge_index, 34)
    assert graph.number_of_edges() == 78


def test_spectral_bisection_splits_two_cliques_exactly():
    graph = nx.barbell_graph(6, 0)  # two 6-cliques joined by one edge
    edge_index = np.array(list(graph.edges())).T
    labels = spectral_bisection(edge_index)
    np.testing.assert_array_equal(labels == labels[0], np.arange(12) < 6)


def test_planted_partition_has_the_requested_mixing():
    n, mu = 5000, 0.3
    edge_index, truth = planted_partition_graph(n, mu, seed=0, min_community=50, max_community=500)
    sizes = np.bincount(truth)
    assert sizes.min() >= 50 and sizes.sum() == n
    external = (truth[edge_index[0]] != truth[edge_index[1]]).mean()
    # Binomial stub split: the fraction has standard error ~ sqrt(mu(1 − mu)/E) ≈ 0.002; allow 5σ.
    # Dropped self-loops and repeated pairs bias it by O(1/community size), within that margin too.
    assert abs(external - mu) < 5 * np.sqrt(mu * (1 - mu) / edge_index.shape[1]) + 0.01
    degrees = np.bincount(edge_index.ravel(), minlength=n)
    assert abs(degrees.mean() - 20) < 1.5


@pytest.mark.slow
def test_lfr_thousand_nodes_nmi_close_to_louvain():
    edge_index, truth, _ = lfr_graph(1000, 0.3, seed=1)
    ours = normalized_mutual_information(truth, communities(edge_index, num_nodes=1000))
    graph = to_networkx(edge_index, 1000)
    louvain_sets = nx.community.louvain_communities(graph, seed=0)
    louvain = np.zeros(1000, int)
    for c, members in enumerate(louvain_sets):
        louvain[list(members)] = c
    assert ours >= normalized_mutual_information(truth, louvain) - 0.02
