"""Potentials: the contract (:class:`Potential`), the descriptor and equivariant models, committees,
the analytic reference potentials, the registry of model classes, and model files."""

from mlpot.models.atomistic import DescriptorModel, describe
from mlpot.models.committee import Committee
from mlpot.models.compile import compile_potential
from mlpot.models.elements import fit_reference_energies
from mlpot.models.equivariant import EquivariantModel
from mlpot.models.potential import Potential, edge_vectors
from mlpot.models.reference import HarmonicSprings, LennardJones
from mlpot.models.registry import register
from mlpot.models.serialization import load_model, read_metadata, save_model

__all__ = [
    "compile_potential",
    "Committee",
    "DescriptorModel",
    "describe",
    "EquivariantModel",
    "HarmonicSprings",
    "LennardJones",
    "Potential",
    "edge_vectors",
    "fit_reference_energies",
    "load_model",
    "read_metadata",
    "register",
    "save_model",
]
