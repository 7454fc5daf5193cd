"""mlpot's MD engine: symplectic and stochastic integrators on a torch state, with reporters.

One call::

    from mlpot.dynamics import simulate
    final = simulate(atoms, potential, steps=1000, timestep_fs=0.5,
                     ensemble="langevin", temperature_K=300, seed=0,
                     reporters=[ThermoLog("thermo.csv", 10), TrajectoryWriter("traj.extxyz", 100)])

``potential`` is an mlpot potential (fast path: everything stays in torch, the neighbour list
is built with cutoff + skin and reused until an atom has moved skin/2) or any ASE calculator
(generic path). ``atoms`` is never modified; the final structure comes back with momenta set.

Batched replicas (several independent systems advanced in one call)
--------------------------------------------------------------------
Pass a *list* of ``ase.Atoms`` wherever one is accepted::

    finals = simulate([atoms_a, atoms_b, atoms_c], model, steps, timestep_fs=1.0,
                      ensemble="bussi", temperature_K=300, seed=1,
                      reporters=[ThermoRecorder(interval=10)])
    # finals is a list in the same order

The systems may differ in size, composition and cell. With an mlpot potential they are
concatenated into one batch (AtomicData ``batch`` index), so every step is one force call and
one neighbour list for all of them. Each system keeps its own energy, temperature, thermostat
(noise and work are per system; Bussi rescales each system by its own factor) and N_dof.
``ThermoRecorder.arrays()`` gives ``E_pot``, ``E_kin``, ``T_K`` and ``conserved`` as
[n_frames, n_systems] arrays; ``ThermoLog`` writes one CSV row per system with a ``system``
column. Replicas of one structure with ``seed`` set draw different initial momenta and noise
(one generator, consumed in order), so they are independent samples.

Integrators are pure step functions ``step(state, force_fn, params) -> state`` over one
kick–drift–kick (:mod:`mlpot.dynamics.integrators`); a new scheme registers itself with
:func:`register_integrator` and is then an ``ensemble`` like the built-in ones.

For finer control, :class:`Simulation` exposes the state (:class:`MDState`), ``run(steps)``
repeatedly (e.g. equilibration then production with different reporters), ``observables()``
and checkpoints (``save_checkpoint``/``Simulation.from_checkpoint``).

Units: ASE units inside (eV, Å, amu, ASE time); the API names its units (``timestep_fs``,
``temperature_K``, ``friction_per_fs``). See ``docs/md.md`` for the integrators, thermostats,
conserved quantities and restart.
"""

from mlpot.dynamics.barostat import NPTRecorder, StochasticCellRescaling
from mlpot.dynamics.engine import Simulation, simulate
from mlpot.dynamics.forces import ASECalculatorForces, PotentialForces
from mlpot.dynamics.health import CloseContactError, HealthCheck, MDInstabilityError
from mlpot.dynamics.integrators import (
    ENSEMBLES,
    BussiThermostat,
    Integrator,
    LangevinBAOAB,
    MDState,
    VelocityVerlet,
    bussi,
    kick_drift_kick,
    kinetic_energy,
    langevin_baoab,
    make_integrator,
    register_integrator,
    temperature,
    velocity_verlet,
)
from mlpot.dynamics.momenta import degrees_of_freedom, maxwell_boltzmann_momenta
from mlpot.dynamics.reporters import (
    CheckpointWriter,
    ProgressBar,
    Reporter,
    ThermoLog,
    ThermoRecorder,
    TrajectoryWriter,
)

__all__ = [
    "simulate",
    "Simulation",
    "HealthCheck",
    "MDInstabilityError",
    "CloseContactError",
    "MDState",
    "Integrator",
    "VelocityVerlet",
    "LangevinBAOAB",
    "BussiThermostat",
    "StochasticCellRescaling",
    "NPTRecorder",
    "make_integrator",
    "register_integrator",
    "kick_drift_kick",
    "velocity_verlet",
    "langevin_baoab",
    "bussi",
    "ENSEMBLES",
    "kinetic_energy",
    "temperature",
    "degrees_of_freedom",
    "maxwell_boltzmann_momenta",
    "PotentialForces",
    "ASECalculatorForces",
    "Reporter",
    "ThermoLog",
    "TrajectoryWriter",
    "CheckpointWriter",
    "ThermoRecorder",
    "ProgressBar",
]
