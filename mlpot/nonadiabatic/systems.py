"""Reference diabatic systems with exact Hamiltonian matrices, and the initial wave packet.

All quantities are in atomic units: energies in Hartree, positions in Bohr, masses in electron
masses (the customary nuclear mass of these models is 2000), momenta in ħ/Bohr, times in ħ/Hartree.

Tully's three one-dimensional models follow J. C. Tully, J. Chem. Phys. 93, 1061 (1990), with his
parameters; each is a real symmetric 2×2 diabatic matrix H_d(x) whose elements are smooth
functions of x. :class:`LinearVibronicCoupling2D` is a two-mode linear vibronic coupling model
with a conical intersection (tuning mode x, coupling mode y), with illustrative parameters.

Every system exposes ``diabatic(x)`` → ``[..., n, n]`` and the exact ``diabatic_gradient(x)`` →
``[..., n, n, dim]``. For the one-dimensional models ``x`` is ``[...]`` (one coordinate per
point); for the 2D model it is ``[..., 2]``.

:class:`GaussianPacket` is the initial state shared by the exact propagation and the trajectory
methods: a Gaussian wave packet on the lower adiabatic state and, for trajectories, samples of its
Wigner distribution, so that both start from the same quantum state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "DiabaticSystem",
    "TullySimpleAvoidedCrossing",
    "TullyDualAvoidedCrossing",
    "TullyExtendedCoupling",
    "LinearVibronicCoupling2D",
    "TULLY_MODELS",
    "GaussianPacket",
    "as_positions",
]


def as_positions(x, dim: int = 1) -> torch.Tensor:
    """Positions as a float tensor (float64 unless already floating), checked for NaN and shape.

    Args:
        x: array-like positions in Bohr; ``[...]`` for ``dim == 1``, ``[..., dim]`` otherwise.
        dim: number of nuclear coordinates of the system.
    """
    if not torch.is_tensor(x):
        x = torch.as_tensor(np.asarray(x, dtype=np.float64))
    if not torch.is_floating_point(x):
        x = x.to(torch.float64)
    if dim > 1 and (x.ndim == 0 or x.shape[-1] != dim):
        raise ValueError(f"positions of a {dim}-dimensional system must be [..., {dim}]; got {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("positions contain NaN or inf")
    return x


def _symmetric(h11: torch.Tensor, h22: torch.Tensor, h12: torch.Tensor) -> torch.Tensor:
    """[..., 2, 2] symmetric matrix from its three independent elements."""
    return torch.stack([torch.stack([h11, h12], -1), torch.stack([h12, h22], -1)], -2)


class DiabaticSystem:
    """A model with an exact diabatic Hamiltonian matrix (atomic units).

    Attributes:
        n_states: number of electronic states.
        dim: number of nuclear coordinates.
        start_position_bohr: where scattering calculations start the packet (1D models).
        name: a short identifier used in benchmark output.
    """

    n_states: int = 2
    dim: int = 1
    start_position_bohr: float = -10.0
    name: str = "system"

    def diabatic(self, x) -> torch.Tensor:  # pragma: no cover - abstract
        """H_d(x): ``[..., n, n]`` Hartree for positions ``x`` in Bohr."""
        raise NotImplementedError

    # Systems with an exact gradient define diabatic_gradient(x) → ∂H_d/∂x ``[..., n, n, dim]``
    # (Hartree/Bohr); None means "use autograd" to every consumer.
    diabatic_gradient = None

    def __call__(self, x) -> torch.Tensor:
        return self.diabatic(x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


@dataclass(repr=False)
class TullySimpleAvoidedCrossing(DiabaticSystem):
    """Tully's model I: V11 = sgn(x) A (1 − e^{−B|x|}), V22 = −V11, V12 = C e^{−D x²}."""

    A: float = 0.01
    B: float = 1.6
    C: float = 0.005
    D: float = 1.0
    name = "simple_avoided_crossing"

    def diabatic(self, x) -> torch.Tensor:
        x = as_positions(x)
        # Each branch sees only its own half-line, so neither overflows and autograd stays finite.
        xp, xn = x.clamp(min=0.0), x.clamp(max=0.0)
        h11 = torch.where(x >= 0, -self.A * torch.expm1(-self.B * xp), self.A * torch.expm1(self.B * xn))
        h12 = self.C * torch.exp(-self.D * x**2)
        return _symmetric(h11, -h11, h12)

    def diabatic_gradient(self, x) -> torch.Tensor:
        x = as_positions(x)
        g11 = self.A * self.B * torch.exp(-self.B * x.abs())
        g12 = -2.0 * self.C * self.D * x * torch.exp(-self.D * x**2)
        return _symmetric(g11, -g11, g12).unsqueeze(-1)


