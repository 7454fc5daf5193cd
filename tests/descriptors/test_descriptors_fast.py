"""The optimised evaluation paths equal the reference ones to round-off: the padded-table
neighbour density against the literal per-edge sum, and the hand-written chain rule of every
stage (radial basis, harmonics, density, power spectrum, triple products, the whole descriptor,
the element networks) against autograd of the training path."""

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


def _vector_jacobian(output, inputs, seed, retain_graph=False):
    """Autograd of Σ w·output for seeded random weights w: (w, gradients)."""
    weights = torch.randn(output.shape, dtype=output.dtype, generator=torch.Generator().manual_seed(seed))
    return weights, torch.autograd.grad((output * weights).sum(), inputs, retain_graph=retain_graph)


def test_each_stage_backward_equals_autograd():
    """Radial basis, harmonics, power spectrum and triple products: each stage's written-out
    backward, beside its forward, gives autograd's vector-Jacobian product."""
    from mlpot.descriptors.chirality import antisymmetric_triples, pseudoscalars, pseudoscalars_backward
    from mlpot.descriptors.invariants import (
        harmonics_coefficients,
        harmonics_derivative_coefficients,
        monomials,
        power_spectrum,
        power_spectrum_backward,
        spherical_harmonics,
        spherical_harmonics_backward,
        symmetric_pairs,
    )
    from mlpot.descriptors.radial import BesselBasis

    generator = torch.Generator().manual_seed(8)
    distance = (0.5 + 4.0 * torch.rand(30, dtype=torch.float64, generator=generator)).requires_grad_(True)
    basis = BesselBasis(6, 4.0).double()
    values, saved = basis.evaluate(distance)
    weights, (expected,) = _vector_jacobian(values, distance, 1)
    assert float(distance.max()) > 4.0  # some beyond the cutoff, where the envelope is flat
    assert _close(basis.backward(weights, saved), expected)

    l_max = 4
    unit = torch.randn(30, 3, dtype=torch.float64, generator=generator)
    unit = (unit / unit.norm(dim=1, keepdim=True)).requires_grad_(True)
    harmonics = spherical_harmonics(unit, harmonics_coefficients(l_max), l_max)
    weights, (expected,) = _vector_jacobian(harmonics, unit, 2)
    got = spherical_harmonics_backward(weights, monomials(unit, l_max), harmonics_derivative_coefficients(l_max))
    assert _close(got, expected)

    model = DescriptorModel(["H", "O"], cutoff=4.0, l_max=3, n_channels=5, seed=0)
    d = model.descriptor
    channels = torch.randn(7, 16, 5, dtype=torch.float64, generator=generator).requires_grad_(True)
    spectrum = power_spectrum(channels, d.order_weights, d.pair_index)
    weights, (expected,) = _vector_jacobian(spectrum, channels, 3)
    pair_index, pair_factor = symmetric_pairs(5)
    got = power_spectrum_backward(weights, channels.detach().transpose(1, 2), d.order_weights, pair_index, pair_factor)
    assert _close(got.transpose(1, 2), expected)

    vectors = torch.randn(7, 5, 3, dtype=torch.float64, generator=generator).requires_grad_(True)
    chi = pseudoscalars(vectors)
    weights, (expected,) = _vector_jacobian(chi, vectors, 4)
    assert _close(pseudoscalars_backward(weights, vectors.detach(), *antisymmetric_triples(5)), expected)


@pytest.mark.parametrize(
    ("l_max", "bispectrum_l_max", "species_channels"),
    [(1, None, False), (3, None, False), (2, 2, False), (5, 3, False), (3, 2, True)],
)
@pytest.mark.parametrize("shuffle_seed", [None, 2])
def test_descriptor_backward_equals_autograd(l_max, bispectrum_l_max, species_channels, shuffle_seed):
    """:meth:`Descriptor.backward` (inference) equals autograd through :meth:`Descriptor.forward` (training)."""
    bispectrum = {} if bispectrum_l_max is None else {"bispectrum_channels": 3, "bispectrum_l_max": bispectrum_l_max}
    model = DescriptorModel(
        ["H", "O"], cutoff=4.0, l_max=l_max, species_channels=species_channels, seed=0, **bispectrum
    )
    vectors, edge_index, species = _edges(model, _water_box(), shuffle_seed)
    v = vectors.clone().requires_grad_(True)
    scalars, pseudo = model.descriptor(v, edge_index, species)
    g_s, (expected_s,) = _vector_jacobian(scalars, v, 3, retain_graph=True)
    g_p, (expected_p,) = _vector_jacobian(pseudo, v, 5)
    with torch.no_grad():
        tables = model.descriptor.tables(edge_index, species)
        s_fast, p_fast, saved = model.descriptor.evaluate(vectors, tables, species)
        gradient = model.descriptor.backward(saved, g_s, g_p, tables)
    assert _close(s_fast, scalars.detach()) and _close(p_fast, pseudo.detach())
    assert float(pseudo.abs().max()) > 1e-3  # a random box is chiral: the check is not vacuous
    assert _close(gradient, expected_s + expected_p)


@pytest.mark.parametrize("chirality", ["even", "free"])
@pytest.mark.parametrize("n_molecules", [3, 30])  # below and above GROUP_BY_ELEMENT_FROM atoms
def test_element_networks_backward_equals_autograd(chirality, n_molecules):
    model = DescriptorModel(["H", "O"], cutoff=4.0, chirality=chirality, seed=0)
    n_atoms = 3 * n_molecules
    species = torch.tensor([1, 0, 0] * n_molecules)[torch.randperm(n_atoms, generator=torch.Generator().manual_seed(4))]
    generator = torch.Generator().manual_seed(5)
    scalars = torch.randn(n_atoms, model.descriptor.n_scalars, dtype=torch.float64, generator=generator)
    pseudo = torch.randn(n_atoms, model.descriptor.n_pseudoscalars, dtype=torch.float64, generator=generator)
    s, p = scalars.clone().requires_grad_(True), pseudo.clone().requires_grad_(True)
    even = chirality == "even"
    output = model.networks(s, p, species, even=even)
    weights, expected = _vector_jacobian(output, (s, p), 6)
    with torch.no_grad():
        layout = model.networks.layout(species)
        fast, pre_activations = model.networks.evaluate(scalars, pseudo, species, even, layout)
        got = model.networks.backward(weights, species, pre_activations, even, layout, scalars.shape[1])
    assert _close(fast, output.detach())
    for a, b in zip(got, expected):
        assert _close(a, b)


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
    """The inference path splits large systems into blocks of atoms: many small blocks, with
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


def test_the_old_training_argument_warns_and_changes_nothing():
    model = DescriptorModel(["H", "O"], cutoff=4.0, seed=0)
    vectors, edge_index, species = _edges(model, _water_box(3))
    expected = model.descriptor(vectors, edge_index, species)
    with pytest.warns(DeprecationWarning, match="training argument is deprecated"):
        got = model.descriptor(vectors, edge_index, species, training=False)
    assert all(torch.equal(a, b) for a, b in zip(got, expected))
