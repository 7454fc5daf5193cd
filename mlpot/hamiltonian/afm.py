"""An atomic-force-microscope cantilever: ground truth, a port-Hamiltonian model, and what an AFM user reads off.

Physics. The tip is a point mass on a spring (the cantilever's first flexural mode) above a
sample. With z the tip–sample distance and p the momentum,

    H(z, p) = p²/2m + k z²/2 + V_ts(z),      ż = (J − R)∇H + G u,

with R = diag(0, γ) (viscous damping, γ = m ω₀ / Q), the drive u(t) = z_b(t) the position of the
cantilever's base (its rest position plus a dither A cos Ωt), and G = (0, k)ᵀ: the spring pulls
the tip toward the base, ṗ = −k(z − z_b) − V_ts'(z) − γ p/m. The tip–sample force
F_ts = −V_ts' is the Derjaguin–Muller–Toporov (DMT) model (Hamaker constant H_a, tip radius R,
intermolecular distance a₀, effective modulus E*):

    z ≥ a₀:  F_ts = −H_a R / (6 z²)                                   (van der Waals attraction)
    z < a₀:  F_ts = −H_a R / (6 a₀²) + (4/3) E* √R (a₀ − z)^{3/2}     (DMT contact repulsion)

In the small-amplitude limit the resonance shifts by Δf/f₀ = √(1 − F_ts'/k) − 1 ≈ −F_ts'/(2k)
(Giessibl, Rev. Mod. Phys. 75, 949 (2003)); far from the surface F_ts' → 0 and so does Δf.

Units. Everything is computed in reduced units: length in nm, time in 1/ω₀ (ω₀ = √(k/m) of the
free cantilever), mass in m, so m = k = ω₀ = 1, forces are in units of k·nm and energies of
k·nm². :class:`Cantilever` takes physical parameters (N/m, kHz, J, nm, GPa) and converts them;
the defaults are a stiff non-contact cantilever: k = 10 N/m, f₀ = 300 kHz, H_a = 1e-19 J,
R = 10 nm, a₀ = 0.3 nm, E* = 10 GPa (force unit 10 nN, time unit 0.53 µs).

The learned model, :class:`CantileverNN`, is the package's :class:`PortHamiltonianNN` with
softplus damping on the momentum, a learned input matrix G (the drive is its port input) and a
structured energy: H_θ = p²/2m_θ + k_θ z²/2 + W_θ(1/z), where W_θ is an MLP of the inverse
distance shifted to vanish at 1/z = 0. So the learned tip–sample energy, and with it Δf, vanishes
far from the surface by construction, and dH_θ/dt = −γ_θ (∂H_θ/∂p)² ≤ 0 without drive for any
weights. The analysis functions (:func:`quality_factor`, :func:`frequency_shift`,
:func:`resonance_curve`) take either the ground truth or a model: they linearise the vector field
about the equilibrium the base position sets.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mlpot.hamiltonian.hnn import hamiltonian_gradient, mlp
from mlpot.hamiltonian.port import PortHamiltonianNN
from mlpot.hamiltonian.state import check_state, split_state
from mlpot.hamiltonian.systems import System, TrajectoryData

__all__ = [
    "Cantilever",
    "CantileverNN",
    "cantilever_data",
    "fit_cantilever",
    "project_linear_parameters",
    "equilibrium",
    "quality_factor",
    "frequency_shift",
    "resonance_curve",
    "natural_frequency",
]

_DTYPE = torch.float64


class Cantilever(System):
    """Ground truth: a driven, damped cantilever above a sample with a DMT tip–sample force.

    Args:
        quality_factor: Q = m ω₀ / γ of the free cantilever.
        base_position_nm: rest position z_c of the tip without tip–sample force (nm above the sample).
        drive_amplitude_nm: base dither amplitude A (nm); 0 for free ringdown.
        drive_frequency: Ω in units of ω₀.
        stiffness_N_per_m, resonance_kHz: k and f₀ = ω₀/2π (set the unit conversion only).
        hamaker_J, tip_radius_nm, a0_nm, modulus_GPa: the DMT parameters.

    Class attributes set the default data: 40 points per trajectory over t ∈ [0, 4π] (two
    periods), RK4 with 20 substeps, no noise, initial states within ±0.3 nm and ±0.3 of the
    equilibrium (see :meth:`sample_initial_states`).
    """

    name = "afm-cantilever"
    dim = 1
    input_dim = 1
    t_span = (0.0, 4 * math.pi)
    n_points = 40
    noise_std = 0.0
    n_trajectories = 8
    substeps = 20
    amplitude = 0.3

    def __init__(self, quality_factor: float = 100.0, base_position_nm: float = 5.0, drive_amplitude_nm: float = 0.0,
                 drive_frequency: float = 1.0, stiffness_N_per_m: float = 10.0, resonance_kHz: float = 300.0,
                 hamaker_J: float = 1e-19, tip_radius_nm: float = 10.0, a0_nm: float = 0.3, modulus_GPa: float = 10.0):
        values = dict(quality_factor=quality_factor, stiffness_N_per_m=stiffness_N_per_m, resonance_kHz=resonance_kHz,
                      hamaker_J=hamaker_J, tip_radius_nm=tip_radius_nm, a0_nm=a0_nm, modulus_GPa=modulus_GPa)
        for key, value in values.items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{key} must be a positive number, got {value!r}")
        if not (math.isfinite(drive_amplitude_nm) and drive_amplitude_nm >= 0 and math.isfinite(drive_frequency)):
            raise ValueError("drive_amplitude_nm must be >= 0 and drive_frequency finite")
        self.__dict__.update(values)
        self.base_position_nm, self.drive_amplitude_nm = float(base_position_nm), float(drive_amplitude_nm)
        self.drive_frequency = float(drive_frequency)
        force_unit_nN = stiffness_N_per_m * 1.0  # k · 1 nm, in nN (1 N/m = 1 nN/nm)
        self.damping = 1.0 / quality_factor  # γ in units of m ω₀
        self.vdw = hamaker_J * 1e18 * tip_radius_nm / 6.0 / force_unit_nN  # H_a R / 6 in k·nm³
        self.contact = (4.0 / 3.0) * modulus_GPa * math.sqrt(tip_radius_nm) / force_unit_nN  # (4/3)E*√R in k/√nm
        self.a0 = float(a0_nm)

    def parameters(self):
        keys = ("quality_factor", "base_position_nm", "drive_amplitude_nm", "drive_frequency", "stiffness_N_per_m",
                "resonance_kHz", "hamaker_J", "tip_radius_nm", "a0_nm", "modulus_GPa")
        return {k: getattr(self, k) for k in keys}

    @property
    def time_unit_us(self) -> float:
        """1/ω₀ in µs."""
        return 1e3 / (2 * math.pi * self.resonance_kHz)

    # --- the tip–sample interaction (reduced units: nm, k·nm) ---------------------------------

    def tip_sample_force(self, z: torch.Tensor) -> torch.Tensor:
        """F_ts(z), k·nm; negative = attractive."""
        z = torch.as_tensor(z, dtype=_DTYPE)
        far = -self.vdw / torch.clamp(z, min=self.a0) ** 2
        indent = torch.clamp(self.a0 - z, min=0.0)
        return far + self.contact * indent**1.5

    def tip_sample_energy(self, z: torch.Tensor) -> torch.Tensor:
        """V_ts(z) with F_ts = −dV_ts/dz and V_ts(∞) = 0, k·nm²."""
        z = torch.as_tensor(z, dtype=_DTYPE)
        zc = torch.clamp(z, min=self.a0)
        indent = torch.clamp(self.a0 - z, min=0.0)
        return -self.vdw / zc + self.vdw / self.a0**2 * (torch.clamp(z, max=self.a0) - self.a0) \
            + 0.4 * self.contact * indent**2.5

    def force_gradient(self, z) -> torch.Tensor:
        """∂F_ts/∂z, k (per nm of distance, in units of the cantilever stiffness)."""
        z = torch.as_tensor(z, dtype=_DTYPE)
        far = 2 * self.vdw / torch.clamp(z, min=self.a0) ** 3 * (z >= self.a0)
        return far - 1.5 * self.contact * torch.clamp(self.a0 - z, min=0.0) ** 0.5

    # --- System interface ----------------------------------------------------------------------

    def hamiltonian(self, z):
        q, p = split_state(check_state(z, self.dim))
        return (0.5 * p**2 + 0.5 * q**2 + self.tip_sample_energy(q)).sum(-1)

    def control(self, t):
        return torch.tensor([self.base_position_nm + self.drive_amplitude_nm * math.cos(self.drive_frequency * t)],
                            dtype=_DTYPE)

    def field(self, z: torch.Tensor, u) -> torch.Tensor:
        """ż for states [batch, 2] under base position u (number or [batch, 1])."""
        q, p = split_state(check_state(z, self.dim))
        u = torch.as_tensor(u, dtype=_DTYPE)
        pdot = -q + self.tip_sample_force(q) - self.damping * p + (u.reshape(-1, 1) if u.ndim else u)
        return torch.cat([p, pdot], dim=-1)

    def vector_field(self, z, t=0.0):
        return self.field(z, float(self.control(t)))

    def sample_initial_states(self, n, generator):
        z_eq = float(equilibrium(self, self.base_position_nm)[0][0, 0])
        offset = self.amplitude * (2 * torch.rand(n, 2, generator=generator, dtype=_DTYPE) - 1)
        return offset + torch.tensor([z_eq, 0.0], dtype=_DTYPE)


def cantilever_data(base_positions_nm: Sequence[float], quality_factor: float = 100.0, n_per_base: int = 8,
                    seed: int = 0, **kwargs) -> TrajectoryData:
    """Ringdown trajectories (exact ż) at each base position, concatenated.

    The drive is the port input: u = z_b = the base position, recorded at each point.
    ``kwargs`` go to :class:`Cantilever`.
    """
    parts = [Cantilever(quality_factor, zb, **kwargs).generate(n_per_base, seed=seed + i)
             for i, zb in enumerate(base_positions_nm)]
    first = parts[0]
    settings = dict(first.settings, base_positions_nm=[float(b) for b in base_positions_nm], n_per_base=n_per_base)
    return TrajectoryData(t=first.t, z=torch.cat([d.z for d in parts]), dz=torch.cat([d.dz for d in parts]),
                          z_clean=torch.cat([d.z_clean for d in parts]), u=torch.cat([d.u for d in parts]),
                          settings=settings)


class CantileverEnergy(nn.Module):
    """H_θ(z, p) = p²/2m_θ + k_θ z²/2 + W_θ(1/z) − W_θ(0), with m_θ, k_θ softplus-positive.

    z must stay positive (the tip above the sample); the data sample z ≳ 1 nm.
    """

    def __init__(self, hidden: Sequence[int] = (32, 32), activation: str = "tanh"):
        super().__init__()
        self.dim = 1
        inv_softplus_1 = math.log(math.expm1(1.0))
        self.mass_raw = nn.Parameter(torch.tensor(inv_softplus_1))
        self.stiffness_raw = nn.Parameter(torch.tensor(inv_softplus_1))
        self.tip_net = mlp(1, hidden, 1, activation)

    @property
    def mass(self) -> torch.Tensor:
        return F.softplus(self.mass_raw)

    @property
    def stiffness(self) -> torch.Tensor:
        return F.softplus(self.stiffness_raw)

    def tip_energy(self, z: torch.Tensor) -> torch.Tensor:
        """W_θ: the learned tip–sample energy [batch, 1] → [batch], zero at z = ∞."""
        s = 1.0 / z
        return (self.tip_net(s) - self.tip_net(torch.zeros_like(s))).squeeze(-1)

    def hamiltonian(self, z: torch.Tensor) -> torch.Tensor:
        q, p = split_state(check_state(z, 1))
        return (p**2).squeeze(-1) / (2 * self.mass) + 0.5 * self.stiffness * (q**2).squeeze(-1) + self.tip_energy(q)

    def gradient(self, z: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
        return hamiltonian_gradient(self.hamiltonian, z, create_graph)


class CantileverNN(PortHamiltonianNN):
    """Port-Hamiltonian cantilever model: ż = (J − R)∇H_θ + G u, R = diag(0, softplus θ), G learned.

    Args:
        hidden: widths of the tip–sample MLP W_θ.
        initial_damping: γ at initialisation (reduced units, 1/Q of a unit-mass oscillator).
    """

    def __init__(self, hidden: Sequence[int] = (32, 32), initial_damping: float = 0.05, activation: str = "tanh"):
        super().__init__(1, hidden=(1,), activation=activation, dissipation="momentum", input_dim=1,
                         initial_dissipation=initial_damping)
        self.energy = CantileverEnergy(hidden, activation)
        with torch.no_grad():  # start from the nominal cantilever: m = k = 1 and G = (0, k)
            self.input_matrix_raw.copy_(torch.tensor([[0.0], [1.0]]))


def fit_cantilever(data: TrajectoryData, *, hidden: Sequence[int] = (16, 16), epochs: int = 1000, lr: float = 1e-2,
                   seed: int = 0) -> CantileverNN:
    """Train a :class:`CantileverNN` on trajectories with their ż targets and base positions u.

    Adam in the package's loop (:func:`~mlpot.hamiltonian.training.train_vector_field`,
    cosine schedule), then an exact least-squares step for the parameters that enter ż linearly
    once the tip–sample network W_θ is fixed, m, k, γ and G (variable projection,
    Golub & Pereyra 1973). That step is what gets γ right at high Q: γ = 1/Q changes ṗ by a
    fraction 1/Q, so the loss depends on it only at order 1/Q², where Adam's normalised steps
    shrink to nothing long before γ converges. γ stays softplus-positive (a least-squares value
    ≤ 0 is replaced by a tiny positive one), so the model stays dissipative.

    Args:
        data: trajectories with exact or estimated ``dz`` and the base position ``u`` [n, t, 1].
        hidden: widths of the tip–sample MLP.
        epochs: Adam epochs (full batch).
        lr: peak learning rate.
        seed: initialisation and loop seed.
    """
    from mlpot.hamiltonian.training import train_vector_field
    from mlpot.training.loop import LoopConfig

    if data.u is None:
        raise ValueError("cantilever data need the base position u as the port input")
    torch.manual_seed(seed)
    model = CantileverNN(hidden).double()
    config = LoopConfig(max_epochs=epochs, lr=lr, schedule="cosine", ema_decay=None, grad_clip=None,
                        progress=False, seed=seed, checkpoint_every=10**9)
    if epochs > 0:
        train_vector_field(model, data, config=config)
    flat = data.flat()
    project_linear_parameters(model, flat["z"], flat["dz"], flat["u"])
    return model


def project_linear_parameters(model: CantileverNN, z: torch.Tensor, dz: torch.Tensor, u: torch.Tensor) -> None:
    """Set m, k, γ and G to their least-squares values for the model's current W_θ (in place).

    With W_θ fixed, q̇ = p/m + G_q u and ṗ = −k q − W_θ'(q) − (γ/m) p + G_p u are linear in
    (1/m, G_q) and (k, γ/m, G_p). m, k and γ stay softplus-positive (a least-squares value ≤ 0 is
    replaced by a tiny positive one), so the model stays dissipative.

    Args:
        z, dz: [N, 2] states and their time derivatives; u: [N, 1] base positions.
    """
    z, dz, u = z.to(_DTYPE), dz.to(_DTYPE), u.to(_DTYPE)[:, 0]
    with torch.no_grad():
        q, p = z[:, :1].clone().requires_grad_(True), z[:, 1]
    with torch.enable_grad():
        (w_prime,) = torch.autograd.grad(model.energy.tip_energy(q).sum(), q)
    with torch.no_grad():
        inv_mass, g_q = torch.linalg.lstsq(torch.stack([p, u], -1), dz[:, :1]).solution[:, 0].tolist()
        design = torch.stack([-q[:, 0].detach(), -p, u], -1)
        k, gamma_over_m, g_p = torch.linalg.lstsq(design, (dz[:, 1] + w_prime[:, 0])[:, None]).solution[:, 0].tolist()
        mass = 1.0 / max(inv_mass, 1e-12)
        values = {"mass_raw": mass, "stiffness_raw": max(k, 1e-12)}
        for name, value in values.items():
            getattr(model.energy, name).copy_(torch.tensor(_inverse_softplus(value)))
        model.dissipation_raw.copy_(torch.tensor([_inverse_softplus(max(gamma_over_m * mass, 1e-12))]))
        model.input_matrix_raw.copy_(torch.tensor([[g_q], [g_p]]))


def _inverse_softplus(x: float) -> float:
    return x + math.log(-math.expm1(-x))


def _field(source, z: torch.Tensor, u: float) -> torch.Tensor:
    if isinstance(source, Cantilever):
        return source.field(z, u)
    uu = torch.full((z.shape[0], 1), float(u), dtype=z.dtype)
    return source.vector_field(z, u=uu)


def _jacobian(source, z: torch.Tensor, u: float) -> torch.Tensor:
    """∂ż/∂z [2, 2] at one state z [1, 2]."""
    return torch.autograd.functional.jacobian(lambda x: _field(source, x, u)[0], z)[:, 0, :]


def equilibrium(source, base_position_nm: float, tol: float = 1e-12, max_iter: int = 100):
    """The rest state (z_eq, 0) for a fixed base position, by Newton's method on ż = 0.

    Args:
        source: a :class:`Cantilever` or a trained model with ``vector_field(z, u)``.
        base_position_nm: z_b, nm.

    Returns:
        (state [1, 2] float64 tensor, Jacobian [2, 2] of ż there).
    """
    dtype = _DTYPE if isinstance(source, Cantilever) else next(source.parameters()).dtype
    z = torch.tensor([[float(base_position_nm), 0.0]], dtype=dtype)
    for _ in range(max_iter):
        J = _jacobian(source, z, base_position_nm)
        step = torch.linalg.solve(J, _field(source, z, base_position_nm).detach()[0])
        z = z - step.detach()
        if float(step.abs().max()) < tol * (1 + float(z.abs().max())):
            break
    else:
        raise ValueError(f"no equilibrium found for base position {base_position_nm} nm (tip snapped into contact?)")
    if not float(z[0, 0]) > 0:
        raise ValueError(f"the equilibrium for base position {base_position_nm} nm is at z = {float(z[0, 0])} <= 0")
    return z.detach(), _jacobian(source, z, base_position_nm).detach()


def _eigen(source, base_position_nm):
    _, J = equilibrium(source, base_position_nm)
    lam = torch.linalg.eigvals(J.double())
    return complex(lam[torch.argmax(lam.imag)])


def quality_factor(source, base_position_nm: float = 1e3) -> float:
    """Q = |λ| / (2 σ) from the linearised eigenvalues λ = −σ ± iω_d (default: far from the surface)."""
    lam = _eigen(source, base_position_nm)
    return abs(lam) / (-2 * lam.real)


def natural_frequency(source, base_position_nm: float) -> float:
    """Undamped small-amplitude angular frequency |λ| = √(∂²H/∂z² ∂²H/∂p²), units of ω₀."""
    return abs(_eigen(source, base_position_nm))


def frequency_shift(source, base_positions_nm: Sequence[float], reference_nm: float = 1e3) -> np.ndarray:
    """Δf/f₀ at each base position: the small-amplitude frequency over the one far from the surface, minus 1."""
    f0 = natural_frequency(source, reference_nm)
    return np.array([natural_frequency(source, b) / f0 - 1.0 for b in base_positions_nm])


def resonance_curve(source, frequencies, base_position_nm: float = 1e3):
    """Small-amplitude response of the tip to a base dither, T(Ω) = e_zᵀ (iΩ − A)⁻¹ B.

    Args:
        source: ground truth or model.
        frequencies: [n] drive angular frequencies Ω, units of ω₀.
        base_position_nm: the mean base position.

    Returns:
        (amplitude [n] = |T|, tip nm per nm of base motion; phase [n], rad, of the tip behind the base).
    """
    z, A = equilibrium(source, base_position_nm)
    with torch.no_grad():
        b = (_field(source, z, base_position_nm + 1.0) - _field(source, z, base_position_nm))[0]  # ż is affine in u
    A, b = A.double().numpy(), b.double().numpy()
    omega = np.asarray(frequencies, dtype=float)
    T = np.array([np.linalg.solve(1j * w * np.eye(2) - A, b)[0] for w in omega])
    return np.abs(T), np.angle(T)
