"""A strictly local E(3)-equivariant potential on e3nn (Allegro-like).

Every quantity lives on an edge (i, j) with |r_ij| < r_c and depends only on atom i's own
neighbourhood, so the energy of atom i depends only on the atoms within the cutoff of i: the
receptive field stays r_c whatever the number of layers (unlike message passing, which reaches
layers × r_c), LAMMPS ghost shells stay small and the model is size-extensive by construction.
The design follows Allegro (Musaelian et al., Nat. Commun. 14, 579, 2023); the code is ours.

For each edge (i, j), with B(r) the Bessel basis times the smooth quintic envelope u(r)
(:mod:`mlpot.descriptors.radial`) and Y(r̂_ij) the spherical harmonics (l ≤ l_max):

1. a scalar latent x_ij = MLP[B(r_ij), onehot(z_i), onehot(z_j)] (invariant);
2. equivariant features V_ij = w(x_ij) · Y(r̂_ij), C channels per l (``C x 0e + C x 1o + C x 2e``);
3. each layer forms atom i's neighbourhood density ρ_i = n · Σ_k u(r_ik) w'(x_ik) Y(r̂_ik),
   couples V_ij ⊗ ρ_i channel by channel (:class:`~mlpot.nn.ChannelwiseTensorProduct`: every
   parity, 0e, 0o, 1o, 1e, 2e, 2o …) and feeds the new scalars back into the latent,
   x_ij ← x_ij + MLP[x_ij, scalars]. Each layer raises the body order by one while ρ_i only ever
   sums over atom i's neighbours: that is the strict locality;
4. the edge energy e_ij = u(r_ij) · MLP(x_ij), and E_i = e_ref[z_i] + scale · n · Σ_j e_ij.

n = 1/√(mean neighbours) normalises the sums (fitted by :meth:`fit_descriptor_statistics`);
e_ref per element and ``scale`` are set by :meth:`set_energy_statistics`, as for the
descriptor model.

Chirality (how the energy may depend on pseudoscalars, which flip sign in a mirror):

* ``even`` (default) and ``augment``: only the 0e scalars reach the latent and so the energy.
  Every 0e output of an O(3)-equivariant network is invariant under inversion, so mirror images
  have exactly equal energies by construction (no doubled evaluation). In ``augment`` the trainer
  adds mirror images as well;
* ``free``: the 0o pseudoscalars enter the latent too, so enantiomers may differ (a molecule on a
  chiral surface). Pseudoscalars first appear at the second layer (1o ⊗ 1o → 1e, then 1e ⊗ 1o →
  0o), so ``free`` needs ``layers ≥ 2``.

Default hyper-parameters, for small molecules on CPU: cutoff 5 Å (all of a small molecule),
l_max 2 (l = 3 costs about twice as much for a few per cent in the published ablations), 16
channels, a 64-wide latent and 2 layers (three-body after one layer, four-body after two).
Evaluation (MD, the calculator) differentiates :meth:`EquivariantModel.energies` by autograd
without keeping a graph (:meth:`Potential.edge_gradients`). :meth:`fixed_topology` prepares a neighbour
list once (built with cutoff + skin) and drops, at each step, the edges beyond the cutoff: each
costs a full tensor product for an exact zero, and in bulk copper the skin nearly doubles the
edges (42 within 5 Å, 78 within 6 Å), which made the engine half as fast as the ASE driver
(issue 21's peer benchmark). After :meth:`compile`, that pass runs through ``torch.compile``
(forward and backward, shapes dynamic; :mod:`mlpot.models.compile`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from e3nn import o3
from torch import Tensor

from mlpot.data import keys as K
from mlpot.descriptors.radial import BesselBasis, smooth_cutoff
from mlpot.models.compile import CompiledEvaluation
from mlpot.models.elements import ElementEnergies, check_model_options, seeded_initialisation
from mlpot.models.potential import (
    FixedTopology,
    Potential,
    edge_vectors,
    forces_from_edge_gradients,
    prepared_edge_vectors,
)
from mlpot.models.registry import register
from mlpot.models.repulsion import ZBLRepulsion
from mlpot.nn import ChannelwiseTensorProduct, ScalarMLP, edge_irreps, scale_channels, sh_irreps

__all__ = ["EquivariantModel"]


@register("equivariant")
class EquivariantModel(CompiledEvaluation, ElementEnergies, Potential):
    """Strictly local equivariant potential (module docstring).

    Args:
        elements: element symbols or atomic numbers the model handles.
        cutoff: r_c, Å.
        chirality: ``"even"``, ``"augment"`` or ``"free"`` (module docstring).
        n_radial: Bessel basis size.
        l_max: highest angular order of the equivariant features.
        channels: channels per irrep (C).
        latent: width of the scalar latent of each edge.
        layers: equivariant layers (body order grows by one per layer; ≥ 2 for ``free``).
        hidden: hidden widths of the latent and readout MLPs.
        dtype: parameter dtype, ``torch.float64`` or ``torch.float32`` (or their names).
        seed: seed of the weight initialisation (None: torch's global RNG).
        repulsion: ``None`` or ``"zbl"``: add the ZBL screened nuclear repulsion as a fixed
            short-range prior (:mod:`mlpot.models.repulsion`), as the descriptor model does.
    """

    def __init__(
        self,
        elements: Sequence[str | int],
        cutoff: float = 5.0,
        chirality: str = "even",
        n_radial: int = 8,
        l_max: int = 2,
        channels: int = 16,
        latent: int = 64,
        layers: int = 2,
        hidden: Sequence[int] = (64,),
        dtype: torch.dtype | str = torch.float64,
        seed: int | None = None,
        repulsion: str | None = None,
    ):
        super().__init__()
        check_model_options(cutoff, chirality, repulsion)
        for name, value, least in (("n_radial", n_radial, 1), ("l_max", l_max, 1), ("channels", channels, 1),
                                   ("latent", latent, 1), ("layers", layers, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ValueError(f"{name} must be an integer ≥ {least}, got {value!r}")
        if chirality == "free" and layers < 2:
            raise ValueError("chirality 'free' needs layers ≥ 2: pseudoscalars first appear at the second layer")
        numbers = self.register_elements(elements)
        dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        self.cutoff = float(cutoff)
        self.chirality = chirality
        self.hyperparameters = {
            "n_radial": n_radial, "l_max": l_max, "channels": channels, "latent": latent, "layers": layers,
            "hidden": [int(h) for h in hidden], "repulsion": repulsion,
        }
        self.repulsion = ZBLRepulsion(cutoff) if repulsion == "zbl" else None
        with seeded_initialisation(seed):
            self._build_layers(len(numbers), n_radial, l_max, channels, latent, layers, list(hidden))

        # n = 1/√(mean neighbours), fitted by fit_descriptor_statistics.
        self.register_buffer("neighbour_normalisation", torch.ones(()))
        self.to(dtype)

    def _build_layers(self, n_species: int, n_radial: int, l_max: int, channels: int, latent: int, layers: int,
                      hidden: list[int]) -> None:
        self.radial = BesselBasis(n_radial, self.cutoff)
        self.harmonics = o3.SphericalHarmonics(sh_irreps(l_max), normalize=True, normalization="component")
        density_irreps = o3.Irreps([(channels, ir) for _, ir in sh_irreps(l_max)])
        self.two_body = ScalarMLP([n_radial + 2 * n_species, *hidden, latent])
        self.initial_weights = torch.nn.Linear(latent, channels * (l_max + 1))
        scalar_parities = (1, -1) if self.chirality == "free" else (1,)
        #: Per layer, how many leading components of its output reach the latent: the 0e scalars
        #: (and the 0o pseudoscalars in ``free`` mode, where a layer produces them); they come first.
        self.scalar_widths: list[int] = []
        self.density_weights = torch.nn.ModuleList()
        self.products = torch.nn.ModuleList()
        self.latent_updates = torch.nn.ModuleList()
        irreps = density_irreps
        for k in range(layers):
            last = k == layers - 1
            # The last layer only feeds the latent: its product keeps the scalars alone.
            target = edge_irreps(channels, l_max, scalars_only=last, parities=scalar_parities if last else (1, -1))
            product = ChannelwiseTensorProduct(irreps, density_irreps, target)
            width = sum(mul * ir.dim for mul, ir in product.irreps_out if ir.l == 0 and ir.p in scalar_parities)
            self.scalar_widths.append(width)
            self.density_weights.append(torch.nn.Linear(latent, channels * (l_max + 1)))
            self.products.append(product)
            self.latent_updates.append(ScalarMLP([latent + width, *hidden, latent]))
            irreps = product.irreps_out
        self.readout = ScalarMLP([latent, *hidden, 1], last_gain=0.1)

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

    # --- statistics fitted on training data ----------------------------------------------
    @torch.no_grad()
    def fit_descriptor_statistics(self, data: dict[str, Tensor]) -> None:
        """Set n = 1/√(mean neighbours within the cutoff per atom) from ``data`` (a training batch)."""
        positions, batch, _, cell = self._inputs(data)
        edge_index, edge_shift = self._edges(data, positions, cell, batch)
        edge_index, _ = self._within_cutoff(edge_index, edge_vectors(positions, edge_index, edge_shift, cell, batch))
        mean = edge_index.shape[1] / max(positions.shape[0], 1)
        self.neighbour_normalisation.fill_(mean ** -0.5 if mean > 0 else 1.0)

    # --- evaluation ---------------------------------------------------------------------
    def atomic_energies(
        self, data: dict[str, Tensor], edge_index: Tensor, vectors: Tensor, training: bool = True
    ) -> Tensor:
        """E_i [n_atoms], eV, from the edges [2, E] and their vectors r_ij [E, 3], Å: :meth:`energies`.

        Evaluation (``training=False``: :meth:`Potential.edge_gradients`, hence MD and the
        calculator) runs it compiled after :meth:`compile`; torch then compiles its backward too,
        which gives the forces (a gradient taken inside a compiled function would break its graph)."""
        energies = self._pass(EquivariantModel.energies) if not training else EquivariantModel.energies
        return energies(self, vectors, edge_index, self.species(data[K.NUMBERS]), data[K.NUMBERS])

    def energies(self, vectors: Tensor, edge_index: Tensor, species: Tensor, numbers: Tensor) -> Tensor:
        """E_i [n_atoms], eV (module docstring): one fixed sequence of tensor operations, so that
        :meth:`compile` can compile it.

        Every sum over edges runs over the edges of one centre atom (``index_add`` on row 0 of
        ``edge_index``): nothing ever travels from atom i's neighbours' neighbourhoods into E_i.
        Edges longer than the cutoff add exact zeros (the envelope u(r) and u'(r) vanish there).

        Args:
            vectors: [E, 3] r_ij, Å.
            edge_index: [2, E] int64 (centre i, neighbour j).
            species: [n_atoms] int64 species index of each atom.
            numbers: [n_atoms] int64 atomic numbers (for the repulsion prior).
        """
        n_atoms, n_species = species.shape[0], len(self.atomic_numbers)
        centre, neighbour = edge_index[0], edge_index[1]
        l_max = self.hyperparameters["l_max"]
        distance = vectors.square().sum(dim=1).clamp(min=1e-24).sqrt()
        envelope = smooth_cutoff(distance, self.cutoff)[:, None]  # u(r_ij), [E, 1]
        harmonics = self.harmonics(vectors)  # normalises r̂ itself, [E, (l_max+1)²]
        onehot = torch.eye(n_species, dtype=vectors.dtype, device=vectors.device)
        pair = (self.radial(distance), onehot[species[centre]], onehot[species[neighbour]])
        x = self.two_body(torch.cat(pair, dim=1))
        features = scale_channels(self.initial_weights(x), harmonics, l_max)
        n = self.neighbour_normalisation
        layers = zip(self.density_weights, self.products, self.latent_updates, self.scalar_widths)
        for weights, product, update, width in layers:
            per_edge = scale_channels(envelope * weights(x), harmonics, l_max)
            density = n * vectors.new_zeros(n_atoms, per_edge.shape[1]).index_add(0, centre, per_edge)
            features = product(features, density.index_select(0, centre))
            x = x + update(torch.cat((x, features[:, :width]), dim=1))
        edge_energy = envelope[:, 0] * self.readout(x)[:, 0]
        atomic = vectors.new_zeros(n_atoms).index_add(0, centre, edge_energy)
        energies = torch.addcmul(self.reference_energy.index_select(0, species), self.energy_scale, n * atomic)
        if self.repulsion is not None:
            energies = energies + self.repulsion(vectors, edge_index, numbers, with_gradient=False)[0]
        return energies

    def fixed_topology(self, data: dict[str, Tensor]) -> FixedTopology:
        """:meth:`Potential.fixed_topology`, preparing once what depends on the edges only: the
        cell shifts S·cell and the systems; each evaluation is one pass (:meth:`energy_and_forces`)
        over the list's edges within the cutoff."""
        edge_index, edge_shift = data[K.EDGE_INDEX], data[K.EDGE_SHIFT]
        positions, batch, n_systems, cell = self._inputs(data)
        shift_vectors = edge_vectors(torch.zeros_like(positions), edge_index, edge_shift, cell, batch)  # S·cell
        numbers = data[K.NUMBERS]
        # compilable=False: the pass takes a gradient, so it is compiled inside (forward and
        # backward), not fused with the integrator's step around it.
        return FixedTopology(
            EquivariantModel.energy_and_forces, self,
            (edge_index, shift_vectors, numbers, batch, n_systems), compilable=False,
        )

    def energy_and_forces(
        self,
        positions: Tensor,
        edge_index: Tensor,
        shift_vectors: Tensor,
        numbers: Tensor,
        batch: Tensor,
        n_systems: int,
    ) -> tuple[Tensor, Tensor]:
        """Energy [n_systems], eV, and forces [n_atoms, 3], eV/Å, over prepared edges
        (:meth:`fixed_topology`): r_ij = R_j − R_i + S·cell (``shift_vectors`` [E, 3])."""
        vectors = prepared_edge_vectors(positions, edge_index, shift_vectors)
        # The skin's edges would add exact zeros at the full price of a tensor product each.
        edge_index, vectors = self._within_cutoff(edge_index, vectors)
        energies, gradient = self.edge_gradients({K.NUMBERS: numbers}, edge_index, vectors, True)
        energy = positions.new_zeros(n_systems).index_add(0, batch, energies)
        return energy, forces_from_edge_gradients(gradient, edge_index, positions)
