"""Forces and stress by autograd, shared by every mlpot potential.

A potential only says how atoms' energies follow from their neighbours' vectors
(:meth:`Potential.atomic_energies`). This base class does the rest, once for all models:

* casts the inputs to the model's dtype (never the global default dtype);
* builds the neighbour list when the data has none, and ignores edges longer than the
  cutoff (so a list built with cutoff + skin is valid input);
* applies a symmetric strain ε to positions and cell when stress is requested, so that
  stress = (1/V) ∂E/∂ε in ASE's sign convention;
* differentiates: forces = −∂E/∂R, with ``create_graph`` only when training on forces.

The input dict is never modified.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mlpot.data import keys as K
from mlpot.neighbors import neighbor_list


def edge_vectors(positions: Tensor, edge_index: Tensor, edge_shift: Tensor, cell: Tensor | None, batch: Tensor) -> Tensor:
    """r_ij = positions[j] − positions[i] + edge_shift @ cell[batch[i]].

    Args:
        positions: [n_atoms, 3] Å.
        edge_index: [2, E] int64 (i, j).
        edge_shift: [E, 3] int64 cell shifts.
        cell: [n_systems, 3, 3] Å or None when nothing is periodic.
        batch: [n_atoms] int64 system of each atom.

    Returns:
        [E, 3] edge vectors, Å, differentiable in positions and cell.
    """
    centre, neighbour = edge_index[0], edge_index[1]
    vectors = positions.index_select(0, neighbour) - positions.index_select(0, centre)
    if cell is not None and edge_shift.numel() and bool(edge_shift.any()):
        shift = edge_shift.to(positions.dtype)
        if cell.shape[0] == 1:
            vectors = vectors + shift @ cell[0]
        else:
            vectors = vectors + torch.einsum("ek,ekj->ej", shift, cell.index_select(0, batch.index_select(0, centre)))
    return vectors


class Potential(nn.Module):
    """Base class of mlpot potentials: energy from per-atom terms, forces and stress by autograd.

    Subclasses set ``self.cutoff`` (Å) and implement :meth:`atomic_energies`.
    """

    cutoff: float

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the parameters; inputs are cast to it."""
        for tensor in self.parameters():
            return tensor.dtype
        return torch.float64

    def atomic_energies(
        self, data: dict[str, Tensor], edge_index: Tensor, vectors: Tensor, training: bool = True
    ) -> Tensor:
        """Per-atom energies, eV, [n_atoms], from edges within the cutoff.

        Args:
            data: AtomicData (cast to the model dtype); read ``numbers`` and ``batch`` from it.
            edge_index: [2, E] int64 edges with |r_ij| < cutoff.
            vectors: [E, 3] r_ij, Å, differentiable.
            training: the result must support weight gradients and second derivatives. When
                False, only ∂/∂vectors is taken, once, and a model may use a faster path.
        """
        raise NotImplementedError

    def forward(
        self,
        data: dict[str, Tensor],
        compute_forces: bool = True,
        compute_stress: bool = False,
        training: bool = False,
    ) -> dict[str, Tensor]:
        """Evaluate the potential on (batched) AtomicData.

        Args:
            data: AtomicData with at least positions and numbers; batch, cell, pbc, edge_index
                and edge_shift are used when present.
            compute_forces: return ``forces`` [n_atoms, 3], eV/Å.
            compute_stress: return ``stress`` [n_systems, 3, 3], eV/Å³ (fully periodic systems only).
            training: keep the graph of forces and stress (``create_graph``) for force losses,
                and return outputs attached to it.

        Returns:
            A new dict with ``energy`` [n_systems] and ``atomic_energy`` [n_atoms] in eV, plus
            ``forces`` and ``stress`` on request.
        """
        dtype = self.dtype
        positions = data[K.POSITIONS].to(dtype)
        n_atoms = positions.shape[0]
        batch = data.get(K.BATCH)
        if batch is None:
            batch = torch.zeros(n_atoms, dtype=torch.int64, device=positions.device)
        n_systems = _count_systems(data, batch)
        pbc = data.get(K.PBC)
        periodic = pbc is not None and bool(pbc.any())
        cell = data[K.CELL].to(dtype) if periodic else None

        if compute_stress and not (pbc is not None and bool(pbc[:n_systems].all())):
            raise ValueError("stress needs fully periodic systems (pbc True on all three axes)")

        if K.EDGE_INDEX in data:
            edge_index, edge_shift = data[K.EDGE_INDEX], data[K.EDGE_SHIFT]
        else:
            edge_index, edge_shift = neighbor_list(positions, self.cutoff, cell, pbc, batch)

        with torch.enable_grad():
            if compute_forces:
                positions = positions.detach().requires_grad_(True) if not positions.requires_grad else positions
            strain = None
            if compute_stress:
                strain = torch.zeros(n_systems, 3, 3, dtype=dtype, device=positions.device, requires_grad=True)
                symmetric = 0.5 * (strain + strain.transpose(1, 2))
                strained_positions = positions + torch.einsum("ni,nij->nj", positions, symmetric.index_select(0, batch))
                strained_cell = cell + cell @ symmetric
            else:
                strained_positions, strained_cell = positions, cell
            vectors = edge_vectors(strained_positions, edge_index, edge_shift, strained_cell, batch)

            # Edges from a list built with a skin may reach beyond the cutoff: drop them.
            with torch.no_grad():
                inside = vectors.square().sum(dim=1) < self.cutoff**2
            if not bool(inside.all()):
                kept = torch.nonzero(inside).flatten()
                edge_index, vectors = edge_index.index_select(1, kept), vectors.index_select(0, kept)

            model_data = {**data, K.POSITIONS: strained_positions, K.BATCH: batch}
            atomic_energy = self.atomic_energies(model_data, edge_index, vectors, training=training)
            energy = torch.zeros(n_systems, dtype=dtype, device=positions.device).index_add(0, batch, atomic_energy)
            results = {K.ENERGY: energy, K.ATOMIC_ENERGY: atomic_energy}

            inputs = ([positions] if compute_forces else []) + ([strain] if compute_stress else [])
            if inputs:
                gradients = torch.autograd.grad(
                    energy.sum(), inputs, create_graph=training, allow_unused=True, materialize_grads=True
                )
                if compute_forces:
                    results[K.FORCES] = -gradients[0]
                if compute_stress:
                    volume = torch.linalg.det(cell).abs()
                    results[K.STRESS] = gradients[-1] / volume[:, None, None]
        if not training:
            results = {key: value.detach() for key, value in results.items()}
        return results


def _count_systems(data: dict[str, Tensor], batch: Tensor) -> int:
    if K.N_ATOMS in data:
        return data[K.N_ATOMS].shape[0]
    if K.CELL in data:
        return data[K.CELL].shape[0]
    return int(batch.max()) + 1 if batch.numel() else 1
