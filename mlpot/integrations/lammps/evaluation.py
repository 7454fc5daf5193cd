"""One rank's energy, forces and virial from its local and ghost atoms (see the package docstring).

Testable without LAMMPS: positions and atomic numbers in, :class:`LocalTerms` out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class LocalTerms:
    """What one rank contributes.

    Attributes:
        energy: Σ of the local atoms' energies, eV.
        atomic_energy: [n_local] per-atom energies, eV.
        forces: [n_local, 3] exact forces on the local atoms, eV/Å (float64).
        virial: [3, 3] this rank's part of the virial W = −Σ r ⊗ ∂E/∂r, eV, LAMMPS' sign.
            Summed over ranks, energy and virial are the system's.
    """

    energy: float
    atomic_energy: np.ndarray
    forces: np.ndarray
    virial: np.ndarray


def _edge_terms(
    model: nn.Module, data: dict[str, Tensor], edge_index: Tensor, vectors: Tensor
) -> tuple[Tensor, Tensor]:
    """Per-atom energies [n_atoms] (eV) and ∂E/∂r_ij [E, 3] (eV/Å) on the given edges.

    A committee predicts the mean of its members, so its terms are the members' means; each
    member sees only the edges within its own cutoff (zero gradient on the others).
    """
    members = getattr(model, "members", None)
    if members is not None:
        terms = [_edge_terms(member, data, edge_index, vectors) for member in members]
        return torch.stack([e for e, _ in terms]).mean(dim=0), torch.stack([g for _, g in terms]).mean(dim=0)
    inside = torch.nonzero(vectors.square().sum(dim=1) < float(model.cutoff) ** 2).flatten()
    if inside.numel() == vectors.shape[0]:  # a single model: the caller kept only these edges
        energies, gradient = model.edge_gradients(data, edge_index, vectors, True)
        return energies.to(vectors.dtype), gradient.to(vectors.dtype)
    energies, gradient = model.edge_gradients(data, edge_index[:, inside], vectors[inside], True)
    full = vectors.new_zeros(vectors.shape).index_copy_(0, inside, gradient.to(vectors.dtype))
    return energies.to(vectors.dtype), full


@torch.no_grad()
def local_energy_forces_virial(
    model: nn.Module, positions: Tensor, numbers: Tensor, n_local: int, neighbors=None
) -> LocalTerms:
    """One rank's energy, forces and virial from its local atoms followed by its ghost atoms.

    Args:
        model: an mlpot potential (``Potential``) or a committee of them, strictly local with
            ``cutoff`` r_c (Å).
        positions: [n_local + n_ghost, 3], Å, local atoms first; ghosts are images, nothing is
            periodic. Cast to the model's dtype and device.
        numbers: [n_local + n_ghost] int64 atomic numbers.
        n_local: the number of local atoms.
        neighbors: a :class:`mlpot.neighbors.VerletList` at the model's cutoff, kept from call to
            call (it rebuilds itself when an atom moved more than skin/2 or the atoms changed, as
            when LAMMPS re-neighbours); None builds a list at the cutoff.

    Forces on the local atoms are exact when the ghosts include every atom within 2 r_c of a
    local atom (package docstring); energy and virial need only those within r_c.
    """
    from mlpot.data import keys as K
    from mlpot.models.potential import forces_from_edge_gradients
    from mlpot.neighbors import neighbor_list

    parameter = next(iter(model.parameters()), None)
    dtype = parameter.dtype if parameter is not None else torch.float64
    device = parameter.device if parameter is not None else torch.device("cpu")
    positions = positions.to(device=device, dtype=dtype)
    numbers = numbers.to(device=device, dtype=torch.int64)
    n_all = positions.shape[0]
    batch = torch.zeros(n_all, dtype=torch.int64, device=device)
    if n_all == 0:
        return LocalTerms(0.0, np.zeros(0), np.zeros((0, 3)), np.zeros((3, 3)))
    if neighbors is None:
        edge_index, _ = neighbor_list(positions, float(model.cutoff))
    else:
        edge_index = neighbors.get(positions, numbers=numbers)[0]
    vectors = positions.index_select(0, edge_index[1]) - positions.index_select(0, edge_index[0])
    within = torch.nonzero(vectors.square().sum(dim=1) < float(model.cutoff) ** 2).flatten()
    edge_index, vectors = edge_index[:, within], vectors[within]
    # Keep the edges of the atoms whose energy reaches a local atom: the local atoms and the
    # centres with a local neighbour. The outer ghosts' environments are incomplete and unneeded.
    is_local = torch.arange(n_all, device=device) < n_local
    needed = is_local.clone()
    needed[edge_index[0][is_local[edge_index[1]]]] = True
    kept = torch.nonzero(needed[edge_index[0]]).flatten()
    edge_index, vectors = edge_index[:, kept], vectors[kept]
    data = {K.POSITIONS: positions, K.NUMBERS: numbers, K.BATCH: batch}
    atomic_energy, gradient = _edge_terms(model, data, edge_index, vectors)
    forces = forces_from_edge_gradients(gradient, edge_index, positions)[:n_local]
    local_edges = is_local[edge_index[0]]
    per_edge = vectors[local_edges, :, None] * gradient[local_edges, None, :]  # r_a g_b, [E_local, 3, 3]
    virial = -per_edge.sum(dim=0)
    virial = 0.5 * (virial + virial.T)
    local_energy = atomic_energy[:n_local]
    return LocalTerms(
        energy=float(local_energy.double().sum()),
        atomic_energy=local_energy.double().cpu().numpy(),
        forces=forces.double().cpu().numpy(),
        virial=virial.double().cpu().numpy(),
    )


def ghost_cutoff_needed(cutoff: float, skin: float) -> float:
    """The ghost-shell width, Å, that makes local forces exact: 2 r_c + skin (package docstring)."""
    return 2.0 * float(cutoff) + float(skin)
