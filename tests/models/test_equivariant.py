"""The strictly local equivariant model: the full physics contract in every chirality mode,
strict locality, mirror symmetry (or its absence), files, MD and the command line."""

from __future__ import annotations

from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule
from helpers import ROUND_OFF, _close, assert_model_contract, chiral_molecule, evaluate, mirror

import mlpot
from mlpot.cli import main
from mlpot.data import atomic_data_from_atoms, collate
from mlpot.models import EquivariantModel

ETHANOL = Path(__file__).resolve().parents[2] / "datasets" / "rmd17" / "rmd17_ethanol_train_01.npz"
CHIRAL_ELEMENTS = ["H", "C", "F", "Cl", "Br"]
#: Small enough that a CPU test takes a second, large enough to exercise every coupling (l ≤ 2, both parities).
SMALL = {"channels": 4, "latent": 16, "hidden": (16,), "n_radial": 6}


def small_model(elements=("H", "C", "O"), **options) -> EquivariantModel:
    return EquivariantModel(list(elements), **{"cutoff": 4.0, "seed": 0, **SMALL, **options})


@pytest.mark.parametrize("chirality", ["even", "augment", "free"])
def test_contract_in_every_chirality_mode(chirality):
    # augment also carries the ZBL prior: the contract holds with it as well
    assert_model_contract(small_model(chirality=chirality, repulsion="zbl" if chirality == "augment" else None))


def test_energy_of_an_atom_depends_only_on_atoms_within_its_cutoff():
    """A–B–C with |AB| < r_c < |AC|: two layers of message passing would let C reach A through B;
    here E_A has no path to C at all (its gradient on C is exactly zero) and moving C, staying
    out of A's cutoff, leaves E_A unchanged (to round-off: edges may be summed in another order).
    B does see C."""
    model = small_model(cutoff=3.0)

    def atomic(c_position):
        data = atomic_data_from_atoms(Atoms("COH", positions=[[0, 0, 0], [2.0, 0, 0], c_position]))
        positions = data["positions"].clone().requires_grad_(True)
        out = model({**data, "positions": positions}, compute_forces=False, training=True)
        (gradient,) = torch.autograd.grad(out["atomic_energy"][0], positions)
        return out["atomic_energy"].detach(), gradient

    first, gradient = atomic([4.5, 0.3, 0])
    second, _ = atomic([4.2, -0.8, 0.5])
    assert float(gradient[2].abs().max()) == 0.0 and float(gradient[1].abs().max()) > 0.0
    assert _close(first[0], second[0]), "E_A changed when an atom outside its cutoff moved"
    assert first[1] != second[1], "E_B must see C, which is within its cutoff"


def test_moving_an_atom_out_of_every_cutoff_leaves_the_others_unchanged():
    model = small_model(cutoff=3.0)
    atoms = molecule("CH3CH2OH")
    energies = []
    for far in ([20.0, 0, 0], [0, -35.0, 7.0]):  # beyond every other atom's cutoff
        moved = atoms.copy()
        moved.positions[3] = far
        energies.append(evaluate(model, moved)["atomic_energy"])
    others = [k for k in range(len(atoms)) if k != 3]
    # the same terms, perhaps summed in another order (the neighbour list's): equal to round-off
    assert _close(energies[0][others], energies[1][others])


def test_energy_and_forces_vanish_smoothly_at_the_cutoff():
    """The envelope's value and first two derivatives vanish at r_c: E − E_far falls at least as δ³,
    the neighbour's force at least as δ² (a jump would give ratios near 1)."""
    model = small_model(cutoff=3.0)
    base = Atoms("OH", positions=[[0, 0, 0], [0.97, 0, 0]])

    def with_neighbour(distance):
        return evaluate(model, base + Atoms("H", positions=[[0, distance, 0]]))

    far = with_neighbour(3.0 + 1e-9)
    gaps, force_gaps = [], []
    for delta in (2e-2, 1e-2):
        near = with_neighbour(3.0 - delta)
        gaps.append(float((near["energy"] - far["energy"]).abs()))
        force_gaps.append(float(near["forces"][2].abs().max()))
    assert gaps[0] > 0 and force_gaps[0] > 0
    assert gaps[0] / gaps[1] > 2**3 * 0.75, f"energy gap falls slower than δ³: {gaps}"
    assert force_gaps[0] / force_gaps[1] > 2**2 * 0.75, f"force falls slower than δ²: {force_gaps}"


@pytest.mark.parametrize("chirality", ["even", "augment"])
def test_even_modes_give_enantiomers_equal_energies_and_mirrored_forces(chirality):
    model = small_model(CHIRAL_ELEMENTS, chirality=chirality)
    atoms = chiral_molecule()
    left, right = evaluate(model, atoms), evaluate(model, mirror(atoms))
    assert _close(left["energy"], right["energy"])
    assert _close(right["forces"], left["forces"] * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64))


