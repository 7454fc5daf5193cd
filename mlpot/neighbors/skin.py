"""The skin rule and the Verlet list that uses it: build with ``cutoff + skin``, reuse until an atom
has moved more than skin/2.

One cache serves every caller that evaluates a potential many times on slowly moving atoms (the ASE
calculator, the MD engine), so the rebuild rule lives in one place.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mlpot.neighbors.cell_list import neighbor_list

__all__ = ["VerletList", "largest_squared_displacement", "moved_beyond_skin", "needs_rebuild"]


def largest_squared_displacement(positions: Tensor, reference_positions: Tensor) -> Tensor:
    """max_i |R_i − R_i^ref|², Å², as a 0-d tensor (no host sync); [n_atoms, 3] inputs, n_atoms ≥ 1."""
    return (positions - reference_positions).square().sum(dim=1).max()


def moved_beyond_skin(largest_displacement2: float, skin: float) -> bool:
    """The rebuild rule: an atom has moved more than ``skin/2`` (largest squared displacement in Å²).

    A list built with cutoff ``r_c + skin`` stays complete for ``r_c`` until then: two atoms
    each moving skin/2 towards each other close a gap of at most ``skin``.
    """
    return largest_displacement2 > (0.5 * skin) ** 2


def needs_rebuild(positions: Tensor, reference_positions: Tensor, skin: float) -> bool:
    """Return True once any atom has moved more than ``skin/2`` since the list was built
    (:func:`moved_beyond_skin`).

    Args:
        positions: [n_atoms, 3] current positions, Å, unwrapped (same frame as the reference).
        reference_positions: [n_atoms, 3] positions when the list was built, Å.
        skin: the skin added to the cutoff when the list was built, Å.
    """
    if positions.shape != reference_positions.shape:
        return True
    if positions.shape[0] == 0:
        return False
    largest = largest_squared_displacement(positions.detach(), reference_positions.detach())
    return moved_beyond_skin(float(largest), skin)


def _same(a: Tensor | None, b: Tensor | None) -> bool:
    """Whether two optional tensors hold the same values (None only equals None)."""
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and torch.equal(a, b)


class VerletList:
    """A neighbour list with a skin, rebuilt only when it may have become incomplete.

    The list holds every pair closer than ``cutoff + skin`` when built; it stays a superset of the
    pairs closer than ``cutoff`` until an atom has moved more than skin/2 (:func:`moved_beyond_skin`).
    It is also rebuilt when the cell, the periodicity, the species or the number of atoms change.
    A list of a non-periodic batch that holds every pair of atoms of every system is *complete*: no
    neighbour can be missing however the atoms move, so it is never rebuilt for displacement.

    Potentials ignore edges longer than their cutoff, so the edges of this list are valid input.

    Args:
        cutoff: the potential's cutoff r_c, Å (> 0).
        skin: extra distance added to the cutoff when building, Å (≥ 0; 0 rebuilds at every call).

    Attributes:
        list_cutoff: cutoff + skin, Å: the distance the list is built with.
        edge_index: [2, E] int64 of the current list (None before the first build).
        edge_shift: [E, 3] int64 integer cell shifts of the current list.
        reference_positions: [n, 3] positions at the last build, Å.
        n_rebuilds: how many times the list has been built.
    """

    def __init__(self, cutoff: float, skin: float):
        if not cutoff > 0:
            raise ValueError(f"cutoff must be positive, got {cutoff}")
        if not skin >= 0:
            raise ValueError(f"skin must be non-negative, got {skin}")
        self.cutoff = float(cutoff)
        self.skin = float(skin)
        self.list_cutoff = self.cutoff + self.skin
        self.n_rebuilds = 0
        self.invalidate()

    def invalidate(self) -> None:
        """Forget the list; the next :meth:`get` builds a new one."""
        self.edge_index: Tensor | None = None
        self.edge_shift: Tensor | None = None
        self.reference_positions: Tensor | None = None
        self._built_for: tuple = (None, None, None, None)
        self.complete = False

    def restore(
        self,
        edge_index: Tensor,
        edge_shift: Tensor,
        reference_positions: Tensor,
        cell: Tensor | None = None,
        pbc: Tensor | None = None,
        numbers: Tensor | None = None,
        batch: Tensor | None = None,
    ) -> None:
        """Adopt a list saved from an earlier run (a checkpoint) as if built here, so that a resumed
        run rebuilds exactly when the uninterrupted one would. Arguments as in :meth:`get`, plus the
        saved list ([2, E], [E, 3]) and the positions it was built at ([n, 3], Å)."""
        self.edge_index, self.edge_shift = edge_index.to(torch.int64), edge_shift.to(torch.int64)
        self.reference_positions = reference_positions.detach().clone()
        self._remember(reference_positions, cell, pbc, numbers, batch)

    def _remember(self, positions: Tensor, cell, pbc, numbers, batch) -> None:
        """Note what the current list was built for, and whether it holds every pair."""
        # Clones: the caller may update its tensors in place (an integrator does).
        self._built_for = tuple(None if t is None else t.detach().clone() for t in (cell, pbc, numbers, batch))
        periodic = pbc is not None and bool(torch.as_tensor(pbc).any())
        counts = torch.tensor([positions.shape[0]]) if batch is None else torch.bincount(batch.cpu())
        self.complete = not periodic and self.edge_index.shape[1] == int((counts * (counts - 1)).sum())

    def moved_too_far(self, largest_displacement2: float) -> bool:
        """Whether a largest squared displacement since the build (Å²) calls for a rebuild:
        more than skin/2 (:func:`moved_beyond_skin`), and never for a complete list."""
        return not self.complete and moved_beyond_skin(largest_displacement2, self.skin)

    def get(
        self,
        positions: Tensor,
        cell: Tensor | None = None,
        pbc: Tensor | None = None,
        numbers: Tensor | None = None,
        batch: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, bool]:
        """The list for ``positions``, rebuilt if needed.

        Args:
            positions: [n_atoms, 3] float, Å, unwrapped (the same frame as at the last build: the
                shifts refer to the positions as given when the list was built).
            cell: [3, 3] or [n_systems, 3, 3], Å, lattice vectors as rows; None: non-periodic.
            pbc: [3] or [n_systems, 3] bool; None: non-periodic on every axis.
            numbers: [n_atoms] int64 atomic numbers; a change of species forces a rebuild.
            batch: [n_atoms] int64 sorted system index; None: a single system.

        Returns:
            edge_index [2, E] int64, edge_shift [E, 3] int64 (as :func:`neighbor_list`), and
            whether the list was rebuilt by this call.
        """
        built_for = (cell, pbc, numbers, batch)
        reusable = (
            self.reference_positions is not None
            and all(_same(a, b) for a, b in zip(built_for, self._built_for))
            and positions.shape == self.reference_positions.shape
            and (self.complete or not needs_rebuild(positions, self.reference_positions, self.skin))
        )
        if reusable:
            return self.edge_index, self.edge_shift, False
        self.edge_index, self.edge_shift = neighbor_list(positions, self.list_cutoff, cell=cell, pbc=pbc, batch=batch)
        self.reference_positions = positions.detach().clone()
        self._remember(positions, cell, pbc, numbers, batch)
        self.n_rebuilds += 1
        return self.edge_index, self.edge_shift, True
