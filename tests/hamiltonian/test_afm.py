"""The AFM cantilever: ground-truth physics, and a learned port-Hamiltonian model of it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mlpot.hamiltonian.afm import (
    Cantilever,
    CantileverNN,
    cantilever_data,
    equilibrium,
    fit_cantilever,
    frequency_shift,
    quality_factor,
    resonance_curve,
)
from mlpot.hamiltonian.koopman import edmd


def test_dmt_force_is_minus_the_gradient_of_the_energy_and_continuous():
    c = Cantilever()
    z = torch.linspace(0.05, 4.0, 400, dtype=torch.float64, requires_grad=True)
    (dv,) = torch.autograd.grad(c.tip_sample_energy(z).sum(), z)
    np.testing.assert_allclose(c.tip_sample_force(z).detach(), -dv, atol=1e-12)
    (df,) = torch.autograd.grad(c.tip_sample_force(z).sum(), z)
    np.testing.assert_allclose(c.force_gradient(z).detach(), df, atol=1e-12)
    a0 = torch.tensor([c.a0 - 1e-9, c.a0 + 1e-9], dtype=torch.float64)
    assert abs(float(c.tip_sample_force(a0).diff())) < 1e-8  # continuous at the contact point
    assert float(c.tip_sample_force(torch.tensor(0.05))) > 0 > float(c.tip_sample_force(torch.tensor(1.0)))


@pytest.mark.parametrize("q", [100.0, 500.0])
def test_ground_truth_quality_factor_and_resonance(q):
    c = Cantilever(q, base_position_nm=1e3)
    # λ = −γ/2 ± i√(1 − γ²/4) for m = k = 1: |λ|/(2σ) = 1/γ = Q exactly
    assert quality_factor(c) == pytest.approx(q, rel=1e-9)
    amplitude, phase = resonance_curve(c, [1.0], 1e3)
    # base drive through the spring: T(ω₀) = k / (iγω₀) = −iQ
    assert amplitude[0] == pytest.approx(q, rel=1e-6)
    assert phase[0] == pytest.approx(-math.pi / 2, abs=1e-6)


def test_ground_truth_ringdown_frequency_shift_matches_the_force_gradient():
    """Simulate a small ringdown near the surface and measure its frequency with EDMD."""
    c = Cantilever(500.0, base_position_nm=1.5)
    z_eq = float(equilibrium(c, 1.5)[0][0, 0])
    gradient = float(c.force_gradient(torch.tensor(z_eq)))
    t, z = c.simulate(torch.tensor([[z_eq + 0.01, 0.0]]), t_span=(0.0, 60.0), n_points=601, substeps=4)
    measured = edmd(z[0].numpy(), float(t[1] - t[0]), dictionary="poly1").dominant_frequency()
    free = math.sqrt(1 - (1 / 500.0) ** 2 / 4)  # damped frequency far away
    shift = math.sqrt(1 - gradient - (1 / 500.0) ** 2 / 4) / free - 1
    # The amplitude 0.01 nm ≪ z = 1.5 nm adds a nonlinear correction of order (A/z)² F'/k ≈ 1e-7;
    # RK4 at 0.025 per step shifts the frequency by ~h⁴/120 ≈ 3e-9.
    assert measured / free - 1 == pytest.approx(shift, rel=1e-3)
    assert shift == pytest.approx(-gradient / 2, rel=0.02)  # the small-gradient formula of the issue
    assert abs(frequency_shift(c, [1e3], reference_nm=1e4)[0]) < 1e-9  # far away the shift vanishes


def test_learned_model_never_gains_energy_without_drive():
    gen = torch.Generator().manual_seed(0)
    states = torch.cat([0.5 + 30 * torch.rand(2000, 1, generator=gen, dtype=torch.float64),
                        4 * torch.randn(2000, 1, generator=gen, dtype=torch.float64)], -1)
    for seed in range(3):
        torch.manual_seed(seed)
        model = CantileverNN(hidden=(8, 8)).double()
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(torch.randn_like(parameter))  # arbitrary weights: the structure must hold
        rate = model.energy_rate(states).detach()
        grad = model.energy.gradient(states)
        # dH/dt = −γ (∂H/∂p)² exactly; the skew part cancels to round-off of ∇Hᵀ J ∇H
        assert bool((rate <= 1e-12 * (grad**2).sum(-1)).all())
        np.testing.assert_allclose(rate, -model.damping.detach() * grad[:, 1] ** 2, rtol=1e-10, atol=1e-14)


def test_short_training_recovers_the_quality_factor():
    data = cantilever_data([1.5, 3.0, 30.0], quality_factor=100.0, n_per_base=3)
    model = fit_cantilever(data, epochs=150)
    assert quality_factor(model) == pytest.approx(100.0, rel=0.02)
    assert float(model.energy.stiffness.detach()) == pytest.approx(1.0, rel=1e-3)  # reduced units: k = 1
    assert abs(frequency_shift(model, [1e4])[0]) < 1e-6  # W_θ(1/z) vanishes at 1/z = 0 by construction


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="quality_factor"):
        Cantilever(quality_factor=-1.0)
    with pytest.raises(ValueError, match="hamaker"):
        Cantilever(hamaker_J=float("nan"))


@pytest.mark.slow
@pytest.mark.parametrize("q", [100.0, 500.0])
def test_full_training_meets_the_issue_targets(q):
    """Q within 2 %, Δf/f₀ within 2 % of −F'/(2k), no shift far away (≈ 1 min per Q on 2 cores)."""
    bases = [1.3, 1.5, 1.8, 2.2, 3.0, 5.0, 10.0, 30.0]
    model = fit_cantilever(cantilever_data(bases, quality_factor=q, n_per_base=4), epochs=2000)
    truth = Cantilever(q)
    assert quality_factor(model) == pytest.approx(q, rel=0.02)
    near = [1.3, 1.5, 1.8, 2.2, 3.0]
    shifts = frequency_shift(model, near)
    for base, shift in zip(near, shifts):
        gradient = float(truth.force_gradient(equilibrium(truth, base)[0][0, 0]))
        assert shift == pytest.approx(-gradient / 2, rel=0.02)
    assert np.abs(frequency_shift(model, [100.0, 300.0])).max() < 0.02 * abs(shifts[0])  # reference: 1 µm
