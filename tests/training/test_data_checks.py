"""Training input: labels, cutoff, units, mixed periodic/cluster data, and the shortest distances recorded."""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.lj import LennardJones
from ase.calculators.singlepoint import SinglePointCalculator

from mlpot.data import atomic_data_from_atoms, collate
from mlpot.data.datasets import read_atoms, read_structures
from mlpot.training.batching import INPUT_KEYS, add_label_masks, select_systems
from mlpot.training.config import config_from_dict
from mlpot.training.data_checks import check_units, training_min_distances
from mlpot.training.losses import PotentialLoss
from mlpot.training.trainer import fit_energy_statistics, train

ROOT = Path(__file__).resolve().parents[2]
ETHANOL = ROOT / "datasets" / "rmd17" / "rmd17_ethanol_train_01.npz"
ASPIRIN = ROOT / "datasets" / "rmd17" / "rmd17_aspirin_train_01.npz"
SI_TRAIN = ROOT / "datasets" / "mlearn_si" / "Si_training.xyz"
SI_TEST = ROOT / "datasets" / "mlearn_si" / "Si_test.xyz"
TINY_MODEL = {"n_radial": 4, "n_channels": 4, "l_max": 1, "hidden": [8]}
HARTREE_EV, BOHR_A, KCAL_MOL_EV = 27.211386245988, 0.529177210903, 0.0433641


def _labelled(atoms: Atoms, stress: bool, sigma: float = 2.1, epsilon: float = 1.0) -> Atoms:
    """Lennard-Jones labels (a stand-in for DFT: what matters here is which labels exist)."""
    atoms.calc = LennardJones(sigma=sigma, epsilon=epsilon, rc=4.5, smooth=True)
    results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
    if stress:
        results["stress"] = atoms.get_stress() if atoms.pbc.all() else np.full(6, 0.01)
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def _mixed_file(path: Path) -> Path:
    """Four periodic Si cells with stress, a cluster without stress and a cluster with a stress label."""
    frames = []
    for k in range(4):
        cell = bulk("Si", "diamond", 5.43, cubic=True)
        cell.rattle(0.1, seed=k)
        frames.append(_labelled(cell, stress=True))
    for k, stress in ((5, False), (6, True)):
        cluster = Atoms("Si5", positions=[[0, 0, 0], [2.3, 0, 0], [0, 2.3, 0], [0, 0, 2.3], [1.4, 1.4, 1.4]])
        cluster.rattle(0.1, seed=k)
        frames.append(_labelled(cluster, stress=stress))
    ase.io.write(path, frames, format="extxyz")
    return path


def test_stress_on_clusters_is_ignored_with_one_warning_and_mixed_data_trains(tmp_path):
    data = _mixed_file(tmp_path / "mixed.extxyz")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        structures = read_structures(data, cutoff=3.0)
    messages = [str(w.message) for w in caught if "stress labels ignored" in str(w.message)]
    assert len(messages) == 1 and "on 1 structures" in messages[0]
    assert ["stress" in s for s in structures] == [True] * 4 + [False, False]

    config = config_from_dict({
        "data": {"train": str(data), "n_val": 0},
        "model": {"cutoff": 3.0, **TINY_MODEL},
        "trainer": {"max_epochs": 1, "batch_size": 6, "progress": False},
        "output": str(tmp_path / "run"),
    })
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = train(config)
    row = result.fits[0].history[0]
    assert np.isfinite(row["train_loss"]) and row["train_stress_mae_meV_per_A3"] > 0
    # the final evaluation counts the stress of every periodic structure of a mixed set
    from mlpot.training.trainer import evaluate

    mixed = evaluate(result.model, structures, batch_size=6)
    alone = evaluate(result.model, structures[:4], batch_size=6)
    assert mixed["stress_mae_meV_per_A3"] == pytest.approx(alone["stress_mae_meV_per_A3"], rel=1e-12)


@pytest.mark.filterwarnings("ignore:.*stress labels ignored")
def test_a_mixed_batch_gives_the_stress_loss_of_its_periodic_part_exactly(tmp_path):
    structures = read_structures(_mixed_file(tmp_path / "mixed.extxyz"), cutoff=3.0)
    from mlpot.models import DescriptorModel

    model = DescriptorModel(["Si"], cutoff=3.0, seed=0, **TINY_MODEL)
    labels = ["energy", "forces", "stress"]
    mixed = collate(add_label_masks(structures, labels))
    periodic = collate(add_label_masks(structures[:4], labels))
    loss = PotentialLoss(energy_weight=0.0, forces_weight=0.0, stress_weight=1.0, kind="mse")
    value_mixed, sums_mixed = loss(model, mixed, False)
    value_periodic, sums_periodic = loss(model, periodic, False)
    torch.testing.assert_close(value_mixed, value_periodic, rtol=1e-12, atol=0.0)
    assert sums_mixed["n_s"] == sums_periodic["n_s"] == 36

    # the sub-batch is the same systems: energies equal those of the whole batch, to round-off
    inputs = {k: mixed[k] for k in INPUT_KEYS}
    whole = model(inputs, compute_forces=False)["energy"]
    part = model(select_systems(inputs, torch.tensor([1, 4, 5])), compute_forces=False)["energy"]
    torch.testing.assert_close(part, whole[[1, 4, 5]], rtol=1e-12, atol=1e-12)


