"""Heat-capacity estimators on exactly distributed synthetic samples: values, errors, units, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ase.build import bulk

from mlpot.analysis import (
    GAS_CONSTANT_J_PER_MOL_K,
    InsufficientSamplingError,
    NoiseVariance,
    NoiseVarianceTooLargeError,
    average_replicas,
    fit_finite_size,
    heat_capacity_canonical,
    heat_capacity_microcanonical,
    noise_variance_from_committee,
    noise_variance_from_rmse,
)
from mlpot.units import KB_EV_PER_K

T = 300.0
KT = KB_EV_PER_K * T


def canonical_energies(c_kB: float, n: int, rng) -> np.ndarray:
    """i.i.d. total energies with Var(E) = C k_B² T² (C in k_B): what an ideal canonical sampler gives."""
    return -100.0 + rng.normal(size=n) * math.sqrt(c_kB) * KT


def test_canonical_recovers_the_variance_and_its_error():
    rng = np.random.default_rng(0)
    result = heat_capacity_canonical(canonical_energies(90.0, 20_000, rng), T)
    assert abs(result.value - 90.0) < 3 * result.error
    # Var of a Gaussian sample variance: 2σ⁴/n, so δC = C √(2/n).
    assert result.error == pytest.approx(90.0 * math.sqrt(2 / 20_000), rel=0.1)
    assert result.raw_value == result.value and result.noise.value == 0.0
    assert result.ensemble == "canonical" and result.temperature_K == T


def test_microcanonical_lpv_on_exact_microcanonical_samples():
    """A harmonic system with f kinetic and f_p configurational quadratic dof at fixed E has K/E ~ Beta(f/2, f_p/2).

    For it the LPV formula's expectation is (f/2)(F/2 + 1)/(f/2 + 1), F = f + f_p: within 1 k_B of the canonical
    F/2 (the O(1) finite-size difference between ensembles the docs discuss).
    """
    n_atoms = 32
    f = 3 * n_atoms - 3
    f_p = f
    F = f + f_p
    expected = (f / 2) * (F / 2 + 1) / (f / 2 + 1)
    assert abs(expected - F / 2) < 1.0
    z = []
    for seed in range(40):
        energy = 5.0
        kinetic = energy * np.random.default_rng(seed).beta(f / 2, f_p / 2, size=4096)
        result = heat_capacity_microcanonical(kinetic, n_atoms)
        assert result.n_dof == f and result.n_constraints == 3
        assert result.temperature_K == pytest.approx(2 * energy * (f / F) / (f * KB_EV_PER_K), rel=0.01)
        z.append((result.value - expected) / result.error)
    z = np.array(z)
    assert np.mean(np.abs(z) < 2) >= 0.85
    assert abs(z.mean()) < 3 / math.sqrt(len(z)) + 0.1


def test_microcanonical_counts_the_constraints():
    rng = np.random.default_rng(1)
    kinetic = 5.0 * rng.beta(45, 45, size=4096)
    free = heat_capacity_microcanonical(kinetic, 32, n_constraints=0)
    fixed = heat_capacity_microcanonical(kinetic, 32, n_constraints=6)
    assert free.n_dof == 96 and fixed.n_dof == 90
    assert fixed.temperature_K > free.temperature_K


def test_noise_variance_argument_is_gone_and_points_to_the_replacements():
    energies = canonical_energies(90.0, 4096, np.random.default_rng(5))
    with pytest.raises(TypeError, match="heat_capacity_reweighted"):
        heat_capacity_canonical(energies, T, 1e-3)
    with pytest.raises(TypeError, match="assume_uncorrelated_error"):
        heat_capacity_canonical(energies, T, noise_variance_eV2=1e-3)
    # An error variance is subtracted only when the approximation is asked for by name.
    with pytest.raises(ValueError, match="assume_uncorrelated_error=True"):
        heat_capacity_canonical(energies, T, error_variance_eV2=1e-3)
    plain = heat_capacity_canonical(energies, T)
    assert plain.value == plain.raw_value and plain.noise.value == 0.0


def test_white_noise_approximation_removes_white_noise():
    """The explicit approximation is exact when its assumption holds: noise independent of the configuration."""
    rng = np.random.default_rng(2)
    exact = 90.0
    energies = canonical_energies(exact, 20_000, rng)
    sigma = 0.8 * math.sqrt(exact) * KT  # noise variance 0.64 of the thermal variance
    noisy = energies + rng.normal(size=energies.size) * sigma
    raw = heat_capacity_canonical(noisy, T)
    corrected = heat_capacity_canonical(noisy, T, error_variance_eV2=sigma**2, assume_uncorrelated_error=True)
    bias = sigma**2 / KT**2
    assert abs(raw.value - (exact + bias)) < 3 * raw.error
    assert raw.value - exact > 10 * raw.error  # the raw estimate is visibly biased
    assert abs(corrected.value - exact) < 3 * corrected.error
    assert corrected.raw_value == pytest.approx(raw.value)
    # An uncertain σ² adds its error in quadrature.
    uncertain = heat_capacity_canonical(
        noisy, T, error_variance_eV2=(sigma**2, 0.1 * sigma**2), assume_uncorrelated_error=True
    )
    assert uncertain.value == pytest.approx(corrected.value)
    expected_error = math.hypot(corrected.error, 0.1 * sigma**2 / KT**2)
    assert uncertain.error == pytest.approx(expected_error)


def test_noise_larger_than_the_raw_variance_is_reported_not_clipped():
    rng = np.random.default_rng(3)
    energies = canonical_energies(10.0, 4096, rng)
    with pytest.raises(NoiseVarianceTooLargeError, match=r"not smaller than the raw energy variance") as info:
        heat_capacity_canonical(energies, T, error_variance_eV2=20.0 * KT**2, assume_uncorrelated_error=True)
    assert "raw C_V" in str(info.value)
    assert issubclass(NoiseVarianceTooLargeError, ValueError)


def test_invalid_input_raises_clear_errors():
    rng = np.random.default_rng(4)
    energies = canonical_energies(90.0, 4096, rng)
    for bad_t in (0.0, -5.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="temperature_K"):
            heat_capacity_canonical(energies, bad_t)
    with_nan = energies.copy()
    with_nan[100] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        heat_capacity_canonical(with_nan, T)
    with pytest.raises(InsufficientSamplingError):
        heat_capacity_canonical(energies[:40], T)
    with pytest.raises(ValueError, match="noise variance"):
        heat_capacity_canonical(energies, T, error_variance_eV2=-1e-3, assume_uncorrelated_error=True)
    kinetic = 5.0 * rng.beta(45, 45, size=4096)
    with pytest.raises(ValueError, match="n_constraints"):
        heat_capacity_microcanonical(kinetic, 32, n_constraints=-1)
    with pytest.raises(ValueError, match="n_atoms"):
        heat_capacity_microcanonical(kinetic, 0)
    with pytest.raises(ValueError, match="positive"):
        heat_capacity_microcanonical(kinetic - 10.0, 32)
    # Canonical kinetic fluctuations (a thermostat left on) have no finite LPV heat capacity.
    canonical_kinetic = rng.gamma(93 / 2, 1.0, size=4096)
    with pytest.raises(ValueError, match="not an equilibrated microcanonical"):
        heat_capacity_microcanonical(canonical_kinetic * 1.2 - 0.2 * canonical_kinetic.mean(), 32)


def test_units_per_atom_molar_and_per_gram():
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    rng = np.random.default_rng(5)
    result = heat_capacity_canonical(canonical_energies(3.0 * len(atoms), 20_000, rng), T)
    with pytest.raises(ValueError, match="n_atoms"):
        _ = result.per_atom
    with pytest.raises(ValueError, match="mass"):
        _ = result.J_per_g_K
    result = result.with_system(atoms=atoms)
    per_atom = result.per_atom
    assert per_atom.value == pytest.approx(result.value / 32) and per_atom.error == pytest.approx(result.error / 32)
    assert float(per_atom) == per_atom.value  # an Estimate is a float that carries its error
    assert result.J_per_mol_K.value == pytest.approx(per_atom.value * GAS_CONSTANT_J_PER_MOL_K)
    # Dulong–Petit for copper: 3R = 24.94 J/(mol·K); 3R/M(Cu) = 0.3925 J/(g·K).
    assert 3 * GAS_CONSTANT_J_PER_MOL_K == pytest.approx(24.943, abs=1e-3)
    assert result.J_per_g_K.value == pytest.approx(result.J_per_mol_K.value / 63.546, rel=1e-3)
    assert abs(result.J_per_g_K.value - 0.3925) < 3 * result.J_per_g_K.error
    summary = result.as_dict()
    for key in ("kB_per_cell", "kB_per_cell_raw", "kB_per_atom", "J_per_mol_K", "J_per_g_K"):
        assert set(summary[key]) == {"value", "error"}
    assert "k_B/atom" in str(result) and "J/(g·K)" in str(result)


def test_committee_noise_variance():
    rng = np.random.default_rng(6)
    frames, members, s = 4096, 5, 0.02
    truth = np.cumsum(rng.normal(size=frames)) * 0.01
    energies = truth[None] + rng.normal(size=(members, frames)) * s
    noise = noise_variance_from_committee(energies)
    assert noise.source == "committee"
    assert abs(noise.value - s**2) < 3 * noise.error
    assert noise.error < 0.05 * s**2
    from_std = noise_variance_from_committee(energy_std_eV=energies.std(axis=0, ddof=1), calibration_factor=2.0)
    assert from_std.value == pytest.approx(4 * noise.value)
    with pytest.raises(ValueError, match="n_members"):
        noise_variance_from_committee(energies[:1])


def test_rmse_noise_variance_is_extensive():
    noise = noise_variance_from_rmse(0.01, n_validation=200)
    assert noise.value == pytest.approx(1e-4) and noise.error == pytest.approx(1e-4 * math.sqrt(2 / 200))
    scaled = noise_variance_from_rmse(0.01, n_atoms=256, validation_n_atoms=32)
    assert scaled.value == pytest.approx(8e-4)
    assert NoiseVariance.coerce(scaled) is scaled
    with pytest.raises(ValueError, match="both"):
        noise_variance_from_rmse(0.01, n_atoms=256)


def test_average_replicas_uses_equal_weights():
    rng = np.random.default_rng(7)
    results = [heat_capacity_canonical(canonical_energies(90.0, 4096, rng), T, n_atoms=32) for _ in range(4)]
    mean = average_replicas(results)
    assert mean.value == pytest.approx(np.mean([r.value for r in results]))
    assert mean.error == pytest.approx(math.sqrt(sum(r.error**2 for r in results)) / 4)
    assert mean.n_replicas == 4 and mean.per_atom.value == pytest.approx(mean.value / 32)


def test_finite_size_fit():
    sizes = np.array([32, 108, 256, 500])
    exact = 3.0 - 1.5 / sizes
    fit = fit_finite_size(sizes, exact, np.full(4, 0.01))
    assert fit.value == pytest.approx(3.0) and fit.slope == pytest.approx(-1.5)
    assert fit.chi2 == pytest.approx(0.0, abs=1e-12) and fit.dof == 2 and not fit.errors_scaled
    # Error of c_∞ from the normal equations, checked against Monte Carlo over noisy data.
    rng = np.random.default_rng(8)
    fits = [fit_finite_size(sizes, exact + rng.normal(size=4) * 0.01, np.full(4, 0.01)) for _ in range(2000)]
    spread = np.std([f.value for f in fits])
    assert fit.error == pytest.approx(spread, rel=0.1)
    # Scatter beyond the error bars inflates the errors, never shrinks them.
    scattered = fit_finite_size(sizes, exact + np.array([0.05, -0.05, 0.05, -0.05]), np.full(4, 0.01))
    assert scattered.errors_scaled and scattered.error > fit.error
    value, band = fit.predict([1e9])
    assert value[0] == pytest.approx(3.0) and band[0] == pytest.approx(fit.error, rel=1e-6)
    with pytest.raises(ValueError, match="two different"):
        fit_finite_size([32, 32], [2.9, 2.9], [0.1, 0.1])
    # A sequence of results works directly.
    results = [
        heat_capacity_canonical(canonical_energies(3 * n - 1.5, 8192, rng), T, n_atoms=int(n)) for n in sizes
    ]
    assert abs(fit_finite_size(results).value - 3.0) < 3 * fit_finite_size(results).error
