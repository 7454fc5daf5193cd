"""The ASE calculator: ASE's contract, forces against finite differences through ASE, neighbour
list reuse, and real use — VelocityVerlet and BFGS on ethanol with a model fitted to rMD17."""

import warnings

import numpy as np
import pytest
import torch
from ase import units
from ase.build import bulk, molecule
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.test import gradient_test
from ase.md.verlet import VelocityVerlet
from ase.optimize import BFGS
from helpers import ETHANOL, fit_small_ethanol_model

import mlpot
from mlpot.data.datasets import read_structures
from mlpot.models import DescriptorModel


@pytest.fixture(scope="module")
def ethanol_model():
    return fit_small_ethanol_model()


def test_forces_agree_with_finite_differences_through_ase():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.rattle(0.05, seed=0)
    atoms.calc = mlpot.MLPotCalculator(DescriptorModel(["Cu"], cutoff=4.0, seed=0))
    # gradient_test returns analytic and numerical forces (ASE's central differences, eps=1e-6 Å:
    # error ~ h²·F''' plus round-off ~ 1e-16·E/h, both far below 1e-7 eV/Å here).
    forces, numerical = gradient_test(atoms)
    assert np.abs(forces - numerical).max() < 1e-7


def test_results_properties_and_caching():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    atoms.rattle(0.02, seed=1)
    model = DescriptorModel(["Cu"], cutoff=4.0, seed=0)
    atoms.calc = calc = mlpot.MLPotCalculator(model)
    energy = atoms.get_potential_energy()
    assert atoms.get_potential_energy() == energy and calc.get_property("free_energy") == energy
    assert np.isclose(atoms.get_potential_energies().sum(), energy, rtol=1e-12)
    assert atoms.get_stress().shape == (6,)
    reference = model(mlpot.data.atomic_data_from_atoms(atoms), compute_stress=True)
    assert np.allclose(atoms.get_stress(voigt=False), reference["stress"][0].numpy(), rtol=1e-12, atol=1e-15)
    atoms.positions[0, 0] += 0.1
    assert atoms.get_potential_energy() != energy, "moving an atom must invalidate the cache"
    molecule_atoms = molecule("H2O")
    molecule_atoms.calc = mlpot.MLPotCalculator(DescriptorModel(["H", "O"], seed=0))
    with pytest.raises(PropertyNotImplementedError):
        molecule_atoms.get_stress()


def test_neighbour_list_is_reused_within_the_skin():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    calc = mlpot.MLPotCalculator(DescriptorModel(["Cu"], cutoff=4.0, seed=0), skin=1.0)
    atoms.calc = calc
    atoms.get_forces()
    assert calc.verlet_list.n_rebuilds == 1
    atoms.positions[3] += [0.3, 0.0, 0.0]  # < skin/2: keep the list
    fresh = mlpot.MLPotCalculator(DescriptorModel(["Cu"], cutoff=4.0, seed=0), skin=0.0)
    reused_forces = atoms.get_forces()
    assert calc.verlet_list.n_rebuilds == 1
    assert np.allclose(reused_forces, fresh.get_forces(atoms), rtol=0, atol=1e-12)
    atoms.positions[3] += [0.3, 0.0, 0.0]  # now 0.6 > skin/2: rebuild
    atoms.get_forces()
    assert calc.verlet_list.n_rebuilds == 2


def test_float32_calculator_and_model_file(tmp_path):
    model = DescriptorModel(["H", "C", "O"], seed=0)
    path = mlpot.save_model(model, tmp_path / "model.pt")
    atoms = molecule("CH3CH2OH")
    e64 = mlpot.MLPotCalculator(path).get_potential_energy(atoms)
    e32 = mlpot.MLPotCalculator(model, dtype="float32").get_potential_energy(atoms)
    assert model.dtype == torch.float64, "the calculator must not change the caller's model"
    assert abs(e32 - e64) < 1e-5 * max(abs(e64), 1.0)
    with pytest.raises(ValueError, match="dtype"):
        mlpot.MLPotCalculator(model, dtype="float16")


