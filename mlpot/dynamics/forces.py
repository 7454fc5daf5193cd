"""Force providers: turn an mlpot potential or any ASE calculator into ``compute_forces(state)``.

A provider is called with the :class:`~mlpot.dynamics.integrators.MDState` and writes
``state.forces`` [n, 3] (eV/Å) and ``state.energy`` [n_systems] (eV) for ``state.positions``.

* :class:`PotentialForces` — the fast path. Tensors stay in torch on the potential's device.
  The neighbour list is built with ``cutoff + skin`` by :func:`mlpot.neighbors.neighbor_list`
  and reused until :func:`mlpot.neighbors.needs_rebuild` says an atom has moved more than
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

from mlpot.dynamics.integrators import MDState
from mlpot.models.potential import FixedTopology, evaluate_at_positions
from mlpot.neighbors import moved_beyond_skin, needs_rebuild, neighbor_list

__all__ = ["ForceProvider", "PotentialForces", "ASECalculatorForces", "complete_cell"]


class ForceProvider:
    """Interface: ``provider(state)`` sets ``state.forces`` and ``state.energy``."""

    def __call__(self, state: MDState) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def invalidate(self) -> None:
        """Forget cached data (the neighbour list); the next call starts afresh."""

    def state_dict(self) -> dict:
        """Tensors needed to continue bit for bit after a restart."""
        return {}

    def load_state_dict(self, data: dict) -> None:
        """Restore what :meth:`state_dict` returned."""

    def checkpoint_written(self) -> None:
        """Called after each checkpoint; providers with state they cannot save drop it here."""


def complete_cell(cell: Tensor, pbc: Tensor) -> Tensor:
    """Replace lattice vectors of non-periodic axes by unit vectors orthogonal to the others.

    Args:
        cell: [S, 3, 3] lattice vectors as rows, Å.
        pbc: [S, 3] bool.

    Returns:
        [S, 3, 3] invertible cells equal to ``cell`` on periodic rows, so that fractional
        coordinates along periodic axes are well defined (ASE allows zeros on free axes).
    """
    completed = cell.clone()
    for s in range(cell.shape[0]):
        periodic = [k for k in range(3) if bool(pbc[s, k])]
        basis = [cell[s, k] / cell[s, k].norm() for k in periodic]
        for k in range(3):
            if bool(pbc[s, k]):
                continue
            for trial in torch.eye(3, dtype=cell.dtype, device=cell.device):
                v = trial.clone()
                for u in basis:
                    v = v - (v @ u) * u
                if float(v.norm()) > 1e-3:
                    v = v / v.norm()
                    basis.append(v)
                    completed[s, k] = v
                    break
    return completed


class PotentialForces(ForceProvider):
    """Fast path over an mlpot potential (``forward(data) -> {"energy", "forces", ...}``).

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
        self.list_cutoff = self.cutoff + self.skin
        self.n_systems = state.n_systems
        self.periodic = bool(state.pbc.any())
        self.n_rebuilds = 0
        counts = torch.bincount(state.batch, minlength=state.n_systems)
        self._all_pairs = int((counts * (counts - 1)).sum())
        # Invariant part of the AtomicData handed to the potential each step.
        self._static = {
            "numbers": state.numbers,
            "batch": state.batch,
            "cell": state.cell,
            "pbc": state.pbc,
            "n_atoms": counts,
        }
        if self.periodic:
            full = complete_cell(state.cell, state.pbc)
            self._cell_per_atom = full[state.batch]  # [n, 3, 3]
            self._inverse_per_atom = torch.linalg.inv(full)[state.batch]
            self._pbc_per_atom = state.pbc[state.batch]  # [n, 3]
        self.invalidate()

    def invalidate(self) -> None:
        self.edge_index: Tensor | None = None
        self.edge_shift: Tensor | None = None
        self.reference_positions: Tensor | None = None
        self._complete = False
        self._topology: FixedTopology | None = None

    def wrap(self, positions: Tensor) -> None:
        """Wrap ``positions`` [n, 3] in place into the cell along periodic axes."""
        fractional = torch.einsum("ni,nik->nk", positions, self._inverse_per_atom)
        shift = torch.where(self._pbc_per_atom, torch.floor(fractional), torch.zeros_like(fractional))
        positions.sub_(torch.einsum("nk,nkj->nj", shift, self._cell_per_atom))

    def rebuild(self, state: MDState) -> None:
        """Wrap the positions (periodic systems) and build the list with cutoff + skin."""
        if self.periodic:
            self.wrap(state.positions)
        batch = None if self.n_systems == 1 else state.batch
        self.edge_index, self.edge_shift = neighbor_list(
            state.positions, self.list_cutoff, cell=state.cell, pbc=state.pbc, batch=batch
        )
        self.reference_positions = state.positions.clone()
        self.n_rebuilds += 1
        self._list_changed()

    def _list_changed(self) -> None:
        """Forget the evaluator of the previous list; note whether this one is complete."""
        self._complete = not self.periodic and self.edge_index.shape[1] == self._all_pairs
        self._topology = None

    def moved_too_far(self, displacement2: float) -> bool:
        """Whether a largest squared displacement ``displacement2`` (Å²) since the list was built
        calls for a rebuild: more than skin/2, as :func:`mlpot.neighbors.needs_rebuild` decides,
        and never for a complete list."""
        return not self._complete and moved_beyond_skin(displacement2, self.skin)

    def topology(self, state: MDState) -> FixedTopology | None:
        """The evaluator of the current list (prepared once per list), None before the first list."""
        if self.reference_positions is None:
            return None
        if self._topology is None:
            data = {**self._static, "positions": state.positions}
            data.update(edge_index=self.edge_index, edge_shift=self.edge_shift)
            if hasattr(self.potential, "fixed_topology"):
                self._topology = self.potential.fixed_topology(data)
            else:
                self._topology = FixedTopology(evaluate_at_positions, self.potential, (data,))
        return self._topology

    def __call__(self, state: MDState) -> None:
        if self.reference_positions is None or (
            not self._complete and needs_rebuild(state.positions, self.reference_positions, self.skin)
        ):
            self.rebuild(state)
        energy, forces = self.topology(state)(state.positions)
        state.energy = energy.detach().reshape(self.n_systems)
        state.forces = forces.detach()

    def state_dict(self) -> dict:
        if self.reference_positions is None:
            return {}
        n = self.reference_positions.shape[0]
        index_dtype = torch.int32 if n < 2**31 - 1 else torch.int64
        shift = self.edge_shift
        small = shift.numel() == 0 or int(shift.abs().max()) < 127
        return {
            "edge_index": self.edge_index.to(index_dtype).cpu(),
            "edge_shift": (shift.to(torch.int8) if small else shift).cpu(),
            "reference_positions": self.reference_positions.cpu(),
        }

    def load_state_dict(self, data: dict) -> None:
        if not data:
            self.invalidate()
            return
        device = self._static["numbers"].device
        self.edge_index = data["edge_index"].to(device=device, dtype=torch.int64)
        self.edge_shift = data["edge_shift"].to(device=device, dtype=torch.int64)
        self.reference_positions = data["reference_positions"].to(device)
        self._list_changed()


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

    def __call__(self, state: MDState) -> None:
        positions = state.positions.detach().cpu().numpy()
        energies, forces = [], []
        for k, atoms in enumerate(self.systems):
            atoms.set_positions(positions[self._slices[k] : self._slices[k + 1]])
            forces.append(atoms.get_forces())
            energies.append(atoms.get_potential_energy())
        dtype, device = state.positions.dtype, state.positions.device
        state.forces = torch.as_tensor(np.concatenate(forces), dtype=dtype, device=device)
        state.energy = torch.as_tensor(energies, dtype=dtype, device=device)
