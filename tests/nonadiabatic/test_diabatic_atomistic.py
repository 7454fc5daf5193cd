"""The atomistic diabatic model: invariances, size-extensivity, adiabatic forces and couplings
against finite differences, save/load, and training through ``mlpot train``."""

from __future__ import annotations

import json

import ase.units
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule

import mlpot
from mlpot.data import atomic_data_from_atoms, collate
from mlpot.data.multistate import (
    DIABATIC_MATRIX,
    NONADIABATIC_COUPLINGS,
    STATE_ENERGIES,
    STATE_FORCES,
    read_multistate_structures,
    sign_free_squared_errors,
    state_pairs,
)
from mlpot.nonadiabatic.atomistic import DiabaticModel

TINY = {"n_radial": 4, "n_channels": 4, "l_max": 2, "hidden": [8], "coupling_hidden": [8]}
CUTOFF = 3.5


def make_model(n_states: int = 2, seed: int = 0, chirality: str = "free") -> DiabaticModel:
    """A float64 model whose matrix elements are of order 0.1–1 eV, so that every check has a signal."""
    model = DiabaticModel(["C", "H", "O"], cutoff=CUTOFF, chirality=chirality, n_states=n_states, seed=seed, **TINY)
    model.set_energy_statistics({1: -0.5, 6: -1.0, 8: -1.5}, scale=3.0)
    return model


def random_rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def evaluate(model, atoms: Atoms, **options) -> dict[str, torch.Tensor]:
    return model(atomic_data_from_atoms(atoms), **options)


def methanol() -> Atoms:
    atoms = molecule("CH3OH")
    atoms.rattle(0.05, seed=1)
    return atoms


def test_every_matrix_element_is_invariant_and_state_forces_are_equivariant():
    model = make_model(n_states=3)
    atoms = methanol()
    ref = evaluate(model, atoms)
    assert ref[DIABATIC_MATRIX].shape == (1, 3, 3) and ref[STATE_FORCES].shape == (len(atoms), 3, 3)
    assert torch.equal(ref[DIABATIC_MATRIX], ref[DIABATIC_MATRIX].transpose(1, 2))
    # single-surface consumers (MD, the calculator) see the lowest state, partitioned exactly over atoms
    assert torch.equal(ref["energy"], ref[STATE_ENERGIES][:, 0]) and torch.equal(ref["forces"], ref[STATE_FORCES][:, 0])
    torch.testing.assert_close(ref["atomic_energy"].sum(), ref["energy"][0], rtol=0, atol=1e-12)
    # a constant matrix would pass every invariance check: the elements must vary with geometry
    other = atoms.copy()
    other.positions[0] += 0.1
    assert (evaluate(model, other)[DIABATIC_MATRIX] - ref[DIABATIC_MATRIX]).abs().min() > 1e-6
    for seed in range(2):
        rotation = random_rotation(seed)
        moved = atoms.copy()
        moved.positions = atoms.positions @ rotation.T + np.random.default_rng(seed).normal(scale=5.0, size=3)
        out = evaluate(model, moved)
        torch.testing.assert_close(out[DIABATIC_MATRIX], ref[DIABATIC_MATRIX], rtol=0, atol=1e-12)
        torch.testing.assert_close(out[STATE_FORCES], ref[STATE_FORCES] @ torch.tensor(rotation.T), rtol=0, atol=1e-12)
    order = np.random.default_rng(3).permutation(len(atoms))
    out = evaluate(model, atoms[order])
    torch.testing.assert_close(out[DIABATIC_MATRIX], ref[DIABATIC_MATRIX], rtol=0, atol=1e-12)
    torch.testing.assert_close(out[STATE_FORCES], ref[STATE_FORCES][order], rtol=0, atol=1e-12)


def test_matrix_elements_of_far_apart_molecules_add_up_and_batching_changes_nothing():
    model = make_model()
    a, b = methanol(), molecule("H2O")
    b.positions += [2 * CUTOFF + 5.0, 0.0, 0.0]
    h_a, h_b = evaluate(model, a)[DIABATIC_MATRIX], evaluate(model, b)[DIABATIC_MATRIX]
    h_ab = evaluate(model, a + b)[DIABATIC_MATRIX]
    # diagonals are size-extensive energies; the couplings are sums of per-atom contributions too
    torch.testing.assert_close(h_ab, h_a + h_b, rtol=0, atol=1e-12)
    batched = model(collate([atomic_data_from_atoms(a), atomic_data_from_atoms(b)]), compute_couplings=True)
    torch.testing.assert_close(batched[DIABATIC_MATRIX], torch.cat([h_a, h_b]), rtol=0, atol=1e-12)
    single = evaluate(model, b, compute_couplings=True)
    for key in (STATE_FORCES, NONADIABATIC_COUPLINGS):
        # a coupling vector's sign is that of the eigenvectors: each (structure, pair) may flip as a whole
        got, want = batched[key][len(a):], single[key]
        sign = torch.sign((got * want).sum(dim=(0, 2)))
        torch.testing.assert_close(got, want * sign[None, :, None], rtol=0, atol=1e-12)


