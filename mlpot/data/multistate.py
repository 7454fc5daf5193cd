"""Data of several electronic states: per-state energies, forces and non-adiabatic couplings.

A diabatic model (:mod:`mlpot.nonadiabatic.atomistic`) trains on adiabatic data: for every
structure the energies of the lowest ``n_states`` adiabatic states, optionally their forces, and
optionally the derivative couplings d_kl = ⟨k|∇l⟩ between them. This module defines the keys of
those labels in AtomicData and reads them from extxyz (any ``ase.io`` format with info/arrays) and
npz files, converting units to eV and Å once, here. The file layouts are documented in
``docs/nonadiabatic.md`` ("Atomistic data").

Keys (they belong in :mod:`mlpot.data.keys`; they live here until that file takes them):

* :data:`STATE_ENERGIES` ``[n_systems, n_states]`` eV, adiabatic energies in ascending order;
* :data:`STATE_FORCES` ``[n_atoms, n_states, 3]`` eV/Å, −∇E_k of each state;
* :data:`NONADIABATIC_COUPLINGS` ``[n_atoms, n_pairs, 3]`` 1/Å, d_kl for the pairs k < l in the
  order of :func:`state_pairs`; each vector's sign is arbitrary (that of the eigenvectors);
* :data:`DIABATIC_MATRIX` ``[n_systems, n_states, n_states]`` eV, a model's output.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mlpot import units
from mlpot.data.keys import DIABATIC_MATRIX, NONADIABATIC_COUPLINGS, STATE_ENERGIES, STATE_FORCES
from mlpot.data.readers import NPZ_KEY_CANDIDATES, read_ase_frames

__all__ = [
    "STATE_ENERGIES",
    "STATE_FORCES",
    "NONADIABATIC_COUPLINGS",
    "DIABATIC_MATRIX",
    "MULTISTATE_LABELS",
    "state_pairs",
    "sign_free_squared_errors",
    "read_multistate_structures",
]

#: Label keys of multistate data, in a fixed order.
MULTISTATE_LABELS = (STATE_ENERGIES, STATE_FORCES, NONADIABATIC_COUPLINGS)

#: Array names tried, in order, in an npz file of multistate data.
NPZ_MULTISTATE_CANDIDATES = {
    STATE_ENERGIES: ("energies", "E"),
    STATE_FORCES: ("forces", "F"),
    NONADIABATIC_COUPLINGS: ("nacs", "couplings", "NAC"),
}


def state_pairs(n_states: int) -> list[tuple[int, int]]:
    """The pairs (k, l), k < l, in the order couplings are stored: (0, 1), (0, 2), …, (1, 2), …"""
    return [(k, l) for k in range(n_states) for l in range(k + 1, n_states)]


def sign_free_squared_errors(
    predicted: Tensor, reference: Tensor, group: Tensor | None = None, n_groups: int | None = None
) -> tuple[Tensor, Tensor]:
    """Squared errors of coupling vectors that are defined only up to sign: min(|d − d_ref|², |d + d_ref|²).

    A non-adiabatic coupling d_kl = ⟨k|∇l⟩ carries the arbitrary signs of the states k and l, so a
    prediction is compared with whichever sign of the reference fits it best, one sign for each
    whole vector (one structure and one state pair): the vector's components never choose apart.

    Args:
        predicted, reference: ``[..., n_pairs, dim]`` couplings (1/Å or 1/coordinate unit).
        group: None: each ``[..., pair, :]`` is one whole vector, over the last axis. Else
            ``[rows]`` int64, the structure of each leading row (an atom, for per-atom
            ``[n_atoms, n_pairs, 3]`` couplings): the rows of a structure form one vector.
        n_groups: the number of structures, with ``group``.

    Returns:
        (the smaller squared error, ``[..., n_pairs]`` or ``[n_groups, n_pairs]``; a bool tensor
        of the same shape, True where the reference's own sign fits at least as well).
    """
    same, flipped = ((predicted - reference) ** 2).sum(-1), ((predicted + reference) ** 2).sum(-1)
    if group is not None:
        same = same.new_zeros(n_groups, same.shape[-1]).index_add(0, group, same)
        flipped = flipped.new_zeros(n_groups, flipped.shape[-1]).index_add(0, group, flipped)
    return torch.minimum(same, flipped), same <= flipped


def read_multistate_structures(
    path: str | os.PathLike,
    n_states: int,
    *,
    cutoff: float | None = None,
    dtype: torch.dtype = torch.float64,
    energy_unit: str | None = None,
    length_unit: str = "Angstrom",
    format: str | None = None,
) -> list[dict[str, Tensor]]:
    """Read per-state labels as AtomicData dicts (one system each), in eV and Å.

    extxyz (or any ``ase.io`` format keeping ``info`` and ``arrays``): ``energy_K`` in the info
    line and ``forces_K`` per atom for each state K = 0 … n_states−1, and ``nac_K_L`` per atom for
    the pairs K < L. npz: ``numbers`` [n_atoms] (or [n_frames, n_atoms]), ``positions``
    [n_frames, n_atoms, 3], ``energies`` [n_frames, n_states], and optionally ``forces``
    [n_frames, n_states, n_atoms, 3] and ``nacs`` [n_frames, n_pairs, n_atoms, 3].

    Every structure must carry the energies of all states; forces and couplings are used only when
    every structure has them (a file that has them for some structures only is an error).

    Args:
        path: the file.
        n_states: number of states to read.
        cutoff: if given, neighbour lists for this cutoff (Å).
        dtype: floating dtype of positions and labels.
        energy_unit: energy unit of the file (default eV; required for npz).
        length_unit: length unit of the file (positions; forces are energy/length, couplings 1/length).
        format: ``ase.io`` format (default: guessed; ``.npz`` files are read as npz).

    Raises:
        ValueError: a missing or malformed label, naming the structure and the key.
    """
    from mlpot.data.atomic_data import atomic_data_from_atoms

    if int(n_states) < 2:
        raise ValueError(f"n_states must be at least 2 for multistate data, got {n_states}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"dataset file not found: {path}")
    length = units.length_to_angstrom(length_unit)
    if path.suffix.lower() == ".npz" and format in (None, "npz"):
        if energy_unit is None:
            raise ValueError(f"{path}: npz files carry no units; set energy_unit (e.g. 'eV' or 'Hartree')")
        frames, labels = _read_npz(path, n_states)
    else:
        frames = read_ase_frames(path, format, ":")
        labels = [_labels_from_atoms(atoms, n_states, f"{path} structure {i}") for i, atoms in enumerate(frames)]
    energy = units.energy_to_eV(energy_unit or "eV")
    factors = {STATE_ENERGIES: energy, STATE_FORCES: energy / length, NONADIABATIC_COUPLINGS: 1.0 / length}
    for key in (STATE_FORCES, NONADIABATIC_COUPLINGS):
        present = [key in frame_labels for frame_labels in labels]
        if any(present) and not all(present):
            raise ValueError(
                f"{path}: {key} given for {sum(present)} of {len(labels)} structures; give it for all or none"
            )
    structures = []
    for atoms, frame_labels in zip(frames, labels):
        atoms = atoms.copy()
        atoms.positions = atoms.positions * length
        atoms.cell = atoms.cell.array * length
        data = atomic_data_from_atoms(atoms, cutoff=cutoff, dtype=dtype, labels=False)
        for key, value in frame_labels.items():
            data[key] = torch.as_tensor(value * factors[key], dtype=dtype)
        structures.append(data)
    if not structures:
        raise ValueError(f"{path}: no structures found")
    return structures


def _labels_from_atoms(atoms: Any, n_states: int, where: str) -> dict[str, np.ndarray]:
    """Per-state labels of one extxyz structure (file units), checked for shape and finiteness."""
    n = len(atoms)
    out: dict[str, np.ndarray] = {}
    missing = [f"energy_{k}" for k in range(n_states) if f"energy_{k}" not in atoms.info]
    if missing:
        raise ValueError(f"{where}: no {', '.join(missing)} in the info line (one energy_K per state)")
    out[STATE_ENERGIES] = np.array([[float(atoms.info[f"energy_{k}"]) for k in range(n_states)]])
    if all(f"forces_{k}" in atoms.arrays for k in range(n_states)):
        out[STATE_FORCES] = np.stack([atoms.arrays[f"forces_{k}"] for k in range(n_states)], axis=1)
    pairs = [f"nac_{k}_{l}" for k, l in state_pairs(n_states)]
    if all(name in atoms.arrays for name in pairs):
        out[NONADIABATIC_COUPLINGS] = np.stack([atoms.arrays[name] for name in pairs], axis=1)
    shapes = {STATE_ENERGIES: (1, n_states), STATE_FORCES: (n, n_states, 3),
              NONADIABATIC_COUPLINGS: (n, len(pairs), 3)}
    for key, value in out.items():
        _check(value, shapes[key], key, where)
    return out


def _read_npz(path: Path, n_states: int) -> tuple[list[Any], list[dict[str, np.ndarray]]]:
    from ase import Atoms

    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}

    def find(candidates: tuple[str, ...], what: str, required: bool) -> np.ndarray | None:
        for name in candidates:
            if name in arrays:
                return arrays[name]
        if required:
            raise ValueError(f"{path}: no array for {what} (tried {list(candidates)}); the file has {sorted(arrays)}")
        return None

    positions = find(NPZ_KEY_CANDIDATES["positions"], "positions", True)
    numbers = find(NPZ_KEY_CANDIDATES["numbers"], "numbers", True)
    if positions.ndim != 3 or positions.shape[2] != 3:
        raise ValueError(f"{path}: positions must have shape [n_frames, n_atoms, 3], got {list(positions.shape)}")
    n_frames, n_atoms = positions.shape[:2]
    numbers = np.broadcast_to(numbers, (n_frames, n_atoms)) if numbers.ndim == 1 else numbers
    found = {key: find(names, key, key == STATE_ENERGIES) for key, names in NPZ_MULTISTATE_CANDIDATES.items()}
    n_pairs = len(state_pairs(n_states))
    shapes = {STATE_ENERGIES: (n_frames, n_states), STATE_FORCES: (n_frames, n_states, n_atoms, 3),
              NONADIABATIC_COUPLINGS: (n_frames, n_pairs, n_atoms, 3)}
    frames, labels = [], []
    for key, value in found.items():
        if value is not None:
            _check(value, shapes[key], key, str(path))
    for i in range(n_frames):
        frames.append(Atoms(numbers=numbers[i].astype(np.int64), positions=positions[i]))
        frame = {STATE_ENERGIES: found[STATE_ENERGIES][i][None, :]}
        for key in (STATE_FORCES, NONADIABATIC_COUPLINGS):
            if found[key] is not None:
                frame[key] = np.swapaxes(found[key][i], 0, 1)  # [n_atoms, n_states or n_pairs, 3]
        labels.append(frame)
    return frames, labels


def _check(value: np.ndarray, shape: tuple[int, ...], key: str, where: str) -> None:
    value = np.asarray(value)
    if value.shape != shape:
        raise ValueError(f"{where}: {key} must have shape {list(shape)}, got {list(value.shape)}")
    if not np.isfinite(value).all():
        raise ValueError(f"{where}: {key} contains NaN or inf")