@dataclass(repr=False)
class TullyDualAvoidedCrossing(DiabaticSystem):
    """Tully's model II: V11 = 0, V22 = −A e^{−B x²} + E0, V12 = C e^{−D x²}."""

    A: float = 0.10
    B: float = 0.28
    C: float = 0.015
    D: float = 0.06
    E0: float = 0.05
    name = "dual_avoided_crossing"

    def diabatic(self, x) -> torch.Tensor:
        x = as_positions(x)
        h22 = -self.A * torch.exp(-self.B * x**2) + self.E0
        h12 = self.C * torch.exp(-self.D * x**2)
        return _symmetric(torch.zeros_like(x), h22, h12)

    def diabatic_gradient(self, x) -> torch.Tensor:
        x = as_positions(x)
        g22 = 2.0 * self.A * self.B * x * torch.exp(-self.B * x**2)
        g12 = -2.0 * self.C * self.D * x * torch.exp(-self.D * x**2)
        return _symmetric(torch.zeros_like(x), g22, g12).unsqueeze(-1)


@dataclass(repr=False)
class TullyExtendedCoupling(DiabaticSystem):
    """Tully's model III: V11 = A, V22 = −A, V12 = B e^{Cx} (x < 0), B (2 − e^{−Cx}) (x > 0).

    The coupling does not vanish for x > 0, where the adiabatic states are well separated
    (gap ≈ 4B) and their coupling vanishes instead. Scattering starts at x = −15 Bohr here
    (not −10): at −10 the adiabatic mixing angle is still ~1e-2, at −15 it is ~1e-4.
    """

    A: float = 6e-4
    B: float = 0.10
    C: float = 0.90
    name = "extended_coupling"
    start_position_bohr = -15.0

    def diabatic(self, x) -> torch.Tensor:
        x = as_positions(x)
        xp, xn = x.clamp(min=0.0), x.clamp(max=0.0)
        h12 = torch.where(x >= 0, self.B * (2.0 - torch.exp(-self.C * xp)), self.B * torch.exp(self.C * xn))
        a = torch.full_like(x, self.A)
        return _symmetric(a, -a, h12)

    def diabatic_gradient(self, x) -> torch.Tensor:
        x = as_positions(x)
        g12 = self.B * self.C * torch.exp(-self.C * x.abs())
        zero = torch.zeros_like(x)
        return _symmetric(zero, zero, g12).unsqueeze(-1)


