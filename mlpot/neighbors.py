"""Neighbour lists: an O(N) cell list in torch, with periodic boundaries on any axes.

The list is *full* (both i→j and j→i) and follows ASE's convention for the shift vector::

    r_ij = positions[j] - positions[i] + edge_shift @ cell

so it can be compared entry for entry with ``ase.neighborlist.neighbor_list("ijS", ...)``.

How it works, for every system of a batch at once (no Python loop over atoms or bins):

1. *Wrap.* Positions are wrapped into the cell along periodic axes; the integer wrap is
   remembered so that the returned shifts refer to the positions as given.
2. *Images.* Each atom is replicated by the lattice translations S with |S_k| ≤ ceil(r_c·|b_k|)
   (b_k the reciprocal vectors); only images inside the cell padded by r_c are kept. This is
   what makes cells smaller than the cutoff work: an atom may see several images of the same
   neighbour, and images of itself.
3. *Bins.* All points are sorted into cubic bins of edge r_c, keyed per system, so that every
   neighbour of an atom lies in the 27 bins around its own. Bins are looked up by sorted keys
   (``searchsorted``), so memory follows the number of atoms, never the volume of the box.
4. *Pairs.* Candidates from the 27 bins are expanded with ``repeat_interleave`` and kept when
   closer than the cutoff (strictly), excluding an atom's zero-shift self.

Non-periodic axes need no cell vector (zeros are allowed there), exactly as in ASE.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

__all__ = ["neighbor_list", "needs_rebuild", "neighbor_list_brute_force"]



def _as_system_tensors(
    positions: Tensor, cell: Tensor | None, pbc: Tensor | None, batch: Tensor | None
) -> tuple[Tensor, Tensor, Tensor, int]:
    """Broadcast optional inputs to ``batch`` [n], ``cell`` [S,3,3] and ``pbc`` [S,3]; validate shapes."""
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise ValueError(f"positions must have shape [n_atoms, 3], got {tuple(positions.shape)}")
    if not torch.is_floating_point(positions):
        raise ValueError(f"positions must be a floating-point tensor, got {positions.dtype}")
    if not bool(torch.isfinite(positions).all()):
        raise ValueError("positions contain NaN or inf")
    n_atoms = positions.shape[0]
    device = positions.device
    if batch is None:
        batch = torch.zeros(n_atoms, dtype=torch.int64, device=device)
    elif batch.shape != (n_atoms,):
        raise ValueError(f"batch must have shape [{n_atoms}], got {tuple(batch.shape)}")
    batch = batch.to(torch.int64)
    n_systems = int(batch.max()) + 1 if n_atoms > 0 else (1 if cell is None or cell.ndim == 2 else cell.shape[0])
    if n_atoms > 1 and bool((batch[1:] < batch[:-1]).any()):
        raise ValueError("batch must be sorted (non-decreasing system indices)")
    if n_atoms > 0 and int(batch[0]) < 0:  # sorted, so the first is the smallest
        raise ValueError(f"batch must hold system indices >= 0, got {int(batch[0])}")

    if cell is None:
        if pbc is not None and bool(torch.as_tensor(pbc).any()):
            raise ValueError("pbc is set on some axis but no cell was given")
        cell = torch.zeros(n_systems, 3, 3, dtype=positions.dtype, device=device)
    cell = torch.as_tensor(cell, dtype=positions.dtype, device=device)
    if cell.shape == (3, 3):
        cell = cell.expand(n_systems, 3, 3)
    if cell.ndim != 3 or cell.shape[1:] != (3, 3) or cell.shape[0] < n_systems:
        raise ValueError(f"cell must have shape [3, 3] or [n_systems={n_systems}, 3, 3], got {tuple(cell.shape)}")
    if pbc is None:
        pbc = torch.zeros(n_systems, 3, dtype=torch.bool, device=device)
    pbc = torch.as_tensor(pbc, device=device).to(torch.bool)
    if pbc.shape == (3,):
        pbc = pbc.expand(n_systems, 3)
    if pbc.ndim != 2 or pbc.shape[1] != 3 or pbc.shape[0] < n_systems:
        raise ValueError(f"pbc must have shape [3] or [n_systems={n_systems}, 3], got {tuple(pbc.shape)}")
    return batch, cell, pbc, n_systems


def _completed_cells(cell: Tensor, pbc: Tensor) -> Tensor:
    """Replace the lattice vectors of non-periodic axes by unit vectors orthogonal to the periodic ones.

    Fractional coordinates along periodic axes are then well defined whatever the user put on
    non-periodic axes (often zeros), and the padded-cell test measures true distances.

    Args:
        cell: [S, 3, 3] lattice vectors as rows, Å.
        pbc: [S, 3] bool.

    Returns:
        [S, 3, 3] invertible cells, equal to ``cell`` on periodic rows.

    Raises:
        ValueError: if the periodic lattice vectors of a system are linearly dependent.
    """
    completed = cell.clone()
    # A system periodic on no axis is never wrapped, but the batched inverse still needs an
    # invertible cell: a molecule's is usually all zeros.
    completed[~pbc.any(dim=1)] = torch.eye(3, dtype=cell.dtype, device=cell.device)
    # Fully periodic systems need no filler vectors, only the check, done for all of them at once.
    fully = torch.nonzero(pbc.all(dim=1)).flatten()
    if fully.numel():
        singular = torch.linalg.matrix_rank(cell.index_select(0, fully)) < 3
        if bool(singular.any()):
            s = int(fully[singular][0])
            raise ValueError(
                f"cell of system {s} is singular on its periodic axes [0, 1, 2]: "
                "lattice vectors are linearly dependent"
            )
    for s in torch.nonzero(pbc.any(dim=1) & ~pbc.all(dim=1)).flatten().tolist():
        periodic = [k for k in range(3) if pbc[s, k]]
        basis = [cell[s, k] for k in periodic]
        volume_check = torch.linalg.matrix_rank(torch.stack(basis)) if basis else 0
        if volume_check < len(basis):
            raise ValueError(
                f"cell of system {s} is singular on its periodic axes {periodic}: lattice vectors are linearly dependent"
            )
        # Gram–Schmidt against the periodic vectors and previously added fillers.
        spanned = [b / b.norm() for b in basis]
        orthonormal: list[Tensor] = []
        for v in spanned:
            for u in orthonormal:
                v = v - (v @ u) * u
            orthonormal.append(v / v.norm())
        for k in range(3):
            if pbc[s, k]:
                continue
            for trial in torch.eye(3, dtype=cell.dtype, device=cell.device):
                v = trial.clone()
                for u in orthonormal:
                    v = v - (v @ u) * u
                if v.norm() > 1e-6:
                    v = v / v.norm()
                    orthonormal.append(v)
                    completed[s, k] = v
                    break
    return completed


def neighbor_list(
    positions: Tensor,
    cutoff: float,
    cell: Tensor | None = None,
    pbc: Tensor | None = None,
    batch: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Return all pairs closer than ``cutoff``, for one or many systems, with periodic images.

    Args:
        positions: [n_atoms, 3] float, Å. Atoms of all systems, concatenated.
        cutoff: pair cutoff r_c in Å (pairs with |r_ij| < r_c are returned).
        cell: [n_systems, 3, 3] or [3, 3], Å, lattice vectors as rows. ``None``: non-periodic.
        pbc: [n_systems, 3] or [3] bool. ``None``: non-periodic on every axis.
        batch: [n_atoms] int64 system index, sorted. ``None``: a single system.

    Returns:
        edge_index: [2, n_edges] int64, row 0 the centre i, row 1 the neighbour j (global indices).
        edge_shift: [n_edges, 3] int64 cell shifts S with r_ij = pos[j] - pos[i] + S @ cell[batch[i]].

    The list is computed without gradient; differentiate through ``positions`` and ``cell``
    when forming r_ij from it.
    """
    if not cutoff > 0:
        raise ValueError(f"cutoff must be positive, got {cutoff}")
    with torch.no_grad():
        positions = positions.detach()
        batch, cell, pbc, n_systems = _as_system_tensors(positions, cell, pbc, batch)
        return _cell_list(positions, float(cutoff), cell.detach(), pbc, batch, n_systems)


