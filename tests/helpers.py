"""Shared physics assertions for every mlpot potential.

``assert_model_contract(model)`` is the test every potential must pass (in float64). Each check
compares against an exact symmetry or an independent numerical derivative; tolerances follow
from float64 round-off (relative ~1e-12 for sums of O(100) terms) or from the known error
order of the finite-difference formula, never from what happened to pass.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.build import bulk, molecule

from mlpot.data import atomic_data_from_atoms, collate

ETHANOL = Path(__file__).resolve().parents[1] / "datasets" / "rmd17" / "rmd17_ethanol_train_01.npz"

# Sums of a few hundred float64 terms in a different order agree to ~1e-13 relative.
ROUND_OFF = 1e-11


def random_rotation(seed: int) -> np.ndarray:
    """A uniformly random proper rotation (det = +1) from a seeded QR decomposition."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q @ np.diag(np.sign(np.diag(r)))
    return q if np.linalg.det(q) > 0 else -q


def chiral_molecule() -> Atoms:
    """CHFClBr (bromochlorofluoromethane), a simple chiral molecule, from explicit coordinates."""
    directions = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=float) / np.sqrt(3)
    bonds = np.array([1.09, 1.35, 1.77, 1.94])  # C–H, C–F, C–Cl, C–Br in Å
    positions = np.vstack([[0.0, 0.0, 0.0], directions * bonds[:, None]])
    # Break the ideal tetrahedron slightly so that no accidental symmetry hides an error.
    positions += np.random.default_rng(7).normal(scale=0.03, size=positions.shape)
    return Atoms("CHFClBr", positions=positions)


def mirror(atoms: Atoms) -> Atoms:
    """The mirror image through the yz plane (x → −x)."""
    image = atoms.copy()
    image.positions[:, 0] *= -1
    return image


def evaluate(model, atoms: Atoms | list[Atoms], stress: bool = False) -> dict[str, torch.Tensor]:
    structures = atoms if isinstance(atoms, list) else [atoms]
    data = collate([atomic_data_from_atoms(a, dtype=torch.float64) for a in structures])
    return model(data, compute_forces=True, compute_stress=stress)


def _close(a, b, scale: float | None = None, rtol: float = ROUND_OFF) -> bool:
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    scale = scale if scale is not None else max(float(a.abs().max()), float(b.abs().max()), 1e-3)
    return float((a - b).abs().max()) <= rtol * scale


def contract_structures(elements: list[str]) -> dict[str, Atoms]:
    """A molecule and a rattled periodic crystal made of the model's elements."""
    rng = np.random.default_rng(0)
    mol = molecule("CH3CH2OH") if set("CHO") <= set(elements) else None
    if mol is None:
        mol = Atoms([elements[i % len(elements)] for i in range(6)], positions=rng.normal(scale=1.2, size=(6, 3)))
        mol.positions += np.arange(6)[:, None] * 0.3
    crystal = bulk("Cu", "fcc", a=3.6, cubic=True) if "Cu" in elements else bulk("Si", "diamond", a=5.43, cubic=True)
    crystal.set_chemical_symbols([elements[i % len(elements)] for i in range(len(crystal))])
    crystal.rattle(0.05, seed=1)
    return {"molecule": mol, "crystal": crystal}


def assert_model_contract(model, structures: dict[str, Atoms] | None = None) -> None:
    """Every physical guarantee an mlpot potential makes, checked on a molecule and a crystal.

    Args:
        model: a float64 mlpot potential with ``cutoff`` and the forward contract.
        structures: {"molecule": Atoms, "crystal": periodic Atoms} made of the model's elements.
    """
    structures = structures or contract_structures(model.elements)
    mol, crystal = structures["molecule"], structures["crystal"]
    assert_invariances(model, mol)
    assert_lattice_wrapping(model, crystal)
    assert_size_extensive(model, mol, crystal)
    assert_no_gradient_leak(model, mol, crystal)
    assert_forces_match_finite_differences(model, mol)
    assert_forces_match_finite_differences(model, crystal)
    assert_stress_matches_strain_derivative(model, crystal)
    assert_does_not_mutate_input(model, crystal)


