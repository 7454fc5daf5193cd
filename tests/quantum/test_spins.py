"""Exact references: sparse Hamiltonians, Lanczos, Jordan–Wigner and Bethe-ansatz closed forms,
and matrix-free local energies checked against the matrix."""

import math

import numpy as np
import pytest
import torch

from mlpot.quantum.sampling import states_to_spins
from mlpot.quantum.spins import (
    HEISENBERG_INFINITE_CHAIN,
    bethe_ansatz_energy,
    exact_ground_energy,
    ground_state_vector,
    hamiltonian_matrix,
    jordan_wigner_tfim_energy,
    local_energy,
    make_model,
)

# Lanczos converges to ~1e-13 relative (eigsh tol) and sums ~N·2^N terms: 1e-10 leaves margin.
JW_TOLERANCE = 1e-10


@pytest.mark.parametrize("n_sites", [8, 12, 16])
def test_tfim_critical_point_matches_jordan_wigner_closed_form(n_sites):
    # periodic chain at h = 1: E0 = −Σ_k 2|sin(k/2)| over k = π(2n+1)/N = −2 / sin(π/2N)
    closed_form = -2.0 / math.sin(math.pi / (2 * n_sites))
    assert abs(jordan_wigner_tfim_energy(n_sites, 1.0) - closed_form) < 1e-12 * n_sites
    assert abs(exact_ground_energy("tfim", n_sites, field=1.0) - closed_form) < JW_TOLERANCE


@pytest.mark.parametrize("field", [0.3, 0.7, 1.6])
def test_tfim_off_critical_matches_free_fermions(field):
    assert abs(exact_ground_energy("tfim", 10, field=field) - jordan_wigner_tfim_energy(10, field)) < JW_TOLERANCE


@pytest.mark.parametrize("n_sites", [4, 6, 8, 10, 12, 14])
def test_heisenberg_chain_matches_finite_size_bethe_ansatz(n_sites):
    assert abs(exact_ground_energy("heisenberg", n_sites) - bethe_ansatz_energy(n_sites)) < 1e-9


def test_heisenberg_energy_per_site_approaches_the_bethe_limit():
    # periodic chains approach 1/4 − ln 2 from below, with a gap shrinking like 1/N² (the
    # leading finite-size correction −π²/(6N²) of the conformal field theory, up to log terms)
    sizes = [4, 8, 12, 16, 40, 100, 400]
    per_site = [exact_ground_energy("heisenberg", n) / n if n <= 16 else bethe_ansatz_energy(n) / n for n in sizes]
    gaps = [HEISENBERG_INFINITE_CHAIN - e for e in per_site]
    assert all(g > 0 for g in gaps) and all(a > b for a, b in zip(gaps, gaps[1:]))
    for n, gap in zip(sizes[3:], gaps[3:]):
        assert 0.5 < gap / (math.pi**2 / (6 * n**2)) < 1.5
    assert gaps[-1] < 1e-5


def test_square_lattice_sector_contains_the_ground_state():
    # Lieb–Mattis: the bipartite antiferromagnet's ground state is a singlet, in Sz = 0
    model = make_model("heisenberg", (2, 4), periodic=True)
    full, _ = hamiltonian_matrix(model, magnetisation_zero=False)
    sector, states = hamiltonian_matrix(model)
    assert len(states) == math.comb(8, 4)
    assert abs(np.linalg.eigvalsh(full.toarray())[0] - np.linalg.eigvalsh(sector.toarray())[0]) < 1e-12


def test_periodic_4x4_has_translation_symmetric_bonds():
    model = make_model("heisenberg", (4, 4))
    assert len(model.bonds) == 32 and model.sublattice is not None
    assert np.all(np.bincount(model.bonds.ravel(), minlength=16) == 4)  # coordination 4


@pytest.mark.parametrize("model", ["tfim", "heisenberg"])
def test_matrix_is_symmetric_and_matches_dense_operators(model):
    # Build H from Kronecker products of Pauli matrices and compare, N = 5 open chain.
    n = 5
    spin_model = make_model(model, n, 0.7 if model == "tfim" else None, periodic=False)
    matrix, states = hamiltonian_matrix(spin_model, magnetisation_zero=False)
    pauli = {"x": np.array([[0, 1], [1, 0]]), "y": np.array([[0, -1j], [1j, 0]]), "z": np.diag([-1.0, 1.0])}

    def op(kind, site):  # basis index bit i ↔ site i: site 0 is the least significant factor
        out = np.eye(1)
        for s in reversed(range(n)):
            out = np.kron(out, pauli[kind] if s == site else np.eye(2))
        return out

    dense = np.zeros((2**n, 2**n), dtype=complex)
    for i, j in spin_model.bonds:
        if model == "tfim":
            dense -= op("z", i) @ op("z", j)
        else:
            dense += sum(op(a, i) @ op(a, j) for a in "xyz") / 4.0
    if model == "tfim":
        dense -= 0.7 * sum(op("x", i) for i in range(n))
    assert np.abs(matrix.toarray() - dense).max() < 1e-14
    assert np.all(states == np.arange(2**n))


@pytest.mark.parametrize("model,shape,field", [("tfim", 8, 0.8), ("heisenberg", 8, None),
                                               ("heisenberg", (2, 3), None), ("tfim", (2, 3), 1.2)])
def test_local_energy_of_the_eigenvector_is_the_eigenvalue(model, shape, field):
    spin_model = make_model(model, shape, field, periodic=True)
    energy, vector, states = ground_state_vector(spin_model)
    index = {int(s): k for k, s in enumerate(states)}
    spins = states_to_spins(states, spin_model.n_sites)
    keep = np.abs(vector) > 1e-6 * np.abs(vector).max()

    def log_psi(x):
        keys = ((x > 0).long() << torch.arange(spin_model.n_sites)).sum(1)
        amplitude = torch.tensor(vector[[index.get(int(k), 0) for k in keys]], dtype=torch.complex128)
        return torch.log(amplitude)

    e_loc = local_energy(spin_model, log_psi, spins[torch.as_tensor(keep)])
    assert torch.allclose(e_loc, torch.full_like(e_loc, energy), atol=1e-8)


def test_local_energy_of_any_state_is_h_psi_over_psi():
    spin_model = make_model("heisenberg", 6, periodic=False)
    matrix, states = hamiltonian_matrix(spin_model, magnetisation_zero=False)
    rng = np.random.default_rng(1)
    psi = rng.standard_normal(len(states)) + 1j * rng.standard_normal(len(states))
    spins = states_to_spins(states, 6)

    def log_psi(x):
        keys = ((x > 0).long() << torch.arange(6)).sum(1)
        return torch.log(torch.as_tensor(psi[keys.numpy()]))

    assert np.allclose(local_energy(spin_model, log_psi, spins).numpy(), (matrix @ psi) / psi, atol=1e-12)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="unknown model"):
        exact_ground_energy("hubbard", 8)
    with pytest.raises(ValueError, match="field"):
        exact_ground_energy("tfim", 8)
    with pytest.raises(ValueError, match="no transverse field"):
        exact_ground_energy("heisenberg", 8, field=1.0)
    with pytest.raises(ValueError, match="finite"):
        exact_ground_energy("tfim", 8, field=float("nan"))
    with pytest.raises(ValueError, match="shape"):
        make_model("tfim", (2, 2, 2), field=1.0)
    with pytest.raises(ValueError, match="24 sites"):
        exact_ground_energy("heisenberg", 26)
    with pytest.raises(ValueError, match="shape"):
        local_energy(make_model("tfim", 4, 1.0), lambda s: s.sum(1), torch.ones(3, 5))