def _enantiomer_difference_after_fit(chirality: str, steps: int = 25) -> float:
    """Fit E(left) = +0.5 eV, E(right) = −0.5 eV for a few Adam steps; return E(left) − E(right), eV."""
    model = small_model(CHIRAL_ELEMENTS, chirality=chirality)
    atoms = chiral_molecule()
    data = collate([atomic_data_from_atoms(atoms), atomic_data_from_atoms(mirror(atoms))])
    model.fit_descriptor_statistics(data)
    target = torch.tensor([0.5, -0.5], dtype=torch.float64)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-2)
    for _ in range(steps):
        optimiser.zero_grad()
        (model(data, compute_forces=False, training=True)["energy"] - target).square().mean().backward()
        optimiser.step()
    energy = model(data, compute_forces=False)["energy"]
    return float(energy[0] - energy[1]), float(energy.abs().max())


def test_free_mode_fits_an_enantiomer_odd_target_even_mode_cannot():
    """Pseudoscalars (0o) carry the handedness: in free mode they reach the energy, so a few steps
    open a clear gap between the enantiomers; in even mode the gap stays at round-off."""
    free_gap, _ = _enantiomer_difference_after_fit("free")
    even_gap, even_scale = _enantiomer_difference_after_fit("even")
    assert free_gap > 0.1, f"free mode did not learn the handedness: E(left) − E(right) = {free_gap} eV"
    assert abs(even_gap) <= ROUND_OFF * max(even_scale, 1.0)


def test_save_and_load_are_bitwise(tmp_path):
    model = small_model(chirality="free", repulsion="zbl")
    model.set_energy_statistics({1: -13.5, 6: -1025.0, 8: -2035.5}, scale=0.7)
    model.fit_descriptor_statistics(collate([atomic_data_from_atoms(molecule("CH3CH2OH"))]))
    loaded = mlpot.load_model(mlpot.save_model(model, tmp_path / "model.pt"))
    assert isinstance(loaded, EquivariantModel) and loaded.config() == model.config()
    before, after = evaluate(model, molecule("CH3CH2OH")), evaluate(loaded, molecule("CH3CH2OH"))
    for key in ("energy", "forces", "atomic_energy"):
        assert torch.equal(before[key], after[key]), key


def test_float32_model_agrees_with_float64():
    atoms = molecule("CH3CH2OH")
    out64, out32 = evaluate(small_model(), atoms), evaluate(small_model(dtype="float32"), atoms)
    assert out32["energy"].dtype == torch.float32
    # float32 holds ~7 digits; a few hundred operations deep, 1e-5 of the force scale is its precision
    scale = float(out64["forces"].abs().max())
    assert torch.allclose(out32["forces"].double(), out64["forces"], rtol=0, atol=1e-5 * scale)


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="chirality"):
        small_model(chirality="left")
    with pytest.raises(ValueError, match="layers ≥ 2"):
        small_model(chirality="free", layers=1)
    with pytest.raises(ValueError, match="l_max"):
        small_model(l_max=0)
    with pytest.raises(ValueError, match="repulsion"):
        small_model(repulsion="lj")
    with pytest.raises(ValueError, match=r"knows the elements \['H', 'O'\], not \['C'\]"):
        evaluate(small_model(["H", "O"]), molecule("CH4"))


def test_prepared_evaluator_skips_the_skin_and_agrees_with_the_forward(monkeypatch):
    """The MD engine's evaluator gets the list built with cutoff + skin: the edges beyond the
    cutoff add exact zeros, so it evaluates only those within (each would cost a tensor product)."""
    from ase.build import bulk

    model = small_model(["Cu"])
    crystal = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    crystal.rattle(0.05, seed=1)
    data = atomic_data_from_atoms(crystal, cutoff=model.cutoff + 1.0, dtype=torch.float64)  # a 1 Å skin
    lengths = (data["positions"][data["edge_index"][1]] - data["positions"][data["edge_index"][0]]
               + data["edge_shift"].to(torch.float64) @ data["cell"][0]).norm(dim=1)
    within = int((lengths < model.cutoff).sum())
    assert 0 < within < data["edge_index"].shape[1]

    evaluated = []
    edge_gradients = EquivariantModel.edge_gradients

    def counting(self, data, edge_index, vectors, with_gradient):
        evaluated.append(edge_index.shape[1])
        return edge_gradients(self, data, edge_index, vectors, with_gradient)

    monkeypatch.setattr(EquivariantModel, "edge_gradients", counting)
    energy, forces = model.fixed_topology(data)(data["positions"])
    assert evaluated == [within]
    reference = model(data, compute_forces=True)
    assert _close(energy, reference["energy"]) and _close(forces, reference["forces"])


