"""The descriptor pipeline: edge vectors → per-atom scalars (0e) and pseudoscalars (0o), with two
derivative paths.

Stages, each with its analytic backward beside its forward:

1. radial basis B_n(r) (:class:`~mlpot.descriptors.radial.BesselBasis`) and real spherical
   harmonics Y_lm(r̂) (:func:`~mlpot.descriptors.invariants.spherical_harmonics`);
2. species-resolved neighbour density Σ_j B Y (:func:`~mlpot.descriptors.invariants.density_from_tables`);
3. learnable radial channels (:func:`~mlpot.descriptors.invariants.mix_channels`);
4. power spectrum, bispectrum (:mod:`.invariants`) and triple products (:mod:`.chirality`).

:meth:`Descriptor.evaluate` runs the stages once. Training differentiates it with autograd
(:meth:`Descriptor.forward`: weight gradients, derivatives of forces). Inference takes the chain
rule written out (:meth:`Descriptor.backward`, from ∂E/∂descriptors to ∂E/∂r_ij in about as many
operations as the forward pass): autograd's bookkeeping of every small operation, not arithmetic,
is what a small molecule costs, and for a large system the broadcast products it saves dominate
memory. A test compares the two paths.

Notation: E edges, N atoms, A = n_species · n_radial inputs, K channels, (l_max+1)² components.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor, nn

from mlpot.descriptors.chirality import (
    antisymmetric_triples,
    pseudoscalars,
    pseudoscalars_backward,
    triple_columns,
    triple_product_indices,
)
from mlpot.descriptors.invariants import (
    bispectrum,
    bispectrum_backward,
    bispectrum_coupling,
    coupling_paths,
    density_backward,
    density_from_tables,
    harmonics_coefficients,
    harmonics_derivative_coefficients,
    mix_channels,
    mix_channels_backward,
    mixing_index,
    monomials,
    neighbour_tables,
    power_spectrum,
    power_spectrum_backward,
    spherical_harmonics_backward,
    symmetric_pairs,
)
from mlpot.descriptors.radial import BesselBasis

__all__ = ["Descriptor"]


def warn_training_argument(where: str) -> None:
    """The DeprecationWarning for the ``training`` argument that the one-pipeline refactor made moot."""
    warnings.warn(
        f"{where}'s training argument is deprecated and ignored: it always differentiates by autograd; "
        "the inference path is Descriptor.evaluate/backward (DescriptorModel.first_order_pass)",
        DeprecationWarning,
        stacklevel=3,
    )


class Descriptor(nn.Module):
    """Scalar and pseudoscalar descriptors of every atom from its edges.

    Args:
        n_species: number of species (model indices 0..n_species−1).
        cutoff: r_c, Å.
        n_radial: Bessel basis size.
        n_channels: radial channels K per angular order.
        l_max: highest spherical-harmonic order of the power spectrum.
        bispectrum_channels: radial channels K_b of the bispectrum (0: none).
        bispectrum_l_max: highest order coupled in the bispectrum (≤ l_max).
        species_channels: radial channels that depend on the centre atom's species as well as
            the neighbour's (one mixing per element pair, like ACE's radial functions), instead
            of one mixing shared by every centre.
    """

    def __init__(
        self,
        n_species: int,
        cutoff: float,
        n_radial: int = 8,
        n_channels: int = 8,
        l_max: int = 3,
        bispectrum_channels: int = 0,
        bispectrum_l_max: int = 2,
        species_channels: bool = False,
    ):
        super().__init__()
        if l_max < 1:
            raise ValueError(f"l_max must be at least 1 (pseudoscalars use the l = 1 channels), got {l_max}")
        if bispectrum_channels < 0 or (bispectrum_channels and not 0 <= bispectrum_l_max <= l_max):
            raise ValueError(
                f"need bispectrum_channels ≥ 0 and 0 ≤ bispectrum_l_max ≤ l_max = {l_max}, "
                f"got {bispectrum_channels} and {bispectrum_l_max}"
            )
        self.n_species, self.l_max, self.n_channels = n_species, l_max, n_channels
        self.bispectrum_channels, self.bispectrum_l_max = bispectrum_channels, bispectrum_l_max
        self.basis = BesselBasis(n_radial, cutoff)
        # Radial channels: per angular order (and per centre species with species_channels), a
        # learnable mixture of (neighbour species, Bessel n).
        self.species_channels = species_channels and n_species > 1
        n_inputs = n_species * n_radial
        per_centre = (n_species,) if self.species_channels else ()
        mixing = torch.randn(*per_centre, l_max + 1, n_channels, n_inputs) / math.sqrt(n_inputs)
        self.channel_weights = nn.Parameter(mixing)
        self.n_spectrum = n_channels + (l_max + 1) * n_channels * (n_channels + 1) // 2
        self.n_scalars = self.n_spectrum + bispectrum_channels * len(coupling_paths(bispectrum_l_max))
        if bispectrum_channels:
            # The bispectrum's own channels: what is worth correlating four-body need not be
            # what the power spectrum uses.
            mixing = torch.randn(*per_centre, bispectrum_l_max + 1, bispectrum_channels, n_inputs) / math.sqrt(n_inputs)
            self.bispectrum_weights = nn.Parameter(mixing)
            selection, weights = bispectrum_coupling(bispectrum_l_max)
            self.register_buffer("bispectrum_selection", selection, persistent=False)
            self.register_buffer("bispectrum_coefficients", weights, persistent=False)
            self.register_buffer("bispectrum_mixing_index", mixing_index(bispectrum_l_max), persistent=False)
        self.n_pseudoscalars = triple_product_indices(n_channels).shape[0]
        # Constant tables, rebuilt from the hyperparameters (not saved with the weights).
        orders = torch.tensor([l for l in range(l_max + 1) for _ in range(2 * l + 1)])
        order_weights = torch.zeros(len(orders), l_max + 1, dtype=torch.float64)
        order_weights[torch.arange(len(orders)), orders] = 1.0 / (2 * orders + 1).double()
        upper = torch.triu_indices(n_channels, n_channels)
        self.register_buffer("harmonics_coefficients", harmonics_coefficients(l_max), persistent=False)
        self.register_buffer(
            "harmonics_derivative_coefficients", harmonics_derivative_coefficients(l_max), persistent=False
        )
        self.register_buffer("mixing_index", mixing_index(l_max), persistent=False)
        self.register_buffer("order_weights", order_weights, persistent=False)
        self.register_buffer("pair_index", upper.reshape(-1), persistent=False)
        # Gathers that expand p_{kk'l} (k ≤ k') and χ_abc (a < b < c) to full symmetric and
        # antisymmetric tensors: their gradients are then dense products, with no scatter.
        pair_matrix_index, pair_matrix_factor = symmetric_pairs(n_channels)
        triple_tensor_index, triple_tensor_sign = antisymmetric_triples(n_channels)
        self.register_buffer("pair_matrix_index", pair_matrix_index, persistent=False)
        self.register_buffer("pair_matrix_factor", pair_matrix_factor, persistent=False)
        self.register_buffer("triple_columns", triple_columns(n_channels), persistent=False)
        self.register_buffer("triple_tensor_index", triple_tensor_index, persistent=False)
        self.register_buffer("triple_tensor_sign", triple_tensor_sign, persistent=False)

    def centre_onehot(self, species: Tensor) -> Tensor | None:
        """[n_atoms, n_species] one-hot species of each atom for per-species channels, else None."""
        if not self.species_channels:
            return None
        classes = torch.arange(self.n_species, device=species.device)
        return (species[:, None] == classes).to(self.channel_weights.dtype)

    def tables(self, edge_index: Tensor, species: Tensor) -> tuple[Tensor, Tensor, int]:
        """:func:`~mlpot.descriptors.invariants.neighbour_tables` of the edges [2, E] for atoms of
        ``species`` [N]: everything about the edges that :meth:`evaluate` needs besides their vectors."""
        neighbour_species = species.index_select(0, edge_index[1]) if self.n_species > 1 else None
        return neighbour_tables(edge_index[0], neighbour_species, species.shape[0], self.n_species)

    def forward(
        self, vectors: Tensor, edge_index: Tensor, species: Tensor, training: bool | None = None
    ) -> tuple[Tensor, Tensor]:
        """Descriptors of every atom, differentiable by autograd (training).

        Args:
            vectors: [E, 3] r_ij, Å, all shorter than the cutoff.
            edge_index: [2, E] int64 (i, j).
            species: [n_atoms] int64 model species index of each atom.
            training: deprecated and ignored (the inference path is :meth:`evaluate` + :meth:`backward`).

        Returns:
            scalars [n_atoms, n_scalars] and pseudoscalars [n_atoms, n_pseudoscalars].
        """
        if training is not None:
            warn_training_argument("Descriptor.forward")
        scalars, pseudo, _ = self.evaluate(vectors, self.tables(edge_index, species), species)
        return scalars, pseudo

    def evaluate(
        self, vectors: Tensor, tables: tuple[Tensor, Tensor, int], species: Tensor
    ) -> tuple[Tensor, Tensor, tuple]:
        """Descriptors of every atom, plus what :meth:`backward` needs.

        Args:
            vectors: [E, 3] r_ij, Å.
            tables: :meth:`tables` of the edges.
            species: [N] int64 species index of each atom.

        Returns:
            scalars [N, n_s], pseudoscalars [N, n_p], and the saved intermediates.
        """
        n_atoms = species.shape[0]
        onehot = self.centre_onehot(species)
        distance = torch.linalg.vector_norm(vectors, dim=1)
        unit = vectors / distance[:, None]
        monomial_values = monomials(unit, self.l_max)
        coefficients = self.harmonics_coefficients
        harmonics = torch.addmm(coefficients[0], monomial_values, coefficients[1:])  # spherical_harmonics
        basis, radial = self.basis.evaluate(distance)
        density, table_y, table_b = density_from_tables(harmonics, basis, tables, n_atoms, self.n_species)
        channels = mix_channels(density, self.channel_weights, self.mixing_index, onehot)  # [N, (l_max+1)², K]
        channels_t = channels.transpose(1, 2)  # [N, K, (l_max+1)²]
        scalars = power_spectrum(channels, self.order_weights, self.pair_index)
        pseudo = pseudoscalars(channels_t[:, :, 1:4], self.triple_columns)  # U_k, the l = 1 channels
        factors = None
        if self.bispectrum_channels:
            n_coupled = (self.bispectrum_l_max + 1) ** 2
            coupled = mix_channels(
                density[:, :n_coupled], self.bispectrum_weights, self.bispectrum_mixing_index, onehot
            )
            b, factors = bispectrum(coupled.transpose(1, 2), self.bispectrum_selection, self.bispectrum_coefficients)
            scalars = torch.cat((scalars, b), dim=1)
        return scalars, pseudo, (unit, monomial_values, radial, table_y, table_b, channels_t, onehot, factors)

    def backward(
        self, saved: tuple, g_scalars: Tensor, g_pseudoscalars: Tensor, tables: tuple[Tensor, Tensor, int]
    ) -> Tensor:
        """∂E/∂r_ij [E, 3] from ∂E/∂scalars [N, n_s] and ∂E/∂pseudoscalars [N, n_p], by the chain rule
        through :meth:`evaluate` (``saved`` is its third output; the same ``tables``); weights held fixed."""
        unit, monomial_values, radial, table_y, table_b, channels_t, onehot, factors = saved
        # ∂E/∂c in the transposed layout [N, K, (l_max+1)²], from the uses of c: the power
        # spectrum (and c_k00), then the triple products of the l = 1 channels.
        g_channels_t = power_spectrum_backward(
            g_scalars[:, : self.n_spectrum], channels_t, self.order_weights, self.pair_matrix_index,
            self.pair_matrix_factor,
        )
        g_vector_channels = pseudoscalars_backward(
            g_pseudoscalars, channels_t[:, :, 1:4], self.triple_tensor_index, self.triple_tensor_sign
        )
        g_channels_t = torch.cat(
            (g_channels_t[:, :, :1], g_channels_t[:, :, 1:4] + g_vector_channels, g_channels_t[:, :, 4:]), dim=2
        )
        g_density = mix_channels_backward(g_channels_t, self.channel_weights, self.mixing_index, onehot)
        if self.bispectrum_channels:
            g_coupled_t = bispectrum_backward(
                g_scalars[:, self.n_spectrum :], factors, self.bispectrum_selection, self.bispectrum_coefficients
            )
            g_coupled = mix_channels_backward(
                g_coupled_t, self.bispectrum_weights, self.bispectrum_mixing_index, onehot
            )
            n_coupled = g_coupled.shape[1]
            g_density = torch.cat((g_density[:, :n_coupled] + g_coupled, g_density[:, n_coupled:]), dim=1)
        g_harmonics, g_basis = density_backward(g_density, table_y, table_b, tables, self.n_species)
        g_unit = spherical_harmonics_backward(g_harmonics, monomial_values, self.harmonics_derivative_coefficients)
        g_distance = self.basis.backward(g_basis, radial)
        # r̂ = r/|r|: ∂r̂/∂r = (1 − r̂r̂ᵀ)/|r|, and ∂|r|/∂r = r̂.
        inverse_r = radial[3]  # 1/|r|, saved by BesselBasis.evaluate
        along = g_distance - (g_unit * unit).sum(1) * inverse_r
        return g_unit * inverse_r[:, None] + along[:, None] * unit
