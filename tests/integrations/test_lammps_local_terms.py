"""The per-rank computation of mlpot in LAMMPS (no MPI needed): a rank that sees its local atoms
plus a ghost shell of 2 r_c + skin gets exact forces on its local atoms, and the ranks' energies
and virials add up to the model's total energy and −stress·V exactly once."""

import itertools
import math

import numpy as np
import pytest
import torch
from ase.build import bulk

from mlpot.data.atomic_data import atomic_data_from_atoms
from mlpot.integrations.lammps import ghost_cutoff_needed, local_energy_forces_virial
from mlpot.models import DescriptorModel
from mlpot.models.committee import Committee

CUTOFF = 3.5
SKIN = 1.0


def tiny_model(seed: int, dtype=torch.float64, cutoff: float = CUTOFF) -> DescriptorModel:
    model = DescriptorModel(["Cu", "Au"], cutoff=cutoff, n_radial=4, n_channels=4, l_max=2, hidden=(8,), seed=seed,
                            dtype=dtype)
    model.set_energy_statistics({29: -3.5, 79: -3.8}, scale=50.0)  # forces near 1 eV/Å, as in a hot metal
    return model


def alloy():
    """A rattled, sheared CuAu cell (32 atoms), so that every virial component is non-zero."""
    atoms = bulk("Cu", "fcc", a=3.7, cubic=True).repeat(2)
    atoms.symbols[::3] = "Au"
    atoms.set_cell(atoms.cell.array @ np.array([[1.0, 0.03, 0.0], [0.0, 1.0, 0.02], [0.01, 0.0, 0.98]]),
                   scale_atoms=True)
    atoms.rattle(0.1, seed=1)
    atoms.wrap()
    return atoms


def ranks_view(atoms, owner: np.ndarray, rank: int, reach: float):
    """What LAMMPS' rank ``rank`` sees: its own atoms (``owner == rank``) first, then as ghosts
    every other atom and periodic image within ``reach`` of the cell (a superset of its shell)."""
    cell = atoms.cell.array
    widths = atoms.cell.volume / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
    span = [math.ceil(reach / w) for w in widths]
    local = np.flatnonzero(owner == rank)
    ghosts = [atoms.positions[owner != rank]]
    numbers = [atoms.numbers[local], atoms.numbers[owner != rank]]
    for shift in itertools.product(*(range(-s, s + 1) for s in span)):
        if shift != (0, 0, 0):
            ghosts.append(atoms.positions + np.array(shift) @ cell)
            numbers.append(atoms.numbers)
    positions = np.concatenate([atoms.positions[local], *ghosts])
    return local, torch.as_tensor(positions), torch.as_tensor(np.concatenate(numbers))


def split_terms(model, atoms, n_ranks: int):
    """Energy, forces [n, 3] and virial [3, 3] summed over ``n_ranks`` slabs of the cell."""
    fractional = atoms.get_scaled_positions()[:, 0]
    owner = np.minimum((fractional * n_ranks).astype(int), n_ranks - 1)
    energy, forces, virial = 0.0, np.zeros((len(atoms), 3)), np.zeros((3, 3))
    for rank in range(n_ranks):
        local, positions, numbers = ranks_view(atoms, owner, rank, ghost_cutoff_needed(model.cutoff, SKIN))
        terms = local_energy_forces_virial(model, positions, numbers, len(local))
        energy += terms.energy
        forces[local] = terms.forces
        virial += terms.virial
        assert terms.atomic_energy.shape == (len(local),)
    return energy, forces, virial


def reference(model, atoms):
    out = model(atomic_data_from_atoms(atoms), compute_forces=True, compute_stress=True)
    return float(out["energy"][0]), out["forces"].double().numpy(), out["stress"][0].double().numpy()


