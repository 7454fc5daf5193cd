"""Reading DFT datasets into AtomicData, with unit conversion and label checks, and splitting them.

Two families of files are read:

* **anything ``ase.io`` reads** — extxyz, ASE db, VASP OUTCAR/vasprun.xml, … Labels are taken from
  the calculator ASE attaches (since ASE 3.23 extxyz ``energy``/``forces``/``stress`` land on a
  ``SinglePointCalculator``, not in ``atoms.info``), or from explicitly named keys such as
  ``REF_energy`` in ``atoms.info`` and ``REF_forces`` in ``atoms.arrays``;
* **MD17/rMD17-style npz** — arrays of frames with configurable key names (``npz_keys``).

Units are converted once, here, to eV and Å (``mlpot.units`` holds the table of known units); the
rest of mlpot never sees anything else. npz files carry no units, so for them ``energy_unit`` must
be given (rMD17 and MD17: ``"kcal/mol"``).

Labels may be missing per structure: a structure without forces trains on its energy only.
A structure whose labels are NaN/inf or have the wrong shape is *skipped and reported* with a
warning (and in :attr:`ReadReport.skipped`), never silently kept. Stress labels of structures that
are not periodic along all three axes (stress needs a volume) are dropped, with one warning that
counts them. A file that is empty, truncated or cannot be parsed raises ``ValueError`` naming the
file (also :func:`read_structure`, the one-structure reader of ``mlpot md`` and ``heat-capacity``).

Example:
    >>> structures = read_structures("datasets/rmd17/rmd17_ethanol_train_01.npz", energy_unit="kcal/mol")
    >>> split = split_indices(len(structures), n_train=950, n_val=50, seed=0)
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from mlpot import units
from mlpot.data import keys as K

__all__ = [
    "ReadReport",
    "read_atoms",
    "read_structure",
    "read_structures",
    "split_indices",
    "save_split",
    "load_split",
    "NPZ_KEY_CANDIDATES",
]

#: Candidate array names in MD17-style npz files, tried in order when ``npz_keys`` does not name them.
NPZ_KEY_CANDIDATES: dict[str, tuple[str, ...]] = {
    "numbers": ("nuclear_charges", "z", "Z", "numbers", "atomic_numbers"),
    "positions": ("coords", "R", "positions", "xyz", "coordinates"),
    "energy": ("energies", "E", "energy"),
    "forces": ("forces", "F"),
    "cell": ("cell", "lattice"),
}


@dataclass
class ReadReport:
    """What happened while reading one file.

    Attributes:
        path: the file.
        n_read: structures found in the file.
        n_kept: structures returned.
        skipped: ``(index_in_file, reason)`` for every structure left out.
        missing: label name → number of kept structures without that label.
        stress_ignored: structures whose stress label was dropped because they are not fully periodic.
    """

    path: str
    n_read: int = 0
    n_kept: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    missing: dict[str, int] = field(default_factory=dict)
    stress_ignored: int = 0

    def summary(self) -> str:
        """One line, e.g. ``data.xyz: 214 read, 212 kept, 2 skipped (first: #17 energy is NaN)``."""
        text = f"{self.path}: {self.n_read} read, {self.n_kept} kept"
        if self.skipped:
            first = "; ".join(f"#{i} {why}" for i, why in self.skipped[:3])
            text += f", {len(self.skipped)} skipped (first: {first})"
        missing = {k: v for k, v in self.missing.items() if v}
        if missing:
            text += ", without " + ", ".join(f"{k}: {v}" for k, v in missing.items())
        if self.stress_ignored:
            text += f", stress ignored on {self.stress_ignored} non-periodic"
        return text


# --------------------------------------------------------------------------------------- public
def read_atoms(
    path: str | os.PathLike,
    *,
    format: str | None = None,
    index: str | int | slice = ":",
    energy_unit: str | None = None,
    length_unit: str = "Angstrom",
    energy_key: str | None = None,
    forces_key: str | None = None,
    stress_key: str | None = None,
    npz_keys: dict[str, str] | None = None,
    report: ReadReport | None = None,
) -> list[Atoms]:
    """Read a dataset as ``ase.Atoms`` in eV/Å with labels on a SinglePointCalculator.

    Args:
        path: the file. ``.npz`` is read as MD17-style arrays; anything else through ``ase.io.read``.
        format: ``ase.io`` format name (default: guessed from the file).
        index: which structures, as for ``ase.io.read`` (default all).
        energy_unit: unit of energies in the file (a key of ``mlpot.units.ENERGY_UNITS``).
            Default "eV" for ``ase.io`` files; required for npz.
        length_unit: unit of positions and cell (a key of ``mlpot.units.LENGTH_UNITS``).
            Forces are converted with energy_unit/length_unit, stress with energy_unit/length_unit³.
        energy_key, forces_key, stress_key: explicit label names, looked up in ``atoms.info`` /
            ``atoms.arrays`` (then in the calculator's results). Default: the calculator's
            energy/forces/stress, then ``info``/``arrays`` entries called energy/forces/stress.
        npz_keys: npz array names for "numbers", "positions", "energy", "forces" (and "cell"),
            overriding :data:`NPZ_KEY_CANDIDATES`.
        report: filled in with counts and skipped structures, if given.

    Returns:
        The kept structures. Each has ``atoms.calc.results`` holding whichever of ``energy``
        (eV), ``forces`` (eV/Å) and ``stress`` (3×3, eV/Å³, ASE sign) it has, and
        ``atoms.info["source_index"]``, its index in the file.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file cannot be parsed, holds no structures, lacks required npz arrays,
            or a unit is unknown.
    """
    path = Path(path)
    report = report if report is not None else ReadReport(str(path))
    report.path = str(path)
    if not path.exists():
        raise FileNotFoundError(f"dataset file not found: {path}")
    length_factor = units.length_to_angstrom(length_unit)
    if path.suffix.lower() == ".npz" and format in (None, "npz"):
        if energy_unit is None:
            raise ValueError(
                f"{path}: npz files carry no units; set energy_unit (rMD17 and MD17 use 'kcal/mol', "
                f"known: {', '.join(units.ENERGY_UNITS)})"
            )
        energy_factor = units.energy_to_eV(energy_unit)
        raw = _read_npz(path, npz_keys or {}, index)
    else:
        energy_factor = units.energy_to_eV(energy_unit or "eV")
        raw = _read_ase(path, format, index)
    report.n_read = len(raw)
    if not raw:
        raise ValueError(f"{path}: no structures found")

    explicit = {"energy": energy_key, "forces": forces_key, "stress": stress_key}
    found = dict.fromkeys(explicit, False)
    kept: list[Atoms] = []
    missing = {"energy": 0, "forces": 0, "stress": 0}
    for i, atoms in enumerate(raw):
        source_index = atoms.info.get("source_index", i)
        try:
            labels = _extract_labels(atoms, energy_key, forces_key, stress_key)
            for name in labels:
                found[name] = True
            labels = _check_labels(atoms, labels)
        except _Skip as why:
            report.skipped.append((source_index, str(why)))
            continue
        out = Atoms(
            numbers=atoms.get_atomic_numbers(),
            positions=atoms.get_positions() * length_factor,
            cell=atoms.get_cell().array * length_factor,
            pbc=atoms.get_pbc(),
            info={k: v for k, v in atoms.info.items() if k not in (energy_key, stress_key)},
        )
        if not np.isfinite(out.get_positions()).all():
            report.skipped.append((source_index, "positions contain NaN or inf"))
            continue
        out.info["source_index"] = source_index
        if "stress" in labels and not out.pbc.all():
            del labels["stress"]  # stress needs a volume: meaningless for a cluster or a slab
            report.stress_ignored += 1
        results: dict[str, Any] = {}
        if "energy" in labels:
            results["energy"] = float(labels["energy"]) * energy_factor
        if "forces" in labels:
            results["forces"] = np.asarray(labels["forces"], dtype=np.float64) * (energy_factor / length_factor)
        if "stress" in labels:
            results["stress"] = np.asarray(labels["stress"], dtype=np.float64) * (energy_factor / length_factor**3)
        for name in missing:
            missing[name] += name not in results
        out.calc = SinglePointCalculator(out, **results)
        kept.append(out)
    for name, key in explicit.items():
        if key is not None and not found[name]:
            raise ValueError(f"{path}: {name}_key {key!r} is in none of the {report.n_read} structures")
    report.n_kept = len(kept)
    report.missing = missing
    if report.skipped:
        warnings.warn(f"skipped structures with invalid labels: {report.summary()}", stacklevel=2)
    if report.stress_ignored:
        warnings.warn(
            f"{path}: stress labels ignored on {report.stress_ignored} structures that are not periodic along all "
            "three axes (stress needs a cell volume)",
            stacklevel=2,
        )
    if not kept:
        raise ValueError(f"{path}: all {report.n_read} structures were skipped ({report.summary()})")
    return kept


def read_structure(path: str | os.PathLike, index: int | str = -1, format: str | None = None) -> Atoms:
    """One structure as ASE reads it (momenta, masses and constraints kept), with clear errors.

    Args:
        path: any file ``ase.io.read`` understands.
        index: which frame (default the last).
        format: ``ase.io`` format name (default: guessed).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is empty, truncated or unreadable (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"structure file not found: {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty")
    frames = _read_ase(path, format, index)
    if not frames:
        raise ValueError(f"{path}: no structures found")
    return frames[-1]


def read_structures(
    path: str | os.PathLike,
    *,
    cutoff: float | None = None,
    dtype: torch.dtype = torch.float64,
    report: ReadReport | None = None,
    **read_options: Any,
) -> list[dict[str, torch.Tensor]]:
    """Read a dataset as a list of AtomicData dicts (one system each), labels in eV and Å.

    Args:
        path: the file (see :func:`read_atoms`).
        cutoff: if given, each structure gets ``edge_index``/``edge_shift`` for this cutoff (Å).
        dtype: floating dtype of positions, cell and labels.
        report: filled in with counts and skipped structures, if given.
        **read_options: passed to :func:`read_atoms` (format, index, energy_unit, length_unit,
            energy_key, forces_key, stress_key, npz_keys).

    Returns:
        AtomicData dicts. Labels (``energy`` [1], ``forces`` [n,3], ``stress`` [1,3,3]) are
        present only where the file has them.
    """
    from mlpot.data import atomic_data_from_atoms

    atoms_list = read_atoms(path, report=report, **read_options)
    return [atomic_data_from_atoms(a, cutoff=cutoff, dtype=dtype) for a in atoms_list]


def split_indices(
    n: int, n_train: int | None, n_val: int, seed: int = 0, n_test: int = 0
) -> dict[str, list[int]]:
    """A random split of ``range(n)`` into train/val (and test) index lists.

    Args:
        n: number of structures.
        n_train: training structures; None takes all that remain after val and test.
        n_val: validation structures.
        seed: seed of the permutation (numpy ``default_rng``), so the split is reproducible.
        n_test: test structures (0 when a separate test file is used).

    Returns:
        ``{"train": [...], "val": [...], "test": [...], "seed": seed}``; indices sorted within each part.
    """
    if n_val < 0 or n_test < 0 or (n_train is not None and n_train < 0):
        raise ValueError(f"split sizes must be >= 0, got n_train={n_train}, n_val={n_val}, n_test={n_test}")
    n_train = n - n_val - n_test if n_train is None else n_train
    if n_train + n_val + n_test > n:
        raise ValueError(
            f"split asks for n_train={n_train} + n_val={n_val} + n_test={n_test} structures, but only {n} are available"
        )
    order = np.random.default_rng(seed).permutation(n)
    parts = np.split(order[: n_train + n_val + n_test], [n_train, n_train + n_val])
    return {
        "train": sorted(int(i) for i in parts[0]),
        "val": sorted(int(i) for i in parts[1]),
        "test": sorted(int(i) for i in parts[2]),
        "seed": seed,
    }


def save_split(split: dict[str, Any], path: str | os.PathLike, **metadata: Any) -> None:
    """Write a split (as from :func:`split_indices`) and optional metadata to a JSON file."""
    Path(path).write_text(json.dumps({**metadata, **split}, indent=1))


def load_split(path: str | os.PathLike, n: int | None = None) -> dict[str, list[int]]:
    """Read an index file: JSON with "train"/"val" (and optionally "test") lists, or an npz with
    arrays train/val/test (also sGDML-style idx_train/idx_valid/idx_test).

    Args:
        path: the file.
        n: if given, indices must lie in ``range(n)``.

    Raises:
        ValueError: naming the problem (missing "train", out-of-range or overlapping indices).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"split file not found: {path}")
    if path.suffix.lower() == ".npz":
        with np.load(path) as d:
            aliases = {"train": ("train", "idx_train"), "val": ("val", "idx_val", "idx_valid"), "test": ("test", "idx_test")}
            raw = {part: d[next(a for a in names if a in d.files)].tolist()
                   for part, names in aliases.items() if any(a in d.files for a in names)}
    else:
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not a JSON split file: {exc}") from exc
    if "train" not in raw:
        raise ValueError(f"{path}: split file has no 'train' indices")
    split = {part: [int(i) for i in raw.get(part, [])] for part in ("train", "val", "test")}
    seen: set[int] = set()
    for part, idx in split.items():
        if n is not None and any(i < 0 or i >= n for i in idx):
            raise ValueError(f"{path}: '{part}' indices outside 0..{n - 1}")
        if seen & set(idx):
            raise ValueError(f"{path}: '{part}' indices overlap another part of the split")
        seen |= set(idx)
    return split