def test_md_engine_and_ase_calculator_run_it():
    model = small_model(repulsion="zbl")
    atoms = molecule("CH3CH2OH")
    final = mlpot.dynamics.simulate(atoms, model, steps=5, timestep_fs=0.25, temperature_K=50, seed=0)
    assert np.isfinite(final.positions).all() and not np.allclose(final.positions, atoms.positions)

    calculated = atoms.copy()
    calculated.calc = mlpot.MLPotCalculator(model)
    forces = calculated.get_forces()
    assert np.allclose(forces, evaluate(model, atoms)["forces"].numpy(), rtol=0, atol=1e-12 * np.abs(forces).max())


def test_mlpot_train_and_md_with_model_type_equivariant(tmp_path):
    """`mlpot train` with `model: {type: equivariant}` on npz and on extxyz data, then `mlpot md`."""
    from mlpot.data.datasets import read_structures

    frames = []
    for structure in read_structures(ETHANOL, energy_unit="kcal/mol", index="0:10"):
        frame = Atoms(numbers=structure["numbers"].numpy(), positions=structure["positions"].numpy())
        frame.info["REF_energy"] = float(structure["energy"])
        frame.arrays["REF_forces"] = structure["forces"].numpy()
        frames.append(frame)
    ase.io.write(tmp_path / "ethanol.extxyz", frames)
    model_section = "{type: equivariant, cutoff: 4.0, channels: 4, latent: 16, hidden: [16], repulsion: zbl}"
    sources = {
        "npz": f"{{train: {ETHANOL}, energy_unit: kcal/mol, n_train: 6, n_val: 3, seed: 0}}",
        "extxyz": f"{{train: {tmp_path / 'ethanol.extxyz'}, energy_key: REF_energy, forces_key: REF_forces, "
                  "n_train: 6, n_val: 3}",
    }
    for name, data in sources.items():
        config = tmp_path / f"{name}.yaml"
        config.write_text(f"data: {data}\nmodel: {model_section}\n"
                          f"trainer: {{max_epochs: 1, batch_size: 3, progress: false}}\noutput: {tmp_path / name}\n")
        assert main(["train", str(config)]) == 0, name
        assert isinstance(mlpot.load_model(tmp_path / name / "model.pt"), EquivariantModel)

    ase.io.write(tmp_path / "start.xyz", frames[0])
    out = tmp_path / "md"
    assert main(["md", str(tmp_path / "npz" / "model.pt"), str(tmp_path / "start.xyz"), "--steps", "4",
                 "--timestep-fs", "0.25", "--temperature-K", "50", "--no-progress", "--out", str(out)]) == 0
    assert np.isfinite(ase.io.read(out / "final.extxyz").positions).all()


def test_mlpot_heat_capacity_runs_a_trained_equivariant_model(tmp_path):
    """`mlpot train` (equivariant, on EMT-labelled copper) and then `mlpot heat-capacity` on its model.

    One epoch makes no accurate potential; what is checked is that the heat-capacity workflow takes
    the family unchanged and writes a finite, positive C_V with its error bar."""
    import json

    from ase.build import bulk
    from ase.calculators.emt import EMT

    frames = []
    for seed in range(8):
        crystal = bulk("Cu", "fcc", a=3.61, cubic=True)
        crystal.rattle(0.05, seed=seed)
        crystal.calc = EMT()
        crystal.info["REF_energy"] = crystal.get_potential_energy()
        crystal.arrays["REF_forces"] = crystal.get_forces()
        crystal.calc = None
        frames.append(crystal)
    ase.io.write(tmp_path / "cu.extxyz", frames)
    config = tmp_path / "cu.yaml"
    config.write_text(
        f"data: {{train: {tmp_path / 'cu.extxyz'}, energy_key: REF_energy, forces_key: REF_forces, "
        "n_train: 6, n_val: 2}\n"
        "model: {type: equivariant, cutoff: 4.0, channels: 4, latent: 16, hidden: [16], repulsion: zbl}\n"
        f"trainer: {{max_epochs: 1, batch_size: 3, progress: false}}\noutput: {tmp_path / 'model'}\n"
    )
    assert main(["train", str(config)]) == 0
    assert isinstance(mlpot.load_model(tmp_path / "model" / "model.pt"), EquivariantModel)
    ase.io.write(tmp_path / "start.xyz", bulk("Cu", "fcc", a=3.61, cubic=True))
    out = tmp_path / "cv"
    assert main(["heat-capacity", str(tmp_path / "model" / "model.pt"), str(tmp_path / "start.xyz"),
                 "--temperatures", "300", "--sizes", "1", "--equilibration-steps", "100",
                 "--production-steps", "1024", "--timestep-fs", "5", "--threads", "1", "--no-progress",
                 "--out", str(out)]) == 0
    size = json.loads((out / "heat_capacity.json").read_text())["temperatures"][0]["sizes"][0]
    assert size["n_atoms"] == 4
    value, error = size["kB_per_cell"]["value"], size["kB_per_cell"]["error"]
    assert np.isfinite(value) and value > 0 and 0 < error < value
