"""What every per-element model shares: its elements, the species index of each atom, and the
per-element energy shift and output scale that training fits before it optimises anything
(:func:`fit_reference_energies` fits the shifts).

A model mixes in :class:`ElementEnergies` (before :class:`~mlpot.models.potential.Potential`),
calls :meth:`ElementEnergies.register_elements` in its constructor, and then has ``elements``,
``species(numbers)`` and ``set_energy_statistics(...)``, and the buffers ``reference_energy``
[n_species] (eV) and ``energy_scale`` [] (eV) to apply as E_i = e_ref[z_i] + scale · f(...).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import torch
from ase.data import atomic_numbers, chemical_symbols
from torch import Tensor

from mlpot.models.repulsion import REPULSIONS

__all__ = ["CHIRALITY_MODES", "ElementEnergies", "atomic_number", "check_model_options", "fit_reference_energies"]

#: How a model treats pseudoscalars (docs/conventions.md): mirror-even energy, mirror images in
#: training, or pseudoscalars free to enter the energy.
CHIRALITY_MODES = ("even", "augment", "free")


def atomic_number(element: str | int) -> int:
    """The atomic number of a symbol or a number; ValueError for anything that is not an element."""
    if isinstance(element, str):
        if element not in atomic_numbers:
            raise ValueError(f"unknown element symbol {element!r}")
        return atomic_numbers[element]
    z = int(element)
    if not 1 <= z <= 118:
        raise ValueError(f"unknown atomic number {z} (valid: 1..118)")
    return z


def check_model_options(cutoff: float, chirality: str, repulsion: str | None) -> None:
    """Raise ValueError for the options every per-element model takes: cutoff (Å, > 0), chirality
    (one of :data:`CHIRALITY_MODES`) and repulsion (one of :data:`mlpot.models.repulsion.REPULSIONS`)."""
    if repulsion not in REPULSIONS:
        raise ValueError(f"repulsion must be one of {REPULSIONS}, got {repulsion!r}")
    if chirality not in CHIRALITY_MODES:
        raise ValueError(f"chirality must be one of {CHIRALITY_MODES}, got {chirality!r}")
    if not cutoff > 0:
        raise ValueError(f"cutoff must be positive, got {cutoff}")


class ElementEnergies:
    """Mixin: the elements of a model, their species indices and the fitted energy statistics."""

    atomic_numbers: list[int]

    def register_elements(self, elements: Sequence[str | int]) -> list[int]:
        """Set ``atomic_numbers`` (sorted) and register the element buffers; returns the numbers.

        Buffers: ``species_of_z`` [119] (species index of each atomic number, −1 if unknown),
        ``reference_energy`` [n_species] (eV, zero until fitted), ``energy_scale`` [] (eV, one).
        """
        numbers = sorted({atomic_number(e) for e in elements})
        if not numbers:
            raise ValueError("elements must name at least one element")
        self.atomic_numbers = numbers
        species_of_z = torch.full((119,), -1, dtype=torch.int64)
        species_of_z[numbers] = torch.arange(len(numbers))
        self.register_buffer("species_of_z", species_of_z)
        self.register_buffer("reference_energy", torch.zeros(len(numbers)))
        self.register_buffer("energy_scale", torch.ones(()))
        return numbers

    @property
    def elements(self) -> list[str]:
        """Chemical symbols of the elements, in species order."""
        return [chemical_symbols[z] for z in self.atomic_numbers]

    def species(self, numbers: Tensor) -> Tensor:
        """Model species index [n_atoms] of each atom; raises for elements the model does not know."""
        species = self.species_of_z[numbers]
        if bool((species < 0).any()):
            unknown = sorted({chemical_symbols[z] for z in numbers[species < 0].tolist()})
            raise ValueError(f"the model knows the elements {self.elements}, not {unknown}")
        return species

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


@contextlib.contextmanager
def seeded_initialisation(seed: int | None):
    """Draw a model's initial weights from ``seed`` without disturbing torch's global generator.

    With ``seed=None`` the weights come from the global generator, as torch modules' do.
    """
    if seed is None:
        yield
        return
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.random.set_rng_state(generator_state)
