"""Initial momenta, net motion and the degrees of freedom behind a temperature.

A kinetic temperature is 2K/(N_dof k_B), and N_dof must count only the motions that exchange
energy with the rest of the system. Under a potential invariant to translations (every one
here), the total momentum P is a constant of motion; for an isolated system (no periodic axis)
so is the angular momentum L. Kept at zero, they remove 3 and 3 (2 for a linear molecule: it
has no rotation about its own axis) degrees of freedom:

    N_dof = 3N − 3 (periodic), 3N − 6 (isolated, non-linear), 3N − 5 (isolated, linear)

for integrators that conserve them (velocity Verlet; Bussi's rescaling multiplies all momenta
by one factor, which keeps P = L = 0), and 3N for Langevin, whose friction and noise act on
every atom and thermalise the centre of mass and the rotation too. Counting 3N − 3 for a
molecule, as before, under-reports its temperature by a factor (3N − 6)/(3N − 3): 12% for a
9-atom molecule.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mlpot.dynamics.state import per_system
from mlpot.units import KB_EV_PER_K

__all__ = [
    "degrees_of_freedom",
    "maxwell_boltzmann_momenta",
    "net_motion",
    "remove_net_motion",
    "rigid_rotations",
]

#: A principal moment of inertia below this fraction of the largest one counts as zero (linear molecule).
LINEAR_TOLERANCE = 1e-8


def _centred(positions: Tensor, masses: Tensor, batch: Tensor, n_systems: int) -> Tensor:
    """Positions relative to each system's centre of mass, [n, 3] Å."""
    total_m = per_system(masses, batch, n_systems)
    centre = per_system(masses[:, None] * positions, batch, n_systems) / total_m[:, None]
    return positions - centre.index_select(0, batch)


def _inertia(relative: Tensor, masses: Tensor, batch: Tensor, n_systems: int) -> Tensor:
    """Inertia tensors about the centres of mass, [S, 3, 3] amu·Å²: Σ m (|r|² 1 − r rᵀ)."""
    eye = torch.eye(3, dtype=relative.dtype, device=relative.device)
    outer = relative[:, :, None] * relative[:, None, :]
    per_atom = masses[:, None, None] * (relative.square().sum(dim=1)[:, None, None] * eye - outer)
    return per_system(per_atom, batch, n_systems)


def rigid_rotations(positions: Tensor, masses: Tensor, batch: Tensor, n_systems: int, pbc: Tensor) -> Tensor:
    """Rotational degrees of freedom whose angular momentum is conserved, per system: [S] int64.

    3 for an isolated non-linear system, 2 for an isolated linear one, 0 for a single atom or
    any system with a periodic axis (a periodic cell breaks rotational invariance).

    Args:
        positions: [n, 3] Å. masses: [n] amu. batch: [n] int64. pbc: [S, 3] bool.
    """
    relative = _centred(positions, masses, batch, n_systems)
    moments = torch.linalg.eigvalsh(_inertia(relative, masses, batch, n_systems))  # [S, 3], ascending
    largest = moments[:, 2]
    rotations = (moments > LINEAR_TOLERANCE * largest[:, None]).sum(dim=1)
    rotations = torch.where(largest > 0, rotations, torch.zeros_like(rotations))
    return torch.where(pbc.any(dim=1), torch.zeros_like(rotations), rotations)


def net_motion(
    positions: Tensor, momenta: Tensor, masses: Tensor, batch: Tensor, n_systems: int
) -> tuple[Tensor, Tensor]:
    """Total momentum P [S, 3] (amu·Å/ASE time) and angular momentum L about the centre of mass [S, 3] per system."""
    relative = _centred(positions, masses, batch, n_systems)
    total = per_system(momenta, batch, n_systems)
    angular = per_system(torch.linalg.cross(relative, momenta), batch, n_systems)
    return total, angular


def remove_net_motion(
    positions: Tensor, momenta: Tensor, masses: Tensor, batch: Tensor, n_systems: int, rotations: Tensor
) -> Tensor:
    """Momenta with zero total momentum in every system and zero angular momentum in those with ``rotations`` > 0.

    Subtracts the centre-of-mass velocity, then the rigid rotation ω × r with ω = I⁺ L (the
    pseudo-inverse handles a linear molecule, whose axial moment is zero).

    Args:
        positions, momenta: [n, 3]. masses: [n] amu. batch: [n] int64. rotations: [S] from :func:`rigid_rotations`.

    Returns:
        New momenta [n, 3]; the input is not modified.
    """
    total_m = per_system(masses, batch, n_systems)
    total_p = per_system(momenta, batch, n_systems)
    momenta = momenta - masses[:, None] * (total_p / total_m[:, None]).index_select(0, batch)
    if not bool((rotations > 0).any()):
        return momenta
    relative = _centred(positions, masses, batch, n_systems)
    angular = per_system(torch.linalg.cross(relative, momenta), batch, n_systems)
    inertia = _inertia(relative, masses, batch, n_systems)
    omega = (torch.linalg.pinv(inertia, rtol=LINEAR_TOLERANCE, hermitian=True) @ angular[:, :, None])[:, :, 0]
    omega = torch.where((rotations > 0)[:, None], omega, torch.zeros_like(omega))
    return momenta - masses[:, None] * torch.linalg.cross(omega.index_select(0, batch), relative)


def degrees_of_freedom(n_atoms_per_system: Tensor, momentum_conserved: bool, rotations: Tensor | None = None) -> Tensor:
    """N_dof per system, [S] float64: 3N − 3 − (conserved rotations) when the integrator conserves
    momentum (kept at zero), else 3N.

    Args:
        n_atoms_per_system: [n_systems] int.
        momentum_conserved: True for NVE and Bussi (both keep zero total and angular momentum
            of an invariant potential), False for Langevin (the friction and noise act on every
            atom, so the centre of mass and the rotation are thermalised too).
        rotations: [n_systems] conserved rotational degrees of freedom (:func:`rigid_rotations`);
            None counts none (periodic systems).
    """
    n = n_atoms_per_system.to(torch.float64)
    if not momentum_conserved:
        return 3.0 * n
    removed = 3.0 if rotations is None else 3.0 + rotations.to(device=n.device, dtype=torch.float64)
    return (3.0 * n - removed).clamp(min=0.0)


def maxwell_boltzmann_momenta(
    masses: Tensor, batch: Tensor, n_systems: int, temperature_K: float, generator: torch.Generator
) -> Tensor:
    """Momenta drawn from the Maxwell–Boltzmann distribution, with zero total momentum per system.

    Args:
        masses: [n] amu.
        batch: [n] int64 system index.
        n_systems: number of systems.
        temperature_K: temperature, K.
        generator: the random generator (reproducible from its seed).

    Returns:
        [n, 3] momenta, amu·Å/(ASE time). The expected kinetic energy is (3N − 3)/2 k_B T per
        system; :func:`remove_net_motion` then takes out the rotation of isolated systems.
    """
    kT = KB_EV_PER_K * temperature_K
    noise = torch.randn(masses.shape[0], 3, dtype=masses.dtype, device=masses.device, generator=generator)
    momenta = noise * torch.sqrt(masses * kT)[:, None]
    total_p = per_system(momenta, batch, n_systems)
    total_m = per_system(masses, batch, n_systems)
    return momenta - masses[:, None] * (total_p / total_m[:, None])[batch]
