"""Radial basis: Bessel functions times a smooth cutoff envelope, mixed per species pair.

The envelope is the quintic "smoothstep" 1 − 10x³ + 15x⁴ − 6x⁵ with x = r/r_c. Its value and
first two derivatives vanish at r_c, so energies, forces and force derivatives are continuous
as a neighbour crosses the cutoff; it also equals 1 with zero slope at r = 0.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def smooth_cutoff(distance: Tensor, cutoff: float) -> Tensor:
    """Envelope f(r) = 1 − 10x³ + 15x⁴ − 6x⁵, x = r/r_c, and 0 beyond r_c. [E] → [E]."""
    x = (distance / cutoff).clamp(max=1.0)
    return 1.0 + x * x * x * (-10.0 + x * (15.0 - 6.0 * x))


class BesselBasis(nn.Module):
    """Radial basis B_n(r) = sqrt(2/r_c) sin(nπr/r_c)/r · f(r), n = 1..n_radial.

    Args:
        n_radial: number of basis functions.
        cutoff: r_c in Å.
    """

    def __init__(self, n_radial: int, cutoff: float):
        super().__init__()
        self.cutoff = float(cutoff)
        self.register_buffer("frequencies", torch.arange(1, n_radial + 1, dtype=torch.float64) * math.pi / cutoff)

    def forward(self, distance: Tensor) -> Tensor:
        """[E] distances, Å → [E, n_radial] basis values, 1/Å."""
        r = distance[:, None]
        prefactor = math.sqrt(2.0 / self.cutoff)
        # sin(kr)/r is smooth at r → 0 but atoms never coincide here; clamp only guards 0/0.
        basis = prefactor * torch.sin(self.frequencies * r) / r.clamp(min=1e-9)
        return basis * smooth_cutoff(distance, self.cutoff)[:, None]


class SpeciesRadial(nn.Module):
    """Learnable radial functions R_{k,l}(r_ij) resolved by the species of the pair (i, j).

    R_{k,l}(r) = Σ_n W[z_i, z_j, n, k, l] B_n(r): each (centre, neighbour) species pair mixes the
    same Bessel basis with its own weights, so different neighbours contribute differently.

    Args:
        n_species: number of species the model knows.
        n_radial: Bessel basis size.
        n_channels: radial channels K per angular order.
        n_orders: number of angular orders (l_max + 1).
        cutoff: r_c in Å.
    """

    def __init__(self, n_species: int, n_radial: int, n_channels: int, n_orders: int, cutoff: float):
        super().__init__()
        self.n_species, self.n_channels, self.n_orders = n_species, n_channels, n_orders
        self.basis = BesselBasis(n_radial, cutoff)
        weights = torch.randn(n_species * n_species * n_radial, n_channels * n_orders) / math.sqrt(n_radial)
        self.weights = nn.Parameter(weights)

    def forward(self, distance: Tensor, pair_species: Tensor) -> Tensor:
        """Radial channels of every edge.

        Args:
            distance: [E] |r_ij|, Å.
            pair_species: [E] int64, z_i * n_species + z_j in model species indices.

        Returns:
            [E, K, n_orders] radial values.
        """
        basis = self.basis(distance)  # [E, n]
        n_pairs = self.n_species * self.n_species
        if n_pairs == 1:
            mixed = basis @ self.weights
        else:
            # One-hot on the pair places each edge's basis in its pair's block of the weights.
            onehot = torch.zeros(basis.shape[0], n_pairs, dtype=basis.dtype, device=basis.device)
            onehot.scatter_(1, pair_species[:, None], 1.0)
            mixed = (onehot[:, :, None] * basis[:, None, :]).reshape(basis.shape[0], -1) @ self.weights
        return mixed.view(-1, self.n_channels, self.n_orders)
