"""The ZBL repulsion prior: the published formula, its derivative, the model contract with it on,
and what it is for: two atoms pushed together cost energy instead of gaining it."""

import math

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from helpers import ROUND_OFF, assert_model_contract, evaluate

from mlpot.data import atomic_data_from_atoms
from mlpot.models import DescriptorModel
from mlpot.models.repulsion import zbl_energy
from mlpot.models.serialization import load_model, save_model


def _zbl_by_hand(r: float, z1: int, z2: int) -> float:
    """The unscreened-switch ZBL energy written from the textbook constants (Ziegler, Biersack and
    Littmark 1985): e²/4πε₀ = 14.399645 eV·Å, a = 0.46850 Å / (Z1^0.23 + Z2^0.23)."""
    a = 0.46850 / (z1**0.23 + z2**0.23)
    x = r / a
    phi = (0.18175 * math.exp(-3.19980 * x) + 0.50986 * math.exp(-0.94229 * x)
           + 0.28022 * math.exp(-0.40290 * x) + 0.02817 * math.exp(-0.20162 * x))
    return 14.399645 * z1 * z2 / r * phi


@pytest.mark.parametrize(("r", "z1", "z2"), [(0.2, 14, 14), (0.45, 6, 1), (0.9, 8, 6)])
def test_zbl_matches_an_independent_evaluation(r, z1, z2):
    """Below the switch's inner radius (½ r_out) the prior is the bare ZBL energy. e²/4πε₀ comes
    from ASE's CODATA constants in the package and from the tabulated 14.399645 here: they agree
    to ~1e-7, far inside the tolerance."""
    r_out = torch.tensor([10.0], dtype=torch.float64)  # switch far away: inner radius 5 Å
    energy, _ = zbl_energy(torch.tensor([r], dtype=torch.float64), torch.tensor([z1]), torch.tensor([z2]), r_out)
    assert float(energy) == pytest.approx(_zbl_by_hand(r, z1, z2), rel=1e-6)


def test_zbl_derivative_and_switch():
    """dE/dr agrees with a central difference whose error falls as h² (a wrong derivative would
    leave an error that does not shrink), and the switched energy and its derivative go to zero
    continuously at r_out and stay zero beyond."""
    z = torch.tensor([14, 14]), torch.tensor([8, 14])
    r_out = torch.tensor([2.0, 2.0], dtype=torch.float64)

    def relative_error(r0, h):
        r = torch.full((2,), r0, dtype=torch.float64)
        _, derivative = zbl_energy(r, *z, r_out)
        numeric = (zbl_energy(r + h, *z, r_out)[0] - zbl_energy(r - h, *z, r_out)[0]) / (2 * h)
        return ((numeric - derivative) / derivative).abs()

    for r0 in (0.3, 1.2, 1.7, 1.99):
        coarse, fine = relative_error(r0, 1e-4), relative_error(r0, 1e-5)
        assert float(fine.max()) < 1e-6
        assert bool(((coarse / fine) > 50).all() & ((coarse / fine) < 200).all())  # 100 = (10)² for an h² error
    energy, derivative = zbl_energy(torch.tensor([2.0, 2.5], dtype=torch.float64), *z, r_out)
    zeros = torch.zeros(2, dtype=torch.float64)
    assert torch.equal(energy, zeros) and torch.equal(derivative, zeros)
    near, d_near = zbl_energy(torch.tensor([2.0 - 1e-4] * 2, dtype=torch.float64), *z, r_out)
    assert float(near.abs().max()) < 1e-8 and float(d_near.abs().max()) < 1e-5  # C² switch: E ~ t³, E' ~ t²


def _compressed_structures():
    """Structures whose pairs reach inside the covalent range, where the prior acts."""
    mol = molecule("CH3CH2OH")
    mol.positions *= 0.6  # C–H 0.65 Å: inside the C–H switch (r_out 1.07 Å)
    crystal = bulk("Si", "diamond", a=3.9, cubic=True)  # nearest neighbours 1.69 Å < r_out 2.22 Å
    crystal.set_chemical_symbols(["Si", "O"] * 4)
    crystal.rattle(0.05, seed=1)
    return mol, crystal


