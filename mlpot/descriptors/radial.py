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
        return self.evaluate(distance)[0]

    def evaluate(self, distance: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
        """Basis values [E, n_radial] (1/Å), plus what :meth:`backward` needs."""
        # The factor sqrt(2/r_c) f(r)/r is common to all n: computed once per edge, not per function.
        # sin(kr)/r is smooth at r → 0 but atoms never coincide here; clamp only guards 0/0.
        kr = distance[:, None] * self.frequencies
        sin_kr = torch.sin(kr)
        x = (distance / self.cutoff).clamp(max=1.0)
        envelope = 1.0 + x.pow(3) * (-10.0 + x * (15.0 - 6.0 * x))  # smooth_cutoff, keeping x
        inverse_r = 1.0 / distance.clamp(min=1e-9)
        common = envelope * math.sqrt(2.0 / self.cutoff) * inverse_r
        return sin_kr * common[:, None], (kr, sin_kr, x, inverse_r, common)

    def backward(self, g_basis: Tensor, saved: tuple[Tensor, ...]) -> Tensor:
        """∂E/∂r [E] from ∂E/∂B_n [E, n_radial], through :meth:`evaluate` (``saved`` its second output).

        ∂B_n/∂r = k_n cos(k_n r) c(r) + sin(k_n r) c'(r), with c = s f(r)/r, s = sqrt(2/r_c), and
        f'(r) = −30 x² (1 − x)² / r_c (zero beyond the cutoff, where x is clamped to 1).
        """
        kr, sin_kr, x, inverse_r, common = saved
        envelope_slope = (-30.0 / self.cutoff) * (x * (1.0 - x)).square() * math.sqrt(2.0 / self.cutoff)
        common_slope = (envelope_slope - common) * inverse_r
        return common * ((g_basis * torch.cos(kr)) @ self.frequencies) + common_slope * (g_basis * sin_kr).sum(1)
