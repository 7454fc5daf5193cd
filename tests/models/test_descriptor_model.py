"""The descriptor model: the full physics contract, gradients, cutoff smoothness, chirality modes."""

import pytest
import torch
from ase import Atoms
from helpers import assert_model_contract, chiral_molecule, evaluate, mirror

from mlpot.data import atomic_data_from_atoms, collate
from mlpot.models import DescriptorModel, fit_reference_energies


@pytest.mark.parametrize("chirality", ["even", "free"])
def test_molecular_model_passes_contract(chirality):
    assert_model_contract(DescriptorModel(["H", "C", "O"], cutoff=4.0, chirality=chirality, seed=0))


def test_periodic_model_passes_contract():
    assert_model_contract(DescriptorModel(["Cu"], cutoff=4.5, seed=1))


def test_multi_element_periodic_model_passes_contract():
    assert_model_contract(DescriptorModel(["Si", "O"], cutoff=4.0, seed=2))


@pytest.mark.parametrize("species_channels", [False, True])
def test_model_with_bispectrum_passes_contract(species_channels):
    """Four-body terms, a higher angular order and per-element-pair channels keep every
    symmetry, forces and stress exact."""
    model = DescriptorModel(
        ["Si", "O"], cutoff=4.0, l_max=5, bispectrum_channels=3, bispectrum_l_max=3,
        species_channels=species_channels, seed=7,
    )
    assert_model_contract(model)


@pytest.mark.parametrize(("bispectrum_channels", "species_channels"), [(0, False), (2, False), (2, True)])
def test_gradcheck_and_gradgradcheck(bispectrum_channels, species_channels):
    """Exact first and second derivatives (the second is what training on forces needs)."""
    model = DescriptorModel(
        ["H", "C", "O"], cutoff=3.5, n_channels=4, l_max=2, bispectrum_channels=bispectrum_channels,
        species_channels=species_channels, hidden=(8,), seed=0,
    )
    positions = [[0, 0, 0], [1.2, 0.1, 0], [-0.6, 0.9, 0.1], [-0.5, -0.9, 0.2]]
    data = atomic_data_from_atoms(Atoms("COH2", positions=positions))

    def energy(positions):
        return model({**data, "positions": positions}, compute_forces=False, training=True)["energy"]

    positions = data["positions"].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(energy, (positions,))
    assert torch.autograd.gradgradcheck(energy, (positions,))


def test_energy_and_forces_continuous_across_cutoff():
    """With the envelope's value and two derivatives zero at r_c, E − E_far falls at least as δ³
    and the force on the neighbour at least as δ² (a jump would give ratios near 1). The Bessel
    functions vanish at r_c too, which adds one more power."""
    model = DescriptorModel(["H", "O"], cutoff=3.0, seed=3)
    base = Atoms("OH", positions=[[0, 0, 0], [0.97, 0, 0]])

    def with_neighbour(distance):
        atoms = base + Atoms("H", positions=[[0, distance, 0]])
        return evaluate(model, atoms)

    far = with_neighbour(3.0 + 1e-9)
    gaps, force_gaps = [], []
    for delta in (2e-2, 1e-2):
        near = with_neighbour(3.0 - delta)
        gaps.append(float((near["energy"] - far["energy"]).abs()))
        force_gaps.append(float((near["forces"][2]).abs().max()))
    assert gaps[0] > 0 and force_gaps[0] > 0, "the neighbour should interact just inside the cutoff"
    assert gaps[0] / gaps[1] > 2**3 * 0.75, f"energy gap falls slower than δ³: {gaps}"
    assert force_gaps[0] / force_gaps[1] > 2**2 * 0.75, f"force falls slower than δ²: {force_gaps}"
    assert float(far["forces"][2].abs().max()) == 0.0


def test_even_mode_gives_enantiomers_equal_energy_and_mirrored_forces():
    model = DescriptorModel(["H", "C", "F", "Cl", "Br"], cutoff=4.0, chirality="even", seed=4)
    atoms = chiral_molecule()
    left, right = evaluate(model, atoms), evaluate(model, mirror(atoms))
    assert torch.allclose(left["energy"], right["energy"], rtol=1e-13, atol=0)
    mirrored = left["forces"] * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    assert torch.allclose(right["forces"], mirrored, rtol=0, atol=1e-12 * float(mirrored.abs().max()))


