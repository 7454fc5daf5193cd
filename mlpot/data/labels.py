"""Labels of a structure read from a file: where they are found, and whether they are valid.

Labels come from npz arrays, from explicitly named keys (``REF_energy`` in ``atoms.info``,
``REF_forces`` in ``atoms.arrays``) or from the calculator ASE attaches (since ASE 3.23 the extxyz
keys ``energy``/``forces``/``stress`` land on a SinglePointCalculator). A label of the wrong shape
or with NaN/inf makes the structure invalid (:class:`InvalidLabel`): the reader skips and reports
it, never keeps it silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from ase import Atoms

from mlpot.data import keys as K

__all__ = ["InvalidLabel", "extract_labels", "check_labels", "label_names"]


class InvalidLabel(Exception):
    """A structure's label is invalid; the structure is left out, with this reason."""


def extract_labels(
    atoms: Atoms, energy_key: str | None, forces_key: str | None, stress_key: str | None
) -> dict[str, Any]:
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


def check_labels(atoms: Atoms, labels: dict[str, Any]) -> dict[str, np.ndarray]:
    """Shapes and finiteness of the labels; raises InvalidLabel with the reason."""
    n = len(atoms)
    out: dict[str, np.ndarray] = {}
    if "energy" in labels:
        try:
            e = np.asarray(labels["energy"], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidLabel(f"energy is not a number ({exc})") from None
        if e.size != 1:
            raise InvalidLabel(f"energy must be one number, got shape {list(e.shape)}")
        if not np.isfinite(e).all():
            raise InvalidLabel("energy is NaN or inf")
        out["energy"] = e.reshape(())
    if "forces" in labels:
        try:
            f = np.asarray(labels["forces"], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidLabel(f"forces are not numbers ({exc})") from None
        if f.shape != (n, 3):
            raise InvalidLabel(f"forces must have shape [{n}, 3], got {list(f.shape)}")
        if not np.isfinite(f).all():
            raise InvalidLabel("forces contain NaN or inf")
        out["forces"] = f
    if "stress" in labels:
        try:
            s = np.asarray(labels["stress"], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidLabel(f"stress is not numbers ({exc})") from None
        if s.shape == (6,):
            from ase.stress import voigt_6_to_full_3x3_stress

            s = voigt_6_to_full_3x3_stress(s)
        elif s.shape == (9,):
            s = s.reshape(3, 3)
        if s.shape != (3, 3):
            raise InvalidLabel(f"stress must have shape [3, 3], [6] or [9], got {list(s.shape)}")
        if not np.isfinite(s).all():
            raise InvalidLabel("stress contains NaN or inf")
        out["stress"] = s
    return out


def label_names(structures: Sequence[dict[str, torch.Tensor]]) -> list[str]:
    """Label keys (energy, forces, stress) present in at least one structure, in that order."""
    present = set().union(*(s.keys() for s in structures)) if structures else set()
    return [k for k in (K.ENERGY, K.FORCES, K.STRESS) if k in present]
