"""The brute-force neighbour list: every pair, every lattice translation in range; the reference for tests."""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

from mlpot.neighbors.cells import _as_system_tensors, complete_cell


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
            full = complete_cell(cell[s : s + 1], pbc[s : s + 1])[0]
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

