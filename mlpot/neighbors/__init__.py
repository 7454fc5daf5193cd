"""Neighbour lists: an O(N) cell list in torch with periodic boundaries on any axes, the skin rule
and the Verlet list that reuses a list between rebuilds, and a brute-force reference for tests.

* :mod:`mlpot.neighbors.cell_list` — :func:`neighbor_list`, the cell list (how it works is told there);
* :mod:`mlpot.neighbors.cells` — inputs broadcast per system, cells completed on non-periodic axes;
* :mod:`mlpot.neighbors.skin` — :func:`needs_rebuild`, :func:`moved_beyond_skin`, :class:`VerletList`;
* :mod:`mlpot.neighbors.brute_force` — :func:`neighbor_list_brute_force`, the test reference.

Every list is *full* (both i→j and j→i) and follows ASE's convention for the shift vector::

    r_ij = positions[j] - positions[i] + edge_shift @ cell
"""

from mlpot.neighbors.brute_force import neighbor_list_brute_force
from mlpot.neighbors.cell_list import BINS_PER_CUTOFF, neighbor_list
from mlpot.neighbors.cells import complete_cell
from mlpot.neighbors.skin import VerletList, largest_squared_displacement, moved_beyond_skin, needs_rebuild

__all__ = [
    "BINS_PER_CUTOFF",
    "VerletList",
    "complete_cell",
    "largest_squared_displacement",
    "moved_beyond_skin",
    "needs_rebuild",
    "neighbor_list",
    "neighbor_list_brute_force",
]
