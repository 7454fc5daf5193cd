"""Scalar (0e) descriptors: neighbour densities and their power spectrum.

Each atom's neighbourhood is expanded as c_{klm} = Σ_j R_{kl}(r_ij) Y_lm(r̂_ij) with e3nn's real
spherical harmonics (component normalisation), where the radial channels R_{kl} are learnable
mixtures of a Bessel basis, resolved by neighbour species. The power spectrum
p_{kk'l} = Σ_m c_{klm} c_{k'lm} / (2l+1) is invariant under rotations *and* reflections
(Y_lm(−r̂) = (−1)^l Y_lm(r̂), and each term has two factors), and costs O(neighbours).

Speed:

* e3nn evaluates Y_lm with dozens of small tensor operations, which dominates the cost of a
  small molecule. Y_lm(r) is a homogeneous polynomial of degree l, so it is an exact linear map
  of the degree-l monomials of r. :func:`harmonics_coefficients` fits that map once against
  e3nn itself (so e3nn stays the definition), and :func:`spherical_harmonics` applies it in a
  handful of operations. A test pins the two to round-off.
* The density is a sum of outer products B_n(r_ij) ⊗ Y_lm(r̂_ij) over the neighbours j of
  each atom. Written per edge, that outer product is the largest tensor of the model
  ([E, n·(l_max+1)²], ~1 kB per edge) and its time is spent moving memory. Instead, each
  atom's edges are laid out in a padded table of neighbour slots, so that the sum is one
  batched matrix product per atom (:func:`neighbour_density`); its backward is two more.
  :func:`neighbour_density_reference` is the literal per-edge sum, used by the tests.
"""

from __future__ import annotations

import functools
import itertools

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


@functools.lru_cache(maxsize=None)
def _harmonics_derivative_float64(l_max: int) -> Tensor:
    coefficients = _harmonics_coefficients_float64(l_max)
    n_lower = sum(3**l for l in range(l_max))  # monomials of degree < l_max, constant included
    derivative = torch.zeros(3, n_lower, coefficients.shape[1], dtype=torch.float64)
    row = 1
    for l in range(1, l_max + 1):
        for powers in itertools.product(range(3), repeat=l):  # row order of spherical_harmonics
            # ∂(x_a1 … x_al)/∂x_d = Σ_{i: a_i = d} Π_{j≠i} x_aj, a monomial of degree l − 1.
            for i, d in enumerate(powers):
                rest = powers[:i] + powers[i + 1 :]
                lower = sum(3**k for k in range(l - 1)) + sum(a * 3 ** (l - 2 - k) for k, a in enumerate(rest))
                derivative[d, lower] += coefficients[row]
            row += 1
    return derivative


