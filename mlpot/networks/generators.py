"""Benchmark graphs with known communities: Zachary's karate club, LFR, and a fast planted partition.

* :func:`karate_club` — Zachary's club (networkx's copy) **unweighted**, the graph of the
  published optima (Q = 0.4198 with four communities, 0.3718 with two; Brandes et al. 2008),
  and the two observed factions.
* :func:`lfr_graph` — the LFR benchmark (Lancichinetti, Fortunato & Radicchi 2008) by networkx's
  generator, retried with the next seed when it fails to converge; the seed used is returned.
* :func:`planted_partition_graph` — an LFR-like graph built in O(E) numpy: power-law degrees
  (exponent τ1) and community sizes (τ2), each node's degree split into (1 − μ)k stubs paired
  inside its community and μk stubs paired across the graph (configuration model). networkx's LFR
  generator is pure Python and needs minutes to hours (when it converges) at 10⁵ nodes, so the
  scaling benchmark uses this one. Self-loops and repeated pairs from stub matching are dropped,
  so the realised mixing and degrees deviate slightly (reported by the benchmark).
"""

from __future__ import annotations

import numpy as np

__all__ = ["karate_club", "lfr_graph", "planted_partition_graph", "edges_of", "labels_of_sets"]


def edges_of(graph) -> np.ndarray:
    """``[2, E]`` int64 edge list of a networkx graph whose nodes are 0..n−1 (each edge once)."""
    edges = np.array(list(graph.edges()), dtype=np.int64).reshape(-1, 2)
    return edges.T.copy()


def labels_of_sets(sets, num_nodes: int) -> np.ndarray:
    """``[num_nodes]`` labels from an iterable of node sets (networkx's community format)."""
    labels = np.full(num_nodes, -1, dtype=np.int64)
    for label, members in enumerate(sets):
        labels[list(members)] = label
    if (labels < 0).any():
        raise ValueError("the community sets do not cover every node")
    return labels


def karate_club():
    """``(edge_index [2, 78], factions [34])``: the unweighted club; faction 0 is Mr. Hi's."""
    import networkx as nx

    graph = nx.karate_club_graph()
    factions = np.array([0 if graph.nodes[v]["club"] == "Mr. Hi" else 1 for v in range(34)])
    return edges_of(graph), factions


def lfr_graph(num_nodes: int, mu: float, seed: int, tau1: float = 3.0, tau2: float = 1.5,
              average_degree: float = 20, max_degree: int = 50, min_community: int = 20,
              max_community: int = 100, max_tries: int = 20):
    """An LFR graph by networkx, trying seeds ``seed, seed + 1, ...`` until generation succeeds.

    Returns:
        ``(edge_index [2, E], planted labels [num_nodes], seed used)``.
    """
    import networkx as nx

    for attempt in range(seed, seed + max_tries):
        try:
            graph = nx.LFR_benchmark_graph(num_nodes, tau1, tau2, mu, average_degree=average_degree,
                                           max_degree=max_degree, min_community=min_community,
                                           max_community=max_community, seed=attempt)
        except nx.ExceededMaxIterations:
            continue
        planted = {frozenset(graph.nodes[v]["community"]) for v in graph}
        return edges_of(graph), labels_of_sets(planted, num_nodes), attempt
    raise RuntimeError(f"LFR generation failed for seeds {seed}..{seed + max_tries - 1} (n={num_nodes}, mu={mu})")


def _power_law(rng, size: int, exponent: float, low: float, high: float) -> np.ndarray:
    """Samples of p(x) ∝ x^−exponent on [low, high] by inverting the CDF."""
    a, b = low ** (1 - exponent), high ** (1 - exponent)
    return (a + rng.random(size) * (b - a)) ** (1 / (1 - exponent))


def _power_law_mean(exponent: float, low: float, high: float) -> float:
    if np.isclose(exponent, 2.0):
        return np.log(high / low) / (1 / low - 1 / high)
    num = (high ** (2 - exponent) - low ** (2 - exponent)) / (2 - exponent)
    den = (high ** (1 - exponent) - low ** (1 - exponent)) / (1 - exponent)
    return num / den


def _pair_stubs(rng, owners: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    """Pair stubs at random (within each group when given): ``[2, n_stubs // 2]`` node pairs."""
    order = rng.permutation(owners.size)
    if groups is not None:
        order = order[np.argsort(groups[order], kind="stable")]
    owners, grouped = owners[order], None if groups is None else groups[order]
    first, second = owners[0::2][: owners.size // 2], owners[1::2][: owners.size // 2]
    if grouped is not None:  # an odd stub at a group boundary pairs across groups: drop that pair
        same = grouped[0::2][: owners.size // 2] == grouped[1::2][: owners.size // 2]
        first, second = first[same], second[same]
    return np.stack([first, second])


def planted_partition_graph(num_nodes: int, mu: float, seed: int, tau1: float = 3.0, tau2: float = 1.5,
                            average_degree: float = 20, max_degree: int = 50, min_community: int = 50,
                            max_community: int = 1000):
    """An LFR-like planted partition in O(E) (see the module docstring).

    Returns:
        ``(edge_index [2, E] each edge once, planted labels [num_nodes])``.
    """
    if not 0 <= mu <= 1:
        raise ValueError(f"mu must be in [0, 1], got {mu}")
    rng = np.random.default_rng(seed)
    # Smallest degree such that the power law on [k_min, max_degree] has the requested mean.
    low, high = 1.0, float(average_degree)
    for _ in range(60):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if _power_law_mean(tau1, mid, max_degree) < average_degree else (low, mid)
    degrees = np.rint(_power_law(rng, num_nodes, tau1, low, max_degree)).astype(np.int64)
    sizes = np.rint(_power_law(rng, num_nodes // min_community + 1, tau2, min_community, max_community))
    sizes = sizes.astype(np.int64)
    sizes = sizes[: np.searchsorted(np.cumsum(sizes), num_nodes) + 1]
    sizes[-1] -= sizes.sum() - num_nodes
    if sizes[-1] < min_community and sizes.size > 1:  # fold a too-small remainder into the previous one
        sizes[-2] += sizes[-1]
        sizes = sizes[:-1]
    labels = rng.permutation(np.repeat(np.arange(sizes.size), sizes))
    internal = rng.binomial(degrees, 1.0 - mu)
    inside = np.repeat(np.arange(num_nodes), internal)
    outside = np.repeat(np.arange(num_nodes), degrees - internal)
    pairs = np.hstack([_pair_stubs(rng, inside, labels[inside]), _pair_stubs(rng, outside, None)])
    pairs = pairs[:, pairs[0] != pairs[1]]
    pairs = np.unique(np.sort(pairs, axis=0), axis=1)
    return pairs, labels
