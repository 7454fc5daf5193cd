"""Wavefunction ansätze: symmetry by construction, the Marshall sign, and exact log-derivatives."""

import math

import numpy as np
import pytest
import torch

from mlpot.quantum.ansatz import RBM, FeedForward, lattice_translations
from mlpot.quantum.sampling import states_to_spins
from mlpot.quantum.spins import ground_state_vector, make_model
from mlpot.quantum.sr import log_derivatives


def random_spins(n_samples, n_sites, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.where(torch.rand(n_samples, n_sites, generator=generator) < 0.5, 1.0, -1.0).double()


@pytest.mark.parametrize("shape", [(6,), (3, 4)])
def test_symmetric_rbm_is_translation_invariant(shape):
    translations = lattice_translations(shape)
    n = math.prod(shape)
    assert translations.shape == (n, n) and all(sorted(row) == list(range(n)) for row in translations)
    rbm = RBM(n, alpha=2, translations=translations, complex_parameters=True, init_scale=0.5)
    spins = random_spins(5, n)
    reference = rbm(spins)
    for permutation in translations:
        assert torch.allclose(rbm(spins[:, permutation]), reference, atol=1e-12)


def test_dense_rbm_is_the_textbook_formula():
    rbm = RBM(5, alpha=2, complex_parameters=True, init_scale=0.3, seed=3)
    spins = random_spins(7, 5)
    a = torch.complex(rbm.visible_bias[0], rbm.visible_bias[1])
    b = torch.complex(rbm.hidden_bias[0], rbm.hidden_bias[1])
    w = torch.complex(rbm.weights[0], rbm.weights[1])
    s = spins.to(torch.complex128)
    # ψ = e^{a·s} Π_j cosh(b_j + W_j·s) (the hidden units traced out, up to a constant 2^M)
    expected = s @ a + torch.log(torch.cosh(s @ w.T + b)).sum(1)
    assert torch.allclose(rbm(spins), expected, atol=1e-12)


def test_log_cosh_is_stable_for_large_arguments():
    rbm = RBM(4, alpha=1)
    with torch.no_grad():
        rbm.weights.fill_(200.0)
    assert torch.isfinite(rbm(torch.ones(2, 4, dtype=torch.float64))).all()


@pytest.mark.parametrize("shape", [(8,), (2, 4)])
def test_exact_heisenberg_ground_state_obeys_the_marshall_sign(shape):
    model = make_model("heisenberg", shape)
    _, vector, states = ground_state_vector(model)
    spins = states_to_spins(states, model.n_sites)
    # a constant RBM (zero weights) with the Marshall sign has the phase π·n_A mod 2π
    rbm = RBM(model.n_sites, alpha=1, sublattice=model.sublattice, init_scale=0.0)
    sign = torch.cos(rbm(spins).imag).detach().numpy()
    keep = np.abs(vector) > 1e-8
    product = np.sign(vector[keep]) * sign[keep]
    assert np.all(product == product[0])  # the same sign everywhere (up to the global one)


@pytest.mark.parametrize("kind", ["rbm_complex", "rbm_symmetric_sign", "ffnn"])
def test_log_derivatives_match_finite_differences(kind):
    n = 6
    if kind == "rbm_complex":
        ansatz = RBM(n, alpha=1, complex_parameters=True, init_scale=0.3)
    elif kind == "rbm_symmetric_sign":
        ansatz = RBM(n, 2, lattice_translations((n,)), sublattice=np.arange(n) % 2, init_scale=0.3)
    else:
        ansatz = FeedForward(n, alpha=1, init_scale=0.3)
    spins = random_spins(4, n)
    jacobian = log_derivatives(ansatz, spins)
    flat = torch.nn.utils.parameters_to_vector(ansatz.parameters()).detach()
    step = 1e-5  # central differences: error ~ step² |f'''| ≈ 1e-10, round-off ~ 1e-16/step
    for k in range(0, flat.numel(), max(1, flat.numel() // 9)):
        values = []
        for sign in (1, -1):
            shifted = flat.clone()
            shifted[k] += sign * step
            torch.nn.utils.vector_to_parameters(shifted, ansatz.parameters())
            with torch.no_grad():
                values.append(ansatz(spins))
        torch.nn.utils.vector_to_parameters(flat, ansatz.parameters())
        numeric = (values[0] - values[1]) / (2 * step)
        assert torch.allclose(jacobian[:, k].to(numeric.dtype), numeric, atol=1e-8)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="shape"):
        RBM(4)(torch.ones(3, 5))
    with pytest.raises(ValueError, match="alpha"):
        RBM(4, alpha=0)
    with pytest.raises(ValueError, match="translations"):
        RBM(4, translations=np.zeros((2, 3), dtype=int))
