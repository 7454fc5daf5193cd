"""Block averaging on synthetic series with known statistics (AR(1): g = (1 + ρ)/(1 − ρ))."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from mlpot.analysis import (
    InsufficientSamplingError,
    block_average,
    blocking_levels,
    integrated_autocorrelation_time,
    mean_error,
)


def ar1(rho: float, n: int, rng: np.random.Generator, count: int = 1) -> np.ndarray:
    """[count, n] stationary Gaussian AR(1) series with unit variance and lag-t correlation ρ^t."""
    noise = rng.normal(size=(count, n)) * np.sqrt(1.0 - rho**2)
    noise[:, 0] = rng.normal(size=count)  # start in the stationary distribution
    return lfilter([1.0], [1.0, -rho], noise, axis=1)


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_statistical_inefficiency_of_ar1(rho):
    x = ar1(rho, 1 << 16, np.random.default_rng(1))[0]
    stats = block_average(x)
    g = (1 + rho) / (1 - rho)
    g_squares = (1 + rho**2) / (1 - rho**2)  # (x_t − μ)² of a Gaussian AR(1) has correlation ρ^{2t}
    # Tolerances are the estimator's own 1σ uncertainties.
    assert abs(stats.statistical_inefficiency - g) < 3 * stats.statistical_inefficiency_error
    assert abs(stats.variance_statistical_inefficiency - g_squares) < 0.15 * g_squares
    assert abs(stats.variance - 1.0) < 3 * stats.variance_error
    # Var of the sample variance of a Gaussian AR(1): 2σ⁴ g_squares / n.
    assert stats.variance_error == pytest.approx(np.sqrt(2 * g_squares / x.size), rel=0.2)
    assert stats.autocorrelation_time == pytest.approx(g / 2, rel=0.15)
    tau = integrated_autocorrelation_time(x)
    assert abs(tau.tau - g / 2) < 3 * tau.error


def test_error_bars_are_calibrated_on_ar1():
    """±2σ intervals of the mean and of the variance cover the truth about 95% of the time."""
    series = ar1(0.8, 8192, np.random.default_rng(2), count=300)
    z_mean, z_var = [], []
    for x in series:
        stats = block_average(x)
        z_mean.append(stats.mean / stats.mean_error)
        z_var.append((stats.variance - 1.0) / stats.variance_error)
    z_mean, z_var = np.array(z_mean), np.array(z_var)
    for z in (z_mean, z_var):
        # 300 draws: the coverage of a calibrated 95% interval has a binomial spread of ±1.3%.
        assert 0.90 <= np.mean(np.abs(z) < 2) <= 0.99
        assert 0.85 < z.std() < 1.15


def test_blocking_table_finds_a_plateau():
    x = ar1(0.95, 1 << 15, np.random.default_rng(3))[0]
    levels = blocking_levels(x)
    assert [level.block_size for level in levels[:4]] == [1, 2, 4, 8]
    assert not levels[0].accepted  # raw samples are visibly correlated
    plateau = next(level for level in levels if level.accepted)
    assert plateau.block_size >= 16
    assert levels[0].variance_of_mean < 0.2 * plateau.variance_of_mean  # naive error is far too small


def test_slow_tail_is_not_missed():
    """A small slow component beyond Sokal's window: blocking sees it, so the larger g is used."""
    rng = np.random.default_rng(4)
    b = 0.2
    x = np.sqrt(1 - b**2) * ar1(0.5, 100_000, rng)[0] + b * ar1(0.995, 100_000, rng)[0]
    result = mean_error(x)
    assert result.statistical_inefficiency == max(result.blocking_inefficiency, result.sokal_inefficiency)
    assert result.blocking_inefficiency > 2 * result.sokal_inefficiency
    g_true = (1 - b**2) * 3.0 + b**2 * 1.995 / 0.005
    assert result.statistical_inefficiency > 0.5 * g_true


def test_too_short_or_invalid_series_raise():
    rng = np.random.default_rng(5)
    with pytest.raises(InsufficientSamplingError, match="at least 64"):
        block_average(rng.normal(size=50))
    with pytest.raises(InsufficientSamplingError, match="too few|effectively independent"):
        block_average(ar1(0.999, 2000, rng)[0])
    bad = rng.normal(size=1000)
    bad[17] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        block_average(bad)
    with pytest.raises(ValueError, match="1-D"):
        block_average(rng.normal(size=(10, 100)))
    with pytest.raises(ValueError, match="constant"):
        block_average(np.ones(1000))
    assert issubclass(InsufficientSamplingError, ValueError)
