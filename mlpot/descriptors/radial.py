"""Radial basis: Bessel functions times a smooth cutoff envelope.

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
    return 1.0 + x.pow(3) * (-10.0 + x * (15.0 - 6.0 * x))


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
        # The factor sqrt(2/r_c) f(r)/r is common to all n: computed once per edge, not per function.
        # sin(kr)/r is smooth at r → 0 but atoms never coincide here; clamp only guards 0/0.
        common = smooth_cutoff(distance, self.cutoff) * (math.sqrt(2.0 / self.cutoff)) / distance.clamp(min=1e-9)
        return torch.sin(distance[:, None] * self.frequencies) * common[:, None]
