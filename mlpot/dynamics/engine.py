"""The MD loop: build a state from ``ase.Atoms``, step it with a force provider, report, checkpoint.

:class:`Simulation` owns one :class:`~mlpot.dynamics.state.MDState` (one or several independent
systems), an integrator, a force provider, a seeded random generator and the reporters.
:func:`simulate` is the one-call public entry point. Input checks and the initial state live in
:mod:`mlpot.dynamics.inputs`, the per-step checks in :mod:`mlpot.dynamics.health`, checkpoints in
:mod:`mlpot.dynamics.checkpoint`.

The hot loop does only tensor work: ``state = step(state, force_fn, params)`` (the integrator's
pure step, :mod:`mlpot.dynamics.integrators`; the provider's force function, whose neighbour-list
check is one reduction) and a health check (one fused reduction, one host sync). With a compiled
mlpot potential and a deterministic scheme, the same step function runs compiled with the force
evaluation and the checks, with one host sync (:mod:`mlpot.dynamics.compiled_step`). Reporters run
at their own intervals; Ctrl-C and SIGTERM go through :class:`mlpot.interrupts.SignalGuard`.
Restart is bit for bit (:mod:`mlpot.dynamics.checkpoint`).
"""

from __future__ import annotations

import math
import os
import secrets
from pathlib import Path
from typing import Iterable, Sequence

import ase
import numpy as np
import torch
from torch import Tensor

from mlpot.dynamics.checkpoint import CHECKPOINT_FORMAT, make_checkpoint, read_checkpoint, restore, resume
from mlpot.dynamics.compiled_step import CompiledStep
from mlpot.dynamics.forces import ASECalculatorForces, ForceProvider, PotentialForces
from mlpot.dynamics.health import (
    MIN_DISTANCE_FRACTION,
    CloseContactError,
    CloseContactGuard,
    HealthCheck,
    MDInstabilityError,
    check_contacts,
    check_health,
    health_measures,
    inverse_dof_kB,
)
from mlpot.dynamics.inputs import OVERLAP_FRACTION, check_atoms, initial_state, resolve_potential
from mlpot.dynamics.integrators import Integrator, make_integrator
from mlpot.dynamics.state import MDState, kinetic_energy, state_to_atoms, temperature
from mlpot.interrupts import SignalGuard

__all__ = [
    "Simulation",
    "simulate",
    "HealthCheck",
    "MDInstabilityError",
    "CloseContactError",
    "OVERLAP_FRACTION",
    "CHECKPOINT_FORMAT",
]


# --- the simulation --------------------------------------------------------------------------


