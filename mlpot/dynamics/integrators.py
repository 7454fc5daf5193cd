"""MD state and integrators composed by operator splitting.

The state is a small dataclass of tensors (:class:`MDState`). Integrators are small step
functions built from the textbook pieces, each acting in place on the state:

* ``B(h)``  kick:  p ← p + h·F
* ``A(h)``  drift: x ← x + h·p/m
* ``O(h)``  Ornstein–Uhlenbeck: p ← c₁p + c₂√(m k_B T)·ξ, c₁ = exp(−γh), c₂ = √(1 − c₁²)
* ``R(h)``  Bussi–Donadio–Parrinello stochastic velocity rescaling of the kinetic energy.

and a force evaluation ``F`` (the engine's force provider). The schemes are

* velocity Verlet (NVE): ``B(dt/2) A(dt) F B(dt/2)``;
* Langevin BAOAB (NVT):  ``B(dt/2) A(dt/2) O(dt) A(dt/2) F B(dt/2)``;
* Bussi (NVT):           ``R(dt/2) B(dt/2) A(dt) F B(dt/2) R(dt/2)``.

:func:`velocity_verlet_step` is the velocity Verlet step as a pure function of tensors, the
form in which :mod:`mlpot.dynamics.compiled_step` compiles it together with the forces.

Every integrator reports the quantity it conserves: K + U for velocity Verlet, and
K + U − W for the thermostats, where W (``MDState.thermostat_work``, per system, eV) is the
kinetic energy the O or R steps have added so far. A drift of that quantity is an
integration error, never thermostat noise.

All quantities are in ASE units (eV, Å, amu, ASE time; see :mod:`mlpot.units`). Several
independent systems (replicas) share one state: atoms are concatenated and ``batch`` gives
each atom's system, exactly as in AtomicData; energies, thermostat work and degrees of
freedom are per system.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Callable

import torch
from torch import Tensor

from mlpot.units import FS, KB_EV_PER_K

__all__ = [
    "MDState",
    "Integrator",
    "VelocityVerlet",
    "LangevinBAOAB",
    "BussiThermostat",
    "make_integrator",
    "ENSEMBLES",
    "kick",
    "drift",
    "ornstein_uhlenbeck",
    "rescale_velocities",
    "velocity_verlet_step",
    "kinetic_energy",
    "temperature",
    "health_measures",
]

#: Ensemble names accepted by :func:`make_integrator` (and ``simulate``/``mlpot md``).
ENSEMBLES = ("nve", "langevin", "bussi", "npt")

#: Default friction (Langevin) and inverse time constant (Bussi), 1/fs: a 100 fs relaxation time.
DEFAULT_FRICTION_PER_FS = 0.01

#: A force provider: updates ``state.forces`` [n, 3] and ``state.energy`` [S] from ``state.positions``.
ForceFunction = Callable[["MDState"], None]


@dataclass
class MDState:
    """Positions, momenta and everything a step needs, for one or several systems.

    Attributes:
        positions: [n_atoms, 3] float, Å.
        momenta: [n_atoms, 3] float, amu·Å/(ASE time).
        masses: [n_atoms] float, amu.
        numbers: [n_atoms] int64, atomic numbers.
        cell: [n_systems, 3, 3] float, Å, lattice vectors as rows.
        pbc: [n_systems, 3] bool.
        batch: [n_atoms] int64, system index of each atom (sorted).
        forces: [n_atoms, 3] float, eV/Å, at ``positions``.
        energy: [n_systems] float, eV, potential energy at ``positions``.
        thermostat_work: [n_systems] float, eV, kinetic energy added by thermostat steps so far.
        n_dof: [n_systems] float, degrees of freedom used for the kinetic temperature.
        step: number of steps taken.
    """

    positions: Tensor
    momenta: Tensor
    masses: Tensor
    numbers: Tensor
    cell: Tensor
    pbc: Tensor
    batch: Tensor
    forces: Tensor
    energy: Tensor
    thermostat_work: Tensor
    n_dof: Tensor
    step: int = 0

    @property
    def n_systems(self) -> int:
        return int(self.cell.shape[0])

    @property
    def n_atoms(self) -> int:
        return int(self.positions.shape[0])

    def clone(self) -> "MDState":
        """A deep copy (tensors cloned)."""
        return replace(self, **{f.name: getattr(self, f.name).clone() for f in fields(self) if f.name != "step"})

    def tensors(self) -> dict[str, Tensor]:
        """The state as a dict of tensors (for checkpoints), ``step`` excluded."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "step"}


# --- reductions -----------------------------------------------------------------------------


