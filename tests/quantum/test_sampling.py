"""Metropolis sampling reproduces |ψ|², exchange moves keep Sz = 0, and blocking error bars."""

import math

import numpy as np
import pytest
import torch

from mlpot.quantum.ansatz import RBM
from mlpot.quantum.sampling import MetropolisSampler, blocking_error, enumerate_states
from mlpot.quantum.spins import make_model


@pytest.mark.parametrize("model", ["tfim", "heisenberg"])
def test_metropolis_samples_follow_psi_squared(model):
    spin_model = make_model(model, 4, 1.0 if model == "tfim" else None)
    rbm = RBM(4, alpha=1, init_scale=0.4, seed=2)
    states = enumerate_states(spin_model)
    with torch.no_grad():
        probabilities = torch.softmax(2 * rbm(states), 0).numpy()
    # independent samples: one configuration from each of many chains after burn-in
    sampler = MetropolisSampler(spin_model, n_chains=10000, seed=1)
    # the TFIM distribution is bimodal (all up / all down): single flips need many sweeps to mix
    sampler.sweep(rbm, 60 if model == "tfim" else 20)
    codes = ((sampler.spins > 0).long() << torch.arange(4)).sum(1).numpy()
    state_codes = ((states > 0).long() << torch.arange(4)).sum(1).numpy()
    counts = np.array([(codes == c).sum() for c in state_codes])
    assert counts.sum() == sampler.n_chains  # no chain left the sector
    sigma = np.sqrt(probabilities * (1 - probabilities) / sampler.n_chains)  # binomial error
    assert np.all(np.abs(counts / sampler.n_chains - probabilities) < 5 * sigma)


def test_exchange_moves_keep_zero_magnetisation():
    spin_model = make_model("heisenberg", 10)
    sampler = MetropolisSampler(spin_model, n_chains=64, seed=0)
    rbm = RBM(10, alpha=1, init_scale=0.5)
    samples = sampler.sample(rbm, 256)
    assert torch.all(samples.sum(-1) == 0)
    assert 0.0 < sampler.acceptance < 1.0


def test_blocking_error_of_white_noise_is_sigma_over_root_n():
    x = np.random.default_rng(0).standard_normal(2**14)
    expected = 1.0 / math.sqrt(x.size)
    # the maximum over levels of a noisy estimator: within its own ~1/√(n_blocks) scatter
    assert 0.8 * expected < blocking_error(x) < 1.5 * expected


def test_blocking_error_sees_autocorrelation():
    # AR(1): x_t = ρ x_{t−1} + noise has error of the mean √((1+ρ)/(1−ρ)) σ/√n
    rho, n = 0.9, 2**16
    rng = np.random.default_rng(1)
    noise = rng.standard_normal(n) * math.sqrt(1 - rho**2)
    x = np.empty(n)
    x[0] = rng.standard_normal()
    for t in range(1, n):
        x[t] = rho * x[t - 1] + noise[t]
    expected = math.sqrt((1 + rho) / (1 - rho)) / math.sqrt(n)
    assert 0.7 * expected < blocking_error(x) < 1.4 * expected
    assert blocking_error(x) > 3 * x.std() / math.sqrt(n)  # the naive estimate is far too small


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="NaN"):
        blocking_error(np.array([1.0, np.nan, 2.0]))
    with pytest.raises(ValueError, match="n_chains"):
        MetropolisSampler(make_model("tfim", 4, 1.0), n_chains=0)
