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

import torch
from torch import Tensor

from mlpot.neighbors.cells import _as_system_tensors, _per_system_matmul, complete_cell

__all__ = ["neighbor_list", "BINS_PER_CUTOFF"]

#: Relative margin of the searched distance over r_c (the stencil covers r_c·(1 + _SLACK/2)):
#: far above the round-off of float32 coordinates, and too small to cost time.
_SLACK = 1e-4

#: Bins per cutoff length: bins are at least r_c/BINS_PER_CUTOFF thick. Finer bins trim the
#: searched volume towards the cutoff sphere (27 r_c³ for 1, 11.5 r_c³ for 3, halved by the half
#: stencil) at the price of more column look-ups.
BINS_PER_CUTOFF = 3


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
    full_cell = complete_cell(cell, pbc)
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
        highest_shift = torch.where(
            periodic_atom, torch.div(n_atom_bins - 1 + m - atom_bin, n_atom_bins, rounding_mode="floor"), 0
        )
        copies = highest_shift - lowest_shift + 1  # [n, 3]
        per_atom = copies.prod(dim=1)
        point_atom = torch.repeat_interleave(torch.arange(n_atoms, device=device), per_atom)
        first_point = (torch.cumsum(per_atom, 0) - per_atom).index_select(0, point_atom)
        local = torch.arange(point_atom.numel(), device=device) - first_point
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
    centre, candidate, distance2 = (t.index_select(0, close) for t in (centre, candidate, distance2))
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
        centre, neighbour, edge_shift = (t.index_select(0, keep) for t in (centre, neighbour, edge_shift))
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
    forward_start = first - (torch.cumsum(forward, 0) - forward)
    backward_start = first + forward - (torch.cumsum(backward, 0) - backward)
    slot = torch.cat(
        (
            rows + forward_start.index_select(0, centre),
            rows + backward_start.index_select(0, neighbour.index_select(0, order)),
        )
    )
    # Which half-list row fills each slot: r for (i, j, S), n_half + r for its reverse (j, i, -S).
    row = torch.empty_like(slot).scatter_(0, slot, torch.cat((rows, order + n_half)))
    other = torch.cat((neighbour, centre)).index_select(0, row).to(torch.int64)
    edge_shift = torch.cat((shift, -shift)).index_select(0, row).to(torch.int64)
    edge_centre = torch.repeat_interleave(torch.arange(n_atoms, device=device), total)
    return torch.stack((edge_centre, other)), edge_shift


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
    columns = torch.cat(
        (torch.zeros(1, 2, dtype=torch.int64, device=device), torch.stack((dx[after], dy[after]), dim=1))
    )
    dz = torch.arange(span + 1, device=device)
    offsets = torch.cat(
        (columns[:, None, :].expand(-1, span + 1, 2), dz[None, :, None].expand(columns.shape[0], -1, 1)), dim=2
    )  # [C, Z, 3]
    gap2 = (offsets.abs() - 1).clamp(min=0).square().to(torch.float64)
    edges = full_cell.to(torch.float64) / scale[:, :, None]
    metric = edges @ edges.transpose(1, 2)  # [S, 3, 3]
    diagonal = torch.diagonal(metric, dim1=1, dim2=2)
    off_diagonal = metric - torch.diag_embed(diagonal)
    largest = diagonal.max(dim=1, keepdim=True).values[:, :, None]
    orthogonal = (off_diagonal.abs() <= 1e-9 * largest).flatten(1).all(dim=1)
    smallest = torch.linalg.eigvalsh(metric)[:, 0]
    closest2 = torch.where(
        orthogonal[:, None, None],
        (gap2[None] * diagonal[:, None, None, :]).sum(dim=3),
        smallest[:, None, None] * gap2.sum(dim=2)[None],
    )  # [S, C, Z]
    within = (offsets.abs()[None] <= reach[:, None, None, :]).all(dim=3)
    searched = within & (closest2 < distance**2)
    return columns, searched.sum(dim=2) - 1


def _bin_key(system: Tensor, bin_xyz: Tensor, extent: int) -> Tensor:
    """Linear int64 key of (system, bx, by, bz); every coordinate is in [0, extent)."""
    return ((system * extent + bin_xyz[..., 0]) * extent + bin_xyz[..., 1]) * extent + bin_xyz[..., 2]