@dataclass(repr=False)
class LinearVibronicCoupling2D(DiabaticSystem):
    """Two-state, two-mode linear vibronic coupling model with a conical intersection.

    H11 = ½K[(x + a)² + y²], H22 = ½K[(x − a)² + y²] + Δ, H12 = λ y, with positions ``[..., 2]``
    = (x, y) in Bohr. The diabats cross on the line x = Δ/(2Ka), the coupling vanishes on y = 0,
    so the two adiabatic surfaces touch conically at (Δ/(2Ka), 0). Parameters are illustrative
    (of the size of a molecular vibronic model in atomic units), not fitted to a molecule.
    """

    K: float = 0.02
    a: float = 1.0
    delta: float = 0.01
    lam: float = 0.01
    dim = 2
    name = "lvc_2d"

    @property
    def intersection(self) -> tuple[float, float]:
        """The conical intersection (x, y) in Bohr."""
        return (self.delta / (2.0 * self.K * self.a), 0.0)

    def diabatic(self, x) -> torch.Tensor:
        r = as_positions(x, dim=2)
        x_, y = r[..., 0], r[..., 1]
        h11 = 0.5 * self.K * ((x_ + self.a) ** 2 + y**2)
        h22 = 0.5 * self.K * ((x_ - self.a) ** 2 + y**2) + self.delta
        return _symmetric(h11, h22, self.lam * y)

    def diabatic_gradient(self, x) -> torch.Tensor:
        r = as_positions(x, dim=2)
        x_, y = r[..., 0], r[..., 1]
        zero = torch.zeros_like(x_)
        gx = _symmetric(self.K * (x_ + self.a), self.K * (x_ - self.a), zero)
        gy = _symmetric(self.K * y, self.K * y, torch.full_like(y, self.lam))
        return torch.stack([gx, gy], -1)


TULLY_MODELS = {
    "simple_avoided_crossing": TullySimpleAvoidedCrossing,
    "dual_avoided_crossing": TullyDualAvoidedCrossing,
    "extended_coupling": TullyExtendedCoupling,
}


@dataclass(frozen=True)
class GaussianPacket:
    """ψ(x) = (2πσ²)^(−1/4) exp(−(x − x0)²/(4σ²) + i k0 x) on the lower adiabatic state.

    ``sigma_bohr`` is the standard deviation of |ψ|². The default width σ = 10/k0 is Tully's
    choice (his ψ ∝ exp(−(x − x0)²/w²) with w = 20/k0, and |ψ|² then has σ = w/2); the momentum
    spread is σ_k = 1/(2σ) = k0/20 (ħ = 1), so the packet is a narrow band of incoming momenta.

    Attributes:
        x0_bohr: centre of the packet.
        k0_au: mean momentum (ħ/Bohr), positive = moving right.
        sigma_bohr: position standard deviation of |ψ|².
    """

    x0_bohr: float
    k0_au: float
    sigma_bohr: float

    @classmethod
    def tully(cls, system: DiabaticSystem, k0_au: float, x0_bohr: float | None = None) -> "GaussianPacket":
        """The customary packet for ``system``: x0 = its start position, σ = 10/k0."""
        k0 = float(k0_au)
        if not math.isfinite(k0) or k0 <= 0:
            raise ValueError(f"k0_au must be a positive finite momentum; got {k0_au!r}")
        x0 = system.start_position_bohr if x0_bohr is None else float(x0_bohr)
        return cls(x0_bohr=x0, k0_au=k0, sigma_bohr=10.0 / k0)

    @property
    def sigma_k(self) -> float:
        """Momentum standard deviation (ħ/Bohr)."""
        return 0.5 / self.sigma_bohr

    def amplitude(self, x: np.ndarray) -> np.ndarray:
        """ψ(x) on a grid ``[n_points]`` (complex, normalised to 1 under ∫dx)."""
        s = self.sigma_bohr
        return (2 * math.pi * s**2) ** -0.25 * np.exp(-((x - self.x0_bohr) ** 2) / (4 * s**2) + 1j * self.k0_au * x)

    def wigner_sample(self, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Positions and momenta ``[n]`` drawn from the packet's Wigner distribution.

        For this Gaussian the Wigner function is the product of two normal distributions,
        x ~ N(x0, σ²) and p ~ N(k0, σ_k²), σ·σ_k = ½: the classical ensemble with the same
        first and second moments as the quantum state.
        """
        generator = torch.Generator().manual_seed(int(seed))
        x = self.x0_bohr + self.sigma_bohr * torch.randn(n, generator=generator, dtype=torch.float64)
        p = self.k0_au + self.sigma_k * torch.randn(n, generator=generator, dtype=torch.float64)
        return x, p
