"""Forces and stress by autograd, shared by every mlpot potential.

A potential only says how atoms' energies follow from their neighbours' vectors
(:meth:`Potential.atomic_energies`). This base class does the rest, once for all models:

* casts the inputs to the model's dtype (never the global default dtype);
* builds the neighbour list when the data has none, and ignores edges longer than the
  cutoff (so a list built with cutoff + skin is valid input);
* applies a symmetric strain ε to positions and cell when stress is requested, so that
  stress = (1/V) ∂E/∂ε in ASE's sign convention;
* differentiates: forces = −∂E/∂R. Training keeps the graph (``create_graph``) for force
  losses; evaluation takes forces and stress from the per-edge gradients ∂E/∂r_ij
  (:meth:`Potential.edge_gradients`), which a model may compute faster than autograd.

The input dict is never modified.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mlpot.data import keys as K
from mlpot.models.compile import compile_function, supports_compile
from mlpot.neighbors import neighbor_list


def edge_vectors(
    positions: Tensor, edge_index: Tensor, edge_shift: Tensor, cell: Tensor | None, batch: Tensor
) -> Tensor:
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


def require_finite(positions: Tensor, cell: Tensor | None = None) -> None:
    """Raise ValueError naming the atoms (or the cell) when positions [n, 3] or cell [S, 3, 3]
    hold NaN or infinity. Checked at every evaluation: a cached neighbour list would otherwise
    drop a NaN atom's edges (a NaN distance fails every "within the cutoff" test) and return a
    finite energy for a broken structure."""
    if not bool(torch.isfinite(positions).all()):
        bad = torch.nonzero(~torch.isfinite(positions).all(dim=1)).flatten()[:10].tolist()
        raise ValueError(f"positions of atoms {bad} are NaN or infinite")
    if cell is not None and not bool(torch.isfinite(cell).all()):
        raise ValueError("the cell holds NaN or infinite entries")


def prepared_edge_vectors(positions: Tensor, edge_index: Tensor, shift_vectors: Tensor) -> Tensor:
    """r_ij = R_j − R_i + S·cell [E, 3], Å, for a prepared list (``shift_vectors`` [E, 3] is S·cell,
    fixed until the list is rebuilt): the first step of every prepared evaluator."""
    return positions.index_select(0, edge_index[1]) - positions.index_select(0, edge_index[0]) + shift_vectors


def forces_from_edge_gradients(gradient: Tensor, edge_index: Tensor, positions: Tensor) -> Tensor:
    """Forces [n_atoms, 3], eV/Å, from g_ij = ∂E/∂r_ij [E, 3]: with r_ij = R_j − R_i + S·cell,
    −∂E/∂R_k = Σ_{i=k} g_ij − Σ_{j=k} g_ij. ``positions`` [n_atoms, 3] gives shape and dtype."""
    return torch.zeros_like(positions).index_add(0, edge_index[0], gradient).index_add(0, edge_index[1], -gradient)


class Potential(nn.Module):
    """Base class of mlpot potentials: energy from per-atom terms, forces and stress by autograd.

    Subclasses set ``self.cutoff`` (Å) and implement :meth:`atomic_energies`.

    Attributes:
        cutoff: Å.
        training_min_distances: the shortest interatomic distance, Å, per element pair seen in
            the training data, ``{"H-O": 0.93, ...}`` (symbols in alphabetical order joined by
            ``-``), or None when unknown. Training records it and model files keep it; MD and the
            calculator flag pairs that come much closer than this (close contacts).
    """

    cutoff: float
    training_min_distances: dict[str, float] | None = None

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the parameters (of the floating buffers for a model without weights);
        inputs are cast to it."""
        for tensor in self.parameters():
            return tensor.dtype
        for tensor in self.buffers():
            if tensor.is_floating_point():
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
        positions, batch, n_systems, cell = self._inputs(data)
        pbc = data.get(K.PBC)

        if compute_stress and not (pbc is not None and bool(pbc[:n_systems].all())):
            raise ValueError("stress needs fully periodic systems (pbc True on all three axes)")

        edge_index, edge_shift = self._edges(data, positions, cell, batch)

        if not training:
            return self._evaluate(
                data, positions, cell, batch, n_systems, edge_index, edge_shift, compute_forces, compute_stress
            )

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
            edge_index, vectors = self._within_cutoff(edge_index, vectors)

            model_data = {**data, K.POSITIONS: strained_positions, K.BATCH: batch}
            atomic_energy = self.atomic_energies(model_data, edge_index, vectors, training=True)
            energy = torch.zeros(n_systems, dtype=dtype, device=positions.device).index_add(0, batch, atomic_energy)
            results = {K.ENERGY: energy, K.ATOMIC_ENERGY: atomic_energy}

            inputs = ([positions] if compute_forces else []) + ([strain] if compute_stress else [])
            if inputs:
                gradients = torch.autograd.grad(
                    energy.sum(), inputs, create_graph=True, allow_unused=True, materialize_grads=True
                )
                if compute_forces:
                    results[K.FORCES] = -gradients[0]
                if compute_stress:
                    volume = torch.linalg.det(cell).abs()
                    results[K.STRESS] = gradients[-1] / volume[:, None, None]
        return results

    def _inputs(self, data: dict[str, Tensor]) -> tuple[Tensor, Tensor, int, Tensor | None]:
        """Positions [n, 3] in the model's dtype, batch [n] (zeros when absent), the number of
        systems, and the cells [S, 3, 3] in the model's dtype (None when nothing is periodic)."""
        positions = data[K.POSITIONS].to(self.dtype)
        batch = data.get(K.BATCH)
        if batch is None:
            batch = torch.zeros(positions.shape[0], dtype=torch.int64, device=positions.device)
        pbc = data.get(K.PBC)
        cell = data[K.CELL].to(self.dtype) if pbc is not None and bool(pbc.any()) else None
        require_finite(positions, cell)
        return positions, batch, count_systems(data, batch), cell

    def _edges(
        self, data: dict[str, Tensor], positions: Tensor, cell: Tensor | None, batch: Tensor
    ) -> tuple[Tensor, Tensor]:
        """``edge_index`` and ``edge_shift`` of ``data``, or a neighbour list at the cutoff when it has none."""
        if K.EDGE_INDEX in data:
            return data[K.EDGE_INDEX], data[K.EDGE_SHIFT]
        return neighbor_list(positions, self.cutoff, cell, data.get(K.PBC), batch)

    def _within_cutoff(self, edge_index: Tensor, vectors: Tensor) -> tuple[Tensor, Tensor]:
        """Drop the edges longer than the cutoff (a list built with a skin reaches beyond it)."""
        with torch.no_grad():
            inside = vectors.square().sum(dim=1) < self.cutoff**2
        if bool(inside.all()):
            return edge_index, vectors
        kept = torch.nonzero(inside).flatten()
        return edge_index.index_select(1, kept), vectors.index_select(0, kept)

    def edge_gradients(
        self, data: dict[str, Tensor], edge_index: Tensor, vectors: Tensor, with_gradient: bool
    ) -> tuple[Tensor, Tensor | None]:
        """Per-atom energies [n_atoms], eV, and ∂E/∂r_ij [E, 3], eV/Å (None unless ``with_gradient``).

        This default differentiates :meth:`atomic_energies` with autograd; a model may
        override it with a faster pass (evaluation only: no graph is kept).
        """
        with torch.enable_grad():
            vectors = vectors.detach().requires_grad_(with_gradient)
            atomic_energy = self.atomic_energies(data, edge_index, vectors, training=False)
            if not with_gradient:
                return atomic_energy.detach(), None
            (gradient,) = torch.autograd.grad(atomic_energy.sum(), vectors, allow_unused=True, materialize_grads=True)
        return atomic_energy.detach(), gradient

    def constituents(self) -> list["Potential"]:
        """The potentials that actually evaluate: ``[self]``, or a committee's members."""
        return [self]

    def fixed_topology(self, data: dict[str, Tensor]) -> "FixedTopology":
        """An evaluator of energy [n_systems] (eV) and forces [n_atoms, 3] (eV/Å) at new positions,
        for the neighbour list of ``data`` (built with cutoff + skin), valid until it is rebuilt.

        MD calls this once per neighbour-list build and the evaluator every step, so that a
        model can prepare, once, everything that depends on the edges but not on the positions.
        This default simply evaluates ``self`` on ``data`` with the new positions.

        Args:
            data: AtomicData with ``edge_index`` and ``edge_shift``; its positions are ignored.
        """
        # The generic forward branches on tensor values, so it is not compiled as a whole; a model
        # that compiles its own passes still runs them compiled inside it.
        return FixedTopology(evaluate_at_positions, self, (data,), compilable=False)

    @torch.no_grad()
    def _evaluate(
        self,
        data: dict[str, Tensor],
        positions: Tensor,
        cell: Tensor | None,
        batch: Tensor,
        n_systems: int,
        edge_index: Tensor,
        edge_shift: Tensor,
        compute_forces: bool,
        compute_stress: bool,
    ) -> dict[str, Tensor]:
        """:meth:`forward` for evaluation: forces and stress from the edge gradients g_ij = ∂E/∂r_ij.

        Forces by :func:`forces_from_edge_gradients`; a strain ε (R → R(1+ε), cell → cell(1+ε))
        changes every r_ij to r_ij(1+ε), so
        ∂E/∂ε = Σ r_ijᵀ g_ij, symmetrised: the same derivatives that the training path takes
        by autograd (a test compares the two), with no graph to build.
        """
        vectors = edge_vectors(positions, edge_index, edge_shift, cell, batch)
        edge_index, vectors = self._within_cutoff(edge_index, vectors)
        model_data = {**data, K.POSITIONS: positions, K.BATCH: batch}
        atomic_energy, gradient = self.edge_gradients(model_data, edge_index, vectors, compute_forces or compute_stress)
        energy = positions.new_zeros(n_systems).index_add(0, batch, atomic_energy)
        results = {K.ENERGY: energy, K.ATOMIC_ENERGY: atomic_energy}
        if compute_forces:
            results[K.FORCES] = forces_from_edge_gradients(gradient, edge_index, positions)
        if compute_stress:
            per_edge = vectors[:, :, None] * gradient[:, None, :]  # r_a g_b, [E, 3, 3]
            virial = positions.new_zeros(n_systems, 3, 3).index_add(0, batch.index_select(0, edge_index[0]), per_edge)
            volume = torch.linalg.det(cell).abs()
            results[K.STRESS] = 0.5 * (virial + virial.transpose(1, 2)) / volume[:, None, None]
        return results