def test_velocity_verlet_on_ethanol_keeps_energy_bounded(ethanol_model):
    structures = read_structures(ETHANOL, energy_unit="kcal/mol", index="500")
    atoms = mlpot.data.atoms_from_atomic_data(structures[0])[0]
    atoms.calc = mlpot.MLPotCalculator(ethanol_model)
    thermal = np.sqrt(atoms.get_masses()[:, None] * units.kB * 300)
    atoms.set_momenta(np.random.default_rng(0).normal(size=(9, 3)) * thermal)
    total = []
    dynamics = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    dynamics.attach(lambda: total.append(atoms.get_total_energy()), interval=1)
    dynamics.run(100)
    total = np.array(total)
    kinetic_scale = 1.5 * len(atoms) * units.kB * 300
    # Velocity Verlet at 0.5 fs conserves K+U to a small fraction of the thermal energy.
    assert np.all(np.isfinite(total))
    assert np.ptp(total) < 0.05 * kinetic_scale, f"energy not conserved: spread {np.ptp(total):.4f} eV"


def test_bfgs_on_ethanol_converges(ethanol_model):
    structures = read_structures(ETHANOL, energy_unit="kcal/mol", index="700")
    atoms = mlpot.data.atoms_from_atomic_data(structures[0])[0]
    atoms.calc = mlpot.MLPotCalculator(ethanol_model)
    optimiser = BFGS(atoms, logfile=None)
    assert optimiser.run(fmax=0.01, steps=300)
    assert np.abs(atoms.get_forces()).max() < 0.01
    distances = atoms.get_all_distances() + np.eye(len(atoms)) * 10
    assert distances.min() > 0.8, "optimisation collapsed atoms"


def test_nan_positions_raise_at_every_call():
    """The second call reuses the neighbour list, whose cutoff test a NaN atom fails for every
    edge: without a check it would return a finite energy for a broken structure."""
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.calc = mlpot.MLPotCalculator(DescriptorModel(["Si"], cutoff=3.5, n_channels=4, l_max=2, hidden=(8,), seed=0))
    atoms.get_potential_energy()
    positions = atoms.get_positions()
    positions[2, 0] = np.nan
    atoms.set_positions(positions)
    with pytest.raises(ValueError, match=r"positions of atoms \[2\] are NaN or infinite"):
        atoms.get_potential_energy()
    cell = atoms.get_cell().array.copy()
    positions[2, 0] = 0.0
    atoms.set_positions(positions)
    cell[0, 0] = np.inf
    atoms.set_cell(cell)
    with pytest.raises(ValueError, match="cell holds NaN or infinite"):
        atoms.get_forces()


def test_model_rejects_nan_positions_with_a_prepared_edge_list():
    from mlpot.data import atomic_data_from_atoms

    model = DescriptorModel(["Si"], cutoff=3.5, n_channels=4, l_max=2, hidden=(8,), seed=0)
    data = atomic_data_from_atoms(bulk("Si", "diamond", a=5.43, cubic=True), cutoff=4.0, dtype=torch.float64)
    data["positions"] = data["positions"].clone()
    data["positions"][5, 2] = np.nan
    for training in (False, True):
        with pytest.raises(ValueError, match=r"positions of atoms \[5\]"):
            model(data, training=training)


def test_close_contact_warns_once():
    model = DescriptorModel(["Si"], cutoff=3.5, n_channels=4, l_max=2, hidden=(8,), seed=0)
    model.training_min_distances = {"Si-Si": 2.2}
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.calc = mlpot.MLPotCalculator(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        atoms.get_potential_energy()  # 2.35 Å: no warning
    atoms.positions[1] = atoms.positions[0] + [0.7, 0.7, 0.7]  # 1.21 Å < 0.75 × 2.2
    with pytest.warns(UserWarning, match=r"atoms [01] and [01] \(Si-Si\) are 1\.212 Å apart"):
        atoms.get_potential_energy()
    atoms.positions[1] += 0.01
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        atoms.get_potential_energy()  # once per calculator
    quiet = bulk("Si", "diamond", a=5.43, cubic=True)
    quiet.positions[1] = quiet.positions[0] + [0.7, 0.7, 0.7]
    quiet.calc = mlpot.MLPotCalculator(model, min_distance_fraction=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet.get_potential_energy()


def test_calculator_keeps_its_old_import_paths():
    """``mlpot.MLPotCalculator`` and the deprecated ``mlpot.calculator`` both give the class in
    :mod:`mlpot.integrations.ase`."""
    import importlib
    import sys

    from mlpot.integrations.ase import MLPotCalculator

    assert mlpot.MLPotCalculator is MLPotCalculator
    sys.modules.pop("mlpot.calculator", None)
    with pytest.warns(DeprecationWarning, match="mlpot.calculator is deprecated"):
        old = importlib.import_module("mlpot.calculator")
    assert old.MLPotCalculator is MLPotCalculator
