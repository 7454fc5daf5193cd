"""The MD loop: build a state from ``ase.Atoms``, step it with a force provider, report, checkpoint.

:class:`Simulation` owns one :class:`~mlpot.dynamics.integrators.MDState` (one or several
independent systems), an integrator, a force provider, a seeded random generator and the
reporters. :func:`simulate` is the one-call public entry point.

The hot loop does only tensor work: the integrator's in-place updates, one force call (the
neighbour-list check inside it is one reduction), and a health check (one fused reduction,
one host sync). With a compiled mlpot potential, NVE steps are one compiled graph each, checks
included, with one host sync (:mod:`mlpot.dynamics.compiled_step`). Reporters run at their own
fixed intervals and are the only other place where numbers leave the device.

Restart is bit for bit: a checkpoint holds the state, the integrator's parameters, the
generator's state and the force provider's neighbour list, so a run resumed from step k takes
exactly the steps an uninterrupted run takes.
"""

from __future__ import annotations

import math
import os
import secrets
import signal
import threading
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import ase
import numpy as np
import torch
from ase.data import covalent_radii
from torch import Tensor

from mlpot.dynamics.barostat import NPT_OPTIONS
from mlpot.dynamics.compiled_step import CompiledVerlet
from mlpot.dynamics.forces import ASECalculatorForces, ForceProvider, PotentialForces
from mlpot.dynamics.health import (
    MIN_DISTANCE_FRACTION,
    CloseContactError,
    CloseContactGuard,
    HealthCheck,
    MDInstabilityError,
)
from mlpot.dynamics.integrators import (
    Integrator,
    MDState,
    VelocityVerlet,
    health_measures,
    kinetic_energy,
    make_integrator,
    temperature,
)
from mlpot.dynamics.momenta import (
    degrees_of_freedom,
    maxwell_boltzmann_momenta,
    net_motion,
    remove_net_motion,
    rigid_rotations,
)
from mlpot.files import safe_torch_load
from mlpot.models.potential import edge_vectors
from mlpot.neighbors import neighbor_list
from mlpot.units import KB_EV_PER_K

__all__ = [
    "Simulation",
    "simulate",
    "HealthCheck",
    "MDInstabilityError",
    "CloseContactError",
    "OVERLAP_FRACTION",
    "CHECKPOINT_FORMAT",
]

#: Two atoms closer than this fraction of the sum of their covalent radii count as overlapping.
OVERLAP_FRACTION = 0.3

CHECKPOINT_FORMAT = "mlpot.dynamics.checkpoint/1"


# --- input -----------------------------------------------------------------------------------


def _is_ase_calculator(potential) -> bool:
    from ase.calculators.calculator import BaseCalculator

    return isinstance(potential, BaseCalculator) or (
        hasattr(potential, "get_forces") and hasattr(potential, "get_potential_energy")
    )


def _check_atoms(atoms: ase.Atoms, index: int, n_systems: int) -> None:
    """Raise ValueError, naming the system and atoms, for input no step should see."""
    where = f"system {index}: " if n_systems > 1 else ""
    if not isinstance(atoms, ase.Atoms):
        raise TypeError(f"{where}expected ase.Atoms, got {type(atoms).__name__}")
    if len(atoms) == 0:
        raise ValueError(f"{where}no atoms")
    if atoms.constraints:
        raise ValueError(f"{where}constraints ({atoms.constraints}) are not supported by the mlpot MD engine")
    positions = atoms.get_positions()
    bad = np.flatnonzero(~np.isfinite(positions).all(axis=1))
    if bad.size:
        raise ValueError(f"{where}positions of atoms {bad[:10].tolist()} are NaN or infinite")
    momenta = atoms.get_momenta()
    bad = np.flatnonzero(~np.isfinite(momenta).all(axis=1))
    if bad.size:
        raise ValueError(f"{where}momenta of atoms {bad[:10].tolist()} are NaN or infinite")
    masses = atoms.get_masses()
    bad = np.flatnonzero(~(np.isfinite(masses) & (masses > 0)))
    if bad.size:
        raise ValueError(
            f"{where}atoms {bad[:10].tolist()} have non-positive or non-finite masses {masses[bad[:10]].tolist()} amu"
        )
    cell = atoms.cell.array
    if atoms.pbc.any():
        periodic = cell[atoms.pbc]
        if np.linalg.matrix_rank(periodic) < periodic.shape[0]:
            raise ValueError(f"{where}the cell is singular on its periodic axes {np.flatnonzero(atoms.pbc).tolist()}")
    # Overlaps: every pair closer than OVERLAP_FRACTION·(r_i + r_j), periodic images included.
    radii = covalent_radii[atoms.numbers]
    reach = OVERLAP_FRACTION * 2.0 * float(radii.max())
    if len(atoms) > 1 or atoms.pbc.any():
        pos = torch.as_tensor(positions, dtype=torch.float64)
        edge_index, edge_shift = neighbor_list(
            pos,
            max(reach, 1e-3),
            cell=torch.as_tensor(cell, dtype=torch.float64),
            pbc=torch.as_tensor(atoms.pbc),
        )
        if edge_index.shape[1]:
            i, j = edge_index.numpy()
            d = np.linalg.norm(positions[j] - positions[i] + edge_shift.numpy() @ cell, axis=1)
            too_close = d < OVERLAP_FRACTION * (radii[i] + radii[j])
            if too_close.any():
                k = int(np.flatnonzero(too_close)[0])
                raise ValueError(
                    f"{where}atoms {int(i[k])} and {int(j[k])} overlap: {d[k]:.3g} Å apart "
                    f"(less than {OVERLAP_FRACTION} of the sum of their covalent radii); "
                    f"{int(too_close.sum()) // 2 or 1} such pairs"
                )