@dataclass(frozen=True)
class FixedTopology:
    """Energy and forces at new positions for one neighbour list, as :meth:`Potential.fixed_topology`
    returns it: ``function(potential, positions, *arguments)``; calling it evaluates (no graph),
    through :func:`~mlpot.models.compile.compile_function` when the potential evaluates compiled
    (``potential.compiled``).

    Attributes:
        function: a method of the potential (unbound) or a function of the same form: the
            potential, positions [n_atoms, 3] (Å), then ``arguments`` → energy [n_systems] (eV)
            and forces [n_atoms, 3] (eV/Å). Plain Python, never compiled itself. When the
            potential evaluates compiled, it is one fixed sequence of tensor operations, so a
            caller may compile a larger function that calls it: MD fuses it with the
            integrator's step into one graph (``compile_function`` of that step).
        potential: the potential.
        arguments: everything else ``function`` needs, prepared once for the list.
        compilable: whether ``function`` is such a fixed sequence when the potential evaluates
            compiled (False for a generic forward: compiling it through its data-dependent
            branches measured ~20% slower than running it with the model's own compiled passes).
    """

    function: Callable[..., tuple[Tensor, Tensor]]
    potential: nn.Module
    arguments: tuple
    compilable: bool = True

    @property
    def compiled(self) -> bool:
        """Whether the potential evaluates through compiled passes (:func:`~mlpot.models.compile.supports_compile`)."""
        return self.compilable and supports_compile(self.potential) and bool(self.potential.compiled)

    def __call__(self, positions: Tensor) -> tuple[Tensor, Tensor]:
        function = compile_function(self.function) if self.compiled else self.function
        with torch.no_grad():
            return function(self.potential, positions, *self.arguments)


def evaluate_at_positions(potential: nn.Module, positions: Tensor, data: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Energy [n_systems], eV, and forces [n_atoms, 3], eV/Å, of ``potential`` on ``data`` at
    ``positions`` [n_atoms, 3], Å: the default :meth:`Potential.fixed_topology` function, and
    MD's for any module that follows the potential contract (gradients enabled for those that
    take forces by autograd)."""
    with torch.enable_grad():
        out = potential({**data, K.POSITIONS: positions}, compute_forces=True)
    return out[K.ENERGY], out[K.FORCES]


def count_systems(data: dict[str, Tensor], batch: Tensor) -> int:
    if K.N_ATOMS in data:
        return data[K.N_ATOMS].shape[0]
    if K.CELL in data:
        return data[K.CELL].shape[0]
    return int(batch.max()) + 1 if batch.numel() else 1