# --------------------------------------------------------------------------------------- readers
class _Skip(Exception):
    """A structure is invalid and is left out (with its reason)."""


def _read_ase(path: Path, format: str | None, index: Any) -> list[Atoms]:
    import ase.io

    if format == "db" or (format is None and path.suffix.lower() == ".db"):
        return _read_db(path, index)
    try:
        result = ase.io.read(str(path), index=index, format=format)
    except Exception as exc:  # noqa: BLE001 - any parser failure (empty, truncated, garbage) becomes one clear error
        detail = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise ValueError(
            f"{path}: cannot read as {format or 'an ase.io format'} (empty, truncated or not that format?): "
            f"{type(exc).__name__}: {detail}"
        ) from exc
    return [result] if isinstance(result, Atoms) else list(result)


def _read_db(path: Path, index: Any) -> list[Atoms]:
    """ASE db rows as Atoms; key-value pairs go to ``info`` and per-atom data arrays to ``arrays``,
    so explicit label keys (``REF_energy``) work as for extxyz."""
    import ase.db

    try:
        with ase.db.connect(str(path)) as db:
            rows = list(db.select())
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"{path}: cannot read as an ASE db: {type(exc).__name__}: {exc}") from exc
    selected = np.arange(len(rows))[index] if not isinstance(index, str) else _slice_from_string(index, len(rows))
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


