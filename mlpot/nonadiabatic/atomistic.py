"""An atomistic diabatic Hamiltonian: a symmetric n×n matrix H_d(R) of atomic positions.

Why diabatic (see :mod:`mlpot.nonadiabatic.models` for the coordinate version): adiabatic
surfaces have cusps at conical intersections and very sharp avoided crossings, which smooth
networks fit badly, and one network per adiabatic surface gives no couplings at all. The
elements of a diabatic matrix are smooth; its eigenvalues are the adiabatic energies and its
eigenvectors give per-state forces and non-adiabatic couplings, all mutually consistent.

**The matrix.** One descriptor (:class:`mlpot.descriptors.Descriptor`: scalar and pseudoscalar
invariants of each atom's neighbourhood within the cutoff, as in
:class:`mlpot.models.DescriptorModel`) feeds one per-element network per matrix element:

* diagonal: H_kk = Σ_i [e_ref(z_i) + σ · f_k(s_i, χ_i)], a size-extensive atomistic energy of
  diabatic state k (per-element reference energies e_ref and energy scale σ fitted by training);
* off-diagonal: H_kl = Σ_i σ · g_kl(s_i, χ_i), a sum of per-atom coupling contributions.

Every element is a sum over atoms of a function of rotation- and permutation-invariant
descriptors, so H_d is invariant under rotations, translations and permutations of the atoms,
and every element is additive over far-apart fragments: H_d(A + B) = H_d(A) + H_d(B), elementwise
(for a chromophore in a solvent, the solvent's coupling contributions are whatever the data
teach, here zero for far-away solvent molecules whose environment never varies the coupling).
The adiabatic energies of a composite are *not* the sums of its fragments' (eigenvalues of a sum
are not sums of eigenvalues): an n-state model of the whole system is not a product of states.

**Sign convention.** The sign of each diabatic state is a free choice: flipping state k flips row
and column k of the off-diagonal part. The model's off-diagonal signs are whatever training lands
on; the adiabatic energies, per-state forces and couplings up to each eigenvector's sign are the
physical outputs, and the training loss (:mod:`mlpot.training.multistate_loss`) is invariant under
those flips (couplings enter phase-free).

**Adiabatic outputs** (:meth:`DiabaticModel.forward`): eigenvalues by
:func:`mlpot.nonadiabatic.adiabatic.eigh`, per-state forces by Hellmann–Feynman
(−∇E_k = −⟨k|∇H_d|k⟩, ∇H_d by autograd), couplings d_kl = ⟨k|∇H_d|l⟩/(E_l − E_k) by
:func:`mlpot.nonadiabatic.adiabatic.adiabatic_states`, whose degeneracy treatment applies: a gap
below ``min_gap`` raises a ValueError naming the structure, or, with ``regularization=ε`` (eV), the
coupling is regularised as ⟨k|∇H|l⟩ Δ/(Δ² + ε²). Never a silent NaN.

Units are mlpot's (eV, Å), not the atomic units of the model systems in
:mod:`mlpot.nonadiabatic.systems`. Registered as ``diabatic`` (``model: {type: diabatic,
n_states: 2}`` in an ``mlpot train`` config), saved and loaded by :func:`mlpot.save_model` /
:func:`mlpot.load_model`. The energy a single-surface consumer (``mlpot md``, the ASE calculator)
sees is the lowest adiabatic state's.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

import torch
from torch import Tensor, nn

from mlpot.data import keys as K
from mlpot.data.multistate import (
    DIABATIC_MATRIX,
    NONADIABATIC_COUPLINGS,
    STATE_ENERGIES,
    STATE_FORCES,
    state_pairs,
)
from mlpot.descriptors import Descriptor
from mlpot.models.element_networks import ElementMLPs
from mlpot.models.elements import ElementEnergies, check_model_options, seeded_initialisation
from mlpot.models.potential import Potential, edge_vectors
from mlpot.models.registry import register
from mlpot.models.standardisation import StandardisedDescriptors
from mlpot.nonadiabatic.adiabatic import adiabatic_states, eigh

__all__ = ["DiabaticModel"]


@register("diabatic")
class DiabaticModel(ElementEnergies, StandardisedDescriptors, Potential):
    """Diabatic Hamiltonian matrix H_d(R) ``[n_systems, n_states, n_states]`` (eV) of atomic structures.

    Args:
        elements: element symbols or atomic numbers the model handles.
        cutoff: r_c, Å.
        chirality: ``"even"`` (every matrix element even in the pseudoscalars: mirror images have
            the same matrix), ``"augment"`` or ``"free"``, as for the descriptor model.
        n_states: number of electronic states n (at least 2).
        n_radial: Bessel basis size of the descriptor.
        n_channels: radial channels per angular order of the descriptor.
        l_max: highest angular order of the descriptor's power spectrum.
        hidden: hidden widths of the per-element networks of the diagonal elements.
        coupling_hidden: hidden widths of the per-element networks of the couplings.
        dtype: parameter dtype, ``torch.float64`` or ``torch.float32`` (or their names).
        seed: seed of the weight initialisation (None: torch's global RNG).
    """

    #: Training reads this (``getattr``) to train on per-state labels (:mod:`mlpot.data.multistate`).
    training_labels = "multistate"

    def __init__(
        self,
        elements: Sequence[str | int],
        cutoff: float = 5.0,
        chirality: str = "even",
        n_states: int = 2,
        n_radial: int = 8,
        n_channels: int = 8,
        l_max: int = 3,
        hidden: Sequence[int] = (64, 64),
        coupling_hidden: Sequence[int] = (32, 32),
        dtype: torch.dtype | str = torch.float64,
        seed: int | None = None,
    ):
        super().__init__()
        check_model_options(cutoff, chirality, None)
        if int(n_states) < 2:
            raise ValueError(f"n_states must be at least 2 (one state is a plain potential), got {n_states}")
        numbers = self.register_elements(elements)
        dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        self.cutoff, self.chirality, self.n_states = float(cutoff), chirality, int(n_states)
        self.hyperparameters = {
            "n_states": self.n_states, "n_radial": int(n_radial), "n_channels": int(n_channels), "l_max": int(l_max),
            "hidden": [int(h) for h in hidden], "coupling_hidden": [int(h) for h in coupling_hidden],
        }
        self.pairs = state_pairs(self.n_states)
        with seeded_initialisation(seed):
            self.descriptor = Descriptor(len(numbers), cutoff, n_radial, n_channels, l_max)
            n_features = self.descriptor.n_scalars + self.descriptor.n_pseudoscalars
            self.diagonal = nn.ModuleList(ElementMLPs(len(numbers), n_features, hidden) for _ in range(self.n_states))
            self.coupling = nn.ModuleList(ElementMLPs(len(numbers), n_features, coupling_hidden) for _ in self.pairs)
        self.register_standardisation()
        self.to(dtype)

    def config(self) -> dict:
        """JSON-serialisable arguments that rebuild this model (weights aside)."""
        return {
            "elements": list(self.atomic_numbers), "cutoff": self.cutoff, "chirality": self.chirality,
            **self.hyperparameters, "dtype": str(self.dtype).removeprefix("torch."),
        }

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the parameters."""
        return self.descriptor.channel_weights.dtype

    # --- the matrix ------------------------------------------------------------------------
    def atomic_matrix_elements(self, data: dict[str, Tensor], edge_index: Tensor, vectors: Tensor) -> Tensor:
        """Per-atom contributions to the independent matrix elements, eV, ``[n_atoms, n_states + n_pairs]``.

        Columns: the n diagonal elements H_kk, then the couplings H_kl in :func:`state_pairs` order.

        Args:
            data: AtomicData (``numbers`` is read).
            edge_index: [2, E] edges within the cutoff.
            vectors: [E, 3] r_ij, Å, differentiable.
        """
        species = self.species(data[K.NUMBERS])
        scalars, pseudo = self.descriptor(vectors, edge_index, species)
        scalars, pseudo = self.standardise(scalars, pseudo)
        even = self.chirality == "even"
        reference = self.reference_energy.index_select(0, species)
        columns = [
            torch.addcmul(reference, self.energy_scale, f(scalars, pseudo, species, even=even)) for f in self.diagonal
        ]
        columns += [self.energy_scale * g(scalars, pseudo, species, even=even) for g in self.coupling]
        return torch.stack(columns, dim=1)

    def atomic_energies(
        self, data: dict[str, Tensor], edge_index: Tensor, vectors: Tensor, training: bool = True
    ) -> Tensor:
        """Not defined: the adiabatic energies are eigenvalues of the whole matrix, not sums over atoms."""
        raise NotImplementedError(
            "DiabaticModel has no per-atom energies: its adiabatic energies are eigenvalues of the diabatic matrix "
            "(use model(data)[...] or atomic_matrix_elements for the per-atom contributions to the matrix)"
        )

    def _matrix(self, elements: Tensor) -> Tensor:
        """Symmetric matrices ``[..., n, n]`` from independent elements ``[..., n + n_pairs]``."""
        n = self.n_states
        rows = [[None] * n for _ in range(n)]
        for k in range(n):
            rows[k][k] = elements[..., k]
        for column, (k, l) in enumerate(self.pairs, start=n):
            rows[k][l] = rows[l][k] = elements[..., column]
        return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=-2)

    def forward(
        self,
        data: dict[str, Tensor],
        compute_forces: bool = True,
        compute_stress: bool = False,
        training: bool = False,
        compute_couplings: bool = False,
        min_gap: float = 1e-10,
        regularization: float | None = None,
    ) -> dict[str, Tensor]:
        """The diabatic matrix and the adiabatic picture of (batched) AtomicData.

        Args:
            data: AtomicData with positions and numbers (batch, cell, pbc and edges when present).
            compute_forces: return per-state forces and the lowest state's ``forces``.
            compute_stress: not supported (a ValueError).
            training: keep the graph of every output (for losses on forces and couplings).
            compute_couplings: return the non-adiabatic couplings.
            min_gap: with ``compute_couplings`` and no regularisation, a gap below this (eV)
                raises a ValueError naming the structure.
            regularization: ε (eV) of the regularised coupling ⟨k|∇H|l⟩ Δ/(Δ² + ε²); None = exact.

        Returns:
            A new dict: ``diabatic_matrix`` [n_systems, n, n] eV, ``state_energies`` [n_systems, n]
            eV (ascending), ``energy`` [n_systems] (the lowest state's) and ``atomic_energy``
            [n_atoms] (its partition ⟨0|h_i|0⟩ over the atoms' contribution matrices h_i); with forces
            ``state_forces`` [n_atoms, n, 3] eV/Å and ``forces`` [n_atoms, 3] (the lowest state's);
            with couplings ``nonadiabatic_couplings`` [n_atoms, n_pairs, 3] 1/Å (pairs k < l in
            :func:`mlpot.data.multistate.state_pairs` order; each vector's sign is that of the
            eigenvectors, arbitrary).
        """
        if compute_stress:
            raise ValueError("DiabaticModel computes no stress (a stress of which adiabatic state?)")
        positions, batch, n_systems, cell = self._inputs(data)
        edge_index, edge_shift = self._edges(data, positions, cell, batch)
        need_gradient = compute_forces or compute_couplings
        with torch.enable_grad() if (need_gradient or training) else nullcontext():
            if need_gradient and not positions.requires_grad:
                positions = positions.detach().requires_grad_(True)
            vectors = edge_vectors(positions, edge_index, edge_shift, cell, batch)
            edge_index, vectors = self._within_cutoff(edge_index, vectors)
            contributions = self.atomic_matrix_elements(data, edge_index, vectors)
            elements = contributions.new_zeros(n_systems, contributions.shape[1]).index_add(0, batch, contributions)
            gradients = None
            if need_gradient:
                # one backward pass per independent element; systems are independent, so each
                # atom's gradient is that of its own system's element
                gradients = torch.stack([
                    torch.autograd.grad(elements[:, e].sum(), positions, retain_graph=True, create_graph=training,
                                        allow_unused=True, materialize_grads=True)[0]
                    for e in range(elements.shape[1])
                ], dim=1)  # [n_atoms, n + n_pairs, 3]
        h = self._matrix(elements)
        energies, eigenvectors = eigh(h)
        results = {DIABATIC_MATRIX: h, STATE_ENERGIES: energies, K.ENERGY: energies[:, 0]}
        # E_0 = ⟨0|H|0⟩ = Σ_i ⟨0|h_i|0⟩ with h_i atom i's contribution matrix: an exact partition of
        # the lowest state's energy over atoms, for consumers that ask for per-atom energies
        ground = eigenvectors[..., 0].index_select(0, batch)  # [n_atoms, n]
        results[K.ATOMIC_ENERGY] = torch.einsum("ai,aij,aj->a", ground, self._matrix(contributions), ground)
        if need_gradient:
            dh = self._matrix(gradients.transpose(1, 2)).permute(0, 2, 3, 1)  # ∂H/∂R_a: [n_atoms, n, n, 3]
            if compute_forces:
                v = eigenvectors.index_select(0, batch)  # [n_atoms, n, n]: columns are states
                # Hellmann–Feynman: ∇E_k = ⟨k|∇H|k⟩
                state_gradients = torch.einsum("aik,aijx,ajk->akx", v, dh, v)
                results[STATE_FORCES] = -state_gradients
                results[K.FORCES] = -state_gradients[:, 0]
            if compute_couplings:
                if not training:  # nothing differentiates the couplings: no graph to carry
                    h, dh = h.detach(), dh.detach()
                results[NONADIABATIC_COUPLINGS] = self._couplings(h, dh, positions, batch, min_gap, regularization)
        if not training:
            results = {k: v.detach() for k, v in results.items()}
        return results

    def _couplings(self, h: Tensor, dh: Tensor, positions: Tensor, batch: Tensor, min_gap: float,
                   regularization: float | None) -> Tensor:
        """d_kl ``[n_atoms, n_pairs, 3]`` of each system by :func:`adiabatic_states` (its degeneracy policy)."""
        counts = torch.bincount(batch, minlength=h.shape[0]).tolist()
        per_system = []
        for s, (h_s, dh_s, x_s) in enumerate(zip(h, torch.split(dh, counts), torch.split(positions.detach(), counts))):
            n_atoms = x_s.shape[0]
            gradient = dh_s.permute(1, 2, 0, 3).reshape(self.n_states, self.n_states, 3 * n_atoms)
            try:
                states = adiabatic_states(lambda x, h_s=h_s: h_s, x_s.reshape(-1),
                                          gradient_fn=lambda x, g=gradient: g, min_gap=min_gap,
                                          regularization=regularization)
            except ValueError as error:
                raise ValueError(f"structure {s} of the batch: {error}") from None
            d = states.couplings.reshape(self.n_states, self.n_states, n_atoms, 3)
            per_system.append(torch.stack([d[k, l] for k, l in self.pairs], dim=1))
        return torch.cat(per_system, dim=0)
