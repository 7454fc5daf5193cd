"""Adiabatic energies and derivative couplings against independent eigen-solves and finite differences."""

import numpy as np
import pytest
import torch

from mlpot.nonadiabatic import adiabatic, adiabatic_states, systems
from mlpot.nonadiabatic.adiabatic import align_signs, eigh, flip_couplings

ALL = [systems.TullySimpleAvoidedCrossing(), systems.TullyDualAvoidedCrossing(), systems.TullyExtendedCoupling(),
       systems.LinearVibronicCoupling2D()]


def _points(system, n=25, seed=0):
    generator = torch.Generator().manual_seed(seed)
    shape = (n,) if system.dim == 1 else (n, system.dim)
    x = 8.0 * torch.rand(shape, generator=generator, dtype=torch.float64) - 4.0
    if system.dim == 2:  # stay away from the conical intersection at y = 0
        x[:, 1] = torch.where(x[:, 1].abs() < 0.5, x[:, 1] + 1.0, x[:, 1])
    return x


def three_state(x):
    """A smooth 3×3 symmetric matrix of one coordinate (the general eigh path), gaps ≥ 0.05 on [−4, 4]."""
    c, s = torch.cos(x), torch.sin(x)
    rows = [torch.stack([-0.1 + 0.01 * x, 0.01 * c, 0.005 * s], -1),
            torch.stack([0.01 * c, 0.01 * s, 0.008 * c * s], -1),
            torch.stack([0.005 * s, 0.008 * c * s, 0.1 - 0.01 * x], -1)]
    return torch.stack(rows, -2)


@pytest.mark.parametrize("system", ALL, ids=repr)
def test_energies_match_an_independent_eigensolver(system):
    x = _points(system)
    energies, couplings = adiabatic(system.diabatic, x)
    reference = np.linalg.eigvalsh(system.diabatic(x).numpy())
    assert np.abs(energies.numpy() - reference).max() < 1e-12
    assert couplings.shape == (x.shape[0], 2, 2, system.dim)


@pytest.mark.parametrize("system", ALL + ["three_state"], ids=repr)
def test_couplings_match_finite_differences_of_aligned_eigenvectors(system):
    fn, dim = (three_state, 1) if system == "three_state" else (system.diabatic, system.dim)
    x = _points(systems.TullySimpleAvoidedCrossing() if dim == 1 else system)
    states = adiabatic_states(fn, x)
    h = 1e-4
    for k in range(dim):
        shift = torch.full_like(x, h) if dim == 1 else torch.nn.functional.one_hot(torch.tensor(k), dim).to(x) * h
        plus, _ = align_signs(eigh(fn(x + shift))[1], states.vectors)
        minus, _ = align_signs(eigh(fn(x - shift))[1], states.vectors)
        # d_ij = ⟨i|∂_k j⟩ by central differences: error ~ h²/6 |∂³U| ≲ 1e-8·|∂³U| here.
        numeric = states.vectors.transpose(-1, -2) @ (plus - minus) / (2 * h)
        assert torch.allclose(states.couplings[..., k], numeric, atol=1e-6, rtol=0)
    assert torch.allclose(states.couplings, -states.couplings.transpose(-2, -3), atol=1e-15)


@pytest.mark.parametrize("system", ALL, ids=repr)
def test_state_gradients_are_derivatives_of_the_energies(system):
    x = _points(system)
    states = adiabatic_states(system.diabatic, x)
    h = 1e-5
    for k in range(system.dim):
        shift = torch.full_like(x, h) if system.dim == 1 else torch.nn.functional.one_hot(torch.tensor(k), 2).to(x) * h
        numeric = (eigh(system.diabatic(x + shift))[0] - eigh(system.diabatic(x - shift))[0]) / (2 * h)
        assert torch.allclose(states.gradients[..., k], numeric, atol=1e-9, rtol=0)


def test_analytic_and_autograd_paths_agree():
    system = systems.LinearVibronicCoupling2D()
    x = _points(system)
    a = adiabatic_states(system.diabatic, x)
    b = adiabatic_states(system.diabatic, x, gradient_fn=system.diabatic_gradient)
    assert torch.allclose(a.couplings, b.couplings, atol=1e-14) and torch.allclose(a.gradients, b.gradients, atol=1e-16)


def test_closed_form_eigh_matches_lapack():
    generator = torch.Generator().manual_seed(0)
    h = torch.randn(200, 2, 2, generator=generator, dtype=torch.float64)
    h = h + h.transpose(-1, -2)
    energies, vectors = eigh(h)
    reference, _ = torch.linalg.eigh(h)
    assert torch.allclose(energies, reference, atol=1e-14)
    assert torch.allclose(h @ vectors, vectors * energies.unsqueeze(-2), atol=1e-14)
    assert torch.allclose(vectors.transpose(-1, -2) @ vectors, torch.eye(2, dtype=torch.float64), atol=1e-15)


def test_degeneracy_raises_or_is_regularised():
    lvc = systems.LinearVibronicCoupling2D()
    at_ci = torch.tensor([lvc.intersection], dtype=torch.float64)
    with pytest.raises(ValueError, match="degenerate"):
        adiabatic(lvc.diabatic, at_ci)
    _, finite = adiabatic(lvc.diabatic, at_ci, regularization=1e-4)
    assert bool(torch.isfinite(finite).all())
    # Away from the intersection the regularised coupling is the exact one times Δ²/(Δ² + ε²).
    x = torch.tensor([[0.4, 0.3]], dtype=torch.float64)
    energies, exact = adiabatic(lvc.diabatic, x)
    eps = 1e-3
    _, regular = adiabatic(lvc.diabatic, x, regularization=eps)
    gap = energies[..., 1] - energies[..., 0]
    assert torch.allclose(regular, exact * (gap**2 / (gap**2 + eps**2)), rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="regularization"):
        adiabatic(lvc.diabatic, x, regularization=-1.0)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="NaN"):
        adiabatic(systems.TullySimpleAvoidedCrossing().diabatic, torch.tensor([float("nan")], dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\[\.\.\., n, n\]"):
        adiabatic(lambda x: torch.stack([x, x], -1), torch.zeros(3, dtype=torch.float64))


def test_sign_flips_transform_couplings():
    system = systems.TullyDualAvoidedCrossing()
    states = adiabatic_states(system.diabatic, _points(system))
    flipped = states.vectors.clone()
    flipped[..., 1] *= -1
    aligned, signs = align_signs(flipped, states.vectors)
    assert torch.equal(aligned, states.vectors) and bool((signs[..., 1] == -1).all())
    assert torch.equal(flip_couplings(flip_couplings(states.couplings, signs), signs), states.couplings)
