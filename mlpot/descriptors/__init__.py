"""Descriptors of an atom's neighbourhood: scalars (0e) and pseudoscalars (0o).

:class:`Descriptor` turns edge vectors into, per atom,

* scalars: neighbour densities c_{k00}, the power spectrum p_{kk'l} (three-body) and the
  bispectrum b_{k,(l1 l2 l3)} (four-body) (:mod:`.invariants`), invariant under rotations,
  translations, permutations and mirrors;
* pseudoscalars: triple products of the l = 1 density channels (:mod:`.chirality`),
  invariant under proper rotations and odd under mirrors.

:func:`describe` exposes the raw descriptors of the default model for inspection and tests.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mlpot.descriptors.chirality import antisymmetric_triples, pseudoscalars, triple_columns, triple_product_indices
from mlpot.descriptors.inference import FirstOrderDescriptor
from mlpot.descriptors.invariants import (
    bispectrum,
    bispectrum_coupling,
    coupling_paths,
    harmonics_coefficients,
    harmonics_derivative_coefficients,
    mix_channels,
    mixing_index,
    neighbour_density,
    power_spectrum,
    spherical_harmonics,
    symmetric_pairs,
)
from mlpot.descriptors.radial import BesselBasis

__all__ = ["Descriptor", "describe"]


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
        self.register_buffer("harmonics_derivative_coefficients", harmonics_derivative_coefficients(l_max), persistent=False)
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

    def forward(
        self, vectors: Tensor, edge_index: Tensor, species: Tensor, training: bool = True
    ) -> tuple[Tensor, Tensor]:
        """Descriptors of every atom.

        Args:
            vectors: [E, 3] r_ij, Å, all shorter than the cutoff.
            edge_index: [2, E] int64 (i, j).
            species: [n_atoms] int64 model species index of each atom.
            training: differentiate with autograd (weight gradients, derivatives of forces).
                False: the faster :class:`~mlpot.descriptors.inference.FirstOrderDescriptor`,
                whose only derivative is the first one with respect to ``vectors``.

        Returns:
            scalars [n_atoms, n_scalars] and pseudoscalars [n_atoms, n_pseudoscalars].
        """
        centre, neighbour = edge_index[0], edge_index[1]
        n_atoms = species.shape[0]
        neighbour_species = species.index_select(0, neighbour) if self.n_species > 1 else None
        if not training:
            return FirstOrderDescriptor.apply(vectors, self, centre, neighbour_species, species)
        distance = torch.linalg.vector_norm(vectors, dim=1)
        harmonics = spherical_harmonics(vectors / distance[:, None], self.harmonics_coefficients, self.l_max)
        density = neighbour_density(harmonics, self.basis(distance), centre, neighbour_species, n_atoms, self.n_species)
        onehot = self.centre_onehot(species)
        channels = mix_channels(density, self.channel_weights, self.mixing_index, onehot)  # [n_atoms, (l_max+1)², K]
        vector_channels = channels[:, 1:4, :].transpose(1, 2)  # U_k, the l = 1 channels: [n_atoms, K, 3]
        scalars = power_spectrum(channels, self.order_weights, self.pair_index)
        if self.bispectrum_channels:
            n_components = (self.bispectrum_l_max + 1) ** 2
            channels = mix_channels(density[:, :n_components], self.bispectrum_weights, self.bispectrum_mixing_index, onehot)
            b, _ = bispectrum(channels.transpose(1, 2), self.bispectrum_selection, self.bispectrum_coefficients)
            scalars = torch.cat((scalars, b), dim=1)
        return scalars, pseudoscalars(vector_channels, self.triple_columns)


def describe(data: dict[str, Tensor], model: nn.Module | None = None, **hyperparameters) -> tuple[Tensor, Tensor]:
    """Raw descriptors (before the model's standardisation) of every atom in ``data``.

    Args:
        data: AtomicData (edges are built when absent).
        model: a :class:`mlpot.models.DescriptorModel`; by default an untrained one for the
            elements in ``data``, seeded so that repeated calls agree.
        **hyperparameters: passed to ``DescriptorModel`` when ``model`` is None.

    Returns:
        scalars [n_atoms, n_s] and pseudoscalars [n_atoms, n_p].
    """
    from mlpot.models.atomistic import DescriptorModel

    if model is None:
        elements = sorted(set(data["numbers"].tolist()))
        model = DescriptorModel(elements, dtype=data["positions"].dtype, seed=0, **hyperparameters)
    with torch.no_grad():
        return model.descriptors(data)
