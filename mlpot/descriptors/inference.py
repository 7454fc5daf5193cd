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

from mlpot.descriptors.chirality import _triple_columns
from mlpot.descriptors.invariants import neighbour_slots


class FirstOrderDescriptor(torch.autograd.Function):
    """(vectors [E, 3]) → (scalars [N, n_s], pseudoscalars [N, n_p]) with an analytic backward."""

    @staticmethod
    def forward(ctx, vectors: Tensor, descriptor, centre: Tensor, neighbour_species: Tensor | None, n_atoms: int):
        d = descriptor
        n_species, l_max, n_orders = d.n_species, d.l_max, d.l_max + 1
        n_edges, n_components = vectors.shape[0], n_orders * n_orders
        n_orders_w, n_channels, n_inputs = d.channel_weights.shape
        weights = d.channel_weights.detach().reshape(n_orders * n_channels, n_inputs)

        # Geometry and harmonics (as spherical_harmonics: monomials of r̂ times a fixed map).
        distance = torch.linalg.vector_norm(vectors, dim=1)
        unit = vectors / distance[:, None]
        monomials = [unit]
        for l in range(2, l_max + 1):
            monomials.append((monomials[-1][:, :, None] * unit[:, None, :]).reshape(n_edges, 3**l))
        monomials = torch.cat(monomials, dim=1)
        coefficients = d.harmonics_coefficients
        harmonics = torch.addmm(coefficients[0], monomials, coefficients[1:])

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
        slot, width = neighbour_slots(centre, n_atoms)
        slot_b = slot * n_species + neighbour_species if n_species > 1 else slot
        table_y = harmonics.new_zeros(n_atoms * width, n_components).index_copy_(0, slot, harmonics)
        table_b = basis.new_zeros(n_atoms * width * n_species, basis.shape[1]).index_copy_(0, slot_b, basis)
        table_y = table_y.view(n_atoms, width, n_components)
        table_b = table_b.view(n_atoms, width, n_inputs)
        density = torch.bmm(table_y.transpose(1, 2), table_b)  # [N, (l_max+1)², A]

        # Channels, power spectrum and pseudoscalars (as mix_channels, power_spectrum, pseudoscalars).
        every_order = (density @ weights.T).view(n_atoms, n_components * n_orders, n_channels)
        channels = every_order.index_select(1, d.mixing_index)  # [N, (l_max+1)², K]
        n_pairs = d.pair_index.shape[0] // 2
        both = channels.transpose(1, 2).index_select(1, d.pair_index)  # [N, 2·pairs, (l_max+1)²]
        products = both[:, :n_pairs] * both[:, n_pairs:]
        scalars = torch.cat((channels[:, 0, :], (products @ d.order_weights).reshape(n_atoms, -1)), dim=1)
        columns = _triple_columns(n_channels).to(vectors.device)
        abc = channels[:, 1:4, :].transpose(1, 2).index_select(1, columns).view(n_atoms, 3, -1, 3)
        pseudoscalars = (abc[:, 0] * torch.linalg.cross(abc[:, 1], abc[:, 2], dim=-1)).sum(dim=-1)

        ctx.descriptor, ctx.n_atoms, ctx.width = descriptor, n_atoms, width
        ctx.save_for_backward(
            unit, inverse_r, monomials, kr, sin_kr, x, common, slot, slot_b, table_y, table_b, both, abc, columns
        )
        return scalars, pseudoscalars

    @staticmethod
    @once_differentiable
    def backward(ctx, g_scalars: Tensor, g_pseudoscalars: Tensor):
        d, n_atoms, width = ctx.descriptor, ctx.n_atoms, ctx.width
        unit, inverse_r, monomials, kr, sin_kr, x, common, slot, slot_b, table_y, table_b, both, abc, columns = (
            ctx.saved_tensors
        )
        n_orders = d.l_max + 1
        n_components = n_orders * n_orders
        n_channels, n_inputs = d.channel_weights.shape[1:]
        n_pairs = d.pair_index.shape[0] // 2
        weights = d.channel_weights.detach().reshape(n_orders * n_channels, n_inputs)

        # ∂E/∂c in the transposed layout [N, K, (l_max+1)²], from the three uses of c.
        # Power spectrum p = Σ_m w_lm c_k c_k': ∂p/∂c_k = w c_k', ∂p/∂c_k' = w c_k.
        g_spectrum = g_scalars[:, n_channels:].reshape(n_atoms, n_pairs, n_orders)
        g_products = g_spectrum @ d.order_weights.T  # [N, pairs, (l_max+1)²]
        g_both = torch.cat((g_products * both[:, n_pairs:], g_products * both[:, :n_pairs]), dim=1)
        g_channels_t = g_both.new_zeros(n_atoms, n_channels, n_components).index_add_(1, d.pair_index, g_both)
        g_channels_t[:, :, 0] += g_scalars[:, :n_channels]  # c_k00 themselves
        # Triple product a·(b×c): its gradients are b×c, c×a and a×b (cyclic shifts of (a, b, c)).
        crosses = torch.linalg.cross(abc.roll(-1, dims=1), abc.roll(-2, dims=1), dim=-1)
        g_abc = (crosses * g_pseudoscalars[:, None, :, None]).reshape(n_atoms, -1, 3)
        g_channels_t[:, :, 1:4].index_add_(1, columns, g_abc)

        # Back through the mixing (each component used its own order's weights) to the density.
        g_every = g_both.new_zeros(n_atoms, n_components * n_orders, n_channels)
        g_every.index_copy_(1, d.mixing_index, g_channels_t.transpose(1, 2))
        g_density = g_every.view(n_atoms, n_components, n_orders * n_channels) @ weights  # [N, (l_max+1)², A]

        # Back through density = Yᵀ B per atom, then from the slot tables to the edges.
        g_harmonics = torch.bmm(table_b, g_density.transpose(1, 2)).view(-1, n_components).index_select(0, slot)
        g_basis = torch.bmm(table_y, g_density).view(-1, table_b.shape[2] // d.n_species).index_select(0, slot_b)

        # Harmonics: ∂Y/∂r̂_d is a fixed map of the monomials of lower degree (constant first).
        derivative = d.harmonics_derivative_coefficients  # [3, Q, (l_max+1)²]
        n_lower = derivative.shape[1]
        g_monomial = (g_harmonics @ derivative.permute(2, 0, 1).reshape(n_components, -1)).view(-1, 3, n_lower)
        g_unit = torch.baddbmm(g_monomial[:, :, :1], g_monomial[:, :, 1:], monomials[:, : n_lower - 1, None])[:, :, 0]

        # Radial: ∂B_n/∂r = k_n cos(k_n r) c(r) + sin(k_n r) c'(r), with c = s f(r)/r and
        # f'(r) = −30 x² (1 − x)² / r_c (zero beyond the cutoff, where x is clamped to 1).
        cutoff = d.basis.cutoff
        envelope_slope = (-30.0 / cutoff) * (x * (1.0 - x)).square() * (2.0 / cutoff) ** 0.5
        common_slope = (envelope_slope - common) * inverse_r
        g_distance = common * ((g_basis * torch.cos(kr)) @ d.basis.frequencies) + common_slope * (g_basis * sin_kr).sum(1)

        # r̂ = r/|r|: ∂r̂/∂r = (1 − r̂r̂ᵀ)/|r|, and ∂|r|/∂r = r̂.
        radial = g_distance - (g_unit * unit).sum(1) * inverse_r
        return g_unit * inverse_r[:, None] + radial[:, None] * unit, None, None, None, None
