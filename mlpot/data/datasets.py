"""Reading DFT datasets into AtomicData, with unit conversion and label checks.

The readers per format are in :mod:`mlpot.data.readers`, the label lookup and checks in
:mod:`mlpot.data.labels`, the train/validation splits in :mod:`mlpot.data.splits` (re-exported here).

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

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from mlpot import units
from mlpot.data.labels import InvalidLabel, check_labels, extract_labels, label_names
from mlpot.data.readers import NPZ_KEY_CANDIDATES, read_ase_frames, read_npz_frames
from mlpot.data.splits import load_split, save_split, split_indices

__all__ = [
    "ReadReport",
    "read_atoms",
    "read_structure",
    "read_structures",
    "split_indices",
    "save_split",
    "load_split",
    "NPZ_KEY_CANDIDATES",
    "label_names",
]

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
        raw = read_npz_frames(path, npz_keys or {}, index)
    else:
        energy_factor = units.energy_to_eV(energy_unit or "eV")
        raw = read_ase_frames(path, format, index)
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
            labels = extract_labels(atoms, energy_key, forces_key, stress_key)
            for name in labels:
                found[name] = True
            labels = check_labels(atoms, labels)
        except InvalidLabel as why:
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
    frames = read_ase_frames(path, format, index)
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
