"""Scalar (0e) descriptors: neighbour densities and their power spectrum.

Each atom's neighbourhood is expanded as c_{klm} = Σ_j R_{kl}(r_ij) Y_lm(r̂_ij) with e3nn's real
spherical harmonics (component normalisation), where the radial channels R_{kl} are learnable
mixtures of a Bessel basis, resolved by neighbour species. The power spectrum
p_{kk'l} = Σ_m c_{klm} c_{k'lm} / (2l+1) is invariant under rotations *and* reflections
(Y_lm(−r̂) = (−1)^l Y_lm(r̂), and each term has two factors), and costs O(neighbours).

Three-body invariants alone (ν = 2: the centre and two neighbours) level off in accuracy, as
SOAP-based models do. The bispectrum adds four-body (ν = 3) invariants
b_{k,(l1 l2 l3)} = Σ_{m} C^{l1 l2 l3}_{m1 m2 m3} c_{k l1 m1} c_{k l2 m2} c_{k l3 m3} with the
coupling C the Gaunt coefficients (the invariant tensor of three real harmonics), for every
l1 ≤ l2 ≤ l3 whose sum is even (those are true scalars; odd sums are pseudoscalars and vanish
for three copies of one channel). Like MACE's symmetric contraction, it uses one channel k in
all three places: its own learnable radial channels (:func:`mix_channels`) choose what to
correlate, which keeps the count at K·(number of paths) instead of K³.

Speed:

* e3nn evaluates Y_lm with dozens of small tensor operations, which dominates the cost of a
  small molecule. Y_lm(r) is a homogeneous polynomial of degree l, so it is an exact linear map
  of the degree-l monomials x^a y^b z^c of r (:func:`monomials`). :func:`harmonics_coefficients`
  fits that map once against e3nn itself (so e3nn stays the definition), and :func:`spherical_harmonics` applies it in a
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

import numpy as np
import torch
from e3nn import o3
from torch import Tensor


def monomials(vectors: Tensor, l_max: int) -> Tensor:
    """The distinct monomials x^a y^b z^c of degrees 1..l_max of each vector, [E, Σ_l (l+1)(l+2)/2].

    Degree l is [x · (degree l−1), y · (its last l, which have no x), z · (its last, z^(l−1))]:
    slices, no gathers, and (l+1)(l+2)/2 columns instead of the 3^l of repeated outer products.
    :func:`monomial_exponents` gives the exponents (a, b, c) of each column.
    """
    degrees = [vectors]
    for l in range(2, l_max + 1):
        lower = degrees[-1]
        x, y, z = vectors[:, :1], vectors[:, 1:2], vectors[:, 2:]
        degrees.append(torch.cat((x * lower, y * lower[:, -l:], z * lower[:, -1:]), dim=1))
    return torch.cat(degrees, dim=1)


@functools.lru_cache(maxsize=None)
def monomial_exponents(l_max: int) -> tuple[tuple[int, int, int], ...]:
    """Exponents (a, b, c) of the columns of :func:`monomials`, the constant (0, 0, 0) first."""
    axes = ((1, 0, 0), (0, 1, 0), (0, 0, 1))
    degrees = [list(axes)]
    for l in range(2, l_max + 1):
        lower = degrees[-1]
        degrees.append(
            [tuple(map(sum, zip(e, axes[0]))) for e in lower]
            + [tuple(map(sum, zip(e, axes[1]))) for e in lower[-l:]]
            + [tuple(map(sum, zip(e, axes[2]))) for e in lower[-1:]]
        )
    return ((0, 0, 0),) + tuple(e for degree in degrees for e in degree)


@functools.lru_cache(maxsize=None)
def _harmonics_coefficients_float64(l_max: int) -> Tensor:
    points = torch.randn(4096, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(12345))
    reference = o3.spherical_harmonics(list(range(l_max + 1)), points, normalize=False, normalization="component")
    columns = torch.cat((torch.ones(points.shape[0], 1, dtype=torch.float64), monomials(points, l_max)), dim=1)
    degree = torch.tensor([sum(e) for e in monomial_exponents(l_max)])
    blocks = []
    for l in range(l_max + 1):
        target = reference[:, l * l : (l + 1) ** 2]
        blocks.append(torch.linalg.lstsq(columns[:, degree == l], target, driver="gelsd").solution)
    return torch.block_diag(*blocks)


def harmonics_coefficients(l_max: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """[1 + n_monomials, (l_max+1)²] map from (1, :func:`monomials`) to e3nn's Y_lm."""
    return _harmonics_coefficients_float64(l_max).to(dtype)


