"""The example scripts run, in reduced form, on a briefly fitted ethanol model."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from ase.io import read, write
from helpers import ETHANOL, fit_small_ethanol_model

import mlpot
from mlpot.data import atoms_from_atomic_data
from mlpot.data.datasets import read_structures

EXAMPLES = Path(__file__).resolve().parents[1] / "scripts" / "examples"


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def model_and_structure(tmp_path_factory):
    folder = tmp_path_factory.mktemp("example")
    model_path = mlpot.save_model(fit_small_ethanol_model(), folder / "model.pt")
    atoms = atoms_from_atomic_data(read_structures(ETHANOL, energy_unit="kcal/mol", index="100")[0])[0]
    write(folder / "ethanol.xyz", atoms)
    return folder, model_path, folder / "ethanol.xyz"


def test_ase_md_example(model_and_structure):
    folder, model, structure = model_and_structure
    drift = load_example("ase_md").main([str(model), str(structure), "--steps", "40", "--out", str(folder / "md.traj")])
    frames = read(folder / "md.traj", index=":")
    assert len(frames) == 5 and abs(drift) < 0.01


def test_geometry_optimisation_example(model_and_structure):
    folder, model, structure = model_and_structure
    atoms, converged = load_example("geometry_optimisation").main(
        [str(model), str(structure), "--fmax", "0.02", "--out", str(folder / "relaxed.xyz")]
    )
    assert converged and np.abs(atoms.get_forces()).max() < 0.02
    assert len(read(folder / "relaxed.xyz")) == 9


def test_train_from_extxyz_example(tmp_path):
    """Two epochs on 12 periodic silicon cells (energies, forces, stress) from the shipped mlearn data."""
    from ase.io import read as ase_read

    root = Path(__file__).resolve().parents[1]
    cells = ase_read(root / "datasets" / "mlearn_si" / "Si_training.xyz", index=":12")
    write(tmp_path / "si.xyz", cells)
    result = load_example("train_from_extxyz").main(
        [str(tmp_path / "si.xyz"), "--out", str(tmp_path / "run"), "--max-epochs", "2", "--n-val", "3",
         "--cutoff", "4.0"]
    )
    model = mlpot.load_model(tmp_path / "run" / "model.pt")
    assert model.cutoff == 4.0 and result.metrics["val"]["forces_mae_meV_per_A"] > 0


def test_heat_capacity_sweep_example(tmp_path):
    """A reduced sweep with ASE's EMT copper: two sizes, one temperature, short runs."""
    study = load_example("heat_capacity_sweep").main([
        "--reference", "emt", "--temperatures", "300", "--sizes", "1", "2",
        "--equilibration-steps", "200", "--production-steps", "1500", "--out", str(tmp_path),
    ])
    assert (tmp_path / "heat_capacity.png").exists() and (tmp_path / "heat_capacity.json").exists()
    c_inf = study.fits[300.0]
    # Dulong–Petit: 3 k_B per atom; this short run only has to land within its own error bars (4σ).
    assert abs(c_inf.value - 3.0) < 4 * c_inf.error
