"""Neighbour lists: an O(N) cell list in torch, with periodic boundaries on any axes.

The list is *full* (both i→j and j→i) and follows ASE's convention for the shift vector::

    r_ij = positions[j] - positions[i] + edge_shift @ cell

so it can be compared entry for entry with ``ase.neighborlist.neighbor_list("ijS", ...)``.

How it works, for every system of a batch at once (no Python loop over atoms or bins):

1. *Wrap.* Positions are wrapped into the cell along periodic axes; the integer wrap is
   remembered so that the returned shifts refer to the positions as given.
2. *Bins.* Bins are slabs between lattice planes, in fractional coordinates: a periodic axis
   holds an integer number n_k of bins per cell, each at least r_c/BINS_PER_CUTOFF thick, so
   that a lattice translation S maps bin b onto bin b + S·n exactly (a non-periodic axis is cut
   into slabs r_c/BINS_PER_CUTOFF thick). A pair of atoms lies at most m_k bins apart along
   axis k (m_k = BINS_PER_CUTOFF, more for cells thinner than that).
3. *Images.* Each atom is copied by the lattice translations that land it in a bin within m_k
   of the cell (an integer test), axis by axis. This is what makes cells smaller than the cutoff
   work: an atom may see several images of the same neighbour, and images of itself.
4. *Half stencil.* Points are sorted by bin key (system, bx, by, bz), so a column of bins along
   z is one range of the sorted order. Since bin offsets are exact under translations, the pair
   (i, j + S) at bin offset d is the pair (j, i - S) at offset -d: each atom searches only the
   bin columns after its own in lexicographic order, plus its own column from its own point on,
   and only bins whose closest approach to its bin is under r_c. Bins are looked up in a dense
   table, or by ``searchsorted`` in a huge sparse box, so memory follows the number of atoms.
5. *Pairs.* Candidates are kept when closer than the cutoff (strictly; a float32 distance, with
   pairs within round-off of r_c decided exactly), then emitted as (i, j, S) and (j, i, -S),
   grouped by centre: only the reversed half is sorted.

Non-periodic axes need no cell vector (zeros are allowed there), exactly as in ASE.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

__all__ = ["neighbor_list", "needs_rebuild", "largest_squared_displacement", "moved_beyond_skin", "neighbor_list_brute_force"]



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
        edge_index: [2, n_edges] int64, row 0 the centre i, row 1 the neighbour j (global indices);
            edges are grouped by centre (row 0 is non-decreasing).
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

    # 1. Wrap along periodic axes: wrapped = positions + wrap @ cell, with integer wrap. Bins are
    #    assigned from float64 fractional coordinates whatever the input dtype (n·3 numbers: cheap).
    full_cell = _completed_cells(cell, pbc)
    inverse = torch.linalg.inv(full_cell.to(torch.float64))  # columns are the reciprocal vectors b_k
    fractional = _per_system_matmul(positions, inverse, batch)
    periodic_atom = pbc.index_select(0, batch)
    wrap = torch.where(periodic_atom, -torch.floor(fractional), torch.zeros_like(fractional))
    fractional = fractional + wrap
    any_periodic = bool(pbc.any())
    if any_periodic:
        wrapped = positions + _per_system_matmul(wrap, full_cell, batch)
    else:
        wrapped = positions
    wrap = wrap.to(torch.int64)

    # 2. Bins: slabs between lattice planes, so that a lattice translation maps bins onto bins
    #    (bin + S·n). Each periodic axis holds an integer number n_k of bins per cell, each at least
    #    r_c/BINS_PER_CUTOFF thick; a non-periodic axis (a unit vector after completion) is cut
    #    into slabs r_c/BINS_PER_CUTOFF thick from the system's lowest atom.
    #    The search covers a little more than r_c (``covered``), so that round-off in the
    #    coordinates can never hide a pair; bins are made just thick enough for that.
    covered = cutoff * (1 + 0.5 * _SLACK)
    reciprocal_norm = inverse.norm(dim=1)  # [S, 3] |b_k|: 1/(distance between lattice planes)
    scale = BINS_PER_CUTOFF / (cutoff * (1 + _SLACK) * reciprocal_norm)  # bins per fractional unit
    scale = torch.where(pbc, torch.floor(scale).clamp(min=1), scale)
    # Reach m_k: a point within `covered` of a bin lies at most m_k bins away along axis k. It is
    # BINS_PER_CUTOFF, or more along the periodic axes of cells thinner than r_c/BINS_PER_CUTOFF.
    reach = torch.ceil(covered * reciprocal_norm * scale).to(torch.int64)  # [S, 3]
    low = torch.full((n_systems, 3), float("inf"), dtype=torch.float64, device=device)
    low = low.scatter_reduce(0, batch[:, None].expand(-1, 3), fractional, reduce="amin")
    origin = torch.where(pbc, torch.zeros_like(low), low)
    atom_bin = torch.floor((fractional - origin.index_select(0, batch)) * scale.index_select(0, batch)).to(torch.int64)
    n_bins = torch.where(pbc, scale, torch.ones_like(scale)).to(torch.int64)  # used on periodic axes only
    # Round-off can put a wrapped coordinate at exactly 1.0: it belongs to the last bin.
    atom_bin = torch.where(periodic_atom, torch.minimum(atom_bin, n_bins.index_select(0, batch) - 1), atom_bin)

    # 3. Periodic images: atom a gets the translations S (S_k = 0 on non-periodic axes) that land
    #    it in a bin within reach of the cell, -m_k ≤ bin_k + S_k n_k < n_k + m_k on every axis (an
    #    integer test, exact). This is what makes cells smaller than the cutoff work: an atom may
    #    see several images of the same neighbour, and images of itself. Only the copies kept are
    #    made: S_k runs over [lowest_k, lowest_k + copies_k), enumerated in mixed radix.
    if any_periodic:
        n_atom_bins, m = n_bins.index_select(0, batch), reach.index_select(0, batch)
        lowest_shift = torch.where(periodic_atom, -torch.div(m + atom_bin, n_atom_bins, rounding_mode="floor"), 0)
        highest_shift = torch.where(periodic_atom, torch.div(n_atom_bins - 1 + m - atom_bin, n_atom_bins, rounding_mode="floor"), 0)
        copies = highest_shift - lowest_shift + 1  # [n, 3]
        per_atom = copies.prod(dim=1)
        point_atom = torch.repeat_interleave(torch.arange(n_atoms, device=device), per_atom)
        local = torch.arange(point_atom.numel(), device=device) - (torch.cumsum(per_atom, 0) - per_atom).index_select(0, point_atom)
        c = copies.index_select(0, point_atom)
        point_shift = lowest_shift.index_select(0, point_atom) + torch.stack(
            (local // (c[:, 1] * c[:, 2]), (local // c[:, 2]) % c[:, 1], local % c[:, 2]), dim=1
        )
        point_bin = atom_bin.index_select(0, point_atom) + point_shift * n_atom_bins.index_select(0, point_atom)
    else:
        point_atom = torch.arange(n_atoms, device=device)
        point_shift = torch.zeros(n_atoms, 3, dtype=torch.int64, device=device)
        point_bin = atom_bin
    # An atom's copies are consecutive, so its zero-shift copy (its own point) comes in atom order.
    original_point = torch.nonzero(~point_shift.any(dim=1)).flatten() if point_atom.numel() > n_atoms else point_atom
    point_system = batch.index_select(0, point_atom)
    point_pos = wrapped.index_select(0, point_atom) + _per_system_matmul(point_shift, cell, point_system)
    # span: the stencil's half-width in bins, for every system of the batch. Shifts travel as
    # int32 while per pair (half the memory traffic of int64), unless positions lie absurdly
    # many cells away.
    largest_wrap, span = torch.stack((wrap.abs().max(), reach.max())).tolist()
    shift_dtype = torch.int32 if largest_wrap < 2**30 else torch.int64
    wrap = wrap.to(shift_dtype)
    sorted_shift_source = wrap.index_select(0, point_atom) + point_shift.to(shift_dtype)

    # 4. Sort the points by bin key (system, bx, by, bz). Coordinates relative to each system's
    #    lowest point keep float32 accurate for the distance prefilter.
    extent = int(point_bin.max()) + 2 * span + 1
    if extent**3 * n_systems >= 2**62:
        raise ValueError(
            f"the atoms span {extent} bins per axis: the system is too sparse for the cell list; "
            "split it into separate systems"
        )
    lowest = torch.full((n_systems, 3), float("inf"), dtype=dtype, device=device)
    lowest = lowest.scatter_reduce(0, point_system[:, None].expand(-1, 3), point_pos, reduce="amin")
    local_points = point_pos - lowest.index_select(0, point_system)
    local_centres = wrapped - lowest.index_select(0, batch)
    point_key = _bin_key(point_system, point_bin + span, extent)
    sorted_key, order = torch.sort(point_key)
    sorted_atom = point_atom.index_select(0, order)
    # The shift is referred to the positions as given: r_ij = x_j - x_i + (w_j + S - w_i) @ cell.
    sorted_shift = sorted_shift_source.index_select(0, order)
    # float32 is enough to pre-select candidates; pairs near the cutoff are decided exactly below.
    sorted_local = local_points.index_select(0, order).to(torch.float32)
    rank = torch.empty_like(order).index_copy_(0, order, torch.arange(order.numel(), device=device))
    centre_rank = rank.index_select(0, original_point)  # where each atom's own point sits

    # 5. Half stencil. Bin offsets are exact under lattice translations, so the pair (i, j+S) at
    #    offset d is the pair (j, i-S) at offset -d: only columns (dx, dy) after (0, 0) are searched,
    #    plus column (0, 0) from the atom's own point onwards (dz ≥ 0, and later in the sorted order
    #    within its own bin). Each pair is found once and emitted in both directions.
    # A few hundred numbers and a 3×3 eigenvalue problem per system: cheaper on the CPU than on a GPU.
    columns, z_reach = _half_stencil(span, covered, full_cell.cpu(), scale.cpu(), reach.cpu())  # [C, 2], [S, C]
    columns, z_reach = columns.to(device), z_reach.to(device)
    z = z_reach.index_select(0, batch)  # [n, C]; -1: column out of reach
    # Keys are linear in the bin: a column's key range is the centre's key plus a constant, ± dz.
    middle_key = _bin_key(batch, atom_bin + span, extent)[:, None] + (columns[:, 0] * extent + columns[:, 1]) * extent
    low_key, high_key = middle_key - z, middle_key + z
    n_keys = n_systems * extent**3
    if n_keys <= 8 * point_key.numel() + 100_000:
        # Compact grid: a dense table of where each bin's points end in the sorted order.
        per_bin = torch.bincount(point_key, minlength=n_keys)
        end = torch.cumsum(per_bin, 0)
        first = (end - per_bin).index_select(0, low_key.reshape(-1)).view(n_atoms, -1)
        last = end.index_select(0, high_key.reshape(-1)).view(n_atoms, -1)
    else:
        # Sparse grid (a huge, mostly empty box): binary search, memory independent of volume.
        first = torch.searchsorted(sorted_key, low_key.reshape(-1), side="left").view(n_atoms, -1)
        last = torch.searchsorted(sorted_key, high_key.reshape(-1), side="right").view(n_atoms, -1)
    first[:, 0] = centre_rank + 1  # column (0, 0) is first: start just after the atom itself
    count = torch.where(z >= 0, last - first, 0).clamp_(min=0).reshape(-1)
    first = first.reshape(-1)
    per_centre = count.view(n_atoms, -1).sum(dim=1)
    # Per-candidate indices as int32 (half the memory traffic) whenever they fit.
    index_dtype = torch.int32 if point_key.numel() < 2**31 else torch.int64
    centre = torch.repeat_interleave(torch.arange(n_atoms, dtype=index_dtype, device=device), per_centre)
    # Candidates run through consecutive sorted positions, jumping at each non-empty column: a
    # cumulative sum of steps of 1, with the jumps written in, is cheaper than expanding offsets.
    busy = torch.nonzero(count).flatten()
    busy_first, busy_count = first.index_select(0, busy), count.index_select(0, busy)
    step = torch.ones(centre.numel(), dtype=index_dtype, device=device)
    if busy.numel():
        jump_at = torch.cumsum(busy_count, 0) - busy_count
        step.index_copy_(0, jump_at[1:], (busy_first[1:] - busy_first[:-1] - busy_count[:-1] + 1).to(index_dtype))
        step[0] = busy_first[0]
    candidate = torch.cumsum(step, 0, dtype=index_dtype)

    d = sorted_local.index_select(0, candidate)
    d -= local_centres.to(torch.float32).index_select(0, centre)
    distance2 = d.square_() @ torch.ones(3, dtype=torch.float32, device=device)  # faster than .sum(dim=1) on CPU
    margin = 1e-5 * (cutoff + float(local_points.abs().max()))  # far above float32 round-off
    close = torch.nonzero(distance2 < (cutoff + margin) ** 2).flatten()
    centre, candidate, distance2 = centre.index_select(0, close), candidate.index_select(0, close), distance2.index_select(0, close)
    neighbour = sorted_atom.to(index_dtype).index_select(0, candidate)
    edge_shift = sorted_shift.index_select(0, candidate) - wrap.index_select(0, centre)
    # Pairs within round-off of the cutoff are decided exactly, in ASE's frame, so that ties
    # resolve as users compute r_ij (the reversed pair computes the negated vector, bit for bit);
    # all others are certain from the float32 distance.
    borderline = torch.nonzero(distance2 > (cutoff - margin) ** 2).flatten()
    if borderline.numel():
        i, j = centre.index_select(0, borderline), neighbour.index_select(0, borderline)
        r_ij = positions.index_select(0, j) - positions.index_select(0, i)
        r_ij = r_ij + _per_system_matmul(edge_shift.index_select(0, borderline), cell, batch.index_select(0, i))
        keep = torch.ones_like(centre, dtype=torch.bool)
        keep[borderline] = torch.sqrt(r_ij.square().sum(dim=1)) < cutoff
        keep = torch.nonzero(keep).flatten()
        centre, neighbour, edge_shift = centre.index_select(0, keep), neighbour.index_select(0, keep), edge_shift.index_select(0, keep)
    return _both_directions(centre, neighbour, edge_shift, n_atoms)


def _both_directions(centre: Tensor, neighbour: Tensor, shift: Tensor, n_atoms: int) -> tuple[Tensor, Tensor]:
    """Full list grouped by centre from a half list (i, j, S) sorted on i: adds every (j, i, -S).

    Atom a's edges are its forward ones (already in order), then its reversed ones: only the
    reversed half needs a sort, on j. Returns edge_index [2, 2E] and edge_shift [2E, 3].
    """
    device = centre.device
    forward = torch.bincount(centre, minlength=n_atoms)
    backward = torch.bincount(neighbour, minlength=n_atoms)
    total = forward + backward
    first = torch.cumsum(total, 0) - total
    n_half = centre.numel()
    rows = torch.arange(n_half, device=device)
    # Sorting int32 keys is about twice as fast as int64 on CPU.
    order = torch.argsort(neighbour.to(torch.int32) if n_atoms < 2**31 else neighbour)
    slot = torch.cat(
        (
            rows + (first - (torch.cumsum(forward, 0) - forward)).index_select(0, centre),
            rows + (first + forward - (torch.cumsum(backward, 0) - backward)).index_select(0, neighbour.index_select(0, order)),
        )
    )
    # Which half-list row fills each slot: r for (i, j, S), n_half + r for its reverse (j, i, -S).
    row = torch.empty_like(slot).scatter_(0, slot, torch.cat((rows, order + n_half)))
    other = torch.cat((neighbour, centre)).index_select(0, row).to(torch.int64)
    edge_shift = torch.cat((shift, -shift)).index_select(0, row).to(torch.int64)
    edge_centre = torch.repeat_interleave(torch.arange(n_atoms, device=device), total)
    return torch.stack((edge_centre, other)), edge_shift


#: Relative margin of the searched distance over r_c (the stencil covers r_c·(1 + _SLACK/2)):
#: far above the round-off of float32 coordinates, and too small to cost time.
_SLACK = 1e-4

#: Bins per cutoff length: bins are at least r_c/BINS_PER_CUTOFF thick. Finer bins trim the
#: searched volume towards the cutoff sphere (27 r_c³ for 1, 11.5 r_c³ for 3, halved by the half
#: stencil) at the price of more column look-ups.
BINS_PER_CUTOFF = 3


def _half_stencil(span: int, distance: float, full_cell: Tensor, scale: Tensor, reach: Tensor) -> tuple[Tensor, Tensor]:
    """Columns of bins searched from a centre bin: half of the neighbourhood, pruned per system.

    Args:
        span: largest reach in bins of any system and axis.
        distance: the distance to cover, Å (r_c and a margin).
        full_cell: [S, 3, 3] completed cells (rows a_k).
        scale: [S, 3] bins per fractional unit n_k: bin edge vectors are a_k / n_k.
        reach: [S, 3] int64 m_k, the most bins along axis k a pair can be apart.

    Returns:
        columns [C, 2] int64 (dx, dy): (0, 0) first, then the columns after it in lexicographic
        order, |dx|, |dy| ≤ span; and z_reach [S, C] int64, the largest |dz| to search in each column
        (-1: none). A bin is skipped when its closest approach to the centre bin is ≥ ``distance``:
        with integer gaps g_k = max(|d_k| - 1, 0), that distance is at least √(Σ (g_k t_k)²)
        (t_k the bin thickness) in an orthogonal cell and √(λ_min Σ g_k²) in any cell, λ_min the
        smallest eigenvalue of the metric of the bin edge vectors.
    """
    device = full_cell.device
    steps = torch.arange(-span, span + 1, device=device)
    dx, dy = torch.meshgrid(steps, steps, indexing="ij")
    dx, dy = dx.flatten(), dy.flatten()
    after = (dx > 0) | ((dx == 0) & (dy > 0))
    columns = torch.cat((torch.zeros(1, 2, dtype=torch.int64, device=device), torch.stack((dx[after], dy[after]), dim=1)))
    dz = torch.arange(span + 1, device=device)
    offsets = torch.cat(
        (columns[:, None, :].expand(-1, span + 1, 2), dz[None, :, None].expand(columns.shape[0], -1, 1)), dim=2
    )  # [C, Z, 3]
    gap2 = (offsets.abs() - 1).clamp(min=0).square().to(torch.float64)
    edges = full_cell.to(torch.float64) / scale[:, :, None]
    metric = edges @ edges.transpose(1, 2)  # [S, 3, 3]
    diagonal = torch.diagonal(metric, dim1=1, dim2=2)
    off_diagonal = metric - torch.diag_embed(diagonal)
    orthogonal = (off_diagonal.abs() <= 1e-9 * diagonal.max(dim=1, keepdim=True).values[:, :, None]).flatten(1).all(dim=1)
    smallest = torch.linalg.eigvalsh(metric)[:, 0]
    closest2 = torch.where(
        orthogonal[:, None, None],
        (gap2[None] * diagonal[:, None, None, :]).sum(dim=3),
        smallest[:, None, None] * gap2.sum(dim=2)[None],
    )  # [S, C, Z]
    within = (offsets.abs()[None] <= reach[:, None, None, :]).all(dim=3)
    searched = within & (closest2 < distance**2)
    return columns, searched.sum(dim=2) - 1


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
    return moved_beyond_skin(float(largest_squared_displacement(positions.detach(), reference_positions.detach())), skin)


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
