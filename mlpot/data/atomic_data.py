"""AtomicData: build it from ``ase.Atoms``, turn it back, validate it, and batch it.

AtomicData is a plain ``dict[str, torch.Tensor]`` with the keys of :mod:`mlpot.data.keys`.
Labels (energy, forces, stress) are read through the Atoms' calculator, which is where ASE ≥ 3.23
puts the labels of an extxyz file (a SinglePointCalculator), so they are never looked for in
``atoms.info`` by accident.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.stress import voigt_6_to_full_3x3_stress
from torch import Tensor

from mlpot.data import keys as K
from mlpot.neighbors import neighbor_list

__all__ = ["atomic_data_from_atoms", "atoms_from_atomic_data", "collate", "validate", "with_neighbors"]

#: Largest atomic number mlpot accepts (oganesson).
MAX_ATOMIC_NUMBER = 118


def atomic_data_from_atoms(
    atoms: Atoms, cutoff: float | None = None, dtype: torch.dtype = torch.float64, labels: bool = True
) -> dict[str, Tensor]:
    """Convert one ``ase.Atoms`` into AtomicData.

    Args:
        atoms: the structure. Labels attached through a calculator (energy, forces, stress) are
            copied when present and ``labels`` is true.
        cutoff: if given, the neighbour list (``edge_index``, ``edge_shift``) for this cutoff, Å.
        dtype: floating dtype of positions, cell and labels.
        labels: whether to copy energy/forces/stress from the calculator.

    Returns:
        AtomicData of a single system (``batch`` all zeros, system keys with a leading 1).

    Raises:
        ValueError: naming the field, for NaN positions, unknown elements or a singular periodic cell.
    """
    if not isinstance(atoms, Atoms):
        raise TypeError(f"expected ase.Atoms, got {type(atoms).__name__}")
    n_atoms = len(atoms)
    data: dict[str, Tensor] = {
        K.POSITIONS: torch.tensor(atoms.get_positions(), dtype=dtype),
        K.NUMBERS: torch.tensor(atoms.get_atomic_numbers(), dtype=torch.int64),
        K.BATCH: torch.zeros(n_atoms, dtype=torch.int64),
        K.CELL: torch.tensor(atoms.get_cell().array, dtype=dtype).unsqueeze(0),
        K.PBC: torch.tensor(atoms.get_pbc(), dtype=torch.bool).unsqueeze(0),
        K.N_ATOMS: torch.tensor([n_atoms], dtype=torch.int64),
    }
    if labels and atoms.calc is not None:
        data.update(_labels_from_calculator(atoms, dtype))
    validate(data)
    if cutoff is not None:
        data = with_neighbors(data, cutoff)
    return data


def _labels_from_calculator(atoms: Atoms, dtype: torch.dtype) -> dict[str, Tensor]:
    """Energy [1], forces [n,3] and stress [1,3,3] that the calculator already holds (never computes)."""
    results = getattr(atoms.calc, "results", {}) or {}
    out: dict[str, Tensor] = {}
    energy = results.get("energy", results.get("free_energy"))
    if energy is not None:
        out[K.ENERGY] = torch.tensor([float(energy)], dtype=dtype)
    if results.get("forces") is not None:
        out[K.FORCES] = torch.tensor(np.asarray(results["forces"]), dtype=dtype)
    stress = results.get("stress")
    if stress is not None:
        stress = np.asarray(stress)
        if stress.shape == (6,):
            stress = voigt_6_to_full_3x3_stress(stress)
        out[K.STRESS] = torch.tensor(stress, dtype=dtype).reshape(1, 3, 3)
    return out


def atoms_from_atomic_data(data: dict[str, Tensor]) -> list[Atoms]:
    """Convert (batched) AtomicData back into one ``ase.Atoms`` per system.

    Energy, forces and stress present in ``data`` are attached as a SinglePointCalculator, so
    ``atoms.get_potential_energy()`` returns them; momenta are set when present.
    """
    n_atoms = data[K.POSITIONS].shape[0]
    batch = data.get(K.BATCH, torch.zeros(n_atoms, dtype=torch.int64))
    n_systems = int(batch.max()) + 1 if n_atoms else data[K.CELL].shape[0] if K.CELL in data else 1
    structures = []
    for s in range(n_systems):
        mask = (batch == s).cpu().numpy()
        cell = data[K.CELL][s].detach().cpu().numpy() if K.CELL in data else np.zeros((3, 3))
        pbc = data[K.PBC][s].cpu().numpy() if K.PBC in data else False
        atoms = Atoms(
            numbers=data[K.NUMBERS][mask].cpu().numpy(),
            positions=data[K.POSITIONS][mask].detach().cpu().numpy(),
            cell=cell,
            pbc=pbc,
        )
        if K.MOMENTA in data:
            atoms.set_momenta(data[K.MOMENTA][mask].detach().cpu().numpy())
        results = {}
        if K.ENERGY in data:
            results["energy"] = float(data[K.ENERGY][s])
        if K.FORCES in data:
            results["forces"] = data[K.FORCES][mask].detach().cpu().numpy()
        if K.STRESS in data:
            results["stress"] = data[K.STRESS][s].detach().cpu().numpy()
        if results:
            atoms.calc = SinglePointCalculator(atoms, **results)
        structures.append(atoms)
    return structures


def with_neighbors(data: dict[str, Tensor], cutoff: float) -> dict[str, Tensor]:
    """Return a copy of ``data`` with ``edge_index`` and ``edge_shift`` for ``cutoff`` (Å)."""
    edge_index, edge_shift = neighbor_list(
        data[K.POSITIONS], cutoff, data.get(K.CELL), data.get(K.PBC), data.get(K.BATCH)
    )
    return {**data, K.EDGE_INDEX: edge_index, K.EDGE_SHIFT: edge_shift}


def validate(data: dict[str, Tensor]) -> None:
    """Check AtomicData against the contract; raise ``ValueError`` naming the offending field.

    Checks: required keys, shapes and dtypes, finite positions, integer atomic numbers in
    1..118, a sorted ``batch``, and cells that are non-singular on their periodic axes.
    """
    for key in (K.POSITIONS, K.NUMBERS):
        if key not in data:
            raise ValueError(f"AtomicData is missing the required field {key!r}")
    positions, numbers = data[K.POSITIONS], data[K.NUMBERS]
    if not isinstance(positions, Tensor) or positions.ndim != 2 or positions.shape[1] != 3:
        raise ValueError(f"field 'positions' must have shape [n_atoms, 3], got {_shape(positions)}")
    n_atoms = positions.shape[0]
    if not torch.is_floating_point(positions):
        raise ValueError(f"field 'positions' must be floating point, got {positions.dtype}")
    bad = ~torch.isfinite(positions).all(dim=1)
    if bool(bad.any()):
        raise ValueError(f"field 'positions' has NaN or inf for atoms {torch.nonzero(bad).flatten()[:10].tolist()}")
    if not isinstance(numbers, Tensor) or numbers.shape != (n_atoms,):
        raise ValueError(f"field 'numbers' must have shape [{n_atoms}], got {_shape(numbers)}")
    if torch.is_floating_point(numbers) or numbers.dtype == torch.bool:
        raise ValueError(f"field 'numbers' must hold integers, got {numbers.dtype}")
    unknown = (numbers < 1) | (numbers > MAX_ATOMIC_NUMBER)
    if bool(unknown.any()):
        raise ValueError(
            f"field 'numbers' has unknown atomic numbers {sorted(set(numbers[unknown].tolist()))[:10]} "
            f"(valid: 1..{MAX_ATOMIC_NUMBER})"
        )
    batch = data.get(K.BATCH)
    if batch is not None:
        if batch.shape != (n_atoms,) or torch.is_floating_point(batch):
            raise ValueError(f"field 'batch' must be an integer tensor of shape [{n_atoms}], got {_shape(batch)}")
        if n_atoms > 1 and bool((batch[1:] < batch[:-1]).any()):
            raise ValueError("field 'batch' must be sorted (non-decreasing system indices)")
        if n_atoms > 0 and int(batch[0]) < 0:
            raise ValueError(f"field 'batch' must hold system indices >= 0, got {int(batch[0])}")
    n_systems = int(batch.max()) + 1 if batch is not None and n_atoms else 1
    cell, pbc = data.get(K.CELL), data.get(K.PBC)
    if cell is not None and (cell.ndim != 3 or cell.shape[1:] != (3, 3) or cell.shape[0] < n_systems):
        raise ValueError(f"field 'cell' must have shape [n_systems={n_systems}, 3, 3], got {_shape(cell)}")
    if pbc is not None and (pbc.ndim != 2 or pbc.shape[1] != 3 or pbc.shape[0] < n_systems or pbc.dtype != torch.bool):
        raise ValueError(
            f"field 'pbc' must be a bool tensor of shape [n_systems={n_systems}, 3], got {_shape(pbc)} {pbc.dtype}"
        )
    if cell is not None and pbc is not None:
        if not bool(torch.isfinite(cell).all()):
            raise ValueError("field 'cell' has NaN or inf")
        for s in torch.nonzero(pbc.any(dim=1)).flatten().tolist():
            periodic = pbc[s]
            vectors = cell[s][periodic]
            if int(torch.linalg.matrix_rank(vectors.double(), atol=1e-8)) < vectors.shape[0]:
                raise ValueError(
                    f"field 'cell' of system {s} is singular on its periodic axes "
                    f"{torch.nonzero(periodic).flatten().tolist()}"
                )
    _check_label_shapes(data, n_atoms, n_systems)


def _check_label_shapes(data: dict[str, Tensor], n_atoms: int, n_systems: int) -> None:
    expected = {
        K.ENERGY: (n_systems,),
        K.FORCES: (n_atoms, 3),
        K.STRESS: (n_systems, 3, 3),
        K.MOMENTA: (n_atoms, 3),
        K.MASSES: (n_atoms,),
    }
    for key, shape in expected.items():
        value = data.get(key)
        if value is not None and tuple(value.shape) != shape:
            raise ValueError(f"field {key!r} must have shape {list(shape)}, got {_shape(value)}")
    edge_index, edge_shift = data.get(K.EDGE_INDEX), data.get(K.EDGE_SHIFT)
    if edge_index is not None:
        if edge_index.ndim != 2 or edge_index.shape[0] != 2:
            raise ValueError(f"field 'edge_index' must have shape [2, n_edges], got {_shape(edge_index)}")
        if edge_shift is None or tuple(edge_shift.shape) != (edge_index.shape[1], 3):
            raise ValueError(f"field 'edge_shift' must have shape [{edge_index.shape[1]}, 3], got {_shape(edge_shift)}")
        if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= n_atoms):
            raise ValueError(f"field 'edge_index' refers to atoms outside 0..{n_atoms - 1}")


def _shape(value: object) -> str:
    return str(list(value.shape)) if isinstance(value, Tensor) else type(value).__name__


def collate(structures: Sequence[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Batch several AtomicData into one.

    Atom and edge keys are concatenated (``edge_index`` offset by the atoms before it), system
    keys are concatenated along the first dimension, and ``batch`` is rebuilt. A label is kept
    only if every structure has it; use per-structure masks upstream to train on partial labels.

    Args:
        structures: AtomicData dicts, each of one or more systems.

    Returns:
        One AtomicData dict holding all systems in order.
    """
    if len(structures) == 0:
        raise ValueError("collate needs at least one structure")
    common = set(structures[0])
    for s in structures[1:]:
        common &= set(s)
    out: dict[str, list[Tensor]] = {key: [] for key in common}
    atom_offset = 0
    system_offset = 0
    for data in structures:
        n_atoms = data[K.POSITIONS].shape[0]
        batch = data.get(K.BATCH, torch.zeros(n_atoms, dtype=torch.int64))
        n_systems = _count_systems(data)
        for key in common:
            value = data[key]
            if key == K.EDGE_INDEX:
                value = value + atom_offset
            elif key == K.BATCH:
                value = batch + system_offset
            out[key].append(value)
        atom_offset += n_atoms
        system_offset += n_systems
    batched = {key: torch.cat(values, dim=1 if key == K.EDGE_INDEX else 0) for key, values in out.items()}
    if K.BATCH not in batched:
        batched[K.BATCH] = torch.cat(
            [torch.full((d[K.POSITIONS].shape[0],), i, dtype=torch.int64) for i, d in enumerate(structures)]
        )
    return batched


def _count_systems(data: dict[str, Tensor]) -> int:
    if K.N_ATOMS in data:
        return data[K.N_ATOMS].shape[0]
    if K.CELL in data:
        return data[K.CELL].shape[0]
    batch = data.get(K.BATCH)
    return int(batch.max()) + 1 if batch is not None and batch.numel() else 1