def _cell_list(
    positions: Tensor, cutoff: float, cell: Tensor, pbc: Tensor, batch: Tensor, n_systems: int
) -> tuple[Tensor, Tensor]:
    device, dtype = positions.device, positions.dtype
    n_atoms = positions.shape[0]
    if n_atoms == 0:
        return torch.zeros(2, 0, dtype=torch.int64, device=device), torch.zeros(0, 3, dtype=torch.int64, device=device)
    cell, pbc = cell[:n_systems], pbc[:n_systems]
    # Row gathers go through index_select: on CPU it is several times faster than x[idx].

    # 1. Wrap along periodic axes: wrapped = positions + wrap @ cell, with integer wrap.
    if bool(pbc.any()):
        full_cell = _completed_cells(cell, pbc)
        inverse = torch.linalg.inv(full_cell)  # columns are the reciprocal vectors b_k
        fractional = _per_system_matmul(positions, inverse, batch)
        periodic_atom = pbc.index_select(0, batch)
        wrap = torch.where(periodic_atom, -torch.floor(fractional), torch.zeros_like(fractional))
        fractional = fractional + wrap
        wrapped = positions + _per_system_matmul(wrap, full_cell, batch)
        wrap = wrap.to(torch.int64)
        # Padding of the cell in fractional units: the distance r_c to the lattice planes.
        padding = torch.where(pbc, cutoff * inverse.norm(dim=1), torch.zeros_like(cell[:, 0]))  # [S, 3]
        n_images = torch.ceil(padding).to(torch.int64)
    else:
        wrapped = positions
        wrap = torch.zeros(n_atoms, 3, dtype=torch.int64, device=device)
        n_images = torch.zeros(n_systems, 3, dtype=torch.int64, device=device)

    # 2. Periodic images: atom a gets prod(2 n_k + 1) candidate translations of its system;
    #    only those inside the cell padded by r_c are kept.
    radix = 2 * n_images.index_select(0, batch) + 1  # [n, 3]
    per_atom = radix.prod(dim=1)
    if int(per_atom.sum()) == n_atoms:  # nothing periodic: every point is its own atom
        point_atom = torch.arange(n_atoms, device=device)
        point_shift = torch.zeros(n_atoms, 3, dtype=torch.int64, device=device)
        point_pos = wrapped
    else:
        point_atom = torch.repeat_interleave(torch.arange(n_atoms, device=device), per_atom)
        local = torch.arange(point_atom.numel(), device=device) - (torch.cumsum(per_atom, 0) - per_atom).index_select(0, point_atom)
        r = radix.index_select(0, point_atom)
        n = n_images.index_select(0, batch).index_select(0, point_atom)
        point_shift = torch.stack(
            (local // (r[:, 1] * r[:, 2]) - n[:, 0], (local // r[:, 2]) % r[:, 1] - n[:, 1], local % r[:, 2] - n[:, 2]),
            dim=1,
        )
        f = fractional.index_select(0, point_atom) + point_shift.to(dtype)
        point_system = batch.index_select(0, point_atom)
        pad = padding.index_select(0, point_system) * (1 + 1e-8) + 1e-8  # margin against round-off
        inside = ((f >= -pad) & (f < 1 + pad)) | ~pbc.index_select(0, point_system)
        kept = torch.nonzero(inside.all(dim=1)).flatten()
        point_atom, point_shift = point_atom.index_select(0, kept), point_shift.index_select(0, kept)
        point_system = point_system.index_select(0, kept)
        point_pos = wrapped.index_select(0, point_atom) + _per_system_matmul(point_shift, cell, point_system)
    point_system = batch.index_select(0, point_atom)

    # 3. Cubic bins of edge r_c/BINS_PER_CUTOFF, keyed (system, bx, by, bz) into one sortable int64.
    #    Coordinates are relative to each system's lowest point, which also keeps float32 accurate.
    lowest = torch.full((n_systems, 3), float("inf"), dtype=dtype, device=device)
    lowest = lowest.scatter_reduce(0, point_system[:, None].expand(-1, 3), point_pos, reduce="amin")
    bin_edge = cutoff / BINS_PER_CUTOFF
    local_points = point_pos - lowest.index_select(0, point_system)
    local_centres = wrapped - lowest.index_select(0, batch)
    point_bin = torch.floor(local_points / bin_edge).to(torch.int64) + BINS_PER_CUTOFF
    centre_bin = torch.floor(local_centres / bin_edge).to(torch.int64) + BINS_PER_CUTOFF
    extent = int(point_bin.max()) + BINS_PER_CUTOFF + 1
    if extent**3 * n_systems >= 2**62:
        raise ValueError(
            f"the atoms span {extent} bins of {bin_edge:.3g} Å per axis: the system is too sparse for the cell list; "
            "split it into separate systems"
        )
    point_key = _bin_key(point_system, point_bin, extent)
    sorted_key, order = torch.sort(point_key)
    # Per-point attributes in bin order, so candidates gather them once. The shift is referred to
    # the positions as given: r_ij = x_j - x_i + (w_j + S - w_i) @ cell.
    sorted_atom = point_atom.index_select(0, order)
    sorted_shift = (wrap.index_select(0, point_atom) + point_shift).index_select(0, order)
    # float32 is enough to pre-select candidates; pairs near the cutoff are decided exactly below.
    sorted_local = local_points.index_select(0, order).to(torch.float32)

    # 4. A column of bins along z is one contiguous key range [first(low), end(high)).
    columns = _search_columns(device)  # [C, 4]: dx, dy, dz_low, dz_high
    base = centre_bin[:, None, :]
    low_key = _bin_key(batch[:, None], base + columns[None, :, [0, 1, 2]], extent).reshape(-1)
    high_key = _bin_key(batch[:, None], base + columns[None, :, [0, 1, 3]], extent).reshape(-1)
    n_keys = n_systems * extent**3
    if n_keys <= 8 * point_key.numel() + 100_000:
        # Compact grid: a dense table of where each bin's points end in the sorted order.
        per_bin = torch.bincount(point_key, minlength=n_keys)
        end = torch.cumsum(per_bin, 0)
        low = (end - per_bin).index_select(0, low_key)
        count = end.index_select(0, high_key) - low
    else:
        # Sparse grid (a huge, mostly empty box): binary search, memory independent of volume.
        low = torch.searchsorted(sorted_key, low_key, side="left")
        count = torch.searchsorted(sorted_key, high_key, side="right") - low
    per_centre = count.view(n_atoms, -1).sum(dim=1)
    centre = torch.repeat_interleave(torch.arange(n_atoms, device=device), per_centre)
    candidate = torch.repeat_interleave(low - (torch.cumsum(count, 0) - count), count)
    candidate += torch.arange(centre.numel(), device=device)

    d = sorted_local.index_select(0, candidate)
    d -= torch.repeat_interleave(local_centres.to(torch.float32), per_centre, dim=0)
    distance2 = d.square_().sum(dim=1)
    margin = 1e-5 * (cutoff + float(local_points.abs().max()))  # far above float32 round-off
    close = torch.nonzero(distance2 < (cutoff + margin) ** 2).flatten()
    centre, candidate, distance2 = centre.index_select(0, close), candidate.index_select(0, close), distance2.index_select(0, close)
    neighbour = sorted_atom.index_select(0, candidate)
    edge_shift = sorted_shift.index_select(0, candidate) - wrap.index_select(0, centre)
    keep = (neighbour != centre) | edge_shift.any(dim=1)  # an atom is not its own zero-shift neighbour
    # Pairs within round-off of the cutoff are decided exactly, in ASE's frame, so that ties
    # resolve as users compute r_ij; all others are certain from the float32 distance.
    borderline = torch.nonzero(distance2 > (cutoff - margin) ** 2).flatten()
    if borderline.numel():
        i, j = centre.index_select(0, borderline), neighbour.index_select(0, borderline)
        r_ij = positions.index_select(0, j) - positions.index_select(0, i)
        r_ij = r_ij + _per_system_matmul(edge_shift.index_select(0, borderline), cell, batch.index_select(0, i))
        keep[borderline] &= torch.sqrt(r_ij.square().sum(dim=1)) < cutoff
    keep = torch.nonzero(keep).flatten()
    edge_index = torch.stack((centre.index_select(0, keep), neighbour.index_select(0, keep)))
    return edge_index, edge_shift.index_select(0, keep)


#: Bins per cutoff length. Finer bins trim the searched volume towards the cutoff sphere
#: (27 r_c³ for 1, 11.5 r_c³ for 3) at the price of more column look-ups.
BINS_PER_CUTOFF = 3


def _search_columns(device: torch.device) -> Tensor:
    """Columns of bins that can hold a point within r_c of a point in the central bin.

    Returns [C, 4] int64 rows (dx, dy, dz_low, dz_high): the bins (dx, dy, dz) with
    dz_low ≤ dz ≤ dz_high, keeping only bins whose closest approach to the central bin,
    ``bin_edge · |max(|d| - 1, 0)|``, is shorter than the cutoff.
    """
    n = BINS_PER_CUTOFF
    rows = []
    for dx, dy in itertools.product(range(-n, n + 1), repeat=2):
        gap2 = max(abs(dx) - 1, 0) ** 2 + max(abs(dy) - 1, 0) ** 2
        reach = [dz for dz in range(-n, n + 1) if gap2 + max(abs(dz) - 1, 0) ** 2 < n * n]
        if reach:
            rows.append((dx, dy, min(reach), max(reach)))
    return torch.tensor(rows, dtype=torch.int64, device=device)


def _per_system_matmul(rows: Tensor, matrices: Tensor, system: Tensor) -> Tensor:
    """Return ``rows[e] @ matrices[system[e]]``; rows [E, 3], matrices [S, 3, 3] → [E, 3].

    Written as three broadcast products rather than a batched matmul of E tiny matrices,
    which is several times slower on CPU; a single system is one plain matmul.
    """
    rows = rows.to(matrices.dtype)
    if matrices.shape[0] == 1:
        return rows @ matrices[0]
    per_row = matrices.index_select(0, system)
    return rows[:, 0:1] * per_row[:, 0] + rows[:, 1:2] * per_row[:, 1] + rows[:, 2:3] * per_row[:, 2]


def _bin_key(system: Tensor, bin_xyz: Tensor, extent: int) -> Tensor:
    """Linear int64 key of (system, bx, by, bz); every coordinate is in [0, extent)."""
    return ((system * extent + bin_xyz[..., 0]) * extent + bin_xyz[..., 1]) * extent + bin_xyz[..., 2]


def needs_rebuild(positions: Tensor, reference_positions: Tensor, skin: float) -> bool:
    """Return True once any atom has moved more than ``skin/2`` since the list was built.

    A list built with cutoff ``r_c + skin`` stays complete for ``r_c`` until then: two atoms
    each moving skin/2 towards each other close a gap of at most ``skin``.

    Args:
        positions: [n_atoms, 3] current positions, Å, unwrapped (same frame as the reference).
        reference_positions: [n_atoms, 3] positions when the list was built, Å.
        skin: the skin added to the cutoff when the list was built, Å.
    """
    if positions.shape != reference_positions.shape:
        return True
    displacement2 = (positions.detach() - reference_positions.detach()).square().sum(dim=1)
    return bool(displacement2.max() > (0.5 * skin) ** 2) if displacement2.numel() else False


def neighbor_list_brute_force(
    positions: Tensor,
    cutoff: float,
    cell: Tensor | None = None,
    pbc: Tensor | None = None,
    batch: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Reference O(N²·images) neighbour list with the same signature; for tests only.

    It tries every pair and every lattice translation within the needed range, without
    wrapping, binning or padding, so it shares none of the cell list's shortcuts.
    """
    batch, cell, pbc, n_systems = _as_system_tensors(positions, cell, pbc, batch)
    edges_i, edges_j, shifts = [], [], []
    for s in range(n_systems):
        atoms = torch.nonzero(batch == s).flatten()
        if atoms.numel() == 0:
            continue
        x = positions[atoms]
        if bool(pbc[s].any()):
            full = _completed_cells(cell[s : s + 1], pbc[s : s + 1])[0]
            frac = x @ torch.linalg.inv(full)
            frac_span = torch.where(pbc[s], frac.max(0).values - frac.min(0).values, torch.zeros(3, dtype=x.dtype))
            reach = torch.where(pbc[s], cutoff * torch.linalg.inv(full).norm(dim=0), torch.zeros(3, dtype=x.dtype))
            n = torch.ceil(reach + frac_span).to(torch.int64)
        else:
            n = torch.zeros(3, dtype=torch.int64)
        ranges = [range(-int(n[k]), int(n[k]) + 1) for k in range(3)]
        for shift in itertools.product(*ranges):
            S = torch.tensor(shift, dtype=x.dtype)
            d = x[None, :, :] - x[:, None, :] + S @ cell[s]
            close = d.norm(dim=2) < cutoff
            if not any(shift):
                close.fill_diagonal_(False)
            i, j = torch.nonzero(close, as_tuple=True)
            edges_i.append(atoms[i])
            edges_j.append(atoms[j])
            shifts.append(torch.tensor(shift, dtype=torch.int64).expand(i.numel(), 3))
    if not edges_i:
        return torch.zeros(2, 0, dtype=torch.int64), torch.zeros(0, 3, dtype=torch.int64)
    return torch.stack((torch.cat(edges_i), torch.cat(edges_j))), torch.cat(shifts)
