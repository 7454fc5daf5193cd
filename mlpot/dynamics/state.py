"""The MD state: a small dataclass of tensors for one or several systems, and its reductions.

:class:`MDState` is what every integrator's step function takes and returns
(:mod:`mlpot.dynamics.integrators`). Steps never modify the state they are given: they return a
new one made by :meth:`MDState.evolve`, which shares every tensor it does not replace. A scheme
that needs state of its own (a Nosé–Hoover chain's thermostat momenta, say) subclasses
:class:`MDState` with extra tensor fields; :meth:`MDState.tensors` (what checkpoints store) and
:meth:`MDState.evolve` include them without further code.

All quantities are in ASE units (eV, Å, amu, ASE time; see :mod:`mlpot.units`). Several
independent systems (replicas) share one state: atoms are concatenated and ``batch`` gives each
atom's system, exactly as in AtomicData; energies, thermostat work and degrees of freedom are
per system.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch
from torch import Tensor

from mlpot.units import KB_EV_PER_K

__all__ = ["MDState", "Evolving", "per_system", "kinetic_energy", "temperature", "state_to_atoms"]


class Evolving:
    """Mixin for the states that step functions pass along: :meth:`evolve` copies without copying tensors."""

    def evolve(self, **changes):
        """A new state of the same class with ``changes`` applied; every other attribute is shared.

        Cheaper than ``dataclasses.replace`` (no ``__init__``, no field list): the step functions
        call it a few times per step. ``torch.compile`` traces it into the step's graph.
        """
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.__dict__.update(changes)
        return new


@dataclass
class MDState(Evolving):
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
        step: number of steps taken (the engine counts; step functions leave it alone).
        outputs: the force provider's last output dict (``energy``, ``forces`` and whatever else the
            potential returns, e.g. a committee's ``energy_std`` [n_systems] eV and ``forces_std``
            [n_atoms, 3] eV/Å); not checkpointed: it is recomputed with the forces.
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
    outputs: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_systems(self) -> int:
        return int(self.cell.shape[0])

    @property
    def n_atoms(self) -> int:
        return int(self.positions.shape[0])

    def clone(self) -> "MDState":
        """A deep copy (tensors cloned)."""
        cloned = {name: value.clone() for name, value in self.tensors().items()}
        return self.evolve(**cloned, outputs=dict(self.outputs))

    def tensors(self) -> dict[str, Tensor]:
        """The state's tensor fields (what a checkpoint stores), a subclass's extra fields included."""
        return {f.name: getattr(self, f.name) for f in fields(self) if isinstance(getattr(self, f.name), Tensor)}


def per_system(values: Tensor, batch: Tensor, n_systems: int) -> Tensor:
    """Sum per-atom ``values`` [n, ...] into [n_systems, ...] (``batch`` [n] int64 system index)."""
    if n_systems == 1 and values.ndim == 1:
        return values.sum().reshape(1)  # one reduction instead of a scatter: the common single-system case
    return values.new_zeros((n_systems, *values.shape[1:])).index_add_(0, batch, values)


def kinetic_energy(state: MDState) -> Tensor:
    """Kinetic energy per system, [n_systems] eV."""
    per_atom = state.momenta.square().sum(dim=1) / state.masses
    return 0.5 * per_system(per_atom, state.batch, state.n_systems)


def temperature(state: MDState, kinetic: Tensor | None = None) -> Tensor:
    """Kinetic temperature per system, [n_systems] K: 2K/(N_dof k_B), with ``state.n_dof``."""
    if kinetic is None:
        kinetic = kinetic_energy(state)
    return torch.where(state.n_dof > 0, 2.0 * kinetic / (state.n_dof.clamp(min=1) * KB_EV_PER_K), 0.0 * kinetic)


def state_to_atoms(state: MDState, templates: list, time_fs: float) -> list:
    """The systems of ``state`` as ``ase.Atoms`` (copies of ``templates``, one per system) with the
    state's cell, positions and momenta, energy and forces as a SinglePointCalculator, and
    ``info["md_step"]``, ``info["md_time_fs"]``."""
    from ase.calculators.singlepoint import SinglePointCalculator

    def numpy(tensor: Tensor):
        return tensor.detach().to("cpu", torch.float64).numpy()

    positions, momenta, forces = numpy(state.positions), numpy(state.momenta), numpy(state.forces)
    energy, cells = numpy(state.energy), numpy(state.cell)
    out, start = [], 0
    for k, template in enumerate(templates):
        stop = start + len(template)
        atoms = template.copy()
        atoms.set_cell(cells[k])  # NPT moves it
        atoms.set_positions(positions[start:stop])
        atoms.set_momenta(momenta[start:stop], apply_constraint=False)
        atoms.calc = SinglePointCalculator(atoms, energy=float(energy[k]), forces=forces[start:stop].copy())
        atoms.info["md_step"] = state.step
        atoms.info["md_time_fs"] = time_fs
        out.append(atoms)
        start = stop
    return out
