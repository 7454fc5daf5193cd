"""Readers: round trips through extxyz and ASE db, npz unit conversion, invalid labels, splits."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import ase.db
import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.singlepoint import SinglePointCalculator

from mlpot.data.datasets import ReadReport, load_split, read_atoms, read_structures, save_split, split_indices

ROOT = Path(__file__).resolve().parents[2]
ETHANOL = ROOT / "datasets" / "rmd17" / "rmd17_ethanol_train_01.npz"
SI = ROOT / "datasets" / "mlearn_si" / "Si_training.xyz"
KCAL_PER_MOL_IN_EV = 0.0433641  # 4.184 kJ/mol / 96.4853 kJ/mol per eV, to 6 significant digits


def labelled_structures(n: int = 4, stress: bool = True) -> list[Atoms]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        atoms = bulk("Si", "diamond", a=5.43, cubic=True)
        atoms.rattle(0.05, seed=i)
        results = {"energy": -40.0 + rng.normal(), "forces": rng.normal(size=(len(atoms), 3))}
        if stress:
            results["stress"] = rng.normal(size=6) * 1e-3
        atoms.calc = SinglePointCalculator(atoms, **results)
        out.append(atoms)
    return out


def assert_same(structures: list[dict], atoms_list: list[Atoms]) -> None:
    assert len(structures) == len(atoms_list)
    for s, a in zip(structures, atoms_list):
        assert torch.allclose(s["positions"], torch.tensor(a.positions), atol=1e-8)
        assert torch.allclose(s["cell"][0], torch.tensor(a.cell.array), atol=1e-8)
        assert s["energy"].item() == pytest.approx(a.get_potential_energy(), abs=1e-8)
        assert torch.allclose(s["forces"], torch.tensor(a.get_forces()), atol=1e-8)
        assert torch.allclose(s["stress"][0], torch.tensor(a.get_stress(voigt=False)), atol=1e-10)


def test_extxyz_round_trip(tmp_path):
    structures = labelled_structures()
    ase.io.write(tmp_path / "data.xyz", structures, format="extxyz")
    assert_same(read_structures(tmp_path / "data.xyz"), structures)


def test_ase_db_round_trip(tmp_path):
    structures = labelled_structures()
    with ase.db.connect(tmp_path / "data.db") as db:
        for a in structures:
            db.write(a)
    assert_same(read_structures(tmp_path / "data.db"), structures)


def test_explicit_label_keys_and_units(tmp_path):
    """REF_* keys in info/arrays, in Hartree and Bohr, become eV, eV/Å and eV/Å³."""
    from ase.units import Bohr, Hartree

    atoms = molecule("H2O")
    atoms.info["REF_energy"] = -76.4
    atoms.arrays["REF_forces"] = np.arange(9.0).reshape(3, 3) * 0.01
    ase.io.write(tmp_path / "ref.xyz", atoms, format="extxyz")
    (s,) = read_structures(tmp_path / "ref.xyz", energy_key="REF_energy", forces_key="REF_forces",
                           energy_unit="Hartree", length_unit="Bohr")
    assert s["energy"].item() == pytest.approx(-76.4 * Hartree, rel=1e-12)
    assert torch.allclose(s["forces"], torch.tensor(atoms.arrays["REF_forces"]) * Hartree / Bohr)
    assert torch.allclose(s["positions"], torch.tensor(atoms.positions) * Bohr)


def test_rmd17_npz_in_kcal_per_mol_against_hand_conversion():
    raw = np.load(ETHANOL)
    report = ReadReport(str(ETHANOL))
    structures = read_structures(ETHANOL, energy_unit="kcal/mol", index="0:5", report=report)
    assert report.n_kept == 5 and report.missing["stress"] == 5
    for i, s in enumerate(structures):
        assert s["energy"].item() == pytest.approx(raw["energies"][i] * KCAL_PER_MOL_IN_EV, rel=1e-6)
        assert np.allclose(s["forces"].numpy(), raw["forces"][i] * KCAL_PER_MOL_IN_EV, rtol=1e-6)
        assert np.array_equal(s["positions"].numpy(), raw["coords"][i])
        assert s["numbers"].tolist() == raw["nuclear_charges"].tolist()
    # -97079.9 kcal/mol is about -4209.8 eV (not -2.2 million, the inverse factor)
    assert structures[0]["energy"].item() == pytest.approx(-97079.92222179 * 0.0433641, rel=1e-6)


def test_npz_needs_an_energy_unit_and_custom_keys(tmp_path):
    with pytest.raises(ValueError, match="energy_unit"):
        read_structures(ETHANOL)
    np.savez(tmp_path / "md17.npz", charges=np.array([1, 1]), xyz=np.zeros((3, 2, 3)) + [[0, 0, 0], [0, 0, 0.74]],
             E=np.array([[1.0], [2.0], [3.0]]), F=np.ones((3, 2, 3)))
    with pytest.raises(ValueError, match="no array for numbers"):
        read_structures(tmp_path / "md17.npz", energy_unit="eV")
    names = {"numbers": "charges", "positions": "xyz"}
    s = read_structures(tmp_path / "md17.npz", energy_unit="kJ/mol", npz_keys=names)
    assert [x["energy"].item() for x in s] == pytest.approx([v * 0.0103642688 for v in (1.0, 2.0, 3.0)], rel=1e-6)


def test_missing_labels_are_allowed_per_structure(tmp_path):
    structures = labelled_structures(3, stress=False)
    structures[1].calc = SinglePointCalculator(structures[1], energy=-1.0)  # energy only
    structures[2].calc = None  # unlabelled
    ase.io.write(tmp_path / "partial.xyz", structures, format="extxyz")
    report = ReadReport("")
    out = read_structures(tmp_path / "partial.xyz", report=report)
    assert len(out) == 3 and report.missing == {"energy": 1, "forces": 2, "stress": 3}
    assert "forces" not in out[1] and "energy" in out[1] and "energy" not in out[2]


def test_nan_and_wrong_shaped_labels_are_skipped_with_a_warning(tmp_path):
    structures = labelled_structures(4, stress=False)
    structures[1].calc.results["energy"] = float("nan")
    ase.io.write(tmp_path / "nan.xyz", structures, format="extxyz")
    report = ReadReport("")
    with pytest.warns(UserWarning, match=r"#1 energy is NaN"):
        out = read_structures(tmp_path / "nan.xyz", report=report)
    assert len(out) == 3 and report.skipped == [(1, "energy is NaN or inf")]
    assert [s["energy"].item() for s in out] == pytest.approx([structures[i].calc.results["energy"] for i in (0, 2, 3)])

    atoms = molecule("H2O")
    atoms.info["REF_energy"] = 1.0
    atoms.info["REF_forces"] = np.zeros((2, 3))  # 2 rows for 3 atoms
    with pytest.warns(UserWarning, match=r"forces must have shape \[3, 3\], got \[2, 3\]"):
        with pytest.raises(ValueError, match="all 1 structures were skipped"):
            ase.io.write(tmp_path / "shape.xyz", atoms, format="extxyz")
            read_structures(tmp_path / "shape.xyz", energy_key="REF_energy", forces_key="REF_forces")


def test_npz_with_nan_frames_and_wrong_force_shape(tmp_path):
    energies = np.array([1.0, np.nan, 3.0])
    np.savez(tmp_path / "nan.npz", nuclear_charges=np.array([1, 1]), coords=np.random.rand(3, 2, 3),
             energies=energies, forces=np.zeros((3, 2, 3)))
    with pytest.warns(UserWarning, match="skipped"):
        out = read_structures(tmp_path / "nan.npz", energy_unit="eV")
    assert [s["energy"].item() for s in out] == [1.0, 3.0]
    np.savez(tmp_path / "bad.npz", nuclear_charges=np.array([1, 1]), coords=np.random.rand(3, 2, 3),
             energies=energies, forces=np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match="forces has 2 frames but positions have 3"):
        read_structures(tmp_path / "bad.npz", energy_unit="eV")


def test_corrupt_and_missing_files_raise_clear_errors(tmp_path):
    (tmp_path / "corrupt.xyz").write_text("3\nenergy=1.0\nH 0 0 0\nnot an atom line\n")
    with pytest.raises(ValueError, match="corrupt.xyz: cannot read"):
        read_structures(tmp_path / "corrupt.xyz")
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(ValueError, match="corrupt.npz: cannot read as npz"):
        read_structures(tmp_path / "corrupt.npz", energy_unit="eV")
    with pytest.raises(FileNotFoundError, match="nowhere.xyz"):
        read_structures(tmp_path / "nowhere.xyz")
    with pytest.raises(ValueError, match="unknown energy unit 'kcal'"):
        read_structures(SI, energy_unit="kcal")


def test_mlearn_si_labels_through_the_single_point_calculator():
    """ASE >= 3.23 puts extxyz energy/forces/stress on a SinglePointCalculator: read them from there."""
    atoms = ase.io.read(SI, index=0)
    (s,) = read_structures(SI, index="0")
    assert s["energy"].item() == atoms.get_potential_energy()
    assert torch.allclose(s["stress"][0], torch.tensor(atoms.get_stress(voigt=False)))
    assert s["pbc"].all()


def test_splits_by_seed_and_by_index_file(tmp_path):
    a, b = split_indices(100, 80, 10, seed=1), split_indices(100, 80, 10, seed=1)
    assert a == b and len(a["train"]) == 80 and len(a["val"]) == 10 and not set(a["train"]) & set(a["val"])
    assert split_indices(100, 80, 10, seed=2)["val"] != a["val"]
    assert len(split_indices(100, None, 10)["train"]) == 90
    with pytest.raises(ValueError, match="only 100 are available"):
        split_indices(100, 95, 10)
    save_split(a, tmp_path / "split.json", train_file="x.npz")
    assert json.loads((tmp_path / "split.json").read_text())["train_file"] == "x.npz"
    loaded = load_split(tmp_path / "split.json", n=100)
    assert loaded["train"] == a["train"] and loaded["val"] == a["val"]
    np.savez(tmp_path / "idx.npz", idx_train=np.arange(5), idx_valid=np.arange(5, 7))
    assert load_split(tmp_path / "idx.npz")["val"] == [5, 6]
    (tmp_path / "overlap.json").write_text(json.dumps({"train": [1, 2], "val": [2]}))
    with pytest.raises(ValueError, match="overlap"):
        load_split(tmp_path / "overlap.json")
    with pytest.raises(ValueError, match="outside"):
        load_split(tmp_path / "split.json", n=50)


def test_read_atoms_returns_labels_in_ev_on_a_calculator():
    (atoms,) = read_atoms(ETHANOL, energy_unit="kcal/mol", index="3")
    assert atoms.info["source_index"] == 3
    raw = np.load(ETHANOL)
    assert atoms.get_potential_energy() == pytest.approx(raw["energies"][3] * KCAL_PER_MOL_IN_EV, rel=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert atoms.get_forces().shape == (9, 3)


def test_ase_db_with_explicit_keys_and_a_misspelt_key(tmp_path):
    atoms = molecule("H2O")
    with ase.db.connect(tmp_path / "ref.db") as db:
        db.write(atoms, REF_energy=-2.5, data={"REF_forces": np.ones((3, 3))})
    (s,) = read_structures(tmp_path / "ref.db", energy_key="REF_energy", forces_key="REF_forces")
    assert s["energy"].item() == -2.5 and torch.equal(s["forces"], torch.ones(3, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="energy_key 'REF_energi' is in none of the 1 structures"):
        read_structures(tmp_path / "ref.db", energy_key="REF_energi")


def test_empty_truncated_and_garbled_structure_files_are_one_clear_error(tmp_path):
    from mlpot.data.datasets import read_structure

    frames = ase.io.read(SI, index="0:2")
    ase.io.write(tmp_path / "good.extxyz", frames, format="extxyz")
    text = (tmp_path / "good.extxyz").read_text()
    (tmp_path / "empty.extxyz").write_text("")
    (tmp_path / "truncated.extxyz").write_text(text[: len(text) * 3 // 4])  # cut inside the second frame
    (tmp_path / "garbled.extxyz").write_text("hello\nworld\n")
    assert len(read_structure(tmp_path / "good.extxyz")) == len(frames[1])
    with pytest.raises(ValueError, match="empty.extxyz: the file is empty"):
        read_structure(tmp_path / "empty.extxyz")
    for name in ("truncated", "garbled"):
        with pytest.raises(ValueError, match=f"{name}.extxyz: cannot read .*truncated"):
            read_structure(tmp_path / f"{name}.extxyz")
    for name in ("empty", "truncated"):  # the dataset reader says the same
        with pytest.raises(ValueError, match=f"{name}.extxyz"):
            read_structures(tmp_path / f"{name}.extxyz")
    with pytest.raises(FileNotFoundError, match="nowhere.extxyz"):
        read_structure(tmp_path / "nowhere.extxyz")


def test_stress_of_non_periodic_structures_is_dropped_and_counted(tmp_path):
    periodic = ase.io.read(SI, index=0)
    slab = periodic.copy()
    slab.pbc = [True, True, False]
    slab.calc = SinglePointCalculator(slab, energy=1.0, stress=np.full(6, 0.1))
    ase.io.write(tmp_path / "mixed.extxyz", [periodic, slab], format="extxyz")
    report = ReadReport(str(tmp_path / "mixed.extxyz"))
    with pytest.warns(UserWarning, match="stress labels ignored on 1 structures") as caught:
        out = read_structures(tmp_path / "mixed.extxyz", report=report)
    assert len([w for w in caught if "stress" in str(w.message)]) == 1
    assert "stress" in out[0] and "stress" not in out[1] and out[1]["energy"].item() == 1.0
    assert report.stress_ignored == 1 and "stress ignored on 1 non-periodic" in report.summary()
