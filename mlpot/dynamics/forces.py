"""Force providers: turn an mlpot potential or any ASE calculator into the integrators' force function.

A provider is called with an :class:`~mlpot.dynamics.state.MDState` and returns the model's
output dict at ``state.positions``: ``energy`` [n_systems] (eV), ``forces`` [n, 3] (eV/Å) and
whatever else the potential returns (a committee's ``energy_std`` and ``forces_std``, the stress).
:meth:`ForceProvider.evaluate` is the integrators' force function: it returns the state with
``energy``, ``forces`` and ``outputs`` set, so reporters read a committee's spread from
``sim.state.outputs``. At a rebuild a provider may wrap the positions of the state it is given
in place (a step's own new tensor: the step's input state is never touched).

* :class:`PotentialForces` — the fast path. Tensors stay in torch on the potential's device.
  The neighbour list is a :class:`mlpot.neighbors.VerletList` built with ``cutoff + skin`` and
  reused until :func:`mlpot.neighbors.needs_rebuild` says an atom has moved more than
  skin/2, or for ever when it holds every pair of atoms of every system (a molecule smaller
  than cutoff + skin, without periodic images: no neighbour can be missing). Positions are
  wrapped into the cell (periodic axes only) *at each rebuild*, and the list is then built from
  the wrapped positions, so its integer shifts always refer to the positions the integrator
  holds: between rebuilds atoms may leave the cell by less than skin/2, which the shifts of that
  list already account for. Wrapping happens nowhere else. The potential's evaluator of each
  list (:meth:`PotentialForces.topology`) is prepared once per list.
* :class:`ASECalculatorForces` — the generic path. Each system is an ``ase.Atoms`` with the
  calculator attached; positions are copied in and energies/forces copied out each step.
  Positions are never wrapped here (as in ASE's own integrators). The calculators are
  reset at every checkpoint, so that resuming matches an uninterrupted run bit for bit.
"""

from __future__ import annotations

import copy
import warnings

import ase
import numpy as np
import torch
from torch import Tensor

from mlpot.dynamics.state import MDState
from mlpot.models.potential import FixedTopology, evaluate_at_positions
from mlpot.neighbors import VerletList, complete_cell, needs_rebuild

__all__ = [
    "ForceProvider",
    "PotentialForces",
    "ASECalculatorForces",
    "as_outputs",
    "model_outputs",
    "complete_cell",
    "wrap_in_place",
]


def model_outputs(potential: torch.nn.Module, positions: Tensor, data: dict[str, Tensor]) -> dict[str, Tensor]:
    """The output dict of ``potential`` (with forces) on ``data`` at ``positions`` [n, 3] Å: the
    evaluator of a potential that prepares none of its own (``fixed_topology``), so that everything
    it returns (a committee's spread) reaches the state's ``outputs``."""
    with torch.enable_grad():
        return potential({**data, "positions": positions}, compute_forces=True)


def as_outputs(result, n_systems: int) -> dict[str, Tensor]:
    """An evaluator's result, ``(energy, forces)`` or an output dict, as an output dict with
    ``energy`` [n_systems] and ``forces`` [n, 3] detached."""
    if isinstance(result, dict):
        out = dict(result)
        energy, forces = out["energy"], out["forces"]
    else:
        energy, forces = result
        out = {}
    out["energy"] = energy.detach().reshape(n_systems)
    out["forces"] = forces.detach()
    return out


def wrap_in_place(positions: Tensor, cell_per_atom: Tensor, inverse_per_atom: Tensor, pbc_per_atom: Tensor) -> None:
    """Wrap ``positions`` [n, 3] (Å) in place into each atom's cell along its periodic axes.

    Args:
        cell_per_atom: [n, 3, 3] the atom's cell (rows are lattice vectors, Å), non-periodic rows completed
            (:func:`mlpot.neighbors.complete_cell`) so that it is invertible.
        inverse_per_atom: [n, 3, 3] its inverse, 1/Å.
        pbc_per_atom: [n, 3] bool.
    """
    fractional = torch.einsum("ni,nik->nk", positions, inverse_per_atom)
    shift = torch.where(pbc_per_atom, torch.floor(fractional), torch.zeros_like(fractional))
    positions.sub_(torch.einsum("nk,nkj->nj", shift, cell_per_atom))