def _potential_device_dtype(potential: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    for tensor in list(potential.parameters()) + list(potential.buffers()):
        if torch.is_floating_point(tensor):
            return tensor.device, tensor.dtype
    return torch.device("cpu"), torch.float64


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
            _check_atoms(system, k, len(systems))
        # NPT only (mlpot.dynamics.barostat): P₀, τ_p and the rest; make_integrator refuses them elsewhere.
        npt_options = {"pressure_GPa": pressure_GPa, "barostat_time_fs": barostat_time_fs, **barostat_options}
        npt_options = {k: v for k, v in npt_options.items() if v is not None}
        self.integrator: Integrator = make_integrator(ensemble, timestep_fs, temperature_K, friction_per_fs, **npt_options)
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

        if isinstance(potential, (str, os.PathLike)):
            from mlpot import load_model  # the lead's model I/O

            potential = load_model(potential)
        if type(potential).__name__ == "MLPotCalculator" and isinstance(getattr(potential, "model", None), torch.nn.Module):
            potential = potential.model  # an mlpot model behind an ASE calculator: take the fast path
        self.potential = potential
        self.fast_path = isinstance(potential, torch.nn.Module)
        if self.fast_path:
            model_device, model_dtype = _potential_device_dtype(potential)
            self.device = torch.device(device) if device is not None else model_device
            self.dtype = dtype or model_dtype
        elif _is_ase_calculator(potential):
            self.device, self.dtype = torch.device("cpu"), torch.float64
        else:
            raise TypeError(
                f"potential must be an mlpot potential (torch.nn.Module with 'cutoff') or an ASE calculator, "
                f"got {type(potential).__name__}"
            )

        self.seed = int(seed) if seed is not None else secrets.randbits(63)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(self.seed)
        self.state = self._initial_state(systems)
        self.integrator.prepare(self.state)
        if self.integrator.ensemble == "npt":  # the cell moves: forces with stress, a list per step
            from mlpot.dynamics.barostat import CellForces

            self.forces: ForceProvider = CellForces(potential, self.state, systems, skin=skin)
            self.integrator.attach(self.forces)
        elif self.fast_path:
            self.forces = PotentialForces(potential, self.state, skin=skin)
        else:
            self.forces = ASECalculatorForces(potential, systems)
        self.contact_guard = (
            CloseContactGuard.for_potential(potential, min_distance_fraction, self.device, self.dtype)
            if self.fast_path
            else None
        )
        self._prepare_step()
        self.skin = float(skin)
        self._template = [a.copy() for a in systems]
        for a in self._template:
            a.calc = None
        self._stop = False
        self.interrupted = False
        #: False while a step is in progress or after a failed health check: the state is then
        #: not one to checkpoint.
        self.state_is_good = True
        self._started = False
        self._have_forces = False
        #: The step of the checkpoint this simulation was resumed from (None for a fresh run);
        #: reporters cut their files back to it when they first open them.
        self.resumed_from_step: int | None = None
        self._last_report: dict[int, int] = {}

    # -- construction -------------------------------------------------------------------------

    def _initial_state(self, systems: list[ase.Atoms]) -> MDState:
        kw = {"dtype": self.dtype, "device": self.device}
        n_systems = len(systems)
        positions = torch.as_tensor(np.concatenate([a.get_positions() for a in systems]), **kw)
        masses = torch.as_tensor(np.concatenate([a.get_masses() for a in systems]), **kw)
        numbers = torch.as_tensor(np.concatenate([a.numbers for a in systems]), dtype=torch.int64, device=self.device)
        sizes = torch.tensor([len(a) for a in systems], dtype=torch.int64)
        batch = torch.repeat_interleave(torch.arange(n_systems), sizes).to(self.device)
        cell = torch.as_tensor(np.stack([a.cell.array for a in systems]), **kw)
        pbc = torch.as_tensor(np.stack([a.pbc for a in systems]), dtype=torch.bool, device=self.device)
        momenta = torch.as_tensor(np.concatenate([a.get_momenta() for a in systems]), **kw)
        conserving = self.integrator.conserves_momentum
        rotations = rigid_rotations(positions, masses, batch, n_systems, pbc) if conserving else None
        if not bool(momenta.any()) and self.temperature_K:
            momenta = maxwell_boltzmann_momenta(masses, batch, n_systems, float(self.temperature_K), self.generator)
            if rotations is not None:
                momenta = remove_net_motion(positions, momenta, masses, batch, n_systems, rotations)
        elif conserving and bool(momenta.any()):
            momenta = self._without_net_motion(positions, momenta, masses, batch, n_systems, rotations)
        n_dof = degrees_of_freedom(sizes, conserving, rotations).to(**kw)
        zeros = torch.zeros(n_systems, **kw)
        return MDState(
            positions=positions,
            momenta=momenta,
            masses=masses,
            numbers=numbers,
            cell=cell,
            pbc=pbc,
            batch=batch,
            forces=torch.zeros_like(positions),
            energy=zeros.clone(),
            thermostat_work=zeros.clone(),
            n_dof=n_dof,
            step=0,
        )

    @staticmethod
    def _without_net_motion(positions, momenta, masses, batch, n_systems, rotations) -> Tensor:
        """User-given momenta with their net (and, for isolated systems, angular) momentum
        removed, with a warning when there was any: the temperature's N_dof assumes them zero."""
        total, angular = net_motion(positions, momenta, masses, batch, n_systems)
        # Round-off of a sum of n momenta is ~√n ε |p|: anything well above it was given on purpose.
        scale = 64 * torch.finfo(momenta.dtype).eps * math.sqrt(momenta.shape[0]) * momenta.norm(dim=1).max()
        radius = (positions - positions.mean(dim=0)).norm(dim=1).max().clamp(min=1.0)
        moving = total.norm(dim=1) > scale
        rotating = (angular.norm(dim=1) > scale * radius) & (rotations > 0)
        if bool(moving.any()) or bool(rotating.any()):
            what = " and ".join(
                text for text, flag in (("net momentum", moving), ("net angular momentum", rotating)) if bool(flag.any())
            )
            systems = sorted(set(torch.nonzero(moving | rotating).flatten().tolist()))
            warnings.warn(
                f"the given momenta carry {what} (systems {systems[:10]}); removed, since it is a constant of "
                f"motion that the temperature's degrees of freedom exclude",
                stacklevel=4,
            )
            return remove_net_motion(positions, momenta, masses, batch, n_systems, rotations)
        return momenta

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
        kinetic = kinetic_energy(self.state)
        stacked = torch.stack(
            (self.state.energy, kinetic, temperature(self.state, kinetic), self.integrator.conserved(self.state, kinetic))
        )
        values = stacked.detach().to("cpu", torch.float64).numpy()
        result = {"E_pot": values[0], "E_kin": values[1], "T_K": values[2], "conserved": values[3]}
        self._observables_cache = (self.state.step, result)
        return result

    def atoms(self) -> list[ase.Atoms]:
        """The current structures (positions, momenta; energy and forces as a SinglePointCalculator)."""
        from ase.calculators.singlepoint import SinglePointCalculator

        positions = self.state.positions.detach().to("cpu", torch.float64).numpy()
        momenta = self.state.momenta.detach().to("cpu", torch.float64).numpy()
        forces = self.state.forces.detach().to("cpu", torch.float64).numpy()
        energy = self.state.energy.detach().to("cpu", torch.float64).numpy()
        cells = self.state.cell.detach().to("cpu", torch.float64).numpy()
        out, start = [], 0
        for k, template in enumerate(self._template):
            stop = start + len(template)
            atoms = template.copy()
            atoms.set_cell(cells[k])  # NPT moves it
            atoms.set_positions(positions[start:stop])
            atoms.set_momenta(momenta[start:stop], apply_constraint=False)
            atoms.calc = SinglePointCalculator(atoms, energy=float(energy[k]), forces=forces[start:stop].copy())
            atoms.info["md_step"] = self.state.step
            atoms.info["md_time_fs"] = self.time_fs
            out.append(atoms)
            start = stop
        return out

    # -- running ------------------------------------------------------------------------------

    def _compute_forces(self, state: MDState) -> None:
        self.forces(state)

    def _prepare_step(self) -> None:
        """Constants of the per-step check (1/m per atom, 1/(N_dof k_B) per system) and, for NVE
        on the fast path, the compiled step (used where the potential evaluates compiled)."""
        state = self.state
        self._health_inverse_masses = 1.0 / state.masses
        self._health_inverse_dof_kB = torch.where(
            state.n_dof > 0, 1.0 / (state.n_dof.clamp(min=1.0) * KB_EV_PER_K), torch.zeros_like(state.n_dof)
        )
        self._compiled_step = None
        if isinstance(self.forces, PotentialForces) and type(self.integrator) is VelocityVerlet:
            self._compiled_step = CompiledVerlet(
                self.integrator, self.forces, self._health_inverse_masses, self._health_inverse_dof_kB
            )

    def _check_health(self, measures: Sequence[float] | None = None) -> None:
        """Raise MDInstabilityError unless max |F|², max T over systems, the energy sum and the
        largest coordinate (``measures``, as :func:`health_measures` gives them; computed here, one
        host sync, when None) are finite and within bounds."""
        state = self.state
        if measures is None:
            measures = health_measures(
                state.positions, state.momenta, state.forces, state.energy,
                self._health_inverse_masses, self._health_inverse_dof_kB, state.batch,
            ).tolist()
        fmax2, tmax, energy, largest_coordinate = measures
        problems = []
        if not math.isfinite(largest_coordinate):
            bad = torch.nonzero(~torch.isfinite(state.positions).all(dim=1)).flatten()[:10].tolist()
            problems.append(f"non-finite positions (atoms {bad})")
        if not math.isfinite(fmax2) or not math.isfinite(energy):
            bad = torch.nonzero(~torch.isfinite(state.forces).all(dim=1)).flatten()[:10].tolist()
            problems.append(f"non-finite forces or energy (atoms {bad})")
        elif fmax2 > self.health.max_force**2:
            problems.append(f"force {math.sqrt(fmax2):.4g} eV/Å exceeds max_force {self.health.max_force:g} eV/Å")
        if not math.isfinite(tmax):
            problems.append("non-finite temperature")
        elif tmax > self.health.max_temperature_K:
            problems.append(f"temperature {tmax:.4g} K exceeds max_temperature_K {self.health.max_temperature_K:g} K")
        if problems:
            raise MDInstabilityError(
                f"MD stopped at step {state.step} (t = {self.time_fs:g} fs): {'; '.join(problems)}. "
                f"Reporter output holds everything up to the last good step, {max(state.step - 1, 0)}."
            )

    def _check_contacts(self) -> None:
        """Raise CloseContactError when a pair of the neighbour list is a close contact (one host sync)."""
        forces, state = self.forces, self.state
        cell = state.cell if forces.periodic else None
        vectors = edge_vectors(state.positions, forces.edge_index, forces.edge_shift, cell, state.batch)
        found = self.contact_guard.find(vectors, forces.edge_index, state.numbers)
        if found is not None:
            raise CloseContactError(
                f"MD stopped at step {state.step} (t = {self.time_fs:g} fs): "
                f"{self.contact_guard.describe(found, state.numbers)}. The model's energy there is an "
                f"extrapolation (train on such geometries, add the ZBL repulsion prior, or pass "
                f"min_distance_fraction=None to go on). Reporter output holds everything up to the last good "
                f"step, {max(state.step - 1, 0)}."
            )

    def _start(self) -> None:
        if self._started:
            return
        if not self._have_forces:
            self.state_is_good = False
            self._compute_forces(self.state)
            self._have_forces = True
        self._check_health()
        if self.contact_guard is not None:
            self._check_contacts()
        self.state_is_good = True
        for reporter in self.reporters:
            reporter.start(self)
        self._started = True
        # Report the starting step to every reporter that has not seen it (a fresh run's step 0,
        # or a reporter added between runs); a resumed run's step was reported before the checkpoint.
        step = self.state.step
        for reporter in self.reporters:
            if step % reporter.interval == 0 and self._last_report.get(id(reporter)) != step:
                reporter.report(self)
                self._last_report[id(reporter)] = step

    def _report(self) -> None:
        step = self.state.step
        for reporter in self.reporters:
            if step % reporter.interval == 0:
                reporter.report(self)
                self._last_report[id(reporter)] = step

    def request_stop(self, *_args) -> None:
        """Ask the loop to stop after the current step (the SIGINT/SIGTERM handler).

        A second request before the loop has stopped raises KeyboardInterrupt at once (for a
        force call that hangs); no checkpoint is then written for the unfinished step.
        """
        if self._stop:
            raise KeyboardInterrupt
        self._stop = True

    def run(self, steps: int, handle_signals: bool = False, progress=None) -> MDState:
        """Advance ``steps`` steps (reporters run at their intervals); returns the state.

        Args:
            steps: number of steps (≥ 0).
            handle_signals: catch SIGINT/SIGTERM, finish the current step, close reporters
                (a checkpoint reporter then writes a final checkpoint) and set ``interrupted``.
            progress: optional callable ``progress(sim)`` run after every step (e.g. a bar).

        Raises:
            CloseContactError: two atoms closer than ``min_distance_fraction`` of their training minimum.
            MDInstabilityError: non-finite or exploding forces or temperature; reporters are
                closed first, so their files end at the last good step.
        """
        steps = int(steps)
        if steps < 0:
            raise ValueError(f"steps must be non-negative, got {steps}")
        previous = {}
        if handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, self.request_stop)
        self._stop = False
        self.interrupted = False
        self._observables_cache = None
        try:
            with torch.no_grad():
                self._start()
                step_fn = self.integrator.step
                compute = self._compute_forces
                state, generator = self.state, self.generator
                compiled_step = self._compiled_step
                check_contacts = self.contact_guard is not None
                for _ in range(steps):
                    self._observables_cache = None
                    self.state_is_good = False
                    measures = compiled_step.step(state) if compiled_step is not None else None
                    if measures is None:  # the generic step: no compiled evaluator, or a rebuild is due
                        step_fn(state, compute, generator)
                    self._check_health(measures)
                    if check_contacts:
                        self._check_contacts()
                    self.state_is_good = True
                    self._report()
                    if progress is not None:
                        progress(self)
                    if self._stop:
                        self.interrupted = True
                        break
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
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
        """Everything needed to continue bit for bit: plain tensors, numbers and strings only."""
        state = {k: v.detach().cpu() for k, v in self.state.tensors().items()}
        return {
            "format": CHECKPOINT_FORMAT,
            "step": int(self.state.step),
            "state": state,
            "integrator": self.integrator.config(),
            "seed": int(self.seed),
            "rng_state": self.generator.get_state().cpu(),
            "rng_device": str(self.device),
            "forces_provider": self.forces.state_dict(),
            "skin": self.skin,
            "n_systems": self.state.n_systems,
            "sizes": [len(a) for a in self._template],
        }

    def _potential_fingerprint(self) -> str:
        """Hash of the potential's config and weights (computed once: MD never changes the weights)."""
        if getattr(self, "_fingerprint", None) is None:
            from mlpot.models.serialization import model_fingerprint

            self._fingerprint = model_fingerprint(self.potential)
        return self._fingerprint

    def save_checkpoint(self, path: str | os.PathLike) -> Path:
        """Write :meth:`checkpoint`, with the hash of the potential, through :func:`mlpot.files.atomic_torch_save`
        (temporary file in the same folder, fsync, rename; a full disk leaves the previous checkpoint intact)."""
        from mlpot.files import atomic_torch_save

        path = atomic_torch_save({**self.checkpoint(), "potential_fingerprint": self._potential_fingerprint()}, path)
        self.forces.checkpoint_written()
        return path

    def load_checkpoint(self, path_or_dict) -> None:
        """Continue from a checkpoint written by :meth:`save_checkpoint` for the same systems.

        The integrator settings of the checkpoint win over the constructor's (a warning-free
        exact continuation); reporters then append from the checkpoint's step.
        """
        data = path_or_dict if isinstance(path_or_dict, dict) else _read_checkpoint(path_or_dict)
        if data.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"not an mlpot MD checkpoint (format {data.get('format')!r})")
        saved = data.get("potential_fingerprint")  # absent in checkpoints of older mlpot versions
        if saved is not None and saved != self._potential_fingerprint():
            raise ValueError(
                f"the checkpoint was written with another potential (hash of config and weights "
                f"{saved[:12]}, this one {self._potential_fingerprint()[:12]}): resume with the original model"
            )
        sizes = [len(a) for a in self._template]
        if list(data["sizes"]) != sizes:
            raise ValueError(f"checkpoint holds systems of sizes {data['sizes']}, this simulation {sizes}")
        cfg = data["integrator"]
        self.integrator = make_integrator(
            cfg["ensemble"], cfg["timestep_fs"], cfg.get("temperature_K"), cfg.get("friction_per_fs"),
            **{k: cfg[k] for k in NPT_OPTIONS if k in cfg},
        )
        if self.integrator.ensemble == "npt":
            self.integrator.attach(self.forces)
        tensors = data["state"]
        if not torch.equal(self.state.numbers.cpu(), tensors["numbers"]):
            raise ValueError("checkpoint atomic numbers differ from this simulation's")
        # In place: the force provider holds the same numbers, batch, cell and pbc tensors, and
        # a compiled step is specialised on which of its inputs are one tensor.
        for name, value in tensors.items():
            getattr(self.state, name).copy_(value)
        self.state.step = int(data["step"])
        self.integrator.prepare(self.state)
        self._prepare_step()
        self.seed = int(data["seed"])
        self.generator.set_state(data["rng_state"])
        if float(data.get("skin", self.skin)) != self.skin and isinstance(self.forces, PotentialForces):
            raise ValueError(f"checkpoint was written with skin {data['skin']} Å, this simulation uses {self.skin} Å")
        self.forces.load_state_dict(data.get("forces_provider", {}))
        self._observables_cache = None
        self._have_forces = True
        self.resumed_from_step = self.state.step
        self._last_report = {id(r): self.state.step for r in self.reporters}
        self._started = False

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
        data = _read_checkpoint(path)
        cfg = data["integrator"]
        changes = _changed_settings(data, expected or {})
        if changes:
            raise ValueError(f"--resume: the settings differ from those in {path}: {'; '.join(changes)}")
        sim = cls(
            atoms,
            potential,
            timestep_fs=cfg["timestep_fs"],
            ensemble=cfg["ensemble"],
            temperature_K=cfg.get("temperature_K"),
            friction_per_fs=cfg.get("friction_per_fs"),
            seed=data["seed"],
            reporters=reporters,
            skin=data.get("skin", 1.0),
            **{k: cfg[k] for k in NPT_OPTIONS if k in cfg},
            **kwargs,
        )
        sim.load_checkpoint(data)
        return sim


def _read_checkpoint(path) -> dict:
    """An MD checkpoint, read safely; a truncated or foreign file is a ValueError."""
    return safe_torch_load(path, "MD checkpoint")


def _changed_settings(data: dict, expected: dict) -> list[str]:
    """``"name: X in the checkpoint, now Y"`` for each expected setting that differs from the checkpoint's."""
    saved = {**{f"integrator.{k}": v for k, v in data["integrator"].items()}, "skin": data.get("skin"), "seed": data.get("seed")}
    wanted = {f"integrator.{k}": v for k, v in (expected.get("integrator") or {}).items()}
    wanted.update({k: expected.get(k) for k in ("skin", "seed")})
    changes = []
    for name, value in wanted.items():
        if value is None or name not in saved:  # e.g. the initial temperature of an NVE run: not a setting of it
            continue
        old = saved[name]
        if value == old:
            continue
        if isinstance(value, (int, float)) and isinstance(old, (int, float)) and math.isclose(value, old, rel_tol=1e-12):
            continue
        changes.append(f"{name.removeprefix('integrator.')}: {old!r} in the checkpoint, now {value!r}")
    return changes


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
