"""The descriptor model: per-element networks on scalar + pseudoscalar descriptors.

E = Σ_i E_i with E_i = e_ref[z_i] + scale · f_{z_i}(s_i, χ_i), where s_i are the standardised
scalar descriptors of atom i, χ_i its pseudoscalars, f_z a small MLP per element, e_ref
per-element reference energies and ``scale`` an energy scale fitted on the training set.
Every E_i depends only on neighbours within the cutoff, so the model is size-extensive.

Chirality modes (how the energy may depend on χ, which flips sign under a mirror):

* ``even`` (default): E_i = e_ref + scale · ½[f(s, χ) + f(s, −χ)], exactly mirror-symmetric;
* ``augment``: f(s, χ) directly; training adds mirror images (the trainer's job);
* ``free``: f(s, χ) directly, for chiral environments where enantiomers must differ.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from ase.data import atomic_numbers, chemical_symbols
from torch import Tensor, nn

from mlpot.data import keys as K
from mlpot.descriptors import Descriptor
from mlpot.models.potential import Potential, edge_vectors

CHIRALITY_MODES = ("even", "augment", "free")


def _atomic_number(element: str | int) -> int:
    if isinstance(element, str):
        if element not in atomic_numbers:
            raise ValueError(f"unknown element symbol {element!r}")
        return atomic_numbers[element]
    z = int(element)
    if not 1 <= z <= 118:
        raise ValueError(f"unknown atomic number {z} (valid: 1..118)")
    return z


class ElementMLPs(nn.Module):
    """One MLP per element, evaluated on the atoms of that element only.

    Weights of all elements are stacked ([n_species, in, out] per layer) so that the module
    is one set of tensors, whatever the number of elements.

    Args:
        n_species: number of elements.
        n_inputs: descriptor length.
        hidden: hidden layer widths.
    """

    def __init__(self, n_species: int, n_inputs: int, hidden: Sequence[int]):
        super().__init__()
        widths = [n_inputs, *hidden, 1]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for n_in, n_out in zip(widths[:-1], widths[1:]):
            # Variance-preserving initialisation for SiLU layers; the last layer starts small
            # so that an untrained model predicts energies close to the reference.
            gain = 1.0 if n_out > 1 else 0.1
            self.weights.append(nn.Parameter(torch.randn(n_species, n_in, n_out) * gain / math.sqrt(n_in)))
            self.biases.append(nn.Parameter(torch.zeros(n_species, n_out)))

    def forward(self, features: Tensor, species: Tensor) -> Tensor:
        """[n, n_inputs] features and [n] species indices → [n] outputs.

        Every atom goes through every element's network as one batched product, and its own
        element's output is picked at the end: a few large operations instead of a Python
        loop over elements, which is what costs time for small systems.
        """
        n_species = self.weights[0].shape[0]
        x = features.expand(n_species, *features.shape)  # [S, n, in], no copy
        last = len(self.weights) - 1
        for layer, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(bias[:, None, :], x, weight)  # [S, n, out]
            if layer < last:
                x = torch.nn.functional.silu(x)
        return x[:, :, 0].gather(0, species[None, :])[0]


class DescriptorModel(Potential):
    """Behler–Parrinello-style potential on scalar and pseudoscalar descriptors.

    Args:
        elements: element symbols or atomic numbers the model handles.
        cutoff: r_c, Å.
        chirality: ``"even"``, ``"augment"`` or ``"free"`` (module docstring).
        n_radial: Bessel basis size.
        n_channels: radial channels per angular order (K); pseudoscalars number K(K−1)(K−2)/6.
        l_max: highest angular order of the power spectrum.
        hidden: hidden widths of the per-element MLPs.
        dtype: parameter dtype, ``torch.float64`` or ``torch.float32`` (or their names).
        seed: seed of the weight initialisation (None: torch's global RNG).
    """

    def __init__(
        self,
        elements: Sequence[str | int],
        cutoff: float = 5.0,
        chirality: str = "even",
        n_radial: int = 8,
        n_channels: int = 8,
        l_max: int = 3,
        hidden: Sequence[int] = (64, 64),
        dtype: torch.dtype | str = torch.float64,
        seed: int | None = None,
    ):
        super().__init__()
        if chirality not in CHIRALITY_MODES:
            raise ValueError(f"chirality must be one of {CHIRALITY_MODES}, got {chirality!r}")
        if not cutoff > 0:
            raise ValueError(f"cutoff must be positive, got {cutoff}")
        numbers = sorted({_atomic_number(e) for e in elements})
        if not numbers:
            raise ValueError("elements must name at least one element")
        dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        self.cutoff = float(cutoff)
        self.chirality = chirality
        self.atomic_numbers = numbers
        self.hyperparameters = {
            "n_radial": int(n_radial),
            "n_channels": int(n_channels),
            "l_max": int(l_max),
            "hidden": [int(h) for h in hidden],
        }
        generator_state = None
        if seed is not None:
            generator_state = torch.random.get_rng_state()
            torch.manual_seed(seed)
        try:
            self.descriptor = Descriptor(len(numbers), cutoff, n_radial, n_channels, l_max)
            n_features = self.descriptor.n_scalars + self.descriptor.n_pseudoscalars
            self.networks = ElementMLPs(len(numbers), n_features, hidden)
        finally:
            if generator_state is not None:
                torch.random.set_rng_state(generator_state)

        species_of_z = torch.full((119,), -1, dtype=torch.int64)
        species_of_z[numbers] = torch.arange(len(numbers))
        self.register_buffer("species_of_z", species_of_z)
        # Standardisation of the descriptors (fit_descriptor_statistics). Pseudoscalars are only
        # scaled, never shifted, so that χ → −χ stays exactly a mirror.
        self.register_buffer("scalar_mean", torch.zeros(self.descriptor.n_scalars))
        self.register_buffer("scalar_std", torch.ones(self.descriptor.n_scalars))
        self.register_buffer("pseudoscalar_std", torch.ones(self.descriptor.n_pseudoscalars))
        # Energy statistics (set_energy_statistics): e_ref per element, eV, and the output scale, eV.
        self.register_buffer("reference_energy", torch.zeros(len(numbers)))
        self.register_buffer("energy_scale", torch.ones(()))
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
    def elements(self) -> list[str]:
        """Chemical symbols of the elements, in species order."""
        return [chemical_symbols[z] for z in self.atomic_numbers]

    # --- statistics fitted on training data ----------------------------------------------
    def set_energy_statistics(self, reference_energies: dict[int, float], scale: float) -> None:
        """Set per-element reference energies (eV, keyed by atomic number) and the energy scale (eV)."""
        if not scale > 0:
            raise ValueError(f"energy scale must be positive, got {scale}")
        for z, value in reference_energies.items():
            species = int(self.species_of_z[int(z)])
            if species < 0:
                raise ValueError(f"reference energy given for element {z}, which this model does not have")
            self.reference_energy[species] = float(value)
        self.energy_scale.fill_(float(scale))

    @torch.no_grad()
    def fit_descriptor_statistics(self, data: dict[str, Tensor]) -> None:
        """Standardise the descriptors with their mean and spread over the atoms of ``data`` (a training batch)."""
        scalars, pseudo = self.descriptors(data)
        self.scalar_mean.copy_(scalars.mean(dim=0))
        # A floor keeps near-constant features from being blown up into noise.
        spread = scalars.std(dim=0) if scalars.shape[0] > 1 else torch.ones_like(self.scalar_std)
        self.scalar_std.copy_(spread.clamp(min=1e-3 * float(spread.max().clamp(min=1e-12))))
        rms = pseudo.square().mean(dim=0).sqrt()
        self.pseudoscalar_std.copy_(rms.clamp(min=1e-3 * float(rms.max().clamp(min=1e-12))))

    # --- evaluation ---------------------------------------------------------------------
    def species(self, numbers: Tensor) -> Tensor:
        """Model species index of each atom; raises for elements the model does not know."""
        species = self.species_of_z[numbers]
        if bool((species < 0).any()):
            unknown = sorted({chemical_symbols[z] for z in numbers[species < 0].tolist()})
            raise ValueError(f"the model knows the elements {self.elements}, not {unknown}")
        return species

    def descriptors(self, data: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Raw scalars [n_atoms, n_s] and pseudoscalars [n_atoms, n_p] of ``data``."""
        from mlpot.neighbors import neighbor_list

        positions = data[K.POSITIONS].to(self.dtype)
        batch = data.get(K.BATCH, torch.zeros(positions.shape[0], dtype=torch.int64))
        pbc = data.get(K.PBC)
        cell = data[K.CELL].to(self.dtype) if pbc is not None and bool(pbc.any()) else None
        if K.EDGE_INDEX in data:
            edge_index, edge_shift = data[K.EDGE_INDEX], data[K.EDGE_SHIFT]
        else:
            edge_index, edge_shift = neighbor_list(positions, self.cutoff, cell, pbc, batch)
        vectors = edge_vectors(positions, edge_index, edge_shift, cell, batch)
        inside = torch.nonzero(vectors.square().sum(dim=1) < self.cutoff**2).flatten()
        return self.descriptor(vectors.index_select(0, inside), edge_index.index_select(1, inside), self.species(data[K.NUMBERS]))

    def atomic_energies(self, data: dict[str, Tensor], edge_index: Tensor, vectors: Tensor) -> Tensor:
        species = self.species(data[K.NUMBERS])
        scalars, pseudo = self.descriptor(vectors, edge_index, species)
        scalars = (scalars - self.scalar_mean) / self.scalar_std
        pseudo = pseudo / self.pseudoscalar_std
        if self.chirality == "even":
            # Both mirror images in one pass: rows [s, χ] and [s, −χ], then the average.
            n = scalars.shape[0]
            features = torch.cat((torch.cat((scalars, pseudo), 1), torch.cat((scalars, -pseudo), 1)), 0)
            output = self.networks(features, torch.cat((species, species)))
            output = 0.5 * (output[:n] + output[n:])
        else:
            output = self.networks(torch.cat((scalars, pseudo), 1), species)
        return self.reference_energy.index_select(0, species) + self.energy_scale * output


def fit_reference_energies(numbers_per_structure: Sequence[Tensor], energies: Tensor) -> dict[int, float]:
    """Per-element reference energies by least squares on composition: E_s ≈ Σ_z n_{s,z} e_z.

    When compositions do not determine every e_z (a single molecule's data has one
    composition), the minimum-norm solution is returned, which spreads the energy over the
    elements in proportion to their counts; only the per-structure sum matters to the model.

    Args:
        numbers_per_structure: atomic numbers of each structure, [n_atoms_s] int64 each.
        energies: [n_structures] total energies, eV.

    Returns:
        {atomic number: reference energy in eV}.
    """
    if len(numbers_per_structure) != len(energies):
        raise ValueError(f"got {len(numbers_per_structure)} structures but {len(energies)} energies")
    elements = sorted({int(z) for numbers in numbers_per_structure for z in numbers.tolist()})
    column = {z: c for c, z in enumerate(elements)}
    counts = np.zeros((len(energies), len(elements)))
    for row, numbers in enumerate(numbers_per_structure):
        for z in numbers.tolist():
            counts[row, column[int(z)]] += 1
    solution, *_ = np.linalg.lstsq(counts, np.asarray(energies, dtype=np.float64), rcond=None)
    return {z: float(solution[column[z]]) for z in elements}