def test_state_forces_and_couplings_match_finite_differences():
    """−∂E_k/∂R by central differences (error ~h² ≈ 1e-8 relative) and d_kl = ⟨k|∂l/∂R⟩ from the
    eigenvectors at R ± h, sign-aligned with those at R."""
    model = make_model(n_states=2)
    atoms = methanol()
    out = evaluate(model, atoms, compute_couplings=True)
    gap = float(out[STATE_ENERGIES][0, 1] - out[STATE_ENERGIES][0, 0])
    assert gap > 1e-2, "the test needs non-degenerate states"
    h = 1e-4
    for atom, axis in [(0, 0), (2, 1), (4, 2)]:
        shifted = []
        for step in (h, -h):
            moved = atoms.copy()
            moved.positions[atom, axis] += step
            result = evaluate(model, moved)
            _, vectors = torch.linalg.eigh(result[DIABATIC_MATRIX][0])
            shifted.append((result[STATE_ENERGIES][0], vectors))
        numeric = -(shifted[0][0] - shifted[1][0]) / (2 * h)
        torch.testing.assert_close(out[STATE_FORCES][atom, :, axis], numeric, rtol=1e-6, atol=1e-8)
        _, centre = torch.linalg.eigh(out[DIABATIC_MATRIX][0])
        plus, minus = (v * torch.sign((v * centre).sum(0)) for _, v in shifted)
        derivative = (plus - minus) / (2 * h)
        d01 = float(centre[:, 0] @ derivative[:, 1])  # ⟨0|∂1⟩ in the eigh sign convention at R
        predicted = float(out[NONADIABATIC_COUPLINGS][atom, 0, axis])
        assert abs(abs(predicted) - abs(d01)) <= 1e-6 * max(abs(d01), 1e-3), (predicted, d01)


def test_degenerate_states_raise_unless_the_coupling_is_regularised():
    model = make_model()
    for network in model.coupling:  # no coupling at all: the diabats cross somewhere, here exactly
        for weight in network.weights:
            weight.data.zero_()
        for bias in network.biases:
            bias.data.zero_()
    for a, b in zip(model.diagonal[0].parameters(), model.diagonal[1].parameters()):
        b.data.copy_(a.data)
    with pytest.raises(ValueError, match="degenerate"):
        evaluate(model, methanol(), compute_couplings=True)
    out = evaluate(model, methanol(), compute_couplings=True, regularization=1e-3)
    assert bool(torch.isfinite(out[NONADIABATIC_COUPLINGS]).all())


def test_save_and_load_reproduce_the_model_bitwise(tmp_path):
    model = make_model(n_states=3, seed=4)
    mlpot.save_model(model, tmp_path / "diabatic.pt")
    loaded = mlpot.load_model(tmp_path / "diabatic.pt")
    assert isinstance(loaded, DiabaticModel) and loaded.n_states == 3
    assert loaded.state_dict().keys() == model.state_dict().keys()
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    data = atomic_data_from_atoms(methanol())
    for key, value in model(data).items():
        assert torch.equal(loaded(data)[key], value), key


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="n_states must be at least 2"):
        DiabaticModel(["H"], n_states=1)
    with pytest.raises(ValueError, match="no stress"):
        make_model()(atomic_data_from_atoms(methanol()), compute_stress=True)


# --------------------------------------------------------------------------------------- training
def write_teacher_data(path, n_frames: int = 20, n_states: int = 2) -> DiabaticModel:
    """extxyz of rattled formaldehyde (H2CO) labelled by a known diabatic model (energy_K, forces_K, nac_K_L)."""
    import ase.io

    teacher = make_model(n_states=n_states, seed=11)
    frames = []
    rng = np.random.default_rng(0)
    for _ in range(n_frames):
        atoms = molecule("H2CO")
        atoms.positions += rng.normal(scale=0.08, size=atoms.positions.shape)
        out = evaluate(teacher, atoms, compute_couplings=True)
        for k in range(n_states):
            atoms.info[f"energy_{k}"] = float(out[STATE_ENERGIES][0, k])
            atoms.arrays[f"forces_{k}"] = out[STATE_FORCES][:, k].numpy()
        for p, (k, l) in enumerate(state_pairs(n_states)):
            atoms.arrays[f"nac_{k}_{l}"] = out[NONADIABATIC_COUPLINGS][:, p].numpy()
        frames.append(atoms)
    ase.io.write(path, frames, format="extxyz")
    return teacher


