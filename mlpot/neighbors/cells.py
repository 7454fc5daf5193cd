"""What the cell list needs of the cell: inputs broadcast per system, invertible cells, per-system products."""

from __future__ import annotations

import torch
from torch import Tensor


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


def complete_cell(cell: Tensor, pbc: Tensor) -> Tensor:
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
                f"cell of system {s} is singular on its periodic axes {periodic}: "
                "lattice vectors are linearly dependent"
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