def _per_system(values: Tensor, batch: Tensor, n_systems: int) -> Tensor:
    """Sum per-atom ``values`` [n] into [n_systems]."""
    if n_systems == 1:
        return values.sum().reshape(1)
    return torch.zeros(n_systems, dtype=values.dtype, device=values.device).index_add_(0, batch, values)


def kinetic_energy(state: MDState) -> Tensor:
    """Kinetic energy per system, [n_systems] eV."""
    per_atom = state.momenta.square().sum(dim=1) / state.masses
    return 0.5 * _per_system(per_atom, state.batch, state.n_systems)


def temperature(state: MDState, kinetic: Tensor | None = None) -> Tensor:
    """Kinetic temperature per system, [n_systems] K: 2K/(N_dof k_B), with ``state.n_dof``."""
    if kinetic is None:
        kinetic = kinetic_energy(state)
    return torch.where(state.n_dof > 0, 2.0 * kinetic / (state.n_dof.clamp(min=1) * KB_EV_PER_K), 0.0 * kinetic)


def health_measures(
    positions: Tensor,
    momenta: Tensor,
    forces: Tensor,
    energy: Tensor,
    inverse_masses: Tensor,
    inverse_dof_kB: Tensor,
    batch: Tensor,
) -> Tensor:
    """What the engine checks after every step, in one tensor (so that one host sync reads it).

    Args:
        positions: [n, 3] Å (checked for being finite: a model evaluated on a reused neighbour
            list can return a finite energy for a NaN atom, whose edges all fail the cutoff test).
        momenta: [n, 3] amu·Å/(ASE time).
        forces: [n, 3] eV/Å.
        energy: [n_systems] eV.
        inverse_masses: [n] 1/amu.
        inverse_dof_kB: [n_systems] 1/(N_dof k_B), 1/eV·K (0 for a system with no degrees of freedom).
        batch: [n] int64 system index.

    Returns:
        [4]: max_i |F_i|² (eV²/Å²), max over systems of the kinetic temperature (K), Σ energy (eV),
        max |R| (Å; NaN or infinite when any position is).
    """
    twice_kinetic = _per_system(momenta.square().sum(dim=1) * inverse_masses, batch, inverse_dof_kB.shape[0])
    return torch.stack(
        (
            forces.square().sum(dim=1).max(),
            (twice_kinetic * inverse_dof_kB).max(),
            energy.sum(),
            positions.abs().max(),
        )
    )


# --- splitting pieces (in place) ------------------------------------------------------------


def kick(state: MDState, h: float) -> None:
    """B(h): p ← p + h·F."""
    state.momenta.add_(state.forces, alpha=h)


def drift(state: MDState, h: float, inverse_masses: Tensor) -> None:
    """A(h): x ← x + h·p/m. ``inverse_masses`` is [n, 1]."""
    state.positions.addcmul_(state.momenta, inverse_masses, value=h)


def ornstein_uhlenbeck(
    state: MDState, c1: float, noise_scale: Tensor, generator: torch.Generator
) -> None:
    """O: p ← c₁p + √(1−c₁²)·√(m k_B T)·ξ; the kinetic energy change is added to the thermostat work.

    Args:
        c1: exp(−γh).
        noise_scale: [n, 1] √((1 − c₁²) m k_B T).
    """
    before = kinetic_energy(state)
    noise = torch.randn(state.momenta.shape, dtype=state.momenta.dtype, device=state.momenta.device, generator=generator)
    state.momenta.mul_(c1).addcmul_(noise, noise_scale)
    state.thermostat_work.add_(kinetic_energy(state) - before)


def rescale_velocities(
    state: MDState, c: float, kT: float, generator: torch.Generator
) -> None:
    """R: Bussi–Donadio–Parrinello stochastic velocity rescaling (J. Chem. Phys. 126, 014101 (2007)).

    The kinetic energy K of each system is moved by the exact solution, over the time h with
    c = exp(−h/τ), of dK = (K̄ − K) dt/τ + 2 √(K K̄/N_f) dW/√τ, where K̄ = N_f k_B T/2; the
    momenta are scaled by α = √(K_new/K). The change of K is added to the thermostat work.
    """
    n_dof = state.n_dof.to(state.momenta.dtype)
    kinetic = kinetic_energy(state)
    target = 0.5 * n_dof * kT
    gauss = torch.randn(kinetic.shape, dtype=kinetic.dtype, device=kinetic.device, generator=generator)
    # Sum of N_f − 1 squared Gaussians: a chi-square deviate, 2·Gamma((N_f − 1)/2).
    shape = (0.5 * (n_dof - 1.0)).clamp(min=1e-30)
    chi2 = 2.0 * torch._standard_gamma(shape, generator=generator)
    chi2 = torch.where(n_dof > 1, chi2, torch.zeros_like(chi2))
    safe_dof = n_dof.clamp(min=1.0)
    new = (
        kinetic
        + (1.0 - c) * (target * (chi2 + gauss.square()) / safe_dof - kinetic)
        + 2.0 * gauss * torch.sqrt((kinetic * target / safe_dof * (1.0 - c) * c).clamp(min=0.0))
    )
    moving = (kinetic > 0) & (n_dof > 0)
    alpha = torch.where(moving, torch.sqrt(new.clamp(min=0.0) / kinetic.clamp(min=1e-300)), torch.ones_like(kinetic))
    if state.n_systems == 1:
        state.momenta.mul_(alpha)
    else:
        state.momenta.mul_(alpha[state.batch][:, None])
    state.thermostat_work.add_(torch.where(moving, new - kinetic, torch.zeros_like(kinetic)))


