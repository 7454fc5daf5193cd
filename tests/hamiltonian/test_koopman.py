"""EDMD: exact spectra of linear flows, the pendulum's elliptic-integral frequency, the linear lift."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import ellipk

from mlpot.hamiltonian.integrators import leapfrog
from mlpot.hamiltonian.koopman import edmd, make_dictionary


def harmonic(omega, dt, n, phase=0.3, decay=0.0):
    """Exact samples (q, p) of a unit-mass oscillator, q = e^{−σt} cos(ωt + φ), p = q̇."""
    t = np.arange(n) * dt
    e = np.exp(-decay * t)
    q = e * np.cos(omega * t + phase)
    p = -decay * q - omega * e * np.sin(omega * t + phase)
    return np.stack([q, p], -1)


def test_harmonic_oscillator_eigenvalues_are_exp_of_i_omega_dt():
    omega, dt = 1.7, 0.1
    result = edmd(harmonic(omega, dt, 200), dt, dictionary="linear")
    expected = np.exp(np.array([1j, -1j]) * omega * dt)
    got = result.eigenvalues[np.argsort(-result.eigenvalues.imag)]
    # the flow map of a linear system is linear, so DMD is exact up to round-off
    np.testing.assert_allclose(got, expected, atol=1e-8)
    np.testing.assert_allclose(np.sort(result.frequencies), [-omega, omega], rtol=1e-8)


def test_damped_oscillator_decay_rate():
    sigma, omega_d, dt = 0.05, 1.3, 0.1
    result = edmd(harmonic(omega_d, dt, 300, decay=sigma), dt, dictionary="linear")
    assert result.dominant_decay_rate() == pytest.approx(sigma, rel=1e-8)  # exact for a linear flow
    assert result.dominant_frequency() == pytest.approx(omega_d, rel=1e-8)


def test_pendulum_fundamental_frequency_matches_the_elliptic_integral():
    theta0, dt, substeps, n = 2.0, 0.05, 20, 800
    path = leapfrog((lambda q, p: torch.sin(q), lambda q, p: p), torch.tensor([[theta0, 0.0]], dtype=torch.float64),
                    dt / substeps, (n - 1) * substeps)
    snapshots = path[::substeps, 0].numpy()
    k = math.sin(theta0 / 2)
    exact = 2 * math.pi / (4 * ellipk(k * k))  # ω₀ = 1; scipy's ellipk takes m = k²
    result = edmd(snapshots, dt, dictionary="poly3")
    # leapfrog's shadow-frequency error at h = 2.5e-3 is ~h²/24 ≈ 3e-7; EDMD's dictionary error is
    # of the same order here. The issue asks for 1 %; we hold it to 1e-4.
    assert result.dominant_frequency() == pytest.approx(exact, rel=1e-4)


def test_prediction_by_the_linear_lift_reproduces_a_linear_flow():
    dt = 0.1
    data = harmonic(1.1, dt, 400, decay=0.02)
    result = edmd(data[:200], dt, dictionary="linear")
    prediction = result.predict(data[199], 200)[:, 0]
    np.testing.assert_allclose(prediction, data[199:], atol=1e-9)


def test_eigenfunctions_advance_by_their_eigenvalue():
    dt = 0.05
    data = harmonic(2.0, dt, 300)
    result = edmd(data, dt, dictionary="poly2")  # products of the linear eigenfunctions: still exact
    phi_now, phi_next = result.eigenfunctions(data[:-1]), result.eigenfunctions(data[1:])
    np.testing.assert_allclose(phi_next, phi_now * result.eigenvalues, atol=1e-8)


@pytest.mark.parametrize("dictionary, size", [("linear", 2), ("poly3", 10), ("rbf20", 23)])
def test_dictionary_sizes(dictionary, size):
    x = np.random.default_rng(0).standard_normal((50, 2))
    assert make_dictionary(dictionary, 2, x)(x).shape == (50, size)


def test_several_trajectories_are_stacked_without_crossing_their_ends():
    dt = 0.1
    data = np.stack([harmonic(0.9, dt, 100, phase=phi) for phi in (0.0, 1.0, 2.0)])
    result = edmd(data, dt, dictionary="linear")
    assert result.dominant_frequency() == pytest.approx(0.9, rel=1e-8)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="dt"):
        edmd(np.zeros((10, 2)), 0.0)
    with pytest.raises(ValueError, match="NaN"):
        edmd(np.full((10, 2), np.nan), 0.1)
    with pytest.raises(ValueError, match="dictionary"):
        edmd(np.zeros((10, 2)), 0.1, dictionary="fourier")
    with pytest.raises(ValueError, match="fewer"):
        edmd(np.random.default_rng(0).standard_normal((5, 2)), 0.1, dictionary="poly3")