def _fit_enantiomer_target(chirality: str, steps: int = 300) -> float:
    """Fit E(left) = +0.5 eV, E(right) = −0.5 eV; return the final mean squared error, eV²."""
    torch.manual_seed(0)
    model = DescriptorModel(
        ["H", "C", "F", "Cl", "Br"], cutoff=4.0, chirality=chirality, n_channels=4, hidden=(16,), seed=5
    )
    atoms = chiral_molecule()
    data = collate([atomic_data_from_atoms(atoms), atomic_data_from_atoms(mirror(atoms))])
    model.fit_descriptor_statistics(data)
    target = torch.tensor([0.5, -0.5], dtype=torch.float64)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        optimiser.zero_grad()
        loss = (model(data, compute_forces=False, training=True)["energy"] - target).square().mean()
        loss.backward()
        optimiser.step()
    return float(loss)


def test_free_mode_learns_chirality_even_mode_cannot():
    """The pseudoscalars carry the handedness: free mode fits an enantiomer-odd target,
    even mode is stuck at the best even fit (both predicted 0, error 0.25 eV²)."""
    free_error = _fit_enantiomer_target("free")
    even_error = _fit_enantiomer_target("even")
    assert free_error < 1e-3
    assert even_error > 0.25 * (1 - 1e-9)


def test_float32_model_agrees_with_float64():
    model64 = DescriptorModel(["H", "C", "O"], seed=6)
    model32 = DescriptorModel(["H", "C", "O"], seed=6, dtype="float32")
    from ase.build import molecule

    atoms = molecule("CH3CH2OH")
    out64, out32 = evaluate(model64, atoms), evaluate(model32, atoms)
    assert out32["energy"].dtype == torch.float32
    # float32 carries ~7 digits: agreement to 1e-5 of the force scale is what its precision allows.
    scale = float(out64["forces"].abs().max())
    assert torch.allclose(out32["forces"].double(), out64["forces"], rtol=0, atol=1e-5 * scale)


def test_unknown_element_is_a_clear_error():
    model = DescriptorModel(["H", "O"], seed=0)
    with pytest.raises(ValueError, match=r"not \['C'\]"):
        evaluate(model, Atoms("CO", positions=[[0, 0, 0], [1.1, 0, 0]]))
    with pytest.raises(ValueError, match="unknown element symbol"):
        DescriptorModel(["Xx"])
    with pytest.raises(ValueError, match="chirality"):
        DescriptorModel(["H"], chirality="odd")


def test_stress_requires_a_periodic_cell():
    model = DescriptorModel(["H", "O"], seed=0)
    with pytest.raises(ValueError, match="fully periodic"):
        model(atomic_data_from_atoms(Atoms("OH", positions=[[0, 0, 0], [1, 0, 0]])), compute_stress=True)


def test_reference_energies_by_least_squares():
    """Compositions H2, O2 and H2O with known e_H, e_O are recovered exactly."""
    e = {1: -13.6, 8: -2035.6}
    numbers = [torch.tensor([1, 1]), torch.tensor([8, 8]), torch.tensor([1, 1, 8]), torch.tensor([1, 8])]
    energies = torch.tensor([sum(e[int(z)] for z in n) for n in numbers], dtype=torch.float64)
    fitted = fit_reference_energies(numbers, energies)
    assert fitted.keys() == e.keys()
    assert all(abs(fitted[z] - e[z]) < 1e-9 for z in e)


def test_energy_statistics_shift_and_scale_the_output():
    from ase.build import molecule

    model = DescriptorModel(["H", "C", "O"], seed=7)
    atoms = molecule("CH3CH2OH")
    before = evaluate(model, atoms)
    model.set_energy_statistics({1: -1.0, 6: -2.0, 8: -3.0}, scale=2.0)
    after = evaluate(model, atoms)
    shift = 6 * -1.0 + 2 * -2.0 + 1 * -3.0
    assert torch.allclose(after["energy"], 2.0 * before["energy"] + shift, rtol=1e-12)
    assert torch.allclose(after["forces"], 2.0 * before["forces"], rtol=1e-12)