class Simulation:
    """An MD run over one or several independent systems.

    Args:
        atoms: an ``ase.Atoms`` or a list of them (replicas or different systems, advanced
            together; with an mlpot potential they are batched into one force call).
        potential: an mlpot potential (fast path), a path to a saved mlpot model, or any ASE
            calculator (generic path). An ``MLPotCalculator`` is unwrapped to its model (fast path).
        timestep_fs: time step, fs (> 0).
        ensemble: "nve", "langevin" (BAOAB), "bussi" (stochastic velocity rescaling) or "npt"
            (stochastic cell rescaling on Langevin or Bussi, :mod:`mlpot.dynamics.barostat`).
        temperature_K: thermostat target; also the Maxwell–Boltzmann temperature used to draw
            initial momenta when the input atoms carry none (all zero).
        friction_per_fs: Langevin friction γ, or 1/τ for Bussi, 1/fs (default 0.01).
        seed: seed of the random generator (momenta, thermostat noise); None draws one.
        reporters: objects with ``interval`` and ``start/report/close(sim)`` (see reporters.py).
        skin: neighbour-list skin, Å (fast path).
        health: bounds checked after every step.
        min_distance_fraction: stop with :class:`CloseContactError` when two atoms come closer
            than this fraction of the shortest distance of their element pair in the model's
            training data (``potential.training_min_distances``); None turns the check off. Models
            without that record are not checked.
        device, dtype: the fast path's device and dtype (default: those of the potential's
            parameters; the potential must accept tensors on that device).

    The input atoms are never modified. Initial momenta: those of the atoms when any is
    non-zero, else Maxwell–Boltzmann at ``temperature_K``, else zero. For "nve" and "bussi",
    which conserve the total momentum (and, for a system with no periodic axis, the angular
    momentum), both are set to zero (given momenta that carry any lose it, with a warning), and
    temperatures use N_dof = 3N − 3 (periodic), 3N − 6 (isolated) or 3N − 5 (isolated, linear);
    "langevin" uses 3N (:mod:`mlpot.dynamics.momenta`). ``sim.state.n_dof`` holds them.
    """

    def __init__(
        self,
        atoms: ase.Atoms | Sequence[ase.Atoms],
        potential,
        timestep_fs: float,
        ensemble: str = "nve",
        temperature_K: float | None = None,
        friction_per_fs: float | None = None,
        seed: int | None = None,
        reporters: Iterable = (),
        skin: float = 1.0,
        health: HealthCheck | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        min_distance_fraction: float | None = MIN_DISTANCE_FRACTION,
        pressure_GPa: float | None = None,
        barostat_time_fs: float | None = None,
        **barostat_options,
    ):
        systems = [atoms] if isinstance(atoms, ase.Atoms) else list(atoms)
        if not systems:
            raise ValueError("no systems given")
        self.batched_input = not isinstance(atoms, ase.Atoms)
        for k, system in enumerate(systems):
            check_atoms(system, k, len(systems))
        # NPT only (mlpot.dynamics.barostat): P₀, τ_p and the rest; make_integrator refuses them elsewhere.
        npt_options = {"pressure_GPa": pressure_GPa, "barostat_time_fs": barostat_time_fs, **barostat_options}
        npt_options = {k: v for k, v in npt_options.items() if v is not None}
        self.integrator: Integrator = make_integrator(
            ensemble, timestep_fs, temperature_K, friction_per_fs, **npt_options
        )
        if temperature_K is not None and (not math.isfinite(float(temperature_K)) or float(temperature_K) < 0):
            raise ValueError(f"temperature_K must be a non-negative finite number, got {temperature_K}")
        if not (math.isfinite(float(skin)) and skin >= 0):
            raise ValueError(f"skin must be a non-negative finite number, got {skin}")
        self.temperature_K = temperature_K
        self.health = health or HealthCheck()
        self.reporters = list(reporters)
        for reporter in self.reporters:
            if int(getattr(reporter, "interval", 0)) < 1:
                raise ValueError(f"reporter {reporter!r} needs a positive integer 'interval'")

        self.potential, self.fast_path, self.device, self.dtype = resolve_potential(potential, device, dtype)
        potential = self.potential

        self.seed = int(seed) if seed is not None else secrets.randbits(63)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(self.seed)
        self.skin = float(skin)
        self._template = [a.copy() for a in systems]
        for a in self._template:
            a.calc = None
        conserving = self.integrator.conserves_momentum
        state = initial_state(systems, conserving, temperature_K, self.generator, self.device, self.dtype)
        self.state: MDState = self.integrator.init_state(state)
        self.forces: ForceProvider = self._make_forces()
        self.integrator.prepare(self.state, self.generator)
        guard = CloseContactGuard.for_potential(potential, min_distance_fraction, self.device, self.dtype)
        self.contact_guard = guard if self.fast_path else None
        self._prepare_step()
        self._guard = SignalGuard(enabled=False)
        #: True after :meth:`run` (with ``handle_signals``) stopped early for SIGINT/SIGTERM;
        #: :attr:`interrupt_signal` is then the signal's number.
        self.interrupted = False
        #: False while a step is in progress or after a failed health check: the state is then
        #: not one to checkpoint.
        self.state_is_good = True
        #: False while the reporters are at the current step: a checkpoint written on closing
        #: after an exception there would hold some reporters' records of that step and not
        #: others', so a final checkpoint needs both flags.
        self.reports_done = True
        self._started = False
        self._have_forces = False
        #: The step of the checkpoint this simulation was resumed from (None for a fresh run);
        #: reporters cut their files back to it when they first open them.
        self.resumed_from_step: int | None = None
        self._last_report: dict[int, int] = {}

    @property
    def interrupt_signal(self) -> int | None:
        """The signal that interrupted the last :meth:`run`, or None."""
        return self._guard.signum if self.interrupted else None

    # -- observables (cheap, on device) -------------------------------------------------------

    @property
    def time_fs(self) -> float:
        return self.state.step * self.integrator.timestep_fs

    def kinetic_energy(self) -> Tensor:
        """[n_systems] eV."""
        return kinetic_energy(self.state)

    def temperature(self) -> Tensor:
        """[n_systems] K, with ``state.n_dof`` degrees of freedom."""
        return temperature(self.state)

    def conserved(self) -> Tensor:
        """[n_systems] eV: K + U (NVE) or K + U − thermostat work (NVT)."""
        return self.integrator.conserved(self.state)

    def observables(self) -> dict[str, np.ndarray]:
        """Per-system E_pot, E_kin, T_K, conserved (one host sync, cached per step), float64 numpy arrays."""
        cached = getattr(self, "_observables_cache", None)
        if cached is not None and cached[0] == self.state.step and self.state_is_good:
            return cached[1]
        state, kinetic = self.state, kinetic_energy(self.state)
        conserved = self.integrator.conserved(state, kinetic)
        stacked = torch.stack((state.energy, kinetic, temperature(state, kinetic), conserved))
        values = stacked.detach().to("cpu", torch.float64).numpy()
        result = {"E_pot": values[0], "E_kin": values[1], "T_K": values[2], "conserved": values[3]}
        self._observables_cache = (self.state.step, result)
        return result

    def atoms(self) -> list[ase.Atoms]:
        """The current structures (positions, momenta; energy and forces as a SinglePointCalculator)."""
        return state_to_atoms(self.state, self._template, self.time_fs)

    # -- running ------------------------------------------------------------------------------

    def _make_forces(self) -> ForceProvider:
        """The integrator's own force provider (NPT's, with the stress), else the fast or the generic path's."""
        provider = self.integrator.force_provider(self.potential, self.state, self._template, self.skin)
        if provider is not None:
            return provider
        if self.fast_path:
            return PotentialForces(self.potential, self.state, skin=self.skin)
        return ASECalculatorForces(self.potential, self._template)

    def _prepare_step(self) -> None:
        """Constants of the per-step check (1/m per atom, 1/(N_dof k_B) per system) and, where the
        potential evaluates compiled and the scheme is deterministic, the compiled step."""
        self._health_inverse_masses = 1.0 / self.state.masses
        self._health_inverse_dof_kB = inverse_dof_kB(self.state.n_dof)
        constants = (self._health_inverse_masses, self._health_inverse_dof_kB)
        applies = CompiledStep.applies(self.integrator, self.forces)
        self._compiled_step = CompiledStep(self.integrator, self.forces, *constants) if applies else None

    def _check_health(self, measures: Sequence[float] | None = None) -> None:
        """Raise MDInstabilityError unless the state is finite and within bounds (``measures`` as
        :func:`~mlpot.dynamics.health.health_measures` gives them; computed here, one host sync, when None)."""
        state = self.state
        if measures is None:
            measures = health_measures(
                state.positions, state.momenta, state.forces, state.energy,
                self._health_inverse_masses, self._health_inverse_dof_kB, state.batch,
            ).tolist()
        check_health(state, measures, self.health, self.time_fs)

    def _start(self) -> None:
        if self._started:
            return
        if not self._have_forces:
            self.state_is_good = False
            self.state = self.forces.evaluate(self.state)
            self._have_forces = True
        self._check_health()
        if self.contact_guard is not None:
            check_contacts(self.contact_guard, self.forces, self.state, self.time_fs)
        self.state_is_good = True
        for reporter in self.reporters:
            reporter.start(self)
        self._started = True
        # Report the starting step to every reporter that has not seen it (a fresh run's step 0,
        # or a reporter added between runs); a resumed run's step was reported before the checkpoint.
        step = self.state.step
        self.reports_done = False
        for reporter in self.reporters:
            if step % reporter.interval == 0 and self._last_report.get(id(reporter)) != step:
                reporter.report(self)
                self._last_report[id(reporter)] = step
        self.reports_done = True

    def _report(self) -> None:
        step = self.state.step
        self.reports_done = False
        for reporter in self.reporters:
            if step % reporter.interval == 0:
                reporter.report(self)
                self._last_report[id(reporter)] = step
        self.reports_done = True

    def request_stop(self, *args) -> None:
        """Ask the loop to stop after the current step (what SIGINT/SIGTERM do while ``run`` handles them).

        A second request before the loop has stopped raises KeyboardInterrupt at once (for a
        force call that hangs); no checkpoint is then written for the unfinished step.
        """
        self._guard.request(*args)

    def run(self, steps: int, handle_signals: bool = False, progress=None) -> MDState:
        """Advance ``steps`` steps (reporters run at their intervals); returns the state.

        Args:
            steps: number of steps (≥ 0).
            handle_signals: catch SIGINT/SIGTERM (:class:`mlpot.interrupts.SignalGuard`), finish the
                current step, close reporters (a checkpoint reporter then writes a final checkpoint)
                and set ``interrupted``.
            progress: optional callable ``progress(sim)`` run after every step (e.g. a bar).

        Raises:
            CloseContactError: two atoms closer than ``min_distance_fraction`` of their training minimum.
            MDInstabilityError: non-finite or exploding forces or temperature; reporters are
                closed first, so their files end at the last good step.
        """
        steps = int(steps)
        if steps < 0:
            raise ValueError(f"steps must be non-negative, got {steps}")
        self.interrupted = False
        self._observables_cache = None
        self._guard = guard = SignalGuard(enabled=handle_signals)
        try:
            with guard, torch.no_grad():
                self._start()
                step, params = self.integrator.step_function, self.integrator.params
                force_fn = self.forces.evaluate
                compiled_step = self._compiled_step
                guard_contacts = self.contact_guard is not None
                for _ in range(steps):
                    self._observables_cache = None
                    self.state_is_good = False
                    state = self.state
                    taken = compiled_step.step(state) if compiled_step is not None else None
                    if taken is None:  # the generic step: no compiled evaluator, or a rebuild is due
                        new, measures = step(state, force_fn, params), None
                    else:
                        new, measures = taken
                    new.step = state.step + 1  # a new state: the step functions never return their input
                    self.state = new
                    self._check_health(measures)
                    if guard_contacts:
                        check_contacts(self.contact_guard, self.forces, self.state, self.time_fs)
                    self.state_is_good = True
                    self._report()
                    if progress is not None:
                        progress(self)
                    if guard.requested:
                        self.interrupted = True
                        break
        finally:
            self.close()
        return self.state

    def close(self) -> None:
        """Close reporters (flush files; a checkpoint reporter writes the final state)."""
        if not self._started:
            return
        for reporter in self.reporters:
            reporter.close(self)
        self._started = False

    # -- checkpoints --------------------------------------------------------------------------

    def checkpoint(self) -> dict:
        """Everything needed to continue bit for bit (:func:`mlpot.dynamics.checkpoint.make_checkpoint`)."""
        return make_checkpoint(self)

    def _potential_fingerprint(self) -> str:
        """Hash of the potential's config and weights (computed once: MD never changes the weights)."""
        if getattr(self, "_fingerprint", None) is None:
            from mlpot.models.serialization import model_fingerprint

            self._fingerprint = model_fingerprint(self.potential)
        return self._fingerprint

    def save_checkpoint(self, path: str | os.PathLike, extra: dict | None = None) -> Path:
        """Write :meth:`checkpoint`, with the hash of the potential, through :func:`mlpot.files.atomic_torch_save`
        (temporary file in the same folder, fsync, rename; a full disk leaves the previous checkpoint intact).
        ``extra`` (plain tensors, numbers and strings: what the caller needs to continue) is stored
        under ``"extra"``, in the same file, so that it always belongs to the same step."""
        from mlpot.files import atomic_torch_save

        data = {**self.checkpoint(), "potential_fingerprint": self._potential_fingerprint()}
        if extra is not None:
            data["extra"] = extra
        path = atomic_torch_save(data, path)
        self.forces.checkpoint_written()
        return path

    def load_checkpoint(self, path_or_dict) -> None:
        """Continue from a checkpoint written by :meth:`save_checkpoint` for the same systems.

        The integrator settings of the checkpoint win over the constructor's (a warning-free
        exact continuation); reporters then append from the checkpoint's step.
        """
        data = path_or_dict if isinstance(path_or_dict, dict) else read_checkpoint(path_or_dict)
        restore(self, data)

    @classmethod
    def from_checkpoint(
        cls, path, atoms, potential, reporters: Iterable = (), expected: dict | None = None, **kwargs
    ) -> "Simulation":
        """Build a simulation for ``atoms`` (same systems as the run that wrote ``path``) and resume it.

        Args:
            expected: the settings the caller asked for, checked against the checkpoint's:
                ``integrator`` (keys of an integrator's ``config()``: ensemble, timestep_fs, ...),
                ``skin`` (Å), ``seed``; a key that is absent or None, or that the checkpoint's
                integrator does not have, is not checked.

        Raises:
            ValueError: naming every setting that differs, or another potential (see
                :meth:`load_checkpoint`).
        """
        return resume(cls, path, atoms, potential, reporters, expected, **kwargs)


