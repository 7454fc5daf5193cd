"""Analysis of trajectories: heat capacity from energy fluctuations, block-averaged error bars, plots.

Public API:

* :func:`heat_capacity_canonical`, :func:`heat_capacity_microcanonical` → :class:`HeatCapacityResult`
  (and :func:`heat_capacity_configurational`, the lower-variance canonical estimator from U alone);
* model-noise variance: :func:`noise_variance_from_committee`, :func:`noise_variance_from_rmse`;
* finite size: :func:`fit_finite_size`; independent replicas: :func:`average_replicas`;
* error bars of correlated series (reusable anywhere): :func:`block_average` (mean and variance with
  errors), :func:`mean_error`, :func:`integrated_autocorrelation_time`, :func:`blocking_levels`.
"""

from mlpot.analysis.blocking import (
    AutocorrelationTime,
    BlockAverage,
    BlockingLevel,
    InsufficientSamplingError,
    MeanError,
    block_average,
    blocking_levels,
    integrated_autocorrelation_time,
    mean_error,
)
from mlpot.analysis.thermo import (
    GAS_CONSTANT_J_PER_MOL_K,
    Estimate,
    FiniteSizeFit,
    HeatCapacityResult,
    NoiseVariance,
    NoiseVarianceTooLargeError,
    average_replicas,
    fit_finite_size,
    heat_capacity_canonical,
    heat_capacity_configurational,
    heat_capacity_microcanonical,
    noise_variance_from_committee,
    noise_variance_from_rmse,
)

__all__ = [
    "AutocorrelationTime",
    "BlockAverage",
    "BlockingLevel",
    "Estimate",
    "FiniteSizeFit",
    "GAS_CONSTANT_J_PER_MOL_K",
    "HeatCapacityResult",
    "InsufficientSamplingError",
    "MeanError",
    "NoiseVariance",
    "NoiseVarianceTooLargeError",
    "average_replicas",
    "block_average",
    "blocking_levels",
    "fit_finite_size",
    "heat_capacity_canonical",
    "heat_capacity_configurational",
    "heat_capacity_microcanonical",
    "integrated_autocorrelation_time",
    "mean_error",
    "noise_variance_from_committee",
    "noise_variance_from_rmse",
]