# --- integrators ----------------------------------------------------------------------------


class Integrator:
    """Base class: one step of ``timestep_fs``; subclasses compose the splitting pieces.

    Attributes:
        ensemble: "nve", "langevin" or "bussi".
        timestep_fs: the time step, fs. ``dt`` is the same in ASE time units.
        conserves_momentum: whether total momentum is a constant of motion (sets N_dof).
    """

    ensemble = "nve"
    conserves_momentum = True
    stochastic = False

    def __init__(self, timestep_fs: float):
        timestep_fs = float(timestep_fs)
        if not math.isfinite(timestep_fs) or timestep_fs <= 0:
            raise ValueError(f"timestep_fs must be a positive finite number, got {timestep_fs}")
        self.timestep_fs = timestep_fs
        self.dt = timestep_fs * FS
        self._inverse_masses: Tensor | None = None

    def prepare(self, state: MDState) -> None:
        """Precompute per-atom constants (1/m, noise scales) for ``state``; call again if masses change."""
        self._inverse_masses = (1.0 / state.masses)[:, None]

    def step(self, state: MDState, compute_forces: ForceFunction, generator: torch.Generator | None = None) -> None:
        raise NotImplementedError

    def conserved(self, state: MDState, kinetic: Tensor | None = None) -> Tensor:
        """The conserved quantity per system, [n_systems] eV: K + U − W."""
        if kinetic is None:
            kinetic = kinetic_energy(state)
        return kinetic + state.energy - state.thermostat_work

    def config(self) -> dict:
        """The parameters that define this integrator (stored in checkpoints)."""
        return {"ensemble": self.ensemble, "timestep_fs": self.timestep_fs}


class VelocityVerlet(Integrator):
    """Velocity Verlet, B(dt/2) A(dt) F B(dt/2): symplectic and time reversible; conserves K + U up to O(dt²)."""

    ensemble = "nve"

    def step(self, state: MDState, compute_forces: ForceFunction, generator: torch.Generator | None = None) -> None:
        half = 0.5 * self.dt
        kick(state, half)
        drift(state, self.dt, self._inverse_masses)
        compute_forces(state)
        kick(state, half)
        state.step += 1