class ForceProvider:
    """Interface: ``provider(state)`` returns the output dict (``energy``, ``forces``, ...) at ``state.positions``."""

    def __call__(self, state: MDState) -> dict[str, Tensor]:  # pragma: no cover - interface
        raise NotImplementedError

    def evaluate(self, state: MDState) -> MDState:
        """The integrators' force function: ``state`` with ``energy``, ``forces`` and ``outputs`` at its positions."""
        out = self(state)
        return state.evolve(energy=out["energy"], forces=out["forces"], outputs=out)

    def invalidate(self) -> None:
        """Forget cached data (the neighbour list); the next call starts afresh."""

    def state_dict(self) -> dict:
        """Tensors needed to continue bit for bit after a restart."""
        return {}

    def load_state_dict(self, data: dict) -> None:
        """Restore what :meth:`state_dict` returned."""

    def checkpoint_written(self) -> None:
        """Called after each checkpoint; providers with state they cannot save drop it here."""


class PotentialForces(ForceProvider):
    """Fast path over an mlpot potential (``forward(data) -> {"energy", "forces", ...}``).

    The neighbour list is a :class:`mlpot.neighbors.VerletList` (cutoff + skin, the skin/2 rule, a
    complete list never rebuilt). The rebuild decision is taken here, before the list is built,
    because periodic positions are wrapped into the cell first: the list's shifts then refer to
    the positions the integrator holds.

    Args:
        potential: a torch module with attribute ``cutoff`` (Å) following the potential contract.
        state: the state it will serve (sets numbers, cell, pbc, batch once; they do not change).
        skin: extra distance added to the cutoff for the neighbour list, Å. ``skin = 0`` rebuilds
            every step.
    """

    def __init__(self, potential: torch.nn.Module, state: MDState, skin: float = 1.0):
        if skin < 0:
            raise ValueError(f"skin must be non-negative, got {skin}")
        cutoff = getattr(potential, "cutoff", None)
        if cutoff is None:
            raise ValueError("the potential has no attribute 'cutoff' (Å), which the potential contract requires")
        self.potential = potential
        self.cutoff = float(cutoff)
        self.skin = float(skin)
        self.verlet = VerletList(self.cutoff, self.skin)
        self.n_systems = state.n_systems
        self.periodic = bool(state.pbc.any())
        counts = torch.bincount(state.batch, minlength=state.n_systems)
        # Invariant part of the AtomicData handed to the potential each step.
        self._static = {
            "numbers": state.numbers,
            "batch": state.batch,
            "cell": state.cell,
            "pbc": state.pbc,
            "n_atoms": counts,
        }
        # What the list is built for (batch None for one system: the list builder's single-system path).
        self._list_arguments = {
            "cell": state.cell,
            "pbc": state.pbc,
            "numbers": state.numbers,
            "batch": None if self.n_systems == 1 else state.batch,
        }
        if self.periodic:
            full = complete_cell(state.cell, state.pbc)
            self._cell_per_atom = full[state.batch]  # [n, 3, 3]
            self._inverse_per_atom = torch.linalg.inv(full)[state.batch]
            self._pbc_per_atom = state.pbc[state.batch]  # [n, 3]
        self._topology: FixedTopology | None = None

    # The list's state, as the engine, the compiled step and the close-contact check read it.
    edge_index = property(lambda self: self.verlet.edge_index)
    edge_shift = property(lambda self: self.verlet.edge_shift)
    reference_positions = property(lambda self: self.verlet.reference_positions)
    n_rebuilds = property(lambda self: self.verlet.n_rebuilds)

    def invalidate(self) -> None:
        self.verlet.invalidate()
        self._topology = None

    def wrap(self, positions: Tensor) -> None:
        """Wrap ``positions`` [n, 3] in place into the cell along periodic axes."""
        wrap_in_place(positions, self._cell_per_atom, self._inverse_per_atom, self._pbc_per_atom)

    def rebuild(self, state: MDState) -> None:
        """Wrap the positions (periodic systems) and build the list with cutoff + skin."""
        if self.periodic:
            self.wrap(state.positions)
        self.verlet.invalidate()
        self.verlet.get(state.positions, **self._list_arguments)
        self._topology = None

    def moved_too_far(self, displacement2: float) -> bool:
        """Whether a largest squared displacement ``displacement2`` (Å²) since the list was built
        calls for a rebuild (:meth:`mlpot.neighbors.VerletList.moved_too_far`)."""
        return self.verlet.moved_too_far(displacement2)

    def topology(self, state: MDState) -> FixedTopology | None:
        """The evaluator of the current list (prepared once per list), None before the first list."""
        if self.verlet.reference_positions is None:
            return None
        if self._topology is None:
            data = {**self._static, "positions": state.positions}
            data.update(edge_index=self.verlet.edge_index, edge_shift=self.verlet.edge_shift)
            topology = None
            if hasattr(self.potential, "fixed_topology"):
                topology = self.potential.fixed_topology(data)
            if topology is None or topology.function is evaluate_at_positions:
                # The contract's default evaluator keeps energy and forces only: evaluate the same
                # way but keep every output (a committee's spread). Like the default, it is the
                # generic forward, which is not compiled as a whole (its branches depend on tensor
                # values; inductor even fails on its energy sum): a model's compiled passes still
                # run compiled inside it.
                topology = FixedTopology(model_outputs, self.potential, (data,), compilable=False)
            self._topology = topology
        return self._topology

    def __call__(self, state: MDState) -> dict[str, Tensor]:
        verlet = self.verlet
        if verlet.reference_positions is None or (
            not verlet.complete and needs_rebuild(state.positions, verlet.reference_positions, self.skin)
        ):
            self.rebuild(state)
        return as_outputs(self.topology(state)(state.positions), self.n_systems)

    def state_dict(self) -> dict:
        verlet = self.verlet
        if verlet.reference_positions is None:
            return {}
        n = verlet.reference_positions.shape[0]
        index_dtype = torch.int32 if n < 2**31 - 1 else torch.int64
        shift = verlet.edge_shift
        small = shift.numel() == 0 or int(shift.abs().max()) < 127
        return {
            "edge_index": verlet.edge_index.to(index_dtype).cpu(),
            "edge_shift": (shift.to(torch.int8) if small else shift).cpu(),
            "reference_positions": verlet.reference_positions.cpu(),
        }

    def load_state_dict(self, data: dict) -> None:
        if not data:
            self.invalidate()
            return
        device = self._static["numbers"].device
        self.verlet.restore(
            data["edge_index"].to(device=device, dtype=torch.int64),
            data["edge_shift"].to(device=device, dtype=torch.int64),
            data["reference_positions"].to(device),
            **self._list_arguments,
        )
        self._topology = None


