"""Response functions from isothermal–isobaric (NPT) samples: C_P, thermal expansion, compressibility.

In the NPT ensemble at temperature T and pressure P₀, with the enthalpy H = K + U + P₀V of the cell:

* C_P = Var(H)/(k_B T²)                          (k_B per cell);
* α_P = Cov(V, H)/(k_B T² ⟨V⟩)                  (1/K);
* κ_T = Var(V)/(k_B T ⟨V⟩)                      (1/GPa here).

Each takes correlated, equilibrated series (a barostat's volume decorrelates over its relaxation time τ_p); the
errors are block-averaged (:mod:`mlpot.analysis.blocking`): the variance's error from the squared deviations,
the covariance's from the products of deviations, with the error of ⟨V⟩ propagated. Together with a C_V from
NVT at ⟨V⟩ they obey C_P − C_V = T V α²/κ_T.
"""

from __future__ import annotations

import math

from ase import units as _ase

from mlpot.analysis.blocking import MIN_BLOCKS, as_series, block_average, mean_error
from mlpot.analysis.noise import NoiseVariance
from mlpot.analysis.thermo import Estimate, HeatCapacityResult, _check_temperature, _fluctuation_heat_capacity
from mlpot.units import KB_EV_PER_K

__all__ = ["heat_capacity_isobaric", "isothermal_compressibility", "thermal_expansion", "heat_capacity_difference"]


def heat_capacity_isobaric(
    enthalpy_eV,
    temperature_K: float,
    *,
    n_atoms: int | None = None,
    mass_amu: float | None = None,
    min_blocks: int = MIN_BLOCKS,
) -> HeatCapacityResult:
    """C_P = Var(H)/(k_B T²) from an NPT series of the enthalpy H = K + U + P₀V of the cell.

    Args:
        enthalpy_eV: [n] H of the cell, eV, along an equilibrated NPT run (correlation is measured).
        temperature_K: the thermostat's temperature, K.
        n_atoms, mass_amu, min_blocks: as in :func:`mlpot.analysis.heat_capacity_canonical`.

    Returns:
        :class:`~mlpot.analysis.HeatCapacityResult` (``value``, ``error`` in k_B per cell), ensemble "isobaric".
    """
    return _fluctuation_heat_capacity(
        enthalpy_eV, temperature_K, NoiseVariance(0.0, 0.0, "none"), 0.0, "isobaric", None, n_atoms, mass_amu,
        min_blocks, name="enthalpy_eV",
    )


def isothermal_compressibility(volume_A3, temperature_K: float, *, min_blocks: int = MIN_BLOCKS) -> Estimate:
    """κ_T = Var(V)/(k_B T ⟨V⟩) in 1/GPa, from an NPT volume series (Å³)."""
    temperature = _check_temperature(temperature_K)
    volume = as_series(volume_A3, name="volume_A3")
    stats = block_average(volume, min_blocks=min_blocks, name="volume_A3")
    kT = KB_EV_PER_K * temperature
    value = stats.variance / (kT * stats.mean)  # Å³/eV
    error = value * math.hypot(stats.variance_error / stats.variance, stats.mean_error / stats.mean)
    return Estimate(value * _ase.GPa, error * _ase.GPa)


def thermal_expansion(volume_A3, enthalpy_eV, temperature_K: float, *, min_blocks: int = MIN_BLOCKS) -> Estimate:
    """α_P = Cov(V, H)/(k_B T² ⟨V⟩) in 1/K, from NPT series of the volume (Å³) and enthalpy (eV) of the cell."""
    temperature = _check_temperature(temperature_K)
    volume = as_series(volume_A3, name="volume_A3")
    enthalpy = as_series(enthalpy_eV, name="enthalpy_eV")
    if volume.size != enthalpy.size:
        raise ValueError(f"volume_A3 has {volume.size} samples, enthalpy_eV {enthalpy.size}: they must match")
    products = (volume - volume.mean()) * (enthalpy - enthalpy.mean())
    covariance = mean_error(products, min_blocks=min_blocks, name="(V − ⟨V⟩)(H − ⟨H⟩)")
    mean_volume = mean_error(volume, min_blocks=min_blocks, name="volume_A3")
    n = volume.size
    scale = n / (n - 1.0)  # unbiased covariance
    denominator = KB_EV_PER_K * temperature**2 * mean_volume.mean
    value = scale * covariance.mean / denominator
    error = abs(value) * math.hypot(covariance.error / covariance.mean if covariance.mean else math.inf,
                                    mean_volume.error / mean_volume.mean)
    if not math.isfinite(error):
        error = scale * covariance.error / denominator
    return Estimate(value, error)


def heat_capacity_difference(temperature_K: float, volume_A3, expansion_per_K, compressibility_per_GPa) -> Estimate:
    """T V α²/κ_T in k_B per cell (the thermodynamic C_P − C_V), with errors of α and κ_T propagated.

    Args:
        temperature_K: K. volume_A3: ⟨V⟩ (a float or an Estimate), Å³.
        expansion_per_K: α_P (Estimate or float), 1/K. compressibility_per_GPa: κ_T (Estimate or float), 1/GPa.
    """
    temperature = _check_temperature(temperature_K)
    alpha, d_alpha = _value_error(expansion_per_K)
    kappa, d_kappa = _value_error(compressibility_per_GPa)
    volume, d_volume = _value_error(volume_A3)
    kappa_A3_per_eV = kappa / _ase.GPa
    value = temperature * volume * alpha**2 / kappa_A3_per_eV / KB_EV_PER_K
    error = abs(value) * math.sqrt((2 * d_alpha / alpha) ** 2 + (d_kappa / kappa) ** 2 + (d_volume / volume) ** 2)
    return Estimate(value, error)


def _value_error(x) -> tuple[float, float]:
    return float(x), float(getattr(x, "error", 0.0))