def _config(tmp_path, **model):
    return config_from_dict({
        "data": {"train": str(tmp_path / "data.extxyz"), "n_val": 0},
        "model": {**TINY_MODEL, **model},
        "trainer": {"max_epochs": 1, "progress": False},
        "output": str(tmp_path / "run"),
    })


def test_no_energy_and_no_force_labels_is_an_error(tmp_path):
    ase.io.write(tmp_path / "data.extxyz", [molecule("H2O"), molecule("CH4")], format="extxyz")
    with pytest.raises(ValueError, match="none of the 2 training structures has an energy or a force label"):
        train(_config(tmp_path, cutoff=3.0))
    assert not (tmp_path / "run" / "last.pt").exists()


def test_a_cutoff_shorter_than_every_distance_is_an_error_naming_the_shortest(tmp_path):
    frames = [_labelled(molecule(name), stress=False, sigma=1.2, epsilon=0.03) for name in ("H2O", "CH4")]
    ase.io.write(tmp_path / "data.extxyz", frames, format="extxyz")
    shortest = min(a.get_all_distances()[np.triu_indices(len(a), 1)].min() for a in frames)  # C-H 1.09 Å
    with pytest.raises(ValueError, match=rf"cutoff 0.5 Å is shorter .* \({shortest:.3g} Å\)"):
        train(_config(tmp_path, cutoff=0.5))


def _scaled(structures, energy_factor, force_factor):
    return [{**s, "energy": s["energy"] * energy_factor, "forces": s["forces"] * force_factor} for s in structures]


def test_wrong_units_are_an_error_unless_allowed_and_the_shipped_data_pass():
    ethanol = read_structures(ETHANOL, energy_unit="kcal/mol", index="0:200")
    refs = fit_energy_statistics(ethanol)[0]
    figures = check_units(ethanol, refs, "kcal/mol", "Angstrom")
    assert 1.0 < figures["median_force_eV_per_A"] < 2.0

    as_ev = _scaled(ethanol, 1 / KCAL_MOL_EV, 1 / KCAL_MOL_EV)  # kcal/mol numbers read as eV: 23x
    with pytest.raises(ValueError, match="median force is 3.*--allow-unusual-units"):
        check_units(as_ev, fit_energy_statistics(as_ev)[0], "eV", "Angstrom")
    atomic = _scaled(ethanol, 1 / HARTREE_EV, BOHR_A / HARTREE_EV)  # Hartree and Hartree/Bohr read as eV, eV/Å
    with pytest.raises(ValueError, match="median force is 0.029"):
        check_units(atomic, fit_energy_statistics(atomic)[0], "eV", "Angstrom")
    with pytest.warns(UserWarning, match="allowed by allow_unusual_units"):
        check_units(atomic, fit_energy_statistics(atomic)[0], "eV", "Angstrom", allow_unusual_units=True)

    # never on the shipped data: whole files, and each kind of mlearn Si structure on its own
    # (the relaxed surfaces have 0.02 eV/Å forces but 0.05 eV/atom energy differences)
    for path, unit in ((ASPIRIN, "kcal/mol"), (SI_TRAIN, None), (SI_TEST, None)):
        structures = read_structures(path, energy_unit=unit)
        check_units(structures, fit_energy_statistics(structures)[0], unit, "Angstrom")
    si = read_atoms(SI_TRAIN)
    def config_type(a):
        return a.info["config_type"]

    for _, group in itertools.groupby(sorted(si, key=config_type), key=config_type):
        structures = [atomic_data_from_atoms(a) for a in group]
        check_units(structures, fit_energy_statistics(structures)[0], None, "Angstrom")


def _brute_force_min_distances(frames: list[Atoms], cutoff: float) -> dict[str, float]:
    best: dict[str, float] = {}
    for atoms in frames:
        d = atoms.get_all_distances(mic=bool(atoms.pbc.any()))
        symbols = atoms.get_chemical_symbols()
        for i, j in zip(*np.triu_indices(len(atoms), 1)):
            if d[i, j] < cutoff:
                key = "-".join(sorted((symbols[i], symbols[j])))
                best[key] = min(best.get(key, np.inf), float(d[i, j]))
    return best


def test_training_min_distances_per_element_pair_match_all_pairs():
    water = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])  # H-H 1.52 Å
    water2 = water.copy()
    water2.positions[1] = [0.91, 0.05, 0.0]
    found = training_min_distances([atomic_data_from_atoms(a, cutoff=1.2) for a in (water, water2)])
    expected = _brute_force_min_distances([water, water2], 1.2)
    assert list(found) == ["H-O"] and found["H-O"] == pytest.approx(expected["H-O"], abs=1e-12)

    # periodic: the shortest Si-Si bond of a rattled diamond cell crosses the cell boundary
    si = bulk("Si", "diamond", 5.43, cubic=True)
    si.rattle(0.05, seed=1)
    ch = molecule("CH3CH2OH")
    found = training_min_distances([atomic_data_from_atoms(a, cutoff=2.5) for a in (si, ch)])
    expected = _brute_force_min_distances([si, ch], 2.5)
    assert list(found) == sorted(expected) and "C-H" in found and "Si-Si" in found
    for key, value in expected.items():
        assert found[key] == pytest.approx(value, abs=1e-12), key