def assert_invariances(model, atoms: Atoms) -> None:
    """Energy invariant and forces equivariant under rotation, translation and permutation."""
    ref = evaluate(model, atoms)
    for seed in range(3):
        rotation = random_rotation(seed)
        moved = atoms.copy()
        moved.positions = atoms.positions @ rotation.T + np.random.default_rng(seed).normal(scale=5.0, size=3)
        out = evaluate(model, moved)
        assert _close(out["energy"], ref["energy"]), "energy changed under rotation + translation"
        assert _close(out["forces"], ref["forces"] @ torch.tensor(rotation.T)), "forces not equivariant under rotation"
    order = np.random.default_rng(3).permutation(len(atoms))
    out = evaluate(model, atoms[order])
    assert _close(out["energy"], ref["energy"]), "energy changed under a permutation of atoms"
    assert _close(out["forces"], ref["forces"][order]), "forces not permuted with the atoms"


def assert_lattice_wrapping(model, crystal: Atoms) -> None:
    """Moving atoms by whole lattice vectors changes nothing."""
    ref = evaluate(model, crystal, stress=True)
    shifted = crystal.copy()
    shifts = np.random.default_rng(4).integers(-3, 4, size=(len(crystal), 3))
    shifted.positions += shifts @ crystal.cell.array
    out = evaluate(model, shifted, stress=True)
    for key in ("energy", "forces", "stress"):
        assert _close(out[key], ref[key]), f"{key} changed when positions were moved by lattice vectors"


def assert_size_extensive(model, mol: Atoms, crystal: Atoms) -> None:
    """Far-apart molecules add up; a 2×2×2 supercell has 8× the energy; batched = individual."""
    single = evaluate(model, mol)
    other = mol.copy()
    other.positions = mol.positions @ random_rotation(5).T
    other_out = evaluate(model, other)
    span = np.ptp(mol.positions, axis=0).max()
    pair = mol + Atoms(other.get_chemical_symbols(), positions=other.positions + [2 * model.cutoff + 2 * span, 0, 0])
    out = evaluate(model, pair)
    assert _close(out["energy"], single["energy"] + other_out["energy"]), "E(A far from B) != E(A) + E(B)"
    assert _close(out["forces"], torch.cat([single["forces"], other_out["forces"]])), \
        "forces of far-apart molecules changed"

    base = evaluate(model, crystal)
    supercell = evaluate(model, crystal.repeat((2, 2, 2)))
    assert _close(supercell["energy"], 8 * base["energy"]), "2×2×2 supercell energy is not 8× the cell's"
    assert _close(supercell["forces"][: len(crystal)], base["forces"]), "supercell forces differ from the cell's"

    batched = evaluate(model, [mol, crystal, other])
    separate = [single, base, other_out]
    assert _close(batched["energy"], torch.cat([s["energy"] for s in separate])), \
        "batched energies differ from single ones"
    assert _close(batched["forces"], torch.cat([s["forces"] for s in separate])), \
        "batched forces differ from single ones"


def assert_no_gradient_leak(model, mol: Atoms, crystal: Atoms) -> None:
    """In a batch, the energy of one system does not depend on the atoms of another."""
    data = collate([atomic_data_from_atoms(a) for a in (mol, crystal)])
    positions = data["positions"].clone().requires_grad_(True)
    out = model({**data, "positions": positions}, compute_forces=False, training=True)
    (gradient,) = torch.autograd.grad(out["energy"][0], positions)
    assert float(gradient[len(mol):].abs().max()) == 0.0, "energy of system 0 has a gradient on system 1's atoms"
    assert float(gradient[: len(mol)].abs().max()) > 0.0, "energy of system 0 does not depend on its own atoms"


def central_difference_forces(model, atoms: Atoms, h: float, n_components: int = 12) -> tuple[torch.Tensor, np.ndarray]:
    """−(E(x+h) − E(x−h))/2h for a seeded sample of coordinates; returns (values, flat indices)."""
    data = atomic_data_from_atoms(atoms)
    flat = data["positions"].reshape(-1)
    picks = np.random.default_rng(6).choice(flat.numel(), size=min(n_components, flat.numel()), replace=False)
    values = []
    for index in picks:
        plus, minus = flat.clone(), flat.clone()
        plus[index] += h
        minus[index] -= h
        e_plus = model({**data, "positions": plus.view(-1, 3)}, compute_forces=False)["energy"]
        e_minus = model({**data, "positions": minus.view(-1, 3)}, compute_forces=False)["energy"]
        values.append(-(e_plus - e_minus) / (2 * h))
    return torch.cat(values), picks


