"""Scalar (0e) descriptors: neighbour densities and their power spectrum.

Each atom's neighbourhood is expanded as c_{klm} = Σ_j R_{kl}(r_ij) Y_lm(r̂_ij) with e3nn's real
spherical harmonics (component normalisation). The power spectrum
p_{kk'l} = Σ_m c_{klm} c_{k'lm} / (2l+1) is invariant under rotations *and* reflections
(Y_lm(−r̂) = (−1)^l Y_lm(r̂), and each term has two factors), and costs O(neighbours).

Speed: e3nn evaluates Y_lm with dozens of small tensor operations, which dominates the cost
of a small molecule. Y_lm(r) is a homogeneous polynomial of degree l, so it is an exact
linear map of the degree-l monomials of r. :func:`harmonics_coefficients` fits that map once
against e3nn itself (so e3nn stays the definition), and :func:`spherical_harmonics` applies it
in a handful of operations. A test pins the two to round-off.
"""

from __future__ import annotations

import functools

import torch
from e3nn import o3
from torch import Tensor


@functools.lru_cache(maxsize=None)
def _harmonics_coefficients_float64(l_max: int) -> Tensor:
    points = torch.randn(4096, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(12345))
    reference = o3.spherical_harmonics(list(range(l_max + 1)), points, normalize=False, normalization="component")
    blocks = []
    monomials = torch.ones(points.shape[0], 1, dtype=torch.float64)
    for l in range(l_max + 1):
        if l > 0:
            monomials = (monomials[:, :, None] * points[:, None, :]).reshape(points.shape[0], -1)
        target = reference[:, l * l : (l + 1) ** 2]
        blocks.append(torch.linalg.lstsq(monomials, target, driver="gelsd").solution)
    return torch.block_diag(*blocks)


def harmonics_coefficients(l_max: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """[Σ_l 3^l, (l_max+1)²] map from monomials (1; x,y,z; x_a x_b; x_a x_b x_c; …) to e3nn's Y_lm."""
    return _harmonics_coefficients_float64(l_max).to(dtype)


def spherical_harmonics(vectors: Tensor, coefficients: Tensor, l_max: int) -> Tensor:
    """e3nn real spherical harmonics Y_lm(r) for l = 0..l_max, component normalisation, not normalised in r.

    Args:
        vectors: [E, 3]; pass unit vectors for Y_lm(r̂).
        coefficients: from :func:`harmonics_coefficients`.
        l_max: highest order.

    Returns:
        [E, (l_max+1)²], ordered as e3nn (l = 0, 1, …; m = −l..l).
    """
    n = vectors.shape[0]
    monomials = [vectors.new_ones(n, 1)]
    for l in range(1, l_max + 1):
        monomials.append((monomials[-1][:, :, None] * vectors[:, None, :]).reshape(n, -1))
    return torch.cat(monomials, dim=1) @ coefficients


def neighbour_density(harmonics: Tensor, radial: Tensor, centre: Tensor, n_atoms: int, order_of_component: Tensor) -> Tensor:
    """Density coefficients c_{klm} = Σ_j R_{kl}(r_ij) Y_lm(r̂_ij) of every atom.

    Args:
        harmonics: [E, (l_max+1)²] Y_lm(r̂_ij).
        radial: [E, K, l_max+1] radial channel values R_{kl}(r_ij).
        centre: [E] int64 index i of each edge.
        n_atoms: number of atoms.
        order_of_component: [(l_max+1)²] int64, the l of each (l, m) component.

    Returns:
        [n_atoms, K, (l_max+1)²] coefficients.
    """
    per_edge = radial.index_select(2, order_of_component) * harmonics[:, None, :]
    density = per_edge.new_zeros(n_atoms, *per_edge.shape[1:])
    return density.index_add(0, centre, per_edge)


def power_spectrum(density: Tensor, order_weights: Tensor, pair_index: Tensor) -> Tensor:
    """Rotation- and reflection-invariant p_{kk'l} for k ≤ k' and every l, plus c_{k00}.

    Args:
        density: [n_atoms, K, (l_max+1)²] from :func:`neighbour_density`.
        order_weights: [(l_max+1)², l_max+1], 1/(2l+1) where component belongs to order l, else 0.
        pair_index: [K(K+1)/2] int64 flat indices k·K + k' of the pairs k ≤ k'.

    Returns:
        [n_atoms, K + (l_max+1)·K(K+1)/2] scalars.
    """
    n_atoms, n_channels, _ = density.shape
    products = density[:, :, None, :] * density[:, None, :, :]  # [n, K, K, (l_max+1)²]
    per_order = (products @ order_weights).reshape(n_atoms, n_channels * n_channels, -1)
    spectrum = per_order.index_select(1, pair_index).reshape(n_atoms, -1)
    return torch.cat((density[:, :, 0], spectrum), dim=1)