def _read_npz(path: Path, npz_keys: dict[str, str], index: Any) -> list[Atoms]:
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
                raise ValueError(f"{path}: npz_keys names {npz_keys[name]!r} for {name}, but the file has {sorted(files)}")
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
        raise ValueError(f"{path}: numbers must have shape [{n_atoms}] or [{n_frames}, {n_atoms}], got {list(numbers.shape)}")
    for name, arr in (("energy", energy), ("forces", forces)):
        if arr is not None and arr.shape[0] != n_frames:
            raise ValueError(f"{path}: {name} has {arr.shape[0]} frames but positions have {n_frames}")

    selected = np.arange(n_frames)[index] if not isinstance(index, str) else _slice_from_string(index, n_frames)
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


def _slice_from_string(index: str, n: int) -> np.ndarray:
    if index == ":":
        return np.arange(n)
    parts = [int(p) if p else None for p in index.split(":")]
    if len(parts) == 1:
        return np.arange(n)[parts[0] : parts[0] + 1 if parts[0] != -1 else None]
    return np.arange(n)[slice(*parts)]


def _extract_labels(atoms: Atoms, energy_key: str | None, forces_key: str | None, stress_key: str | None) -> dict[str, Any]:
    """Raw labels (file units) from npz arrays, named info/arrays keys or the calculator."""
    if "_npz_labels" in atoms.info:
        return atoms.info.pop("_npz_labels")
    results = dict(getattr(atoms.calc, "results", {}) or {}) if atoms.calc is not None else {}
    labels: dict[str, Any] = {}
    for name, key, store in (
        ("energy", energy_key, atoms.info),
        ("forces", forces_key, atoms.arrays),
        ("stress", stress_key, atoms.info),
    ):
        value = None
        if key is not None:
            value = store.get(key, atoms.info.get(key) if name == "forces" else None)
            if value is None:
                value = results.get(key)
        else:
            value = results.get(name)
            if value is None and name == "energy":
                value = results.get("free_energy")
            if value is None:
                value = store.get(name)
        if value is not None:
            labels[name] = value
    return labels