def test_extxyz_and_npz_layouts_read_the_same_labels_with_units(tmp_path):
    write_teacher_data(tmp_path / "data.xyz", n_frames=3)
    xyz = read_multistate_structures(tmp_path / "data.xyz", 2)
    bohr, hartree = ase.units.Bohr, ase.units.Hartree  # Å, eV: the units the reader converts with
    np.savez(
        tmp_path / "data.npz", z=xyz[0]["numbers"].numpy(),
        R=np.stack([s["positions"].numpy() / bohr for s in xyz]),
        energies=np.stack([s[STATE_ENERGIES][0].numpy() / hartree for s in xyz]),
        forces=np.stack([s[STATE_FORCES].numpy().transpose(1, 0, 2) / (hartree / bohr) for s in xyz]),
        nacs=np.stack([s[NONADIABATIC_COUPLINGS].numpy().transpose(1, 0, 2) * bohr for s in xyz]),
    )
    npz = read_multistate_structures(tmp_path / "data.npz", 2, energy_unit="Hartree", length_unit="Bohr")
    for a, b in zip(xyz, npz):
        for key in ("positions", STATE_ENERGIES, STATE_FORCES, NONADIABATIC_COUPLINGS):
            torch.testing.assert_close(b[key], a[key], rtol=1e-6, atol=1e-9)
    with pytest.raises(ValueError, match="energy_2"):
        read_multistate_structures(tmp_path / "data.xyz", 3)
    with pytest.raises(ValueError, match="energy_unit"):
        read_multistate_structures(tmp_path / "data.npz", 2)


def test_mlpot_train_fits_a_diabatic_model_and_writes_a_loadable_one(tmp_path):
    import yaml

    from mlpot.cli import main

    write_teacher_data(tmp_path / "data.xyz")
    config = {
        "data": {"train": str(tmp_path / "data.xyz"), "n_val": 4, "seed": 0},
        "model": {"type": "diabatic", "n_states": 2, "cutoff": CUTOFF, **TINY},
        "trainer": {"max_epochs": 6, "batch_size": 4, "lr": 1e-2, "warmup_epochs": 0, "progress": False,
                    "ema_decay": None},
        "output": str(tmp_path / "run"),
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(tmp_path / "config.yaml")]) == 0
    history = np.genfromtxt(tmp_path / "run" / "metrics.csv", delimiter=",", names=True)
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0], history["train_loss"]
    assert history["val_loss"][-1] < history["val_loss"][0], history["val_loss"]
    assert np.isfinite(history["train_couplings_mae_per_A"]).all()
    model = mlpot.load_model(tmp_path / "run" / "model.pt")
    assert isinstance(model, DiabaticModel) and model.n_states == 2
    out = evaluate(model, molecule("H2CO"), compute_couplings=True)
    assert out[STATE_ENERGIES].shape == (1, 2) and bool(torch.isfinite(out[NONADIABATIC_COUPLINGS]).all())
    # mlpot eval reads the same layout and reports the errors of all states and the couplings
    assert main(["eval", str(tmp_path / "run" / "model.pt"), str(tmp_path / "data.xyz"), "--index", "0:5",
                 "--json", str(tmp_path / "eval.json")]) == 0
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["n_structures"] == 5
    assert {"energy_mae_meV", "forces_mae_meV_per_A", "couplings_mae_per_A"} <= set(report)


def test_coupling_sign_is_chosen_once_per_whole_vector_of_a_structure():
    """Per-atom couplings grouped by structure are compared as one vector per (structure, pair): the
    same numbers as the flattened per-structure vectors, and a vector whose halves need opposite signs
    is not forgiven."""
    generator = torch.Generator().manual_seed(0)
    reference = torch.randn(5, 3, 3, generator=generator, dtype=torch.float64)  # 5 atoms, 3 pairs, xyz
    predicted = -reference.clone()
    predicted[:, 1] = reference[:, 1]  # pair 1 keeps the reference's sign
    group = torch.tensor([0, 0, 0, 1, 1])  # structure 0: atoms 0-2; structure 1: atoms 3-4
    best, same_fits = sign_free_squared_errors(predicted, reference, group, 2)
    assert best.shape == (2, 3) and torch.equal(best, torch.zeros(2, 3, dtype=torch.float64))
    assert same_fits[:, 1].all() and not same_fits[:, 0].any() and not same_fits[:, 2].any()
    # structure 0 as one flattened vector per pair gives the same errors
    def per_pair(couplings):  # structure 0's atoms as one 9-vector per pair: [3 pairs, 9]
        return couplings[:3].transpose(0, 1).reshape(3, 9)

    assert torch.allclose(sign_free_squared_errors(per_pair(predicted), per_pair(reference))[0], best[0])
    # flipping only atom 0's coupling in structure 0: neither global sign fits, the error is positive
    predicted[0, 1] = -predicted[0, 1]
    best, _ = sign_free_squared_errors(predicted, reference, group, 2)
    expected = min(4 * float(reference[0, 1].square().sum()), 4 * float(reference[1:3, 1].square().sum()))
    assert best[0, 1].item() == pytest.approx(expected, rel=1e-12) and best[0, 1] > 0