def velocity_verlet_step(
    positions: Tensor,
    momenta: Tensor,
    forces: Tensor,
    inverse_masses: Tensor,
    dt: float | Tensor,
    energy_and_forces: Callable[..., tuple[Tensor, Tensor]],
    potential: torch.nn.Module,
    *arguments,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """:meth:`VelocityVerlet.step` as a pure function of tensors, for ``torch.compile``.

    The same pieces, B(dt/2) A(dt) F B(dt/2), equal to round-off, on new tensors (the inputs are
    untouched), with the forces from ``energy_and_forces(potential, positions, *arguments) ->
    (energy [S], forces [n, 3])``, a plain function (a
    :class:`~mlpot.models.potential.FixedTopology`'s), so that the whole step compiles into one graph.

    Args:
        positions: [n, 3] Å.
        momenta: [n, 3] amu·Å/(ASE time).
        forces: [n, 3] eV/Å, at ``positions``.
        inverse_masses: [n, 1] 1/amu.
        dt: time step, ASE time units: a number, or a 0-d tensor so that a compiled step serves
            every time step (``torch.compile`` specialises on the value of a number).

    Returns:
        The new positions [n, 3], momenta [n, 3], forces [n, 3] and energy [S] (eV).
    """
    half = 0.5 * dt
    momenta = momenta + half * forces
    positions = positions + dt * momenta * inverse_masses
    energy, forces = energy_and_forces(potential, positions, *arguments)
    return positions, momenta + half * forces, forces, energy


class _Thermostat(Integrator):
    stochastic = True

    def __init__(self, timestep_fs: float, temperature_K: float, friction_per_fs: float | None = None):
        super().__init__(timestep_fs)
        if temperature_K is None:
            raise ValueError(f"ensemble {self.ensemble!r} needs temperature_K")
        temperature_K = float(temperature_K)
        if not math.isfinite(temperature_K) or temperature_K <= 0:
            raise ValueError(f"temperature_K must be positive and finite, got {temperature_K}")
        friction_per_fs = DEFAULT_FRICTION_PER_FS if friction_per_fs is None else float(friction_per_fs)
        if not math.isfinite(friction_per_fs) or friction_per_fs <= 0:
            raise ValueError(f"friction_per_fs must be positive and finite, got {friction_per_fs}")
        self.temperature_K = temperature_K
        self.friction_per_fs = friction_per_fs
        self.kT = KB_EV_PER_K * temperature_K

    def config(self) -> dict:
        return {**super().config(), "temperature_K": self.temperature_K, "friction_per_fs": self.friction_per_fs}


class LangevinBAOAB(_Thermostat):
    """Langevin dynamics by BAOAB (Leimkuhler & Matthews 2013), friction γ in 1/fs.

    B(dt/2) A(dt/2) O(dt) A(dt/2) F B(dt/2); one force evaluation per step. Configurational
    averages are accurate to O(dt²) (exact for harmonic systems); N_dof = 3N because the noise
    thermalises the centre of mass as well.
    """

    ensemble = "langevin"
    conserves_momentum = False

    def prepare(self, state: MDState) -> None:
        super().prepare(state)
        self.c1 = math.exp(-self.friction_per_fs * self.timestep_fs)
        self._noise_scale = torch.sqrt((1.0 - self.c1**2) * self.kT * state.masses)[:, None]

    def step(self, state: MDState, compute_forces: ForceFunction, generator: torch.Generator | None = None) -> None:
        half = 0.5 * self.dt
        kick(state, half)
        drift(state, half, self._inverse_masses)
        ornstein_uhlenbeck(state, self.c1, self._noise_scale, generator)
        drift(state, half, self._inverse_masses)
        compute_forces(state)
        kick(state, half)
        state.step += 1


class BussiThermostat(_Thermostat):
    """Velocity Verlet wrapped in Bussi stochastic velocity rescaling: R(dt/2) B A F B R(dt/2).

    ``friction_per_fs`` is 1/τ, the inverse of the thermostat's relaxation time. Rescaling keeps
    a zero total momentum at zero, so N_dof = 3N − 3.
    """

    ensemble = "bussi"
    conserves_momentum = True

    def prepare(self, state: MDState) -> None:
        super().prepare(state)
        self.c_half = math.exp(-0.5 * self.timestep_fs * self.friction_per_fs)

    def step(self, state: MDState, compute_forces: ForceFunction, generator: torch.Generator | None = None) -> None:
        half = 0.5 * self.dt
        rescale_velocities(state, self.c_half, self.kT, generator)
        kick(state, half)
        drift(state, self.dt, self._inverse_masses)
        compute_forces(state)
        kick(state, half)
        rescale_velocities(state, self.c_half, self.kT, generator)
        state.step += 1


def make_integrator(
    ensemble: str,
    timestep_fs: float,
    temperature_K: float | None = None,
    friction_per_fs: float | None = None,
    **npt_options,
) -> Integrator:
    """Return the integrator for ``ensemble`` ("nve", "langevin", "bussi" or "npt").

    ``npt_options`` (pressure_GPa, barostat_time_fs, compressibility_per_GPa, thermostat, anisotropic) go to
    :class:`mlpot.dynamics.barostat.StochasticCellRescaling` and are refused for the other ensembles.
    """
    name = str(ensemble).lower()
    if name == "npt":
        from mlpot.dynamics.barostat import StochasticCellRescaling

        return StochasticCellRescaling(timestep_fs, temperature_K, friction_per_fs, **npt_options)
    if npt_options:
        raise ValueError(f"{', '.join(sorted(npt_options))} only apply to ensemble 'npt', not {ensemble!r}")
    if name == "nve":
        return VelocityVerlet(timestep_fs)
    if name in ("langevin", "nvt", "baoab"):
        return LangevinBAOAB(timestep_fs, temperature_K, friction_per_fs)
    if name in ("bussi", "csvr"):
        return BussiThermostat(timestep_fs, temperature_K, friction_per_fs)
    raise ValueError(f"unknown ensemble {ensemble!r}; choose one of {', '.join(ENSEMBLES)}")
