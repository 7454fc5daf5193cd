"""Pseudoscalar (0o) descriptors: scalar triple products of weighted neighbour vectors.

For vector channels U_k = Σ_j w_k(r_ij) r̂_ij, the triple products χ_abc = U_a · (U_b × U_c),
a < b < c, keep their value under proper rotations and flip sign under a mirror, since each U
is a polar vector and the triple product is a determinant. Expanding the three sums gives the
literal four-body sum over neighbour triples,

    U_a · (U_b × U_c) = Σ_{j,k,l} w_a(r_ij) w_b(r_ik) w_c(r_il) r̂_ij · (r̂_ik × r̂_il),

so the factorised form costs O(neighbours) instead of O(neighbours³).
:func:`triple_product_reference` is that literal sum, used by the tests to check this identity.
"""

from __future__ import annotations

import functools
import itertools

import torch
from torch import Tensor


@functools.lru_cache(maxsize=None)
def _triples(n_channels: int) -> Tensor:
    return torch.tensor(list(itertools.combinations(range(n_channels), 3)), dtype=torch.int64).reshape(-1, 3)


def triple_product_indices(n_channels: int) -> Tensor:
    """[n_triples, 3] int64 channel triples (a, b, c) with a < b < c."""
    return _triples(n_channels).clone()


def triple_columns(n_channels: int) -> Tensor:
    """Channels a of every triple, then every b, then every c: [3 · n_triples] int64."""
    return _triples(n_channels).T.reshape(-1)


def antisymmetric_triples(n_channels: int) -> tuple[Tensor, Tensor]:
    """Where each ordered channel triple (a, b, c) finds its triple product, and with which sign.

    χ is antisymmetric, χ_abc = −χ_bac = χ_bca, and zero when two channels coincide. For all K³
    ordered triples, returns the column in [χ of :func:`triple_product_indices`, 0] (the
    appended zero column serves the coinciding triples) and the sign (±1, 0): a gather that
    expands the a < b < c values to the full antisymmetric tensor, [K³] int64 and [K³] float64.
    """
    triples = _triples(n_channels).tolist()
    column = {tuple(t): i for i, t in enumerate(triples)}
    index = torch.full((n_channels**3,), len(triples), dtype=torch.int64)
    sign = torch.zeros(n_channels**3, dtype=torch.float64)
    for flat, abc in enumerate(itertools.product(range(n_channels), repeat=3)):
        if len(set(abc)) == 3:
            order = sorted(abc)
            inversions = sum(abc[i] > abc[j] for i in range(3) for j in range(i + 1, 3))
            index[flat], sign[flat] = column[tuple(order)], (-1.0) ** inversions
    return index, sign


def pseudoscalars(vectors: Tensor, columns: Tensor | None = None) -> Tensor:
    """Triple products χ_abc = U_a · (U_b × U_c) for all a < b < c.

    Args:
        vectors: [n_atoms, K, 3] vector channels U_k (any fixed basis orientation: an even
            permutation of the axes, such as e3nn's (y, z, x) order of l = 1, leaves χ unchanged).
        columns: :func:`triple_columns` of K, when the caller holds it (on the right device).

    Returns:
        [n_atoms, K(K−1)(K−2)/6] pseudoscalars.
    """
    if columns is None:
        columns = triple_columns(vectors.shape[1]).to(vectors.device)
    # One gather for all three factors: the channels a of every triple, then all b, then all c.
    a, b, c = vectors.index_select(1, columns).chunk(3, dim=1)
    return (a * torch.linalg.cross(b, c, dim=-1)).sum(dim=-1)


def pseudoscalars_backward(
    g_pseudoscalars: Tensor, vectors: Tensor, triple_tensor_index: Tensor, triple_tensor_sign: Tensor
) -> Tensor:
    """∂E/∂U [n_atoms, K, 3] from ∂E/∂χ ``g_pseudoscalars`` [n_atoms, K(K−1)(K−2)/6], through
    :func:`pseudoscalars` at ``vectors`` U [n_atoms, K, 3].

    Σ_{a<b<c} g_abc U_a·(U_b × U_c) = (1/6) Σ_abc G_abc ε U_a U_b U_c with G the antisymmetric
    extension of g (:func:`antisymmetric_triples`, a gather): ∂/∂U_a = ½ Σ_bc G_abc (U_b × U_c).
    """
    n_atoms, n_channels = vectors.shape[:2]
    g_padded = torch.cat((g_pseudoscalars, g_pseudoscalars.new_zeros(n_atoms, 1)), dim=1)
    g_triples = g_padded.index_select(1, triple_tensor_index) * triple_tensor_sign  # [N, K³]
    crosses = torch.linalg.cross(vectors[:, :, None, :], vectors[:, None, :, :], dim=-1)
    return 0.5 * torch.bmm(g_triples.view(n_atoms, n_channels, n_channels * n_channels), crosses.view(n_atoms, -1, 3))


def triple_product_reference(edge_vectors: Tensor, weights: Tensor, centre: Tensor, n_atoms: int) -> Tensor:
    """Literal O(n³) sum Σ_{j,k,l} w_a(r_ij) w_b(r_ik) w_c(r_il) r̂_ij·(r̂_ik × r̂_il); tests only.

    Args:
        edge_vectors: [E, 3] r_ij.
        weights: [E, K] w_k(r_ij) of each edge.
        centre: [E] int64 centre index i of each edge.
        n_atoms: number of atoms.

    Returns:
        [n_atoms, n_triples] in the order of :func:`triple_product_indices`.
    """
    triples = triple_product_indices(weights.shape[1])
    unit = edge_vectors / edge_vectors.norm(dim=1, keepdim=True)
    out = torch.zeros(n_atoms, triples.shape[0], dtype=edge_vectors.dtype)
    for i in range(n_atoms):
        edges = torch.nonzero(centre == i).flatten().tolist()
        for t, (a, b, c) in enumerate(triples.tolist()):
            total = edge_vectors.new_zeros(())
            for j, k, l in itertools.product(edges, repeat=3):
                total = total + weights[j, a] * weights[k, b] * weights[l, c] * torch.dot(
                    unit[j], torch.linalg.cross(unit[k], unit[l])
                )
            out[i, t] = total
    return out