@functools.lru_cache(maxsize=None)
def _harmonics_derivative_float64(l_max: int) -> Tensor:
    coefficients = _harmonics_coefficients_float64(l_max)
    exponents = monomial_exponents(l_max)
    lower = {e: i for i, e in enumerate(exponents) if sum(e) < l_max}  # constant included
    derivative = torch.zeros(3, len(lower), coefficients.shape[1], dtype=torch.float64)
    for row, e in enumerate(exponents):
        for d in range(3):
            if e[d]:  # ∂(x^a y^b z^c)/∂x = a x^(a−1) y^b z^c, a monomial of one degree less
                reduced = tuple(k - (i == d) for i, k in enumerate(e))
                derivative[d, lower[reduced]] += e[d] * coefficients[row]
    return derivative


def harmonics_derivative_coefficients(l_max: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """[3, n_lower, (l_max+1)²] map from (1, the monomials of degree < l_max) to ∂Y_lm/∂x_d, d = x, y, z."""
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
    # Y_00 = 1 is the constant row of the map: added as the bias of one matrix product
    # rather than as a column of ones.
    return torch.addmm(coefficients[0], monomials(vectors, l_max), coefficients[1:])


def spherical_harmonics_backward(g_harmonics: Tensor, monomial_values: Tensor, derivative: Tensor) -> Tensor:
    """∂E/∂r̂ [E, 3] from ∂E/∂Y ``g_harmonics`` [E, (l_max+1)²], through :func:`spherical_harmonics`
    at unit vectors r̂ (treated as free: the caller projects onto the sphere).

    ∂Y/∂r̂_d is a fixed map of the monomials of lower degree (constant first): ``derivative``
    [3, Q, (l_max+1)²] is :func:`harmonics_derivative_coefficients`, ``monomial_values`` the
    [E, n_monomials] :func:`monomials` of the forward pass.
    """
    n_components, n_lower = g_harmonics.shape[1], derivative.shape[1]
    g_monomial = (g_harmonics @ derivative.permute(2, 0, 1).reshape(n_components, -1)).view(-1, 3, n_lower)
    return torch.baddbmm(g_monomial[:, :, :1], g_monomial[:, :, 1:], monomial_values[:, : n_lower - 1, None])[:, :, 0]


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


def neighbour_tables(
    centre: Tensor, neighbour_species: Tensor | None, n_atoms: int, n_species: int
) -> tuple[Tensor, Tensor, int]:
    """Slots of every edge in the padded neighbour tables of :func:`density_from_tables`.

    Args:
        centre: [E] int64 index i of each edge.
        neighbour_species: [E] int64 species index of j (None when n_species is 1).

    Returns:
        slot [E] (harmonics table, row i·width + rank), slot_b [E] (species-resolved basis
        table, slot·n_species + species of j) and width.
    """
    slot, width = neighbour_slots(centre, n_atoms)
    slot_b = slot * n_species + neighbour_species if n_species > 1 else slot
    return slot, slot_b, width


def density_from_tables(
    harmonics: Tensor, basis: Tensor, tables: tuple[Tensor, Tensor, int], n_atoms: int, n_species: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Species-resolved density of every atom: Σ_{j of species z} B_n(r_ij) Y_lm(r̂_ij).

    The learnable radial channels are linear in these (:func:`mix_channels`), so they are
    applied per atom afterwards rather than per edge. The sum over neighbours is a matrix
    product per atom, Yᵀ[lm, slot] · B[slot, (z, n)], over a padded table of neighbour slots
    (:func:`neighbour_tables`) where each edge's basis sits in the block of its neighbour's
    species and empty slots are zero.

    Args:
        harmonics: [E, (l_max+1)²] Y_lm(r̂_ij).
        basis: [E, n_radial] B_n(r_ij).
        tables: :func:`neighbour_tables` of the edges.
        n_atoms: number of atoms. n_species: number of species.

    Returns:
        density [n_atoms, (l_max+1)², n_species · n_radial], and the two tables
        [n_atoms, width, (l_max+1)²], [n_atoms, width, n_species · n_radial] for :func:`density_backward`.
    """
    slot, slot_b, width = tables
    n_components, n_radial = harmonics.shape[1], basis.shape[1]
    table_y = harmonics.new_zeros(n_atoms * width, n_components).index_copy(0, slot, harmonics)
    table_b = basis.new_zeros(n_atoms * width * n_species, n_radial).index_copy(0, slot_b, basis)
    table_y = table_y.view(n_atoms, width, n_components)
    table_b = table_b.view(n_atoms, width, n_species * n_radial)
    return torch.bmm(table_y.transpose(1, 2), table_b), table_y, table_b


def density_backward(
    g_density: Tensor, table_y: Tensor, table_b: Tensor, tables: tuple[Tensor, Tensor, int], n_species: int
) -> tuple[Tensor, Tensor]:
    """∂E/∂Y [E, (l_max+1)²] and ∂E/∂B [E, n_radial] from ∂E/∂density [N, (l_max+1)², n_species·n_radial],
    through density = Yᵀ B per atom (:func:`density_from_tables`), then from the slots to the edges."""
    slot, slot_b, _ = tables
    n_components, n_inputs = table_y.shape[2], table_b.shape[2]
    g_harmonics = torch.bmm(table_b, g_density.transpose(1, 2)).view(-1, n_components).index_select(0, slot)
    g_basis = torch.bmm(table_y, g_density).view(-1, n_inputs // n_species).index_select(0, slot_b)
    return g_harmonics, g_basis


def neighbour_density(
    harmonics: Tensor, basis: Tensor, centre: Tensor, neighbour_species: Tensor | None, n_atoms: int, n_species: int
) -> Tensor:
    """:func:`density_from_tables` from the edges' centres and neighbour species:
    [n_atoms, (l_max+1)², n_species · n_radial]."""
    tables = neighbour_tables(centre, neighbour_species, n_atoms, n_species)
    return density_from_tables(harmonics, basis, tables, n_atoms, n_species)[0]


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


def mix_channels(density: Tensor, weights: Tensor, index: Tensor, centre_onehot: Tensor | None = None) -> Tensor:
    """Learnable radial channels c_{klm} = Σ_{(z,n)} W_l[k, (z,n)] · density_{lm (z,n)}.

    Every component is mixed with every order's weights in one matrix product (the waste is
    small: these are per-atom tensors), and each component then keeps its own order's result.
    With one set of weights per centre species, every set is applied and each atom keeps its
    own species' result through a one-hot product (dense, so its chain rule has no scatter).

    Args:
        density: [n_atoms, (l_max+1)², n_species · n_radial] from :func:`neighbour_density`.
        weights: [l_max+1, K, n_species · n_radial] one mixing matrix per angular order, or
            [n_species, l_max+1, K, n_species · n_radial] one set per species of the centre atom.
        index: from :func:`mixing_index`.
        centre_onehot: [n_atoms, n_species] one-hot species of each atom; needed with 4-d weights.

    Returns:
        [n_atoms, (l_max+1)², K] channel densities.
    """
    n_atoms, n_components, _ = density.shape
    n_orders, n_channels, n_inputs = weights.shape[-3:]
    every_order = density @ weights.reshape(-1, n_inputs).T  # [N, (l_max+1)², (n_species·)n_orders·K]
    if weights.dim() == 4:
        every_order = every_order.view(n_atoms, n_components, -1, n_orders * n_channels)
        every_order = (every_order * centre_onehot[:, None, :, None]).sum(2)
    return every_order.reshape(n_atoms, n_components * n_orders, n_channels).index_select(1, index)


def mix_channels_backward(
    g_channels_t: Tensor, weights: Tensor, index: Tensor, centre_onehot: Tensor | None = None
) -> Tensor:
    """Chain rule through :func:`mix_channels` (weights held fixed): ∂/∂density
    [n_atoms, (l_max+1)², n_species · n_radial] from ∂/∂c in the transposed layout
    ``g_channels_t`` [n_atoms, K, (l_max+1)²]. Each component used its own order's weights
    (and, with per-species weights, its atom's species' weights)."""
    n_atoms, n_channels, n_components = g_channels_t.shape
    n_orders, _, n_inputs = weights.shape[-3:]
    g_every = g_channels_t.new_zeros(n_atoms, n_components * n_orders, n_channels)
    g_every = g_every.index_copy(1, index, g_channels_t.transpose(1, 2))
    g_every = g_every.view(n_atoms, n_components, n_orders * n_channels)
    if weights.dim() == 4:
        g_every = (g_every[:, :, None, :] * centre_onehot[:, None, :, None]).reshape(n_atoms, n_components, -1)
    return g_every @ weights.reshape(-1, n_inputs)


def symmetric_pairs(n_channels: int) -> tuple[Tensor, Tensor]:
    """Where each ordered channel pair (k, k') finds p_{kk'} among the pairs k ≤ k' of
    :func:`power_spectrum`, and the factor ∂(c_k c_k')/∂c_k picks up there (2 on the diagonal,
    where the product is c_k², else 1): [K²] int64 and [K²] float64."""
    upper = torch.triu_indices(n_channels, n_channels)
    column = {(int(a), int(b)): i for i, (a, b) in enumerate(upper.T)}
    index = torch.tensor([column[min(a, b), max(a, b)] for a in range(n_channels) for b in range(n_channels)])
    factor = torch.tensor([2.0 if a == b else 1.0 for a in range(n_channels) for b in range(n_channels)]).double()
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


def power_spectrum_backward(
    g_scalars: Tensor, channels_t: Tensor, order_weights: Tensor, pair_matrix_index: Tensor, pair_matrix_factor: Tensor
) -> Tensor:
    """∂E/∂c [N, K, (l_max+1)²] (transposed layout) from ∂E/∂(c_k00, p_kk'l) ``g_scalars``
    [N, K + (l_max+1)·K(K+1)/2], through :func:`power_spectrum`.

    ∂/∂c_klm of Σ_{k≤k'} g_{kk'l} Σ_m w_l c_klm c_k'lm is Σ_k' H_{kk'l} w_l c_k'lm, with H the
    symmetric extension of g (doubled on the diagonal), formed by a gather (:func:`symmetric_pairs`)
    so that the chain rule is dense products, with no scatter-add (which compiles badly).
    """
    n_atoms, n_channels, n_components = channels_t.shape
    n_orders = order_weights.shape[1]
    g_spectrum = g_scalars[:, n_channels:].reshape(n_atoms, -1, n_orders)
    g_pairs = g_spectrum.index_select(1, pair_matrix_index) * pair_matrix_factor[:, None]  # [N, K², l_max+1]
    g_pairs = (g_pairs @ order_weights.T).view(n_atoms, n_channels, n_channels, n_components)
    g_channels_t = (g_pairs * channels_t[:, None]).sum(2)
    # c_k00 is itself a scalar: its gradient adds directly.
    return torch.cat((g_channels_t[:, :, :1] + g_scalars[:, :n_channels, None], g_channels_t[:, :, 1:]), dim=2)


def coupling_paths(l_max: int) -> list[tuple[int, int, int]]:
    """Orders (l1, l2, l3), l1 ≤ l2 ≤ l3 ≤ l_max, that couple three harmonics to a scalar (0e):
    triangle rule |l1 − l2| ≤ l3 ≤ l1 + l2 and an even sum (parity (−1)^(l1+l2+l3) = +1)."""
    return [
        (l1, l2, l3)
        for l1 in range(l_max + 1)
        for l2 in range(l1, l_max + 1)
        for l3 in range(l2, l_max + 1)
        if l3 <= l1 + l2 and (l1 + l2 + l3) % 2 == 0
    ]


@functools.lru_cache(maxsize=None)
def _gaunt_float64(l_max: int) -> Tensor:
    # Gaunt coefficients ⟨Y_l1m1 Y_l2m2 Y_l3m3⟩, the average over the sphere: rotation invariant
    # because each Y_l transforms by an orthogonal matrix, and proportional to e3nn's wigner_3j
    # (non-zero exactly for the even-sum triangle paths). Computed here by a quadrature that is
    # exact for these polynomials (degree ≤ 3 l_max): e3nn's tabulated wigner_3j holds only
    # about 8 digits, which would break invariance beyond round-off.
    n_theta = 3 * l_max // 2 + 1  # Gauss–Legendre in cos θ: exact to degree 2 n_theta − 1
    n_phi = 3 * l_max + 1  # uniform φ: exact for trigonometric degree < n_phi
    cos_theta, theta_weights = np.polynomial.legendre.leggauss(n_theta)
    phi = np.arange(n_phi) * 2 * np.pi / n_phi
    sin_theta = np.sqrt(1 - cos_theta**2)
    points = np.stack(np.broadcast_arrays(
        sin_theta[:, None] * np.cos(phi), sin_theta[:, None] * np.sin(phi), cos_theta[:, None]
    ), axis=-1).reshape(-1, 3)
    weights = torch.from_numpy(np.repeat(theta_weights, n_phi) / (2 * n_phi))  # sums to 1
    harmonics = spherical_harmonics(torch.from_numpy(points), _harmonics_coefficients_float64(l_max), l_max)
    # [(l_max+1)²]³: every (m1, m2, m3) of every order; the blocks of the paths are the non-zero ones.
    return torch.einsum("q,qa,qb,qc->abc", weights, harmonics, harmonics, harmonics)


@functools.lru_cache(maxsize=None)
def _bispectrum_coupling_float64(l_max: int) -> tuple[Tensor, Tensor]:
    gaunt = _gaunt_float64(l_max)
    order = torch.tensor([l for l in range(l_max + 1) for _ in range(2 * l + 1)])
    path_of = {path: p for p, path in enumerate(coupling_paths(l_max))}
    # The three factors are one channel, so b is a cubic polynomial in its components: one
    # monomial c_a c_b c_c per sorted triple a ≤ b ≤ c, whose coefficient collects the Gaunt
    # coefficients of all orderings of (a, b, c). Only 25 (l_max = 2) or 77 (l_max = 3) are
    # non-zero, against (l_max+1)⁶ entries of the dense coupling.
    triples, coefficients = [], []
    n_components = gaunt.shape[0]
    for a, b, c in itertools.combinations_with_replacement(range(n_components), 3):
        path = tuple(sorted((int(order[a]), int(order[b]), int(order[c]))))
        value = sum(float(gaunt[i, j, k]) for i, j, k in set(itertools.permutations((a, b, c))))
        if path in path_of and abs(value) > 1e-12:
            triples.append((a, b, c))
            coefficients.append((path_of[path], value))
    selection = torch.zeros(n_components, 3 * len(triples), dtype=torch.float64)
    for t, (a, b, c) in enumerate(triples):  # columns: all first factors, then all second, all third
        selection[a, t] = selection[b, len(triples) + t] = selection[c, 2 * len(triples) + t] = 1.0
    weights = torch.zeros(len(triples), len(path_of), dtype=torch.float64)
    for t, (p, value) in enumerate(coefficients):
        weights[t, p] = value
    return selection, weights


def bispectrum_coupling(l_max: int, dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    """The bispectrum as a sum of monomials c_a c_b c_c (a ≤ b ≤ c) of one channel's components.

    Returns:
        selection [(l_max+1)², 3T]: one-hot columns picking the first, then second, then third
        factor of each of the T monomials; weights [T, n_paths]: the coefficient of each
        monomial in each :func:`coupling_paths` path (Gaunt coefficients summed over orderings).
    """
    selection, weights = _bispectrum_coupling_float64(l_max)
    return selection.to(dtype), weights.to(dtype)


def bispectrum(channels_t: Tensor, selection: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
    """Channel-diagonal bispectrum b_{k,path} = Σ_{m1 m2 m3} C_{m1 m2 m3} c_{k m1} c_{k m2} c_{k m3}.

    Evaluated as Σ_t w_{t,path} c_{k a_t} c_{k b_t} c_{k c_t} over the non-zero monomials
    (:func:`bispectrum_coupling`): the factors are picked by a product with the one-hot
    ``selection`` (a dense product, whose derivative is another, rather than a gather).

    Args:
        channels_t: [N, K, (l_max+1)²] channel densities c_{k,lm} (transposed layout).
        selection, weights: :func:`bispectrum_coupling` of the same l_max.

    Returns:
        b [N, K · n_paths] (channel-major), and the factors [N, K, 3T] for :func:`bispectrum_backward`.
    """
    n_atoms, n_channels, n_components = channels_t.shape
    # One 2-D product (a batched one of N small products is several times slower).
    factors = (channels_t.reshape(-1, n_components) @ selection).view(n_atoms, n_channels, -1)
    first, second, third = factors.chunk(3, dim=2)
    return ((first * second * third) @ weights).flatten(1), factors


def bispectrum_backward(g_b: Tensor, factors: Tensor, selection: Tensor, weights: Tensor) -> Tensor:
    """∂/∂c [N, K, (l_max+1)²] from ∂/∂b ``g_b`` [N, K · n_paths], by the chain rule through :func:`bispectrum`."""
    n_atoms, n_channels = factors.shape[:2]
    g_monomials = g_b.view(n_atoms, n_channels, -1) @ weights.T  # [N, K, T]
    first, second, third = factors.chunk(3, dim=2)
    g_factors = g_monomials.repeat(1, 1, 3) * torch.cat((second * third, first * third, first * second), dim=2)
    return (g_factors.view(n_atoms * n_channels, -1) @ selection.T).view(n_atoms, n_channels, -1)
