"""The optimised evaluation paths equal the reference ones to round-off: the padded-table
neighbour density against the literal per-edge sum, and the hand-written first derivatives
(FirstOrderDescriptor, FirstOrderNetworks) against autograd."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule
from helpers import ROUND_OFF

from mlpot.data import atomic_data_from_atoms
from mlpot.descriptors.invariants import neighbour_density, neighbour_density_reference
from mlpot.models import DescriptorModel
from mlpot.models.potential import edge_vectors


def _close(a, b):
    return float((a - b).abs().max()) <= ROUND_OFF * max(float(b.abs().max()), 1e-3)


def _water_box(n_molecules: int = 20, seed: int = 0) -> Atoms:
    n = 3 * n_molecules
    box = (n / 0.1) ** (1 / 3)
    rng = np.random.default_rng(seed)
    return Atoms("H2O" * n_molecules, positions=rng.random((n, 3)) * box, cell=[box] * 3, pbc=True)


def _edges(model, atoms, shuffle_seed=None):
    data = atomic_data_from_atoms(atoms, cutoff=model.cutoff)
    cell = data["cell"] if atoms.pbc.any() else None
    vectors = edge_vectors(data["positions"], data["edge_index"], data["edge_shift"], cell, data["batch"])
    edge_index = data["edge_index"]
    if shuffle_seed is not None:  # edges in no particular order (not grouped by centre)
        order = torch.randperm(edge_index.shape[1], generator=torch.Generator().manual_seed(shuffle_seed))
        vectors, edge_index = vectors[order], edge_index[:, order]
    return vectors, edge_index, model.species(data["numbers"])


@pytest.mark.parametrize("shuffle_seed", [None, 1])
def test_padded_density_equals_per_edge_sum(shuffle_seed):
    generator = torch.Generator().manual_seed(0)
    n_atoms, n_edges, n_species = 7, 40, 3
    centre = torch.randint(0, n_atoms - 1, (n_edges,), generator=generator).sort().values  # atom 6: no neighbours
    if shuffle_seed is not None:
        centre = centre[torch.randperm(n_edges, generator=generator)]
    species = torch.randint(0, n_species, (n_edges,), generator=generator)
    harmonics = torch.randn(n_edges, 16, dtype=torch.float64, generator=generator)
    basis = torch.randn(n_edges, 5, dtype=torch.float64, generator=generator)
    fast = neighbour_density(harmonics, basis, centre, species, n_atoms, n_species)
    reference = neighbour_density_reference(harmonics, basis, centre, species, n_atoms, n_species)
    assert fast.shape == (n_atoms, 16, n_species * 5)
    assert _close(fast, reference)
    assert float(fast[-1].abs().max()) == 0.0


@pytest.mark.parametrize(
    ("l_max", "bispectrum_l_max", "species_channels"), [(1, None, False), (3, None, False), (2, 2, False), (5, 3, False), (3, 2, True)]
)
@pytest.mark.parametrize("shuffle_seed", [None, 2])
def test_first_order_descriptor_equals_autograd(l_max, bispectrum_l_max, species_channels, shuffle_seed):
    bispectrum = {} if bispectrum_l_max is None else {"bispectrum_channels": 3, "bispectrum_l_max": bispectrum_l_max}
    model = DescriptorModel(["H", "O"], cutoff=4.0, l_max=l_max, species_channels=species_channels, seed=0, **bispectrum)
    vectors, edge_index, species = _edges(model, _water_box(), shuffle_seed)
    outputs, gradients = [], []
    for training in (True, False):
        v = vectors.clone().requires_grad_(True)
        scalars, pseudo = model.descriptor(v, edge_index, species, training=training)
        weights = torch.Generator().manual_seed(3)
        g_s = torch.randn(scalars.shape, dtype=scalars.dtype, generator=weights)
        g_p = torch.randn(pseudo.shape, dtype=pseudo.dtype, generator=weights)
        (gradient,) = torch.autograd.grad((scalars * g_s).sum() + (pseudo * g_p).sum(), v)
        outputs.append((scalars.detach(), pseudo.detach()))
        gradients.append(gradient)
    (s_ref, p_ref), (s_fast, p_fast) = outputs
    assert _close(s_fast, s_ref) and _close(p_fast, p_ref)
    assert float(p_ref.abs().max()) > 1e-3  # a random box is chiral: the check is not vacuous
    assert _close(gradients[1], gradients[0])


@pytest.mark.parametrize("chirality", ["even", "free"])
@pytest.mark.parametrize("n_molecules", [3, 30])  # below and above GROUP_BY_ELEMENT_FROM atoms
def test_first_order_networks_equal_autograd(chirality, n_molecules):
    model = DescriptorModel(["H", "O"], cutoff=4.0, chirality=chirality, seed=0)
    n_atoms = 3 * n_molecules
    species = torch.tensor([1, 0, 0] * n_molecules)[torch.randperm(n_atoms, generator=torch.Generator().manual_seed(4))]
    generator = torch.Generator().manual_seed(5)
    scalars = torch.randn(n_atoms, model.descriptor.n_scalars, dtype=torch.float64, generator=generator)
    pseudo = torch.randn(n_atoms, model.descriptor.n_pseudoscalars, dtype=torch.float64, generator=generator)
    results = []
    for training in (True, False):
        s, p = scalars.clone().requires_grad_(True), pseudo.clone().requires_grad_(True)
        output = model.networks(s, p, species, even=chirality == "even", training=training)
        weights = torch.linspace(-1, 1, n_atoms, dtype=torch.float64)
        results.append((output.detach(), *torch.autograd.grad((output * weights).sum(), (s, p))))
    for fast, reference in zip(results[1], results[0]):
        assert _close(fast, reference)


def test_model_inference_path_equals_training_path():
    """Energy, forces and stress are the same whichever path computes them."""
    model = DescriptorModel(["H", "O"], cutoff=4.0, seed=1)
    data = atomic_data_from_atoms(_water_box(10, seed=3), cutoff=model.cutoff + 0.5)  # a skin: edges beyond r_c
    reference = model(data, compute_stress=True, training=True)
    fast = model(data, compute_stress=True, training=False)
    for key in ("energy", "atomic_energy", "forces", "stress"):
        assert _close(fast[key], reference[key].detach()), key


def test_isolated_atoms_and_no_edges():
    model = DescriptorModel(["H", "C", "O"], cutoff=3.0, seed=0)
    atoms = molecule("CH3CH2OH") + Atoms("O", positions=[[20.0, 0, 0]])
    result = model(atomic_data_from_atoms(atoms))
    assert float(result["forces"][-1].abs().max()) == 0.0
    for training in (False, True):
        alone = model(atomic_data_from_atoms(Atoms("O", positions=[[0.0, 0, 0]])), training=training)
        forces = alone["forces"].detach()
        assert forces.shape == (1, 3) and float(forces.abs().max()) == 0.0


@pytest.mark.parametrize("shuffle_seed", [None, 6])
def test_block_by_block_evaluation_equals_whole(monkeypatch, shuffle_seed):
    """FirstOrderEnergy splits large systems into blocks of atoms: many small blocks, with
    edges in any order, give the energies, forces and stress of one pass with autograd."""
    from mlpot.models import atomistic

    model = DescriptorModel(["H", "O"], cutoff=4.0, chirality="free", seed=2)
    data = atomic_data_from_atoms(_water_box(12, seed=5), cutoff=model.cutoff)
    if shuffle_seed is not None:
        order = torch.randperm(data["edge_index"].shape[1], generator=torch.Generator().manual_seed(shuffle_seed))
        data = {**data, "edge_index": data["edge_index"][:, order], "edge_shift": data["edge_shift"][order]}
    reference = model(data, compute_stress=True, training=True)
    monkeypatch.setattr(atomistic, "EDGES_PER_BLOCK", 50)  # ~5 atoms per block
    blocked = model(data, compute_stress=True, training=False)
    for key in ("energy", "atomic_energy", "forces", "stress"):
        assert _close(blocked[key], reference[key].detach()), key
