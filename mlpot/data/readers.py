"""Readers of dataset files, one per format, returning ``ase.Atoms`` in the file's own units.

* :func:`read_ase_frames`: anything ``ase.io`` reads (extxyz, VASP, ...), and ASE databases
  (:func:`read_db_frames`, which keep key-value pairs and per-atom data as ``info``/``arrays``);
* :func:`read_npz_frames`: MD17/rMD17-style npz arrays with configurable names.

Unit conversion and label checks come afterwards, in :mod:`mlpot.data.datasets` and
:mod:`mlpot.data.labels`; every parser failure here becomes one ``ValueError`` naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

__all__ = ["NPZ_KEY_CANDIDATES", "read_ase_frames", "read_db_frames", "read_npz_frames", "slice_from_string"]

#: Candidate array names in MD17-style npz files, tried in order when ``npz_keys`` does not name them.
NPZ_KEY_CANDIDATES: dict[str, tuple[str, ...]] = {
    "numbers": ("nuclear_charges", "z", "Z", "numbers", "atomic_numbers"),
    "positions": ("coords", "R", "positions", "xyz", "coordinates"),
    "energy": ("energies", "E", "energy"),
    "forces": ("forces", "F"),
    "cell": ("cell", "lattice"),
}


def read_ase_frames(path: Path, format: str | None, index: Any) -> list[Atoms]:
    """Frames of any ``ase.io`` format (ASE db through :func:`read_db_frames`), as ASE reads them.

    Raises:
        ValueError: the file cannot be parsed (empty, truncated, another format); names the file.
    """
    import ase.io

    if format == "db" or (format is None and path.suffix.lower() == ".db"):
        return read_db_frames(path, index)
    try:
        result = ase.io.read(str(path), index=index, format=format)
    except Exception as exc:  # noqa: BLE001 - any parser failure (empty, truncated, garbage) becomes one clear error
        detail = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise ValueError(
            f"{path}: cannot read as {format or 'an ase.io format'} (empty, truncated or not that format?): "
            f"{type(exc).__name__}: {detail}"
        ) from exc
    return [result] if isinstance(result, Atoms) else list(result)


def read_db_frames(path: Path, index: Any) -> list[Atoms]:
    """ASE db rows as Atoms; key-value pairs go to ``info`` and per-atom data arrays to ``arrays``,
    so explicit label keys (``REF_energy``) work as for extxyz."""
    import ase.db

    try:
        with ase.db.connect(str(path)) as db:
            rows = list(db.select())
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"{path}: cannot read as an ASE db: {type(exc).__name__}: {exc}") from exc
    selected = np.arange(len(rows))[index] if not isinstance(index, str) else slice_from_string(index, len(rows))
    frames = []
    for i in np.atleast_1d(selected):
        row = rows[int(i)]
        atoms = row.toatoms()
        atoms.info.update(row.key_value_pairs)
        for key, value in (row.get("data") or {}).items():
            value = np.asarray(value)
            if value.ndim >= 1 and value.shape[0] == len(atoms) and key not in atoms.arrays:
                atoms.arrays[key] = value
            else:
                atoms.info[key] = value
        frames.append(atoms)
    return frames


def read_npz_frames(path: Path, npz_keys: dict[str, str], index: Any) -> list[Atoms]:
    """Frames of an MD17-style npz (units of the file); raw labels in ``atoms.info["_npz_labels"]``.

    Args:
        path: the file.
        npz_keys: array names for "numbers", "positions", "energy", "forces", "cell", overriding
            :data:`NPZ_KEY_CANDIDATES`.
        index: which frames (as for ``ase.io.read``).
    """
    try:
        data = np.load(path, allow_pickle=False)
        files = set(data.files)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"{path}: cannot read as npz: {type(exc).__name__}: {exc}") from exc
    unknown = set(npz_keys) - set(NPZ_KEY_CANDIDATES)
    if unknown:
        raise ValueError(f"npz_keys: unknown field(s) {sorted(unknown)}; known: {sorted(NPZ_KEY_CANDIDATES)}")

    def find(name: str, required: bool) -> np.ndarray | None:
        if name in npz_keys:
            if npz_keys[name] not in files:
                raise ValueError(
                    f"{path}: npz_keys names {npz_keys[name]!r} for {name}, but the file has {sorted(files)}"
                )
            return data[npz_keys[name]]
        for candidate in NPZ_KEY_CANDIDATES[name]:
            if candidate in files:
                return data[candidate]
        if required:
            raise ValueError(
                f"{path}: no array for {name} (tried {list(NPZ_KEY_CANDIDATES[name])}); the file has "
                f"{sorted(files)}: name it with npz_keys={{'{name}': ...}}"
            )
        return None

    try:
        positions = find("positions", True)
        numbers = find("numbers", True)
        energy, forces, cell = find("energy", False), find("forces", False), find("cell", False)
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - a truncated array inside the zip
        raise ValueError(f"{path}: corrupt npz: {type(exc).__name__}: {exc}") from exc
    if positions.ndim != 3 or positions.shape[2] != 3:
        raise ValueError(f"{path}: positions must have shape [n_frames, n_atoms, 3], got {list(positions.shape)}")
    n_frames, n_atoms = positions.shape[:2]
    if numbers.ndim == 1:
        numbers = np.broadcast_to(numbers, (n_frames, numbers.shape[0]))
    if numbers.shape != (n_frames, n_atoms):
        raise ValueError(
            f"{path}: numbers must have shape [{n_atoms}] or [{n_frames}, {n_atoms}], got {list(numbers.shape)}"
        )
    for name, arr in (("energy", energy), ("forces", forces)):
        if arr is not None and arr.shape[0] != n_frames:
            raise ValueError(f"{path}: {name} has {arr.shape[0]} frames but positions have {n_frames}")

    selected = np.arange(n_frames)[index] if not isinstance(index, str) else slice_from_string(index, n_frames)
    frames = []
    for i in np.atleast_1d(selected):
        atoms = Atoms(numbers=numbers[i].astype(np.int64), positions=positions[i])
        if cell is not None:
            atoms.set_cell(cell[i] if cell.ndim == 3 else cell)
            atoms.set_pbc(True)
        results: dict[str, Any] = {}
        if energy is not None:
            results["energy"] = np.asarray(energy[i])
        if forces is not None:
            results["forces"] = np.asarray(forces[i])
        atoms.info["source_index"] = int(i)
        atoms.info["_npz_labels"] = results
        frames.append(atoms)
    return frames


def slice_from_string(index: str, n: int) -> np.ndarray:
    """Indices into ``range(n)`` selected by an ``ase.io``-style index string (``":"``, ``"-1"``, ``"2:10:2"``)."""
    if index == ":":
        return np.arange(n)
    parts = [int(p) if p else None for p in index.split(":")]
    if len(parts) == 1:
        return np.arange(n)[parts[0] : parts[0] + 1 if parts[0] != -1 else None]
    return np.arange(n)[slice(*parts)]