def test_model_with_repulsion_passes_contract():
    """Invariances, far-apart additivity, finite-difference forces and stress, with the prior acting."""
    mol, crystal = _compressed_structures()
    model = DescriptorModel(
        ["H", "C", "O", "Si"], cutoff=3.5, n_channels=4, l_max=2, hidden=(16,), seed=0, repulsion="zbl"
    )
    bare = DescriptorModel(["H", "C", "O", "Si"], cutoff=3.5, n_channels=4, l_max=2, hidden=(16,), seed=0)
    assert float(evaluate(model, mol)["energy"] - evaluate(bare, mol)["energy"]) > 10.0  # the prior is on here
    assert_model_contract(model, {"molecule": mol, "crystal": crystal})


def test_repulsion_on_every_evaluation_path():
    """Training (autograd), evaluation (edge gradients) and the MD evaluator give the same energy and forces."""
    mol, _ = _compressed_structures()
    model = DescriptorModel(["H", "C", "O"], cutoff=3.5, n_channels=4, l_max=2, hidden=(16,), seed=1, repulsion="zbl")
    data = atomic_data_from_atoms(mol, cutoff=model.cutoff + 0.5, dtype=torch.float64)
    trained = model(data, training=True)
    evaluated = model(data)
    energy, forces = model.fixed_topology(data)(data["positions"])
    scale = float(evaluated["forces"].abs().max())
    for e, f in ((trained["energy"].detach(), trained["forces"].detach()), (energy, forces)):
        assert float((e - evaluated["energy"]).abs().max()) <= ROUND_OFF * float(evaluated["energy"].abs().max())
        assert float((f - evaluated["forces"]).abs().max()) <= ROUND_OFF * scale


def test_collapsing_pair_costs_energy():
    """The audit case: two Si atoms 0.07 Å apart. Without the prior an untrained network puts
    them at about the energy of a bonded pair (nothing tells it otherwise); with it, they cost
    the nuclear repulsion, thousands of eV."""
    def dimer(d):
        return Atoms("Si2", positions=[[0, 0, 0], [d, 0, 0]])

    bare = DescriptorModel(["Si"], cutoff=4.0, seed=0)
    with_prior = DescriptorModel(["Si"], cutoff=4.0, seed=0, repulsion="zbl")
    gap_bare = float(evaluate(bare, dimer(0.07))["energy"] - evaluate(bare, dimer(2.35))["energy"])
    gap = float(evaluate(with_prior, dimer(0.07))["energy"] - evaluate(with_prior, dimer(2.35))["energy"])
    assert abs(gap_bare) < 10.0
    assert gap == pytest.approx(gap_bare + _zbl_by_hand(0.07, 14, 14), rel=1e-4)
    assert gap > 1e4


def test_repulsion_survives_save_and_load(tmp_path):
    model = DescriptorModel(["Si"], cutoff=4.0, seed=0, repulsion="zbl")
    save_model(model, tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt")
    assert loaded.config()["repulsion"] == "zbl"
    atoms = Atoms("Si2", positions=[[0, 0, 0], [0.8, 0, 0]])
    assert torch.equal(evaluate(model, atoms)["energy"], evaluate(loaded, atoms)["energy"])


def test_unknown_repulsion_is_an_error():
    with pytest.raises(ValueError, match="repulsion must be one of"):
        DescriptorModel(["Si"], repulsion="lj")


def test_float32_model_with_repulsion_is_finite():
    model = DescriptorModel(["Si"], cutoff=4.0, seed=0, repulsion="zbl", dtype="float32")
    out = evaluate(model, Atoms("Si2", positions=[[0, 0, 0], [0.3, 0, 0]]))
    assert out["energy"].dtype == torch.float32
    assert float(out["energy"]) > 1e3 and np.isfinite(out["forces"].numpy()).all()
