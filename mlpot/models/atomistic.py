"""The descriptor model: per-element networks on scalar + pseudoscalar descriptors.

E = Σ_i E_i with E_i = e_ref[z_i] + scale · f_{z_i}(s_i, χ_i), where s_i are the standardised
scalar descriptors of atom i, χ_i its pseudoscalars, f_z a small MLP per element, e_ref
per-element reference energies and ``scale`` an energy scale fitted on the training set.
Every E_i depends only on neighbours within the cutoff, so the model is size-extensive.

Chirality modes (how the energy may depend on χ, which flips sign under a mirror):

* ``even`` (default): E_i = e_ref + scale · ½[f(s, χ) + f(s, −χ)], exactly mirror-symmetric;
* ``augment``: f(s, χ) directly; training adds mirror images (the trainer's job);
* ``free``: f(s, χ) directly, for chiral environments where enantiomers must differ.

One pipeline, two derivative paths, which compute the same energies and forces (a test
compares them to round-off). Training (``training=True``) differentiates the descriptors
(:mod:`mlpot.descriptors`) and the element networks (:mod:`mlpot.models.element_networks`) with
autograd, so that weight gradients and the derivative of forces exist. Evaluation
(``training=False``, the default of ``model(data)``, the calculator and MD) takes no graph:
:meth:`DescriptorModel.first_order_pass` runs the same stages forward, then each stage's
analytic backward, from the energies to their gradients with respect to the edge vectors,
block of atoms by block (``EDGES_PER_BLOCK``), which is several times faster, and
:meth:`DescriptorModel.compile` compiles it, which is what makes small molecules fast.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from mlpot.data import keys as K
from mlpot.descriptors import Descriptor
from mlpot.descriptors.descriptor import warn_training_argument
from mlpot.descriptors.invariants import neighbour_tables

# CHIRALITY_MODES stays importable from here, where it was defined before elements.py existed.
from mlpot.models.compile import CompiledEvaluation
from mlpot.models.element_networks import ElementMLPs

# fit_reference_energies stays importable from here, where it was defined before elements.py had it.
from mlpot.models.elements import (  # noqa: F401
    CHIRALITY_MODES,
    ElementEnergies,
    check_model_options,
    fit_reference_energies,  # noqa: F401
    seeded_initialisation,
)
from mlpot.models.potential import (
    FixedTopology,
    Potential,
    edge_vectors,
    forces_from_edge_gradients,
    prepared_edge_vectors,
)
from mlpot.models.registry import register
from mlpot.models.repulsion import ZBLRepulsion
from mlpot.models.standardisation import StandardisedDescriptors


@register("descriptor")
class DescriptorModel(CompiledEvaluation, ElementEnergies, StandardisedDescriptors, Potential):
    """Behler–Parrinello-style potential on scalar and pseudoscalar descriptors.

    Args:
        elements: element symbols or atomic numbers the model handles.
        cutoff: r_c, Å.
        chirality: ``"even"``, ``"augment"`` or ``"free"`` (module docstring).
        n_radial: Bessel basis size.
        n_channels: radial channels per angular order (K); pseudoscalars number K(K−1)(K−2)/6.
        l_max: highest angular order of the power spectrum.
        bispectrum_channels: radial channels of the four-body bispectrum (0: three-body only).
        bispectrum_l_max: highest angular order coupled in the bispectrum.
        species_channels: radial channels per (centre, neighbour) element pair instead of per
            neighbour element only.
        hidden: hidden widths of the per-element MLPs.
        dtype: parameter dtype, ``torch.float64`` or ``torch.float32`` (or their names).
        seed: seed of the weight initialisation (None: torch's global RNG).
        repulsion: ``None`` or ``"zbl"``: add the ZBL screened nuclear repulsion as a fixed
            short-range prior (:mod:`mlpot.models.repulsion`), so that close contacts cost
            energy whatever the network does there.
    """

    def __init__(
        self,
        elements: Sequence[str | int],
        cutoff: float = 5.0,
        chirality: str = "even",
        n_radial: int = 8,
        n_channels: int = 8,
        l_max: int = 3,
        bispectrum_channels: int = 0,
        bispectrum_l_max: int = 2,
        species_channels: bool = False,
        hidden: Sequence[int] = (64, 64),
        dtype: torch.dtype | str = torch.float64,
        seed: int | None = None,
        repulsion: str | None = None,
    ):
        super().__init__()
        check_model_options(cutoff, chirality, repulsion)
        numbers = self.register_elements(elements)
        dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        self.cutoff = float(cutoff)
        self.chirality = chirality
        self.hyperparameters = {
            "n_radial": int(n_radial),
            "n_channels": int(n_channels),
            "l_max": int(l_max),
            "bispectrum_channels": int(bispectrum_channels),
            "bispectrum_l_max": int(bispectrum_l_max),
            "species_channels": bool(species_channels),
            "hidden": [int(h) for h in hidden],
            "repulsion": repulsion,
        }
        self.repulsion = ZBLRepulsion(cutoff) if repulsion == "zbl" else None
        with seeded_initialisation(seed):
            self.descriptor = Descriptor(
                len(numbers), cutoff, n_radial, n_channels, l_max, bispectrum_channels, bispectrum_l_max,
                species_channels,
            )
            n_features = self.descriptor.n_scalars + self.descriptor.n_pseudoscalars
            self.networks = ElementMLPs(len(numbers), n_features, hidden)

        self.register_standardisation()
        self.to(dtype)

    # --- configuration ------------------------------------------------------------------
    def config(self) -> dict:
        """JSON-serialisable arguments that rebuild this model (weights aside)."""
        return {
            "elements": list(self.atomic_numbers),
            "cutoff": self.cutoff,
            "chirality": self.chirality,
            **self.hyperparameters,
            "dtype": str(self.dtype).removeprefix("torch."),
        }

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the parameters (read from one of them: cheaper than iterating)."""
        return self.descriptor.channel_weights.dtype

    # --- evaluation ---------------------------------------------------------------------
    def atomic_energies(
        self, data: dict[str, Tensor], edge_index: Tensor, vectors: Tensor, training: bool = True
    ) -> Tensor:
        species = self.species(data[K.NUMBERS])
        scalars, pseudo = self.descriptor(vectors, edge_index, species)
        energies = self.energies_from_descriptors(scalars, pseudo, species)
        if self.repulsion is not None:
            energies = energies + self.repulsion(vectors, edge_index, data[K.NUMBERS], with_gradient=False)[0]
        return energies

    def edge_gradients(
        self, data: dict[str, Tensor], edge_index: Tensor, vectors: Tensor, with_gradient: bool
    ) -> tuple[Tensor, Tensor | None]:
        """:meth:`Potential.edge_gradients` by :meth:`first_order_pass`, block of atoms by block.

        E_i depends only on the edges whose centre is i, so the gradient of each block's
        energies is that of the whole. Working block by block (``EDGES_PER_BLOCK`` edges) keeps
        the intermediates small, so that memory is reused from block to block instead of being
        allocated afresh for the whole system: allocating large tensors is what a large system
        spends its time on.
        """
        species = self.species(data[K.NUMBERS])
        n_atoms, n_edges = species.shape[0], edge_index.shape[1]
        prior = None if self.repulsion is None else self.repulsion(vectors, edge_index, data[K.NUMBERS], with_gradient)
        order = _order_by_centre(edge_index)
        if order is not None:
            vectors, edge_index = vectors.index_select(0, order), edge_index[:, order]
        centre = edge_index[0]
        n_species = self.descriptor.n_species
        neighbour_species = species.index_select(0, edge_index[1]) if n_species > 1 else None
        atoms_per_block = max(1, n_atoms * EDGES_PER_BLOCK // max(n_edges, 1))
        if atoms_per_block >= n_atoms:
            atom_bounds, edge_bounds = [0, n_atoms], [0, n_edges]
        else:
            atom_bounds = list(range(0, n_atoms, atoms_per_block)) + [n_atoms]
            edge_bounds = torch.searchsorted(centre, torch.tensor(atom_bounds, device=centre.device)).tolist()
        first_order_pass = self._pass(DescriptorModel.first_order_pass)
        energies, gradients = [], []
        for a0, a1, e0, e1 in zip(atom_bounds[:-1], atom_bounds[1:], edge_bounds[:-1], edge_bounds[1:]):
            block_species = species[a0:a1]
            block_neighbour_species = neighbour_species[e0:e1] if n_species > 1 else None
            tables = neighbour_tables(centre[e0:e1] - a0, block_neighbour_species, a1 - a0, n_species)
            layout = self.networks.layout(block_species)
            energy, gradient = first_order_pass(self, vectors[e0:e1], block_species, tables, layout, with_gradient)
            energies.append(energy)
            gradients.append(gradient)
        energy = torch.cat(energies) if len(energies) > 1 else energies[0]
        if prior is not None:
            energy = energy + prior[0]
        if not with_gradient:
            return energy, None
        gradient = torch.cat(gradients) if len(gradients) > 1 else gradients[0]
        if order is not None:  # back to the caller's edge order
            gradient = torch.empty_like(gradient).index_copy_(0, order, gradient)
        if prior is not None:
            gradient = gradient + prior[1]
        return energy, gradient

    def energies_from_descriptors(
        self, scalars: Tensor, pseudo: Tensor, species: Tensor, training: bool | None = None
    ) -> Tensor:
        """E_i = e_ref[z_i] + scale · f_{z_i}(s_i, χ_i) from raw descriptors [n, n_s], [n, n_p]; eV, [n].
        ``training`` is deprecated and ignored (autograd always; inference is :meth:`first_order_pass`)."""
        if training is not None:
            warn_training_argument("DescriptorModel.energies_from_descriptors")
        scalars, pseudo = self.standardise(scalars, pseudo)
        output = self.networks(scalars, pseudo, species, even=self.chirality == "even")
        return torch.addcmul(self.reference_energy.index_select(0, species), self.energy_scale, output)

    def first_order_pass(
        self,
        vectors: Tensor,
        species: Tensor,
        tables: tuple[Tensor, Tensor, int],
        layout: tuple[Tensor | None, int],
        with_gradient: bool,
    ) -> tuple[Tensor, Tensor | None]:
        """Atomic energies [N], eV, and ∂E_i/∂r_ij [E, 3], eV/Å, without autograd.

        The descriptors, the networks, then the chain rule back through both, written out
        (:meth:`~mlpot.descriptors.Descriptor.evaluate`/:meth:`~mlpot.descriptors.Descriptor.backward`,
        :meth:`ElementMLPs.evaluate`/:meth:`ElementMLPs.backward`). Everything that depends on
        the values of tensors (table widths, layouts) comes in through ``tables`` and ``layout``,
        so that this is a fixed sequence of tensor operations: :meth:`compile` compiles it.

        Args:
            vectors: [E, 3] r_ij, Å, grouped by centre atom.
            species: [N] int64 species index of each atom.
            tables: :meth:`~mlpot.descriptors.Descriptor.tables` of the edges.
            layout: :meth:`ElementMLPs.layout` of ``species``.
            with_gradient: also return ∂E_i/∂r_ij (else None).
        """
        n_atoms, even = species.shape[0], self.chirality == "even"
        scalars, pseudo, saved = self.descriptor.evaluate(vectors, tables, species)
        scalars, pseudo = self.standardise(scalars, pseudo)
        output, pre_activations = self.networks.evaluate(scalars, pseudo, species, even, layout)
        energies = torch.addcmul(self.reference_energy.index_select(0, species), self.energy_scale, output)
        if not with_gradient:
            return energies, None
        g_output = self.energy_scale.expand(n_atoms)
        g_scalars, g_pseudo = self.networks.backward(g_output, species, pre_activations, even, layout, scalars.shape[1])
        g_scalars, g_pseudo = g_scalars / self.scalar_std, g_pseudo / self.pseudoscalar_std
        gradient = self.descriptor.backward(saved, g_scalars, g_pseudo, tables)
        return energies, gradient

    def fixed_topology(self, data: dict[str, Tensor]) -> FixedTopology:
        """:meth:`Potential.fixed_topology`, preparing once what depends on the edges only.

        For a list of up to ``EDGES_PER_BLOCK`` edges, the species, the edge order, the cell
        shifts S·cell, the neighbour tables and the network layout are fixed until the list is
        rebuilt, and each evaluation is one pass (:meth:`energy_and_forces`; compiled as one
        graph after :meth:`compile`). Edges that reach beyond the cutoff (the skin) are kept:
        their radial basis and its derivative vanish there, so they add exact zeros, and keeping
        them keeps the shapes fixed. A larger list goes through :meth:`forward`, which drops
        them: there, computing them would cost more than per-step bookkeeping does.
        """
        edge_index, edge_shift = data[K.EDGE_INDEX], data[K.EDGE_SHIFT]
        if edge_index.shape[1] > EDGES_PER_BLOCK:
            return super().fixed_topology(data)
        positions, batch, n_systems, cell = self._inputs(data)
        species = self.species(data[K.NUMBERS])
        order = _order_by_centre(edge_index)
        if order is not None:
            edge_index, edge_shift = edge_index[:, order], edge_shift.index_select(0, order)
        shift_vectors = edge_vectors(torch.zeros_like(positions), edge_index, edge_shift, cell, batch)  # S·cell
        tables = self.descriptor.tables(edge_index, species)
        layout = self.networks.layout(species, group=True)  # prepared once: grouping is free
        return FixedTopology(
            DescriptorModel.energy_and_forces,
            self,
            (edge_index, shift_vectors, species, tables, layout, batch, n_systems, data[K.NUMBERS]),
        )

    def energy_and_forces(
        self,
        positions: Tensor,
        edge_index: Tensor,
        shift_vectors: Tensor,
        species: Tensor,
        tables: tuple[Tensor, Tensor, int],
        layout: tuple[Tensor | None, int],
        batch: Tensor,
        n_systems: int,
        numbers: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """Energy [n_systems], eV, and forces [n_atoms, 3], eV/Å, in one pass over prepared edges
        (:meth:`fixed_topology`): r_ij = R_j − R_i + S·cell (``shift_vectors`` [E, 3]), then
        :meth:`first_order_pass` and :func:`~mlpot.models.potential.forces_from_edge_gradients`;
        ``numbers`` [n_atoms] are the atomic numbers (for the repulsion prior)."""
        vectors = prepared_edge_vectors(positions, edge_index, shift_vectors)
        energies, gradient = self.first_order_pass(vectors, species, tables, layout, True)
        if self.repulsion is not None:
            prior_energies, prior_gradient = self.repulsion(vectors, edge_index, numbers)
            energies, gradient = energies + prior_energies, gradient + prior_gradient
        if n_systems == 1:  # a plain sum: inductor fails to compile a scatter into one element
            energy = energies.sum().reshape(1)
        else:
            energy = positions.new_zeros(n_systems).index_add(0, batch, energies)
        return energy, forces_from_edge_gradients(gradient, edge_index, positions)


def _order_by_centre(edge_index: Tensor) -> Tensor | None:
    """The stable order that groups edges by centre atom, as the neighbour tables need; None
    when they are grouped already (neighbour lists come so)."""
    centre = edge_index[0]
    if centre.numel() > 1 and bool((centre[1:] < centre[:-1]).any()):
        return torch.argsort(centre, stable=True)
    return None




#: Edges per block of :meth:`DescriptorModel.edge_gradients`: large enough that per-operation overheads
#: vanish, small enough that a block's intermediates (~1 kB per edge) stay a few tens of MB.
EDGES_PER_BLOCK = 32_768


def describe(data: dict[str, Tensor], model: DescriptorModel | None = None, **hyperparameters) -> tuple[Tensor, Tensor]:
    """Raw descriptors (before the model's standardisation) of every atom in ``data``.

    Args:
        data: AtomicData (edges are built when absent).
        model: a :class:`DescriptorModel`; by default an untrained one for the elements in
            ``data``, seeded so that repeated calls agree.
        **hyperparameters: passed to ``DescriptorModel`` when ``model`` is None.

    Returns:
        scalars [n_atoms, n_s] and pseudoscalars [n_atoms, n_p].
    """
    if model is None:
        elements = sorted(set(data[K.NUMBERS].tolist()))
        model = DescriptorModel(elements, dtype=data[K.POSITIONS].dtype, seed=0, **hyperparameters)
    with torch.no_grad():
        return model.descriptors(data)