@pytest.mark.parametrize("n_ranks", [1, 2, 3])
def test_ranks_add_up_to_the_models_energy_forces_and_virial(n_ranks):
    model, atoms = tiny_model(seed=0), alloy()
    energy, forces, stress = reference(model, atoms)
    assert np.abs(forces).max() > 0.5  # the test would not see a wrong force if forces were tiny
    split_energy, split_forces, virial = split_terms(model, atoms, n_ranks)
    round_off = 1e-12 * max(1.0, np.abs(forces).max())  # float64 sums of ~10³ terms in another order
    assert split_energy == pytest.approx(energy, rel=1e-13)
    np.testing.assert_allclose(split_forces, forces, rtol=0, atol=round_off)
    # LAMMPS' virial W = −σ V (ASE's stress sign: σ > 0 under tension).
    np.testing.assert_allclose(virial, -stress * atoms.get_volume(), rtol=0, atol=1e-10 * np.abs(virial).max())
    assert np.abs(virial - np.diag(np.diag(virial))).max() > 1e-3  # the shear entries are tested too


def test_a_committee_gives_its_members_mean():
    members = [tiny_model(seed=0), tiny_model(seed=1, cutoff=3.0)]
    committee, atoms = Committee(members), alloy()
    energy, forces, virial = split_terms(committee, atoms, 2)
    means = [np.mean(values, axis=0) for values in zip(*(reference(m, atoms) for m in members))]
    assert energy == pytest.approx(means[0], abs=1e-10)
    np.testing.assert_allclose(forces, means[1], rtol=0, atol=1e-11)
    np.testing.assert_allclose(virial, -means[2] * atoms.get_volume(), rtol=0, atol=1e-9)


def test_float32_evaluation_is_as_accurate_as_the_float32_model():
    """Split over ranks, a float32 model's forces are as close to float64 as its own forward's."""
    atoms = alloy()
    model64 = tiny_model(seed=0)
    model32 = tiny_model(seed=0, dtype=torch.float32)
    model32.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in model64.state_dict().items()})
    _, forces64, _ = reference(model64, atoms)
    _, forces32, _ = reference(model32, atoms)
    _, split32, _ = split_terms(model32, atoms, 2)
    own_error = np.abs(forces32 - forces64).max()
    assert own_error > 0  # really evaluated in float32
    # The split changes only the order of float32 sums: its error stays of the forward's size.
    assert np.abs(split32 - forces64).max() < 4 * own_error


def test_a_rank_with_no_atoms_contributes_nothing():
    terms = local_energy_forces_virial(tiny_model(seed=0), torch.zeros(0, 3), torch.zeros(0, dtype=torch.int64), 0)
    assert terms.energy == 0.0 and terms.forces.shape == (0, 3) and not terms.virial.any()


def test_the_ghost_shell_is_twice_the_cutoff_plus_the_skin():
    assert ghost_cutoff_needed(5.0, 2.0) == 12.0


def test_a_kept_neighbour_list_gives_the_terms_of_a_fresh_one():
    """Between LAMMPS' re-neighbourings the fix reuses mlpot's list (built with a skin): the terms
    are those of a list built afresh, and no rebuild happens while atoms move less than skin/2."""
    from mlpot.neighbors import VerletList

    model, atoms = tiny_model(seed=0), alloy()
    owner = (atoms.get_scaled_positions()[:, 0] >= 0.5).astype(int)
    local, positions, numbers = ranks_view(atoms, owner, 0, ghost_cutoff_needed(model.cutoff, SKIN))
    kept = VerletList(model.cutoff, SKIN)
    local_energy_forces_virial(model, positions, numbers, len(local), kept)
    generator = torch.Generator().manual_seed(0)
    moved = positions + 0.2 * (2 * torch.rand(positions.shape, generator=generator, dtype=positions.dtype) - 1)
    reused = local_energy_forces_virial(model, moved, numbers, len(local), kept)
    fresh = local_energy_forces_virial(model, moved, numbers, len(local))
    assert kept.n_rebuilds == 1  # 0.2·√3 Å < skin/2 = 0.5 Å: the first list still holds every pair
    assert reused.energy == pytest.approx(fresh.energy, rel=1e-14)
    np.testing.assert_allclose(reused.forces, fresh.forces, rtol=0, atol=1e-12)
    np.testing.assert_allclose(reused.virial, fresh.virial, rtol=0, atol=1e-11)