def harmonics_derivative_coefficients(l_max: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """[3, Σ_{l<l_max} 3^l, (l_max+1)²] map from the monomials of degree < l_max to ∂Y_lm/∂x_d, d = x, y, z."""
    return _harmonics_derivative_float64(l_max).to(dtype)


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
    monomials = [vectors]
    for l in range(2, l_max + 1):
        monomials.append((monomials[-1][:, :, None] * vectors[:, None, :]).reshape(n, 3**l))
    # Y_00 = 1 is the constant row of the map: added as the bias of one matrix product
    # rather than as a column of ones.
    return torch.addmm(coefficients[0], torch.cat(monomials, dim=1), coefficients[1:])


def neighbour_slots(centre: Tensor, n_atoms: int) -> tuple[Tensor, int]:
    """Place every edge in a per-atom table of neighbour slots (or any items in rows by group).

    Atom i's edges take slots 0, 1, … of row i in the order they appear; the table has
    ``width`` = (most neighbours of any atom) slots per row, and unused slots stay empty.

    Args:
        centre: [E] int64 centre index i of each edge (the row of each item), in any order.
        n_atoms: number of atoms (rows).

    Returns:
        flat slot index i·width + slot of each edge [E] int64, and width.
    """
    counts = torch.bincount(centre, minlength=n_atoms)
    width = int(counts.max()) if centre.numel() else 0
    first_edge = counts.cumsum(0) - counts  # where each atom's edges start once grouped by centre
    if centre.numel() > 1 and bool((centre[1:] < centre[:-1]).any()):
        # Neighbour lists are grouped by centre already; other edge orders are ranked after a sort.
        order = torch.argsort(centre, stable=True)
        rank = torch.empty_like(order).index_copy_(0, order, torch.arange(centre.numel(), device=centre.device))
    else:
        rank = torch.arange(centre.numel(), device=centre.device)
    return centre * width + (rank - first_edge.index_select(0, centre)), width


def neighbour_density(
    harmonics: Tensor, basis: Tensor, centre: Tensor, neighbour_species: Tensor | None, n_atoms: int, n_species: int
) -> Tensor:
    """Species-resolved density of every atom: Σ_{j of species z} B_n(r_ij) Y_lm(r̂_ij).

    The learnable radial channels are linear in these (:func:`mix_channels`), so they are
    applied per atom afterwards rather than per edge. The sum over neighbours is a matrix
    product per atom, Yᵀ[lm, slot] · B[slot, (z, n)], over a padded table of neighbour slots
    (:func:`neighbour_slots`) where each edge's basis sits in the block of its neighbour's
    species and empty slots are zero.

    Args:
        harmonics: [E, (l_max+1)²] Y_lm(r̂_ij).
        basis: [E, n_radial] B_n(r_ij).
        centre: [E] int64 index i of each edge.
        neighbour_species: [E] int64 species index of j (unused when n_species is 1).
        n_atoms: number of atoms.
        n_species: number of species.

    Returns:
        [n_atoms, (l_max+1)², n_species · n_radial].
    """
    slot, width = neighbour_slots(centre, n_atoms)
    n_components, n_radial = harmonics.shape[1], basis.shape[1]
    table_y = harmonics.new_zeros(n_atoms * width, n_components).index_copy(0, slot, harmonics)
    if n_species > 1:
        slot = slot * n_species + neighbour_species
    table_b = basis.new_zeros(n_atoms * width * n_species, n_radial).index_copy(0, slot, basis)
    table_y = table_y.view(n_atoms, width, n_components)
    return torch.bmm(table_y.transpose(1, 2), table_b.view(n_atoms, width, n_species * n_radial))


def neighbour_density_reference(
    harmonics: Tensor, basis: Tensor, centre: Tensor, neighbour_species: Tensor, n_atoms: int, n_species: int
) -> Tensor:
    """The literal per-edge sum behind :func:`neighbour_density` (same arguments and result); tests only."""
    per_edge = harmonics[:, :, None] * basis[:, None, :]  # [E, (l_max+1)², n]
    density = per_edge.new_zeros(n_atoms * n_species, *per_edge.shape[1:])
    density = density.index_add(0, centre * n_species + neighbour_species, per_edge)
    density = density.view(n_atoms, n_species, harmonics.shape[1], basis.shape[1])
    return density.transpose(1, 2).reshape(n_atoms, harmonics.shape[1], n_species * basis.shape[1])


def mixing_index(l_max: int) -> Tensor:
    """[(l_max+1)²] int64 row (l, m)·(l_max+1) + l: where :func:`mix_channels` finds component (l, m) mixed with W_l."""
    n_orders = l_max + 1
    return torch.tensor([(l * l + i) * n_orders + l for l in range(n_orders) for i in range(2 * l + 1)])


def mix_channels(density: Tensor, weights: Tensor, index: Tensor) -> Tensor:
    """Learnable radial channels c_{klm} = Σ_{(z,n)} W_l[k, (z,n)] · density_{lm (z,n)}.

    Every component is mixed with every order's weights in one matrix product (the waste is
    small: these are per-atom tensors), and each component then keeps its own order's result.

    Args:
        density: [n_atoms, (l_max+1)², n_species · n_radial] from :func:`neighbour_density`.
        weights: [l_max+1, K, n_species · n_radial] one mixing matrix per angular order.
        index: from :func:`mixing_index`.

    Returns:
        [n_atoms, (l_max+1)², K] channel densities.
    """
    n_atoms, n_components, _ = density.shape
    n_orders, n_channels, n_inputs = weights.shape
    every_order = density @ weights.reshape(n_orders * n_channels, n_inputs).T  # [N, (l_max+1)², n_orders·K]
    return every_order.view(n_atoms, n_components * n_orders, n_channels).index_select(1, index)


def symmetric_pairs(n_channels: int) -> tuple[Tensor, Tensor]:
    """Where each ordered channel pair (k, k') finds p_{kk'} among the pairs k ≤ k' of
    :func:`power_spectrum`, and the factor ∂(c_k c_k')/∂c_k picks up there (2 on the diagonal,
    where the product is c_k², else 1): [K²] int64 and [K²] float64."""
    upper = torch.triu_indices(n_channels, n_channels)
    column = {(int(a), int(b)): i for i, (a, b) in enumerate(upper.T)}
    index = torch.tensor([column[min(a, b), max(a, b)] for a in range(n_channels) for b in range(n_channels)])
    factor = torch.tensor([2.0 if a == b else 1.0 for a in range(n_channels) for b in range(n_channels)], dtype=torch.float64)
    return index, factor


def power_spectrum(channels: Tensor, order_weights: Tensor, pair_index: Tensor) -> Tensor:
    """Rotation- and reflection-invariant p_{kk'l} for k ≤ k' and every l, plus c_{k00}.

    Args:
        channels: [n_atoms, (l_max+1)², K] from :func:`mix_channels`.
        order_weights: [(l_max+1)², l_max+1], 1/(2l+1) where component belongs to order l, else 0.
        pair_index: [2·K(K+1)/2] int64 channels k of all pairs k ≤ k', then the channels k'.

    Returns:
        [n_atoms, K + (l_max+1)·K(K+1)/2] scalars, ordered (k, k') pair-major then l.
    """
    n_atoms, n_components, _ = channels.shape
    n_pairs = pair_index.shape[0] // 2
    # Only the pairs k ≤ k' are formed (not the full K×K products), gathered in one operation.
    both = channels.transpose(1, 2).index_select(1, pair_index)  # [N, 2·pairs, (l_max+1)²]
    products = both[:, :n_pairs] * both[:, n_pairs:]
    spectrum = (products @ order_weights).reshape(n_atoms, -1)
    return torch.cat((channels[:, 0, :], spectrum), dim=1)