def _check_labels(atoms: Atoms, labels: dict[str, Any]) -> dict[str, np.ndarray]:
    """Shapes and finiteness of the labels; raises _Skip with the reason."""
    n = len(atoms)
    out: dict[str, np.ndarray] = {}
    if "energy" in labels:
        try:
            e = np.asarray(labels["energy"], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise _Skip(f"energy is not a number ({exc})") from None
        if e.size != 1:
            raise _Skip(f"energy must be one number, got shape {list(e.shape)}")
        if not np.isfinite(e).all():
            raise _Skip("energy is NaN or inf")
        out["energy"] = e.reshape(())
    if "forces" in labels:
        try:
            f = np.asarray(labels["forces"], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise _Skip(f"forces are not numbers ({exc})") from None
        if f.shape != (n, 3):
            raise _Skip(f"forces must have shape [{n}, 3], got {list(f.shape)}")
        if not np.isfinite(f).all():
            raise _Skip("forces contain NaN or inf")
        out["forces"] = f
    if "stress" in labels:
        try:
            s = np.asarray(labels["stress"], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise _Skip(f"stress is not numbers ({exc})") from None
        if s.shape == (6,):
            from ase.stress import voigt_6_to_full_3x3_stress

            s = voigt_6_to_full_3x3_stress(s)
        elif s.shape == (9,):
            s = s.reshape(3, 3)
        if s.shape != (3, 3):
            raise _Skip(f"stress must have shape [3, 3], [6] or [9], got {list(s.shape)}")
        if not np.isfinite(s).all():
            raise _Skip("stress contains NaN or inf")
        out["stress"] = s
    return out


def label_names(structures: Sequence[dict[str, torch.Tensor]]) -> list[str]:
    """Label keys (energy, forces, stress) present in at least one structure, in that order."""
    present = set().union(*(s.keys() for s in structures)) if structures else set()
    return [k for k in (K.ENERGY, K.FORCES, K.STRESS) if k in present]