class ASECalculatorForces(ForceProvider):
    """Generic path over any ASE calculator (float64, CPU).

    Args:
        calculator: an ASE calculator. With several systems, each gets a deep copy when the
            calculator can be copied (so each keeps its own caches), else they share it.
        systems: one ``ase.Atoms`` per system (copies are made; constraints are not supported).
    """

    def __init__(self, calculator, systems: list[ase.Atoms]):
        self.systems = []
        for k, atoms in enumerate(systems):
            atoms = atoms.copy()
            calc = calculator
            if k > 0:
                try:
                    calc = copy.deepcopy(calculator)
                except Exception:  # noqa: BLE001 - any calculator may refuse to be copied
                    warnings.warn("calculator cannot be deep-copied; replicas share it (slower)", stacklevel=2)
            atoms.calc = calc
            self.systems.append(atoms)
        sizes = [len(a) for a in self.systems]
        self._slices = np.cumsum([0] + sizes)

    def checkpoint_written(self) -> None:
        """Reset the calculators (their neighbour lists and caches), as a resumed run starts with fresh ones.

        A calculator's internal state (e.g. EMT's neighbour list) cannot be saved, and it changes
        the order of floating-point sums. Dropping it at every checkpoint makes a run resumed
        from a regular checkpoint bit for bit identical to an uninterrupted one, for any
        calculator whose ``reset()`` clears that state (EMT and LennardJones do).
        """
        for atoms in self.systems:
            atoms.calc.reset()

    def __call__(self, state: MDState) -> dict[str, Tensor]:
        positions = state.positions.detach().cpu().numpy()
        energies, forces = [], []
        for k, atoms in enumerate(self.systems):
            atoms.set_positions(positions[self._slices[k] : self._slices[k + 1]])
            forces.append(atoms.get_forces())
            energies.append(atoms.get_potential_energy())
        dtype, device = state.positions.dtype, state.positions.device
        return {
            "energy": torch.as_tensor(energies, dtype=dtype, device=device),
            "forces": torch.as_tensor(np.concatenate(forces), dtype=dtype, device=device),
        }
