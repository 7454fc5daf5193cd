"""Analysis of trajectories: heat capacities of a model and of its reference, quantum corrections, NPT
response functions, phonons, block-averaged error bars, plots.

Public API:

* the model's own C_V from its samples: :func:`heat_capacity_canonical`, :func:`heat_capacity_configurational`,
  :func:`heat_capacity_microcanonical` → :class:`HeatCapacityResult`;
* the reference's C_V by reweighting the model's frames: :func:`heat_capacity_reweighted`; a committee's
  uncertainty: :func:`heat_capacity_committee` (``model_spread`` beside the statistical error);
* the white-noise approximation, explicit only: :func:`noise_variance_from_committee`,
  :func:`noise_variance_from_rmse` with ``assume_uncorrelated_error=True``;
* quantum correction: :func:`vibrational_density_of_states`, :func:`quantum_heat_capacity`,
  :func:`quantum_correction`;
* NPT: :func:`heat_capacity_isobaric`, :func:`thermal_expansion`, :func:`isothermal_compressibility`;
* phonons through phonopy: :mod:`mlpot.analysis.phonons` (optional dependency, imported on use);
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
from mlpot.analysis.combine import FiniteSizeFit, average_replicas, fit_finite_size
from mlpot.analysis.microcanonical import heat_capacity_microcanonical
from mlpot.analysis.noise import (
    NoiseVariance,
    NoiseVarianceTooLargeError,
    noise_variance_from_committee,
    noise_variance_from_rmse,
)
from mlpot.analysis.npt import (
    heat_capacity_difference,
    heat_capacity_isobaric,
    isothermal_compressibility,
    thermal_expansion,
)
from mlpot.analysis.reweighting import (
    CommitteeHeatCapacity,
    InsufficientOverlapError,
    ReweightedHeatCapacity,
    effective_sample_size,
    heat_capacity_committee,
    heat_capacity_reweighted,
)
from mlpot.analysis.thermo import (
    GAS_CONSTANT_J_PER_MOL_K,
    Estimate,
    HeatCapacityResult,
    heat_capacity_canonical,
    heat_capacity_configurational,
)
from mlpot.analysis.vdos import quantum_correction, quantum_heat_capacity, vibrational_density_of_states

__all__ = [
    "AutocorrelationTime",
    "BlockAverage",
    "BlockingLevel",
    "CommitteeHeatCapacity",
    "Estimate",
    "FiniteSizeFit",
    "GAS_CONSTANT_J_PER_MOL_K",
    "HeatCapacityResult",
    "InsufficientOverlapError",
    "InsufficientSamplingError",
    "MeanError",
    "NoiseVariance",
    "NoiseVarianceTooLargeError",
    "ReweightedHeatCapacity",
    "average_replicas",
    "block_average",
    "blocking_levels",
    "effective_sample_size",
    "fit_finite_size",
    "heat_capacity_canonical",
    "heat_capacity_committee",
    "heat_capacity_configurational",
    "heat_capacity_difference",
    "heat_capacity_isobaric",
    "isothermal_compressibility",
    "thermal_expansion",
    "heat_capacity_microcanonical",
    "heat_capacity_reweighted",
    "integrated_autocorrelation_time",
    "mean_error",
    "noise_variance_from_committee",
    "noise_variance_from_rmse",
    "quantum_correction",
    "quantum_heat_capacity",
    "vibrational_density_of_states",
]