def assert_forces_match_finite_differences(model, atoms: Atoms) -> None:
    """Autograd forces agree with central differences, whose error falls as h² (h-sweep)."""
    forces = evaluate(model, atoms)["forces"].reshape(-1)
    errors = []
    for h in (4e-3, 2e-3, 1e-3):
        fd, picks = central_difference_forces(model, atoms, h)
        errors.append(float((fd - forces[picks]).abs().max()))
    scale = max(float(forces.abs().max()), 1e-3)
    # Round-off of a central difference is ~ eps·|E|/h; below that the h² law cannot show.
    energy = float(evaluate(model, atoms)["energy"].abs().max())
    floor = 1e-15 * max(energy, 1.0) / 1e-3 * 100
    if errors[0] > floor:
        ratio = errors[0] / max(errors[1], 1e-300)
        assert 3.0 < ratio < 5.5, \
            f"finite-difference error does not fall as h² (ratio {ratio:.2f} for h halved): {errors}"
    # The h² term at h = 1e-3 is errors[0]/16; it must be small compared to the forces.
    assert errors[-1] <= max(errors[0] / 16 * 1.5, floor), f"forces disagree with finite differences: {errors}"
    assert errors[-1] < 1e-4 * scale + floor, f"forces disagree with finite differences: {errors} (force scale {scale})"


def assert_stress_matches_strain_derivative(model, crystal: Atoms, h: float = 1e-4) -> None:
    """σ = (1/V) ∂E/∂ε by central differences of the energy under symmetric strain."""
    stress = evaluate(model, crystal, stress=True)["stress"][0]
    volume = crystal.get_volume()
    numeric = torch.zeros(3, 3, dtype=torch.float64)
    for a in range(3):
        for b in range(a, 3):
            energies = []
            for sign in (1, -1):
                strain = np.eye(3)
                strain[a, b] += sign * h / (2 if a != b else 1)
                strain[b, a] += sign * h / 2 if a != b else 0
                deformed = crystal.copy()
                deformed.set_cell(crystal.cell.array @ strain, scale_atoms=True)
                energies.append(float(evaluate(model, deformed)["energy"][0]))
            numeric[a, b] = numeric[b, a] = (energies[0] - energies[1]) / (2 * h) / volume
    # Central-difference error O(h²) ~ 1e-8 relative; round-off ~ eps·|E|/(h·V).
    scale = max(float(stress.abs().max()), 1e-4)
    assert _close(stress, numeric, scale=scale, rtol=1e-5), f"stress {stress} != strain derivative {numeric}"
    assert torch.allclose(stress, stress.T, atol=ROUND_OFF * scale), "stress is not symmetric"


def assert_does_not_mutate_input(model, crystal: Atoms) -> None:
    data = atomic_data_from_atoms(crystal, cutoff=model.cutoff)
    before = {k: v.clone() for k, v in data.items()}
    model(data, compute_forces=True, compute_stress=True)
    for key, value in before.items():
        assert torch.equal(data[key], value), f"the model modified its input field {key!r}"


@functools.lru_cache(maxsize=1)
def fit_small_ethanol_model():
    """A small DescriptorModel fitted for a few seconds to 40 rMD17 ethanol frames (energies, forces).

    An untrained model has no repulsive core, so MD or BFGS on it may collapse atoms; a brief
    fit gives a smooth, bounded surface near equilibrium, enough to exercise MD and optimisers.
    (The real trainer lives in mlpot.training; this is a deliberately tiny, dependency-free fit.)
    Cached for the session: callers must not modify the returned model.
    """
    from mlpot.data.datasets import read_structures
    from mlpot.models import DescriptorModel, fit_reference_energies

    torch.manual_seed(0)
    structures = read_structures(ETHANOL, energy_unit="kcal/mol", index="0:400:10", cutoff=4.0)
    model = DescriptorModel(["H", "C", "O"], cutoff=4.0, n_channels=6, hidden=(32, 32), seed=0)
    batch = collate(structures)
    model.fit_descriptor_statistics(batch)
    references = fit_reference_energies([s["numbers"] for s in structures], batch["energy"])
    model.set_energy_statistics(references, scale=float(batch["forces"].square().mean().sqrt()))
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        optimiser.zero_grad()
        out = model(batch, training=True)
        loss = (((out["energy"] - batch["energy"]) / 9).square().mean()
                + (out["forces"] - batch["forces"]).square().mean())
        loss.backward()
        optimiser.step()
    return model.eval()