def simulate(
    atoms: ase.Atoms | Sequence[ase.Atoms],
    potential,
    steps: int,
    timestep_fs: float,
    ensemble: str = "nve",
    temperature_K: float | None = None,
    friction_per_fs: float | None = None,
    seed: int | None = None,
    reporters: Iterable = (),
    skin: float = 1.0,
    min_distance_fraction: float | None = MIN_DISTANCE_FRACTION,
    pressure_GPa: float | None = None,
    barostat_time_fs: float | None = None,
    **barostat_options,
) -> ase.Atoms | list[ase.Atoms]:
    """Run MD and return the final structure(s), with momenta set; ``atoms`` is not modified.

    Args:
        atoms: an ``ase.Atoms``, or a list of them to advance together as independent systems
            (batched replicas): a list in gives a list out, in the same order.
        potential: an mlpot potential (fast path: torch all the way, neighbour list with skin)
            or any ASE calculator (generic path).
        steps: number of steps.
        timestep_fs: time step, fs.
        ensemble: "nve" (velocity Verlet), "langevin" (BAOAB) or "bussi" (velocity rescaling).
        temperature_K: target temperature of the thermostat; when the atoms carry no momenta
            it also sets the Maxwell–Boltzmann draw of the initial momenta (zero total momentum).
        friction_per_fs: Langevin friction γ, or Bussi's 1/τ, in 1/fs (default 0.01).
        seed: random seed (initial momenta and thermostat noise).
        reporters: reporters from :mod:`mlpot.dynamics.reporters`.
        skin: neighbour-list skin, Å.
        min_distance_fraction: stop with :class:`CloseContactError` when two atoms come closer
            than this fraction of their element pair's shortest distance in the model's training
            data; None turns the check off (see :class:`Simulation`).
        pressure_GPa, barostat_time_fs, barostat_options: for ``ensemble="npt"`` only: target
            pressure (GPa, default 0), τ_p (fs, default 500) and ``compressibility_per_GPa``,
            ``thermostat`` ("langevin" or "bussi"), ``anisotropic`` (see
            :class:`mlpot.dynamics.barostat.StochasticCellRescaling`).

    Returns:
        The final ``ase.Atoms`` (a list for a list input) with positions, momenta and a
        SinglePointCalculator holding the final energy and forces; ``info["md_step"]``.
    """
    sim = Simulation(
        atoms,
        potential,
        timestep_fs,
        ensemble=ensemble,
        temperature_K=temperature_K,
        friction_per_fs=friction_per_fs,
        seed=seed,
        reporters=reporters,
        skin=skin,
        min_distance_fraction=min_distance_fraction,
        pressure_GPa=pressure_GPa,
        barostat_time_fs=barostat_time_fs,
        **barostat_options,
    )
    sim.run(steps)
    final = sim.atoms()
    return final if sim.batched_input else final[0]
