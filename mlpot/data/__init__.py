"""Data: the AtomicData contract (:mod:`mlpot.data.keys`), conversion from and to ASE, batching."""

from mlpot.data.atomic_data import atomic_data_from_atoms, atoms_from_atomic_data, collate, validate, with_neighbors

__all__ = ["atomic_data_from_atoms", "atoms_from_atomic_data", "collate", "validate", "with_neighbors"]
