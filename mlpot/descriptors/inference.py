"""The descriptors with a hand-written first derivative, for inference (energy, forces, stress).

Autograd records every tensor operation of the forward pass and replays two or three
operations for each in the backward pass. For a small molecule, each operation costs a few
microseconds of dispatch whatever its size, so that bookkeeping, not arithmetic, is the cost;
for a large system, the broadcast products that autograd saves and reduces dominate memory.

:class:`FirstOrderDescriptor` computes the same descriptors as
:meth:`mlpot.descriptors.Descriptor.forward` (same functions of the edge vectors, to round-off;
a test compares them), with the chain rule written out by hand: from ∂E/∂(scalars,
pseudoscalars) back to ∂E/∂r_ij in about as many operations as the forward pass. It gives
gradients with respect to the edge vectors only (not the model's weights) and only once
(``once_differentiable``): it serves evaluation, while training, which needs weight gradients
and the derivative of forces, uses the autograd path.

Notation: E edges, N atoms, A = n_species · n_radial inputs, K channels, (l_max+1)² components.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from mlpot.descriptors.chirality import pseudoscalars as triple_products
from mlpot.descriptors.invariants import (
    bispectrum,
    bispectrum_backward,
    mix_channels,
    mix_channels_backward,
    monomials,
    neighbour_slots,
    power_spectrum,
)


def descriptor_forward(
    d, vectors: Tensor, slot: Tensor, slot_b: Tensor, width: int, species: Tensor
) -> tuple[Tensor, Tensor, tuple[Tensor, ...]]:
    """Descriptors of every atom, plus what :func:`descriptor_backward` needs.

    Args:
        d: the :class:`~mlpot.descriptors.Descriptor` (its weights and constant tables).
        vectors: [E, 3] r_ij, Å.
        slot, slot_b: [E] int64 slots of each edge in the neighbour tables of the harmonics
            and of the species-resolved basis (:func:`neighbour_tables`).
        width: neighbour slots per atom.
        species: [N] int64 species index of each atom.

    Returns:
        scalars [N, n_s], pseudoscalars [N, n_p], and the saved intermediates.
    """
    n_species, l_max, n_orders = d.n_species, d.l_max, d.l_max + 1
    n_atoms, n_components = species.shape[0], n_orders * n_orders
    n_inputs = d.channel_weights.shape[-1]
    onehot = d.centre_onehot(species)

    # Geometry and harmonics (as spherical_harmonics: monomials of r̂ times a fixed map).
    distance = torch.linalg.vector_norm(vectors, dim=1)
    unit = vectors / distance[:, None]
    monomial_values = monomials(unit, l_max)
    coefficients = d.harmonics_coefficients
    harmonics = torch.addmm(coefficients[0], monomial_values, coefficients[1:])

    # Radial basis (as BesselBasis): B_n = sin(k_n r) · c(r), c = sqrt(2/r_c) f(r)/r.
    kr = distance[:, None] * d.basis.frequencies
    sin_kr = torch.sin(kr)
    x = (distance / d.basis.cutoff).clamp(max=1.0)
    envelope = 1.0 + x.pow(3) * (-10.0 + x * (15.0 - 6.0 * x))
    scale = (2.0 / d.basis.cutoff) ** 0.5
    inverse_r = 1.0 / distance.clamp(min=1e-9)
    common = envelope * scale * inverse_r
    basis = sin_kr * common[:, None]

    # Density as a batched product over padded neighbour slots (as neighbour_density).
    table_y = harmonics.new_zeros(n_atoms * width, n_components).index_copy(0, slot, harmonics)
    table_b = basis.new_zeros(n_atoms * width * n_species, basis.shape[1]).index_copy(0, slot_b, basis)
    table_y = table_y.view(n_atoms, width, n_components)
    table_b = table_b.view(n_atoms, width, n_inputs)
    density = torch.bmm(table_y.transpose(1, 2), table_b)  # [N, (l_max+1)², A]

    # Channels, power spectrum and pseudoscalars.
    channels = mix_channels(density, d.channel_weights.detach(), d.mixing_index, onehot)  # [N, (l_max+1)², K]
    channels_t = channels.transpose(1, 2)  # [N, K, (l_max+1)²]
    scalars = power_spectrum(channels, d.order_weights, d.pair_index)
    pseudoscalars = triple_products(channels_t[:, :, 1:4], d.triple_columns)
    saved = (unit, inverse_r, monomial_values, kr, sin_kr, x, common, table_y, table_b, channels_t, onehot)
    if d.bispectrum_channels:
        n_coupled = (d.bispectrum_l_max + 1) ** 2
        coupled = mix_channels(density[:, :n_coupled], d.bispectrum_weights.detach(), d.bispectrum_mixing_index, onehot)
        b, factors = bispectrum(coupled.transpose(1, 2), d.bispectrum_selection, d.bispectrum_coefficients)
        scalars = torch.cat((scalars, b), dim=1)
        saved = saved + (factors,)
    return scalars, pseudoscalars, saved


def descriptor_backward(
    d, saved: tuple[Tensor, ...], g_scalars: Tensor, g_pseudoscalars: Tensor, slot: Tensor, slot_b: Tensor
) -> Tensor:
    """∂E/∂r_ij [E, 3] from ∂E/∂scalars [N, n_s] and ∂E/∂pseudoscalars [N, n_p], by the chain rule
    through :func:`descriptor_forward` (``saved`` is its third output; same slots)."""
    unit, inverse_r, monomial_values, kr, sin_kr, x, common, table_y, table_b, channels_t, onehot = saved[:11]
    n_atoms = table_y.shape[0]
    n_orders = d.l_max + 1
    n_components = n_orders * n_orders
    n_channels, n_inputs = d.channel_weights.shape[-2:]
    n_pairs = d.pair_index.shape[0] // 2

    # ∂E/∂c in the transposed layout [N, K, (l_max+1)²], from the three uses of c. The
    # gradients of p and χ are expanded to full symmetric and antisymmetric tensors by gathers,
    # so that the chain rule is dense products (no scatter-adds, which compile badly).
    # Power spectrum Σ_{k≤k'} g_{kk'l} Σ_m w_l c_klm c_k'lm: ∂/∂c_klm = Σ_k' H_{kk'l} w_l c_k'lm,
    # with H the symmetric extension of g, doubled on the diagonal.
    g_spectrum = g_scalars[:, n_channels : d.n_spectrum].reshape(n_atoms, n_pairs, n_orders)
    g_pairs = g_spectrum.index_select(1, d.pair_matrix_index) * d.pair_matrix_factor[:, None]  # [N, K², l_max+1]
    g_pairs = (g_pairs @ d.order_weights.T).view(n_atoms, n_channels, n_channels, n_components)
    g_channels_t = (g_pairs * channels_t[:, None]).sum(2)  # [N, K, (l_max+1)²]
    # Triple products Σ_{a<b<c} g_abc U_a·(U_b × U_c) = (1/6) Σ_abc G_abc ε U_a U_b U_c with G the
    # antisymmetric extension of g: ∂/∂U_a = ½ Σ_bc G_abc (U_b × U_c).
    g_padded = torch.cat((g_pseudoscalars, g_pseudoscalars.new_zeros(n_atoms, 1)), dim=1)
    g_triples = g_padded.index_select(1, d.triple_tensor_index) * d.triple_tensor_sign  # [N, K³]
    vector_channels = channels_t[:, :, 1:4]  # U_k, [N, K, 3]
    crosses = torch.linalg.cross(vector_channels[:, :, None, :], vector_channels[:, None, :, :], dim=-1)
    g_vector_channels = 0.5 * torch.bmm(
        g_triples.view(n_atoms, n_channels, n_channels * n_channels), crosses.view(n_atoms, -1, 3)
    )
    direct = torch.cat((g_scalars[:, :n_channels, None], g_vector_channels), dim=2)
    g_channels_t = torch.cat((g_channels_t[:, :, :4] + direct, g_channels_t[:, :, 4:]), dim=2)

    # Back through the mixing to the density [N, (l_max+1)², A].
    g_density = mix_channels_backward(g_channels_t, d.channel_weights.detach(), d.mixing_index, onehot)
    if d.bispectrum_channels:
        factors = saved[11]  # the bispectrum's, appended after the eleven common intermediates
        g_coupled_t = bispectrum_backward(g_scalars[:, d.n_spectrum :], factors, d.bispectrum_selection, d.bispectrum_coefficients)
        g_coupled = mix_channels_backward(g_coupled_t, d.bispectrum_weights.detach(), d.bispectrum_mixing_index, onehot)
        n_coupled = g_coupled.shape[1]
        g_density = torch.cat((g_density[:, :n_coupled] + g_coupled, g_density[:, n_coupled:]), dim=1)

    # Back through density = Yᵀ B per atom, then from the slot tables to the edges.
    g_harmonics = torch.bmm(table_b, g_density.transpose(1, 2)).view(-1, n_components).index_select(0, slot)
    g_basis = torch.bmm(table_y, g_density).view(-1, n_inputs // d.n_species).index_select(0, slot_b)

    # Harmonics: ∂Y/∂r̂_d is a fixed map of the monomials of lower degree (constant first).
    derivative = d.harmonics_derivative_coefficients  # [3, Q, (l_max+1)²]
    n_lower = derivative.shape[1]
    g_monomial = (g_harmonics @ derivative.permute(2, 0, 1).reshape(n_components, -1)).view(-1, 3, n_lower)
    g_unit = torch.baddbmm(g_monomial[:, :, :1], g_monomial[:, :, 1:], monomial_values[:, : n_lower - 1, None])[:, :, 0]

    # Radial: ∂B_n/∂r = k_n cos(k_n r) c(r) + sin(k_n r) c'(r), with c = s f(r)/r and
    # f'(r) = −30 x² (1 − x)² / r_c (zero beyond the cutoff, where x is clamped to 1).
    cutoff = d.basis.cutoff
    envelope_slope = (-30.0 / cutoff) * (x * (1.0 - x)).square() * (2.0 / cutoff) ** 0.5
    common_slope = (envelope_slope - common) * inverse_r
    g_distance = common * ((g_basis * torch.cos(kr)) @ d.basis.frequencies) + common_slope * (g_basis * sin_kr).sum(1)

    # r̂ = r/|r|: ∂r̂/∂r = (1 − r̂r̂ᵀ)/|r|, and ∂|r|/∂r = r̂.
    radial = g_distance - (g_unit * unit).sum(1) * inverse_r
    return g_unit * inverse_r[:, None] + radial[:, None] * unit


def neighbour_tables(centre: Tensor, neighbour_species: Tensor | None, n_atoms: int, n_species: int) -> tuple[Tensor, Tensor, int]:
    """Slots of every edge in the padded neighbour tables of :func:`descriptor_forward`.

    Returns:
        slot [E] (harmonics table, row i·width + rank), slot_b [E] (species-resolved basis
        table, slot·n_species + species of j) and width.
    """
    slot, width = neighbour_slots(centre, n_atoms)
    slot_b = slot * n_species + neighbour_species if n_species > 1 else slot
    return slot, slot_b, width


class FirstOrderDescriptor(torch.autograd.Function):
    """(vectors [E, 3]) → (scalars [N, n_s], pseudoscalars [N, n_p]) with an analytic backward:
    :func:`descriptor_forward` and :func:`descriptor_backward` as one autograd node."""

    @staticmethod
    def forward(ctx, vectors: Tensor, descriptor, centre: Tensor, neighbour_species: Tensor | None, species: Tensor):
        slot, slot_b, width = neighbour_tables(centre, neighbour_species, species.shape[0], descriptor.n_species)
        scalars, pseudoscalars, saved = descriptor_forward(descriptor, vectors, slot, slot_b, width, species)
        ctx.descriptor = descriptor
        ctx.save_for_backward(slot, slot_b, *saved)
        return scalars, pseudoscalars

    @staticmethod
    @once_differentiable
    def backward(ctx, g_scalars: Tensor, g_pseudoscalars: Tensor):
        slot, slot_b, *saved = ctx.saved_tensors
        g_vectors = descriptor_backward(ctx.descriptor, tuple(saved), g_scalars, g_pseudoscalars, slot, slot_b)
        return g_vectors, None, None, None, None
