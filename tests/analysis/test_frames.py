"""Frames labelled elsewhere come back matched by index and checked by position."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from mlpot.analysis.frames import read_labelled_energies, reference_energies, write_frames


def frames(n=4):
    out = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True)
        atoms.rattle(0.05, seed=k)
        out.append(atoms)
    return out


def test_labelled_energies_round_trip(tmp_path):
    ours = frames()
    path = write_frames(tmp_path / "frames.extxyz", ours)
    labelled = []
    for atoms in ase.io.read(path, index=":"):  # "elsewhere": another code labels the written frames
        energy = EMT().get_potential_energy(atoms)
        atoms.calc = SinglePointCalculator(atoms, energy=energy)
        labelled.append(atoms)
    ase.io.write(tmp_path / "labelled.extxyz", labelled)
    energies = read_labelled_energies(tmp_path / "labelled.extxyz", ours)
    np.testing.assert_allclose(energies, reference_energies(EMT(), ours), rtol=0, atol=1e-8)
    with pytest.raises(ValueError, match="must match by index"):
        read_labelled_energies(tmp_path / "labelled.extxyz", ours[:3])
    with pytest.raises(ValueError, match="frame 0"):
        read_labelled_energies(tmp_path / "labelled.extxyz", ours[::-1])
    with pytest.raises(ValueError, match="no energy"):
        read_labelled_energies(path, ours)
