"""An anharmonic spring crystal for the heat-capacity tests: vector springs with a quartic stiffening.

U = ½ Σ_{i→j} [½ k |δ_ij|² + ¼ λ |δ_ij|⁴], δ_ij = mic(x_j − x_i − d_ij), summed over the *directed* bonds of a
reference crystal (so each bond counts once), d_ij the bond vectors at rest. With λ = 0 this is the exactly
harmonic crystal of :class:`mlpot.models.reference.HarmonicSprings`; with λ > 0 the modes
exchange energy, so NVE dynamics is ergodic and the microcanonical estimator has something to measure.
Forces: F_i = Σ_j (k + λ|δ_ij|²) δ_ij. Batched replicas of the same crystal are supported (the atom count
must be a multiple of the reference's).
"""

from __future__ import annotations

import numpy as np
import torch
from ase.neighborlist import neighbor_list


class QuarticSprings(torch.nn.Module):
    """mlpot potential contract: ``forward(data) -> {energy [S], atomic_energy [N], forces [N, 3]}``.

    Args:
        atoms: the reference crystal (its positions are the minimum), periodic.
        bond_cutoff: bonds join atoms closer than this, Å.
        spring_constant: k, eV/Å².
        quartic: λ, eV/Å⁴.
    """

    def __init__(self, atoms, bond_cutoff: float, spring_constant: float, quartic: float):
        super().__init__()
        i, j, shift = neighbor_list("ijS", atoms, bond_cutoff)
        rest = atoms.positions[j] - atoms.positions[i] + shift @ atoms.cell.array
        self.register_buffer("i", torch.as_tensor(i, dtype=torch.int64))
        self.register_buffer("j", torch.as_tensor(j, dtype=torch.int64))
        self.register_buffer("rest", torch.as_tensor(rest, dtype=torch.float64))
        self.n_structure = len(atoms)
        self.k = float(spring_constant)
        self.quartic = float(quartic)
        self.cutoff = 0.5  # the springs need no neighbour list; keep the engine's one tiny

    def _indices(self, replicas: int):
        if getattr(self, "_cached_replicas", None) != replicas:
            offsets = (torch.arange(replicas) * self.n_structure)[:, None]
            self._i = (self.i[None] + offsets).reshape(-1)
            self._j = (self.j[None] + offsets).reshape(-1)
            self._cached_replicas = replicas
        return self._i, self._j

    def forward(self, data, compute_forces: bool = True, compute_stress: bool = False, training: bool = False):
        positions = data["positions"]
        n = positions.shape[0]
        replicas = n // self.n_structure
        i, j = self._indices(replicas)
        cell = data["cell"].to(positions.dtype)  # [replicas, 3, 3]
        delta = (positions[j] - positions[i]).reshape(replicas, -1, 3) - self.rest
        images = torch.round(torch.bmm(delta, torch.linalg.inv(cell)))
        delta = (delta - torch.bmm(images, cell)).reshape(-1, 3)
        r2 = delta.square().sum(dim=1)
        bond_energy = 0.5 * (0.5 * self.k * r2 + 0.25 * self.quartic * r2.square())
        atomic_energy = torch.zeros(n, dtype=positions.dtype).index_add_(0, i, bond_energy)
        energy = atomic_energy.reshape(replicas, self.n_structure).sum(dim=1)
        out = {"energy": energy, "atomic_energy": atomic_energy}
        if compute_forces:
            pull = (self.k + self.quartic * r2)[:, None] * delta
            out["forces"] = torch.zeros_like(positions).index_add_(0, i, pull)
        return out

def normal_mode_frequencies(potential: QuarticSprings, masses) -> np.ndarray:
    """Angular frequencies ω (1/ASE time) of the 3N harmonic modes of one structure (three are zero)."""
    n = potential.n_structure
    laplacian = np.zeros((n, n))
    # Directed bonds: each bond appears twice and carries half the energy.
    for i, j in zip(potential.i.tolist(), potential.j.tolist()):
        laplacian[i, i] += 0.5 * potential.k
        laplacian[j, j] += 0.5 * potential.k
        laplacian[i, j] -= 0.5 * potential.k
        laplacian[j, i] -= 0.5 * potential.k
    inv_sqrt_m = 1.0 / np.sqrt(np.asarray(masses, dtype=float))
    omega2 = np.linalg.eigvalsh(laplacian * inv_sqrt_m[:, None] * inv_sqrt_m[None, :])
    return np.sqrt(np.repeat(np.clip(omega2, 0.0, None), 3))


def baoab_energy_variance(omegas, timestep, friction, kT: float) -> float:
    """Stationary Var(K + U) of BAOAB Langevin dynamics on independent harmonic modes (unit masses).

    Each mode is a linear Gaussian map x ← M x + L ξ; its stationary covariance S solves S = M S Mᵀ + L Lᵀ
    and Var(½ xᵀ D x) = ½ tr(D S D S). A zero mode is a free particle: its momentum after the O step is exactly
    Maxwellian, so it contributes Var(K) = (k_B T)²/2. Units: ω and friction in 1/time, timestep in time.
    """
    from scipy.linalg import solve_discrete_lyapunov

    c = np.exp(-friction * timestep)
    h = timestep
    total = 0.0
    for omega in omegas:
        if omega < 1e-6:
            total += 0.5 * kT**2
            continue
        kick = np.array([[1.0, 0.0], [-0.5 * h * omega**2, 1.0]])
        drift = np.array([[1.0, 0.5 * h], [0.0, 1.0]])
        damp = np.diag([1.0, c])
        step = kick @ drift @ damp @ drift @ kick
        noise = kick @ drift @ np.array([[0.0], [np.sqrt((1.0 - c * c) * kT)]])
        cov = solve_discrete_lyapunov(step, noise @ noise.T)
        d = np.diag([omega**2, 1.0])
        total += 0.5 * np.trace(d @ cov @ d @ cov)
    return float(total)
