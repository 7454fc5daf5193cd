"""Free-particle Schrödinger networks built from exact plane-wave solutions.

A plane wave exp(i(k·x − ω(k)t)) with the free dispersion ω = ħ|k|²/2m solves
iħ ∂ψ/∂t = −(ħ²/2m) ∇²ψ exactly, and so does any linear combination. :class:`PlaneWaveNetwork`
is such a combination with trainable wave vectors k_j and complex amplitudes c_j,

    ψ(x, t) = Σ_j c_j exp(i(k_j·x − ħ|k_j|² t / 2m)),

so the equation holds everywhere by construction and learning reduces to fitting ψ(x, 0).
:func:`free_packet` fits a Gaussian packet; the packet then evolves exactly (its width follows
σ(t) = σ₀√(1 + (ħt/2mσ₀²)²)) as long as it stays inside the period 2π/Δk of the k grid.

Units: any consistent set; ``mass`` and ``hbar`` are given in it (default ħ = m = 1).
Potentials other than zero are handled by the physics-informed solvers in
:mod:`mlpot.quantum.pinn`, which use the same plane-wave layer as their first layer.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["PlaneWaveNetwork", "free_packet", "gaussian_packet", "packet_width", "schrodinger_residual"]


class PlaneWaveNetwork(nn.Module):
    """ψ(x, t) = Σ_j c_j exp(i(k_j·x − ω(k_j) t)), ω = ħ|k|²/2m (see the module docstring).

    Args:
        wave_vectors: [n_waves, dim] initial k_j (dim 1 or 2); trainable.
        amplitudes: [n_waves] complex initial c_j; trainable (stored as real and imaginary parts).
        mass, hbar: the particle's mass and ħ.
    """

    def __init__(self, wave_vectors: torch.Tensor, amplitudes: torch.Tensor, mass: float = 1.0, hbar: float = 1.0):
        super().__init__()
        wave_vectors = torch.as_tensor(wave_vectors, dtype=torch.float64)
        if wave_vectors.ndim == 1:
            wave_vectors = wave_vectors[:, None]
        if wave_vectors.ndim != 2 or wave_vectors.shape[1] not in (1, 2):
            raise ValueError(f"wave_vectors must have shape [n_waves, 1 or 2], got {tuple(wave_vectors.shape)}")
        amplitudes = torch.as_tensor(amplitudes, dtype=torch.complex128)
        if amplitudes.shape != (wave_vectors.shape[0],):
            raise ValueError(f"amplitudes must have shape [{wave_vectors.shape[0]}], got {tuple(amplitudes.shape)}")
        if not (mass > 0 and hbar > 0):
            raise ValueError(f"mass and hbar must be positive, got mass={mass}, hbar={hbar}")
        self.mass, self.hbar = float(mass), float(hbar)
        self.wave_vectors = nn.Parameter(wave_vectors.clone())
        self.amplitudes = nn.Parameter(torch.view_as_real(amplitudes).clone())  # [n_waves, 2]

    @property
    def dim(self) -> int:
        return self.wave_vectors.shape[1]

    def frequencies(self) -> torch.Tensor:
        """ω_j = ħ|k_j|²/2m [n_waves], the free dispersion (fixed in form, not learned)."""
        return self.hbar * (self.wave_vectors**2).sum(1) / (2.0 * self.mass)

    def forward(self, x: torch.Tensor, t=0.0) -> torch.Tensor:
        """ψ at positions x [n] (1D) or [n, dim] and times t (scalar or [n]): complex [n]."""
        x = torch.as_tensor(x, dtype=torch.float64)
        if x.ndim == 1 and self.dim == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape [n] (1D) or [n, {self.dim}], got {tuple(x.shape)}")
        t = torch.as_tensor(t, dtype=torch.float64)
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must be a scalar or have shape [{x.shape[0]}], got {tuple(t.shape)}")
        amplitudes, omega = torch.view_as_complex(self.amplitudes), self.frequencies()
        # chunks of points keep the [points, waves] phase matrix near 2^22 entries (64 MB)
        chunk = max(1, 2**22 // self.wave_vectors.shape[0])
        values = []
        for x_part, t_part in zip(x.split(chunk), t.split(chunk)):
            phase = x_part @ self.wave_vectors.T - t_part[:, None] * omega  # [chunk, n_waves]
            values.append(torch.polar(torch.ones_like(phase), phase) @ amplitudes)
        return torch.cat(values)


def gaussian_packet(x: torch.Tensor, x0, k0, sigma0, t: float = 0.0, mass: float = 1.0,
                    hbar: float = 1.0) -> torch.Tensor:
    """The exact free Gaussian packet, normalised, in 1D (x [n]) or as a product in 2D (x [n, 2]).

    With the complex width s_t = σ₀(1 + iħt/2mσ₀²), per dimension,
    ψ = (2πσ₀²)^(−1/4) (σ₀/s_t)^(1/2) exp(−(x − x₀ − vt)²/(4σ₀ s_t) + ik₀(x − x₀) − iω₀t),
    v = ħk₀/m, ω₀ = ħk₀²/2m; |ψ|² is a Gaussian of width σ(t) = |s_t| = σ₀√(1 + (ħt/2mσ₀²)²).
    """
    x = torch.as_tensor(x, dtype=torch.float64)
    if x.ndim == 1:
        x = x[:, None]
    x0, k0, sigma0 = (torch.as_tensor(v, dtype=torch.float64).reshape(-1).expand(x.shape[1]) for v in (x0, k0, sigma0))
    s_t = sigma0 * (1.0 + 1j * hbar * t / (2.0 * mass * sigma0**2))
    shifted = x - x0 - hbar * k0 * t / mass
    log_psi = (-0.25 * torch.log(2.0 * math.pi * sigma0**2) + 0.5 * torch.log(sigma0 / s_t)
               - shifted**2 / (4.0 * sigma0 * s_t) + 1j * k0 * (x - x0) - 1j * hbar * k0**2 * t / (2.0 * mass))
    return torch.exp(log_psi.sum(1))


def free_packet(x0, k0, sigma0, mass: float = 1.0, hbar: float = 1.0, *, box_length: float | None = None,
                n_waves: int | None = None) -> PlaneWaveNetwork:
    """A plane-wave network fitted to a Gaussian wave packet at t = 0.

    The wave vectors start on the grid k0 + 2πm/L (m = −M/2 … M/2−1) of a box of length L
    centred on x0, and the amplitudes are the least-squares fit of ψ(x, 0) at the M equispaced
    points of that box. Those plane waves are orthogonal on the points, so the least-squares
    solution is the discrete Fourier transform (computed by FFT, exactly, no iteration). Both
    parameters stay trainable for further fitting (e.g. :func:`fit_initial_state`).

    Args:
        x0, k0, sigma0: centre, mean wave vector and width σ₀ (scalars for 1D, pairs for 2D).
        mass, hbar: particle mass and ħ.
        box_length: L (default 160σ₀ in 1D, 40σ₀ in 2D, where M² waves are needed). The network
            is periodic in x with period L, so it equals the free packet while 8σ(t) ≲ L/2
            (σ(t) ≤ 10σ₀ in 1D and 2.5σ₀ in 2D with the defaults).
        n_waves: M per dimension (default: the wave vectors cover k0 ± 6.3/σ₀, where the
            packet's Fourier amplitude exp(−(k−k₀)²σ₀²) is below 1e-17).

    Returns:
        The fitted :class:`PlaneWaveNetwork`; ``network(x, t)`` is the complex ψ(x, t).
    """
    x0_t, k0_t, sigma_t = (torch.as_tensor(v, dtype=torch.float64).reshape(-1) for v in (x0, k0, sigma0))
    dim = max(len(x0_t), len(k0_t), len(sigma_t))
    if dim not in (1, 2) or any(len(v) not in (1, dim) for v in (x0_t, k0_t, sigma_t)):
        raise ValueError("x0, k0, sigma0 must be scalars (1D) or pairs (2D)")
    x0_t, k0_t, sigma_t = (v.expand(dim) for v in (x0_t, k0_t, sigma_t))
    if not all(torch.isfinite(v).all() for v in (x0_t, k0_t, sigma_t)) or (sigma_t <= 0).any():
        raise ValueError(f"x0, k0 must be finite and sigma0 positive, got {x0}, {k0}, {sigma0}")
    length = (160.0 if dim == 1 else 40.0) * float(sigma_t.max()) if box_length is None else float(box_length)
    if n_waves is None:  # M = 2 k_max / Δk = 2 (2π/σ₀) L / 2π, rounded up to even
        n_waves = 2 * math.ceil(2.0 * length / float(sigma_t.min()) / 2.0)
    m = int(n_waves)
    offsets = (torch.arange(m, dtype=torch.float64) - m // 2) * length / m  # grid points relative to x0
    grids = torch.meshgrid(*[x0_t[d] + offsets for d in range(dim)], indexing="ij")
    points = torch.stack([g.reshape(-1) for g in grids], 1)  # [M^dim, dim]
    values = gaussian_packet(points, x0_t, k0_t, sigma_t, 0.0, mass, hbar).reshape([m] * dim)
    # ψ(x) = Σ_m c_m e^{i k_m x}, k_m = k0 + 2π m / L: remove e^{i k0 x}, DFT the envelope on the grid.
    envelope = values * torch.exp(-1j * (torch.stack(grids, -1) * k0_t).sum(-1))
    coefficients = torch.fft.fftshift(torch.fft.fftn(torch.fft.ifftshift(envelope))) / m**dim
    q = (torch.arange(m, dtype=torch.float64) - m // 2) * 2.0 * math.pi / length
    k_grids = torch.meshgrid(*[k0_t[d] + q for d in range(dim)], indexing="ij")
    wave_vectors = torch.stack([g.reshape(-1) for g in k_grids], 1)
    # the DFT expands the envelope in e^{i q (x − x0)}: move the phase to absolute x
    amplitudes = coefficients.reshape(-1) * torch.exp(-1j * ((wave_vectors - k0_t) @ x0_t))
    return PlaneWaveNetwork(wave_vectors, amplitudes, mass, hbar)


def packet_width(network, t: float, centre, half_width: float, n_points: int = 4096) -> torch.Tensor:
    """σ_d(t) = √(⟨x_d²⟩ − ⟨x_d⟩²) of |ψ(x, t)|² per dimension [dim], by quadrature on a grid.

    The grid spans centre ± half_width in every dimension (uniform; the integrand vanishes at the
    edges, where the trapezoidal rule is spectrally accurate).
    """
    centre = torch.as_tensor(centre, dtype=torch.float64).reshape(-1)
    dim = centre.shape[0]
    per_dim = n_points if dim == 1 else int(math.isqrt(n_points))
    axes = [torch.linspace(float(c) - half_width, float(c) + half_width, per_dim, dtype=torch.float64) for c in centre]
    grids = torch.meshgrid(*axes, indexing="ij")
    points = torch.stack([g.reshape(-1) for g in grids], 1)
    with torch.no_grad():
        density = network(points if dim > 1 else points[:, 0], t).abs() ** 2
    norm = density.sum()
    mean = (density[:, None] * points).sum(0) / norm
    return torch.sqrt((density[:, None] * (points - mean) ** 2).sum(0) / norm)


def schrodinger_residual(network, x: torch.Tensor, t: torch.Tensor, potential=None) -> torch.Tensor:
    """iħ∂ψ/∂t + (ħ²/2m)∇²ψ − Vψ at points (x [n] or [n, dim], t [n]), by autograd: complex [n].

    ``network`` must expose ``mass`` and ``hbar``; ``potential`` maps x to V(x) (None: free).
    """
    x = torch.as_tensor(x, dtype=torch.float64).detach().clone().requires_grad_(True)
    t = torch.as_tensor(t, dtype=torch.float64).detach().clone().requires_grad_(True)
    psi = network(x, t)
    parts = []
    for part in (psi.real, psi.imag):
        dt, dx = torch.autograd.grad(part.sum(), (t, x), create_graph=True)
        dx = dx if dx.ndim == 2 else dx[:, None]
        laplacian = 0.0
        for d in range(dx.shape[1]):
            second = torch.autograd.grad(dx[:, d].sum(), x, retain_graph=True)[0]
            laplacian = laplacian + (second[:, d] if second.ndim == 2 else second)
        parts.append((dt.detach(), laplacian.detach()))
    psi_t = torch.complex(parts[0][0], parts[1][0])
    laplacian = torch.complex(parts[0][1], parts[1][1])
    residual = 1j * network.hbar * psi_t + network.hbar**2 / (2.0 * network.mass) * laplacian
    if potential is not None:
        residual = residual - potential(x.detach()) * psi.detach()
    return residual
