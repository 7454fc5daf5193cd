"""MD integrators as pure step functions over one kick–drift–kick.

Every scheme is a function ``step(state, force_fn, params) -> state``: it takes an
:class:`~mlpot.dynamics.state.MDState`, a force function ``force_fn(state) -> state`` (the same
state with ``energy``, ``forces`` and ``outputs`` at its positions) and a small frozen parameter
dataclass, and returns a new state; the input is never modified. All of them are built on
:func:`kick_drift_kick`, the one velocity-Verlet step of the code base (the Hamiltonian layer's
leapfrog and the compiled MD step call it too), from the textbook pieces:

* ``B(h)`` kick:  p ← p + h·F  (:func:`kick`)
* ``A(h)`` drift: x ← x + h·v, v = p/m  (:func:`drift`, :func:`free_flight`)
* ``O(h)`` Ornstein–Uhlenbeck: p ← c₁p + c₂√(m k_B T)·ξ, c₁ = exp(−γh), c₂ = √(1 − c₁²)
* ``R(h)`` Bussi–Donadio–Parrinello stochastic velocity rescaling of the kinetic energy,

and a force evaluation ``F``. The schemes are compositions:

* velocity Verlet (NVE), :func:`velocity_verlet`: ``B(dt/2) A(dt) F B(dt/2)``;
* Langevin BAOAB (NVT), :func:`langevin_baoab`: the same with ``A(dt/2) O(dt) A(dt/2)`` as its drift;
* Bussi (NVT), :func:`bussi`: ``R(dt/2)`` · velocity Verlet · ``R(dt/2)``;
* NPT (:mod:`mlpot.dynamics.barostat`): a thermostat's step whose force function first moves the cell.

:class:`Integrator` and its subclasses hold a scheme's settings for the engine: ``step_function``
(the pure step), :meth:`Integrator.prepare` (the parameter dataclass for a state), the conserved
quantity and the settings a checkpoint stores. A scheme that needs state of its own subclasses
:class:`MDState` and returns it from :meth:`Integrator.init_state`; one that needs other forces
(the barostat's stress) returns its provider from :meth:`Integrator.force_provider`. The engine
needs no change for either.

Every integrator reports the quantity it conserves: K + U for velocity Verlet, and K + U − W for
the thermostats, where W (``MDState.thermostat_work``, per system, eV) is the kinetic energy the
O or R steps have added so far. A drift of that quantity is an integration error, never
thermostat noise. Units: ASE's (eV, Å, amu, ASE time; :mod:`mlpot.units`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from mlpot.dynamics.state import Evolving, MDState, kinetic_energy, temperature
from mlpot.units import FS, KB_EV_PER_K

__all__ = [
    "MDState",
    "Integrator",
    "VelocityVerlet",
    "LangevinBAOAB",
    "BussiThermostat",
    "VerletParams",
    "LangevinParams",
    "BussiParams",
    "make_integrator",
    "register_integrator",
    "integrator_from_config",
    "ENSEMBLES",
    "kick",
    "drift",
    "free_flight",
    "kick_drift_kick",
    "velocity_verlet",
    "langevin_baoab",
    "bussi",
    "ornstein_uhlenbeck",
    "rescale_velocities",
    "kinetic_energy",
    "temperature",
    "velocity_verlet_step",
]

#: Ensemble names accepted by :func:`make_integrator` (and ``simulate``/``mlpot md``).
ENSEMBLES = ("nve", "langevin", "bussi", "npt")

#: Default friction (Langevin) and inverse time constant (Bussi), 1/fs: a 100 fs relaxation time.
DEFAULT_FRICTION_PER_FS = 0.01

#: A force function: the state with ``energy`` [S] eV, ``forces`` [n, 3] eV/Å and ``outputs`` at its positions.
ForceFunction = Callable[[MDState], MDState]


# --- the pieces (pure: new tensors, inputs untouched) -----------------------------------------------


def kick(momenta: Tensor, forces: Tensor, h: float | Tensor) -> Tensor:
    """B(h): p + h·F. Any shapes that broadcast; ``h`` in the time unit of p/F."""
    return _axpy(momenta, forces, h)


def drift(positions: Tensor, velocities: Tensor, h: float | Tensor) -> Tensor:
    """A(h): x + h·v."""
    return _axpy(positions, velocities, h)


def _axpy(y: Tensor, x: Tensor, h: float | Tensor) -> Tensor:
    """y + h·x, as one operation for a number h (the eager step); a 0-d tensor h (a compiled step)
    cannot be ``alpha``, and the compiler fuses the two operations anyway."""
    if isinstance(h, Tensor):
        return y + h * x
    return torch.add(y, x, alpha=h)


def kick_drift_kick(state, force_fn: Callable, h: float | Tensor, drift_stage: Callable):
    """The one velocity-Verlet step: B(h/2), ``drift_stage``, F, B(h/2).

    Args:
        state: any state with ``positions``, ``momenta``, ``forces`` and ``evolve(**changes)``
            (an :class:`MDState`, or the Hamiltonian layer's phase-space point).
        force_fn: ``state -> state`` with ``forces`` at its positions (may also set the energy).
        h: the time step (a number, or a 0-d tensor in a compiled step).
        drift_stage: ``(state, h) -> state``: the A(h) stage, or any composition that stands
            for it (BAOAB's A(h/2) O(h) A(h/2)).

    Returns:
        The new state; ``state`` is untouched.
    """
    half = 0.5 * h
    state = state.evolve(momenta=kick(state.momenta, state.forces, half))
    state = force_fn(drift_stage(state, h))
    return state.evolve(momenta=kick(state.momenta, state.forces, half))


def free_flight(state: MDState, h: float | Tensor, inverse_masses: Tensor) -> MDState:
    """A(h) for atoms: x ← x + h·p/m; ``inverse_masses`` [n, 1] 1/amu."""
    return state.evolve(positions=drift(state.positions, state.momenta * inverse_masses, h))


def ornstein_uhlenbeck(state: MDState, c1: float, noise_scale: Tensor, generator: torch.Generator | None) -> MDState:
    """O: p ← c₁p + √(1−c₁²)·√(m k_B T)·ξ; the kinetic energy change is added to the thermostat work.

    Args:
        c1: exp(−γh).
        noise_scale: [n, 1] √((1 − c₁²) m k_B T).
    """
    p = state.momenta
    noise = torch.randn(p.shape, dtype=p.dtype, device=p.device, generator=generator)
    new = state.evolve(momenta=c1 * p + noise * noise_scale)
    work = state.thermostat_work + (kinetic_energy(new) - kinetic_energy(state))
    return new.evolve(thermostat_work=work)


def rescale_velocities(state: MDState, c: float, kT: float, generator: torch.Generator | None) -> MDState:
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
    scale = alpha if state.n_systems == 1 else alpha[state.batch][:, None]
    work = state.thermostat_work + torch.where(moving, new - kinetic, torch.zeros_like(kinetic))
    return state.evolve(momenta=state.momenta * scale, thermostat_work=work)


# --- parameters and schemes ------------------------------------------------------------------------


@dataclass(frozen=True)
class VerletParams:
    """Velocity Verlet: ``dt`` (ASE time; a 0-d tensor in a compiled step) and ``inverse_masses`` [n, 1] 1/amu."""

    dt: float | Tensor
    inverse_masses: Tensor


@dataclass(frozen=True)
class LangevinParams(VerletParams):
    """BAOAB: ``c1`` = exp(−γ dt), ``noise_scale`` [n, 1] √((1 − c₁²) m k_B T), the noise ``generator``."""

    c1: float = 1.0
    noise_scale: Tensor | None = None
    generator: torch.Generator | None = None


@dataclass(frozen=True)
class BussiParams(VerletParams):
    """Bussi: ``c_half`` = exp(−dt/(2τ)), ``kT`` (eV), the noise ``generator``."""

    c_half: float = 1.0
    kT: float = 0.0
    generator: torch.Generator | None = None


def velocity_verlet(state: MDState, force_fn: ForceFunction, params: VerletParams) -> MDState:
    """Velocity Verlet, B(dt/2) A(dt) F B(dt/2): symplectic, time reversible, K + U conserved to O(dt²)."""
    return kick_drift_kick(state, force_fn, params.dt, lambda s, h: free_flight(s, h, params.inverse_masses))


def langevin_baoab(state: MDState, force_fn: ForceFunction, params: LangevinParams) -> MDState:
    """Langevin BAOAB: the kick–drift–kick whose drift is A(dt/2) O(dt) A(dt/2)."""

    def drift_thermalise_drift(s: MDState, h) -> MDState:
        s = free_flight(s, 0.5 * h, params.inverse_masses)
        s = ornstein_uhlenbeck(s, params.c1, params.noise_scale, params.generator)
        return free_flight(s, 0.5 * h, params.inverse_masses)

    return kick_drift_kick(state, force_fn, params.dt, drift_thermalise_drift)


def bussi(state: MDState, force_fn: ForceFunction, params: BussiParams) -> MDState:
    """Bussi: R(dt/2), velocity Verlet, R(dt/2)."""
    state = rescale_velocities(state, params.c_half, params.kT, params.generator)
    state = velocity_verlet(state, force_fn, params)
    return rescale_velocities(state, params.c_half, params.kT, params.generator)


# --- the integrators' settings, for the engine ----------------------------------------------------


class Integrator:
    """A scheme's settings: its pure step, its parameters for a state, its conserved quantity.

    Attributes:
        ensemble: "nve", "langevin", "bussi" or "npt".
        timestep_fs: the time step, fs. ``dt`` is the same in ASE time units.
        conserves_momentum: whether total momentum is a constant of motion (sets N_dof).
        stochastic: whether the step draws random numbers (a compiled step is only built for those that do not).
        step_function: ``step(state, force_fn, params) -> state``.
        params: the parameters of the last :meth:`prepare`.
    """

    ensemble = "nve"
    conserves_momentum = True
    stochastic = False
    step_function: Callable = staticmethod(velocity_verlet)

    def __init__(self, timestep_fs: float):
        timestep_fs = float(timestep_fs)
        if not math.isfinite(timestep_fs) or timestep_fs <= 0:
            raise ValueError(f"timestep_fs must be a positive finite number, got {timestep_fs}")
        self.timestep_fs = timestep_fs
        self.dt = timestep_fs * FS
        self.params = None

    def init_state(self, state: MDState) -> MDState:
        """The state this scheme steps, from the engine's initial one (a subclass with extra fields, if any)."""
        return state

    def force_provider(self, potential, state: MDState, systems, skin: float):
        """The force provider this scheme needs, or None for the engine's default (forces and energy)."""
        return None

    def prepare(self, state: MDState, generator: torch.Generator | None = None):
        """Build (and keep as ``params``) the parameters for ``state``; call again if masses change."""
        self.params = VerletParams(self.dt, (1.0 / state.masses)[:, None])
        return self.params

    def step(self, state: MDState, force_fn: ForceFunction) -> MDState:
        """``step_function(state, force_fn, params)`` with the prepared parameters."""
        return self.step_function(state, force_fn, self.params)

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
    step_function = staticmethod(langevin_baoab)

    def prepare(self, state: MDState, generator: torch.Generator | None = None) -> LangevinParams:
        c1 = math.exp(-self.friction_per_fs * self.timestep_fs)
        noise_scale = torch.sqrt((1.0 - c1**2) * self.kT * state.masses)[:, None]
        self.params = LangevinParams(self.dt, (1.0 / state.masses)[:, None], c1, noise_scale, generator)
        return self.params


class BussiThermostat(_Thermostat):
    """Velocity Verlet wrapped in Bussi stochastic velocity rescaling: R(dt/2) B A F B R(dt/2).

    ``friction_per_fs`` is 1/τ, the inverse of the thermostat's relaxation time. Rescaling keeps
    a zero total momentum at zero, so N_dof = 3N − 3.
    """

    ensemble = "bussi"
    conserves_momentum = True
    step_function = staticmethod(bussi)

    def prepare(self, state: MDState, generator: torch.Generator | None = None) -> BussiParams:
        c_half = math.exp(-0.5 * self.timestep_fs * self.friction_per_fs)
        self.params = BussiParams(self.dt, (1.0 / state.masses)[:, None], c_half, self.kT, generator)
        return self.params


#: Integrators by ensemble name (lower case): ``(factory, takes_options)``, where
#: ``factory(timestep_fs, temperature_K, friction_per_fs, **options) -> Integrator``.
_REGISTRY: dict[str, tuple[Callable[..., Integrator], bool]] = {}


def register_integrator(name: str, factory: Callable[..., Integrator], aliases=(), takes_options: bool = True) -> None:
    """Make ``ensemble=name`` (and its ``aliases``) build ``factory(timestep_fs, temperature_K,
    friction_per_fs, **options)`` in :func:`make_integrator`, ``simulate``, ``Simulation`` and
    checkpoint restore. ``options`` are the scheme's own settings (the keys of its ``config()``
    beyond ensemble, timestep_fs, temperature_K and friction_per_fs); a factory that
    ``takes_options=False`` refuses them."""
    for key in (name, *aliases):
        _REGISTRY[str(key).lower()] = (factory, takes_options)


def make_integrator(
    ensemble: str,
    timestep_fs: float,
    temperature_K: float | None = None,
    friction_per_fs: float | None = None,
    **options,
) -> Integrator:
    """Return the integrator for ``ensemble`` ("nve", "langevin", "bussi", "npt" or a registered name).

    ``options`` are a scheme's own settings: for "npt" (pressure_GPa, barostat_time_fs, compressibility_per_GPa,
    thermostat, anisotropic) they go to :class:`mlpot.dynamics.barostat.StochasticCellRescaling`; the other
    built-in ensembles refuse them.
    """
    entry = _REGISTRY.get(str(ensemble).lower())
    if entry is None:
        raise ValueError(f"unknown ensemble {ensemble!r}; choose one of {', '.join(ENSEMBLES)}")
    factory, takes_options = entry
    if options and not takes_options:
        raise ValueError(f"{', '.join(sorted(options))} only apply to ensemble 'npt', not {ensemble!r}")
    return factory(timestep_fs, temperature_K, friction_per_fs, **options)


def integrator_from_config(config: dict) -> Integrator:
    """The integrator whose ``config()`` is ``config`` (as a checkpoint stores it)."""
    standard = ("ensemble", "timestep_fs", "temperature_K", "friction_per_fs")
    options = {k: v for k, v in config.items() if k not in standard}
    return make_integrator(
        config["ensemble"], config["timestep_fs"], config.get("temperature_K"), config.get("friction_per_fs"), **options
    )


register_integrator("nve", lambda timestep_fs, *_: VelocityVerlet(timestep_fs), takes_options=False)
register_integrator("langevin", LangevinBAOAB, aliases=("nvt", "baoab"), takes_options=False)
register_integrator("bussi", BussiThermostat, aliases=("csvr",), takes_options=False)
# "npt" is registered by mlpot.dynamics.barostat, which builds on this module (and which the package imports).


def velocity_verlet_step(positions, momenta, forces, inverse_masses, dt, energy_and_forces, potential, *arguments):
    """Deprecated: velocity Verlet over bare tensors; use :func:`velocity_verlet` on an :class:`MDState`.

    Returns the new positions [n, 3], momenta [n, 3], forces [n, 3] and energy [S] (the inputs untouched),
    with the forces from ``energy_and_forces(potential, positions, *arguments) -> (energy, forces)``.
    """
    import warnings

    warnings.warn(
        "velocity_verlet_step is deprecated; use mlpot.dynamics.integrators.velocity_verlet(state, force_fn, params)",
        DeprecationWarning,
        stacklevel=2,
    )

    @dataclass
    class Phase(Evolving):
        positions: Tensor
        momenta: Tensor
        forces: Tensor
        energy: Tensor | None = None

    def force_fn(point: Phase) -> Phase:
        energy, new_forces = energy_and_forces(potential, point.positions, *arguments)
        return point.evolve(energy=energy, forces=new_forces)

    def drift_stage(point: Phase, h) -> Phase:
        return point.evolve(positions=drift(point.positions, point.momenta * inverse_masses, h))

    new = kick_drift_kick(Phase(positions, momenta, forces), force_fn, dt, drift_stage)
    return new.positions, new.momenta, new.forces, new.energy


def __getattr__(name: str):
    # Old home of the engine's health reduction (now mlpot.dynamics.health).
    if name == "health_measures":
        import warnings

        from mlpot.dynamics.health import health_measures

        warnings.warn(
            "mlpot.dynamics.integrators.health_measures moved to mlpot.dynamics.health.health_measures",
            DeprecationWarning,
            stacklevel=2,
        )
        return health_measures
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
