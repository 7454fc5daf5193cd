"""The white-noise approximation of a model's energy error, kept as an explicit, named approximation.

If the model's energy were the reference's plus noise uncorrelated with the configuration, its canonical
energy variance would be Var(E_ref) + σ², and subtracting σ² would give the reference's heat capacity. A
trained potential's error is not like that: it is a smooth function of the configuration, often correlated
with the energy (a softer or stiffer model), and MD with the model samples the *model's* Boltzmann
distribution, whose fluctuations are the model's heat capacity exactly. The principled route is
reweighting (:mod:`mlpot.analysis.reweighting`); σ² here only serves
``heat_capacity_canonical(..., error_variance_eV2=σ², assume_uncorrelated_error=True)``, and
:func:`mlpot.analysis.heat_capacity_reweighted` reports the measured Var(δ) and Cov(δ, U) that show whether
the assumption holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mlpot.analysis.blocking import MIN_BLOCKS, as_series, mean_error

__all__ = [
    "NoiseVariance",
    "NoiseVarianceTooLargeError",
    "noise_variance_from_committee",
    "noise_variance_from_rmse",
]


class NoiseVarianceTooLargeError(ValueError):
    """The model-noise variance is at least the raw energy variance: no positive heat capacity is left."""


@dataclass(frozen=True)
class NoiseVariance:
    """Variance σ² (eV²) of the noise in the model's total energy of the simulation cell, with its 1σ error.

    Attributes:
        value: σ² in eV².
        error: 1σ uncertainty of σ² in eV² (0 when unknown).
        source: where it came from ("given", "committee", "validation RMSE").
    """

    value: float
    error: float = 0.0
    source: str = "given"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.value) and self.value >= 0.0):
            raise ValueError(f"noise variance must be finite and ≥ 0 eV², got {self.value}")
        if not (math.isfinite(self.error) and self.error >= 0.0):
            raise ValueError(f"noise variance error must be finite and ≥ 0 eV², got {self.error}")

    @classmethod
    def coerce(cls, noise) -> NoiseVariance:
        """Accept a NoiseVariance, a float σ² (error 0) or a (σ², error) pair."""
        if isinstance(noise, NoiseVariance):
            return noise
        if isinstance(noise, (tuple, list)):
            if len(noise) != 2:
                raise ValueError("noise_variance_eV2 as a sequence must be (variance, error)")
            return cls(float(noise[0]), float(noise[1]))
        return cls(float(noise))


def noise_variance_from_committee(
    member_energies_eV=None,
    *,
    energy_std_eV=None,
    calibration_factor: float = 1.0,
    min_blocks: int = MIN_BLOCKS,
) -> NoiseVariance:
    """σ² of the model's energy noise from a committee's disagreement along the trajectory.

    σ² = α² ⟨s_t²⟩_t, with s_t² the variance (ddof = 1) of the members' total energies at frame t and α a
    calibration factor for the committee's spread (1 if uncalibrated). The committee spread is taken as the
    error of the prediction that drove the run, the usual reading of committee uncertainties (Imbalzano
    et al., J. Chem. Phys. 154, 074102 (2021)). Its error is the block-averaged standard error of the mean
    of s_t² along the (correlated) trajectory.

    Args:
        member_energies_eV: [n_members, n_frames] total energies of the cell predicted by each member on the
            same frames as the energy series (n_members ≥ 2).
        energy_std_eV: alternatively [n_frames] the committee's standard deviation per frame.
        calibration_factor: α.
        min_blocks: passed to the block averaging.

    Returns:
        :class:`NoiseVariance` with source "committee".
    """
    if (member_energies_eV is None) == (energy_std_eV is None):
        raise ValueError("give exactly one of member_energies_eV or energy_std_eV")
    if not (math.isfinite(calibration_factor) and calibration_factor > 0.0):
        raise ValueError(f"calibration_factor must be positive, got {calibration_factor!r}")
    if member_energies_eV is not None:
        if hasattr(member_energies_eV, "detach"):
            member_energies_eV = member_energies_eV.detach().cpu().numpy()
        members = np.asarray(member_energies_eV, dtype=np.float64)
        if members.ndim != 2 or members.shape[0] < 2:
            raise ValueError(f"member_energies_eV must be [n_members ≥ 2, n_frames], got shape {members.shape}")
        if not np.isfinite(members).all():
            raise ValueError("member_energies_eV holds NaN or inf")
        per_frame = members.var(axis=0, ddof=1)
    else:
        std = as_series(energy_std_eV, name="energy_std_eV")
        if np.any(std < 0.0):
            raise ValueError("energy_std_eV must be ≥ 0")
        per_frame = std**2
    per_frame = calibration_factor**2 * per_frame
    if np.all(per_frame == per_frame[0]):
        return NoiseVariance(float(per_frame[0]), 0.0, "committee")
    stats = mean_error(per_frame, min_blocks=min_blocks, name="committee variance per frame")
    return NoiseVariance(stats.mean, stats.error, "committee")


def noise_variance_from_rmse(
    energy_rmse_eV: float,
    *,
    n_validation: int | None = None,
    n_atoms: int | None = None,
    validation_n_atoms: int | None = None,
) -> NoiseVariance:
    """σ² of the model's energy noise from a validation RMSE of total energies.

    σ² = RMSE², scaled to the simulated cell as σ² · n_atoms/validation_n_atoms when both are given: model
    errors of a local potential are sums of per-atom errors, which add in variance if uncorrelated, so the
    noise variance is extensive. (An RMSE quoted per atom, r, on structures of M atoms is a total-energy
    RMSE of r·M.) RMSE² is an upper bound on the noise variance when the errors have a non-zero mean.

    Args:
        energy_rmse_eV: RMSE of the total energy on the validation structures (eV).
        n_validation: number of validation structures; gives the error σ²·√(2/n). Without it the error is 0.
        n_atoms: atoms in the simulated cell.
        validation_n_atoms: atoms in each validation structure.

    Returns:
        :class:`NoiseVariance` with source "validation RMSE".
    """
    rmse = float(energy_rmse_eV)
    if not (math.isfinite(rmse) and rmse >= 0.0):
        raise ValueError(f"energy_rmse_eV must be finite and ≥ 0, got {energy_rmse_eV!r}")
    variance = rmse**2
    if (n_atoms is None) != (validation_n_atoms is None):
        raise ValueError("give both n_atoms and validation_n_atoms to scale the RMSE, or neither")
    if n_atoms is not None:
        variance *= _positive_int(n_atoms, "n_atoms") / _positive_int(validation_n_atoms, "validation_n_atoms")
    error = 0.0
    if n_validation is not None:
        if int(n_validation) != n_validation or n_validation < 2:
            raise ValueError(f"n_validation must be an integer ≥ 2, got {n_validation!r}")
        error = variance * math.sqrt(2.0 / n_validation)
    return NoiseVariance(variance, error, "validation RMSE")




def _positive_int(value, name: str) -> int:
    if int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
