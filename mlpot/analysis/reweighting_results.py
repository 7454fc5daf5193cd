"""What reweighting a model's samples returns: the reference's heat capacity and a committee's.

The estimators are in :mod:`mlpot.analysis.reweighting`; these are their results, with the measured
quantities that say whether to trust them. Units: k_B per simulation cell; energies in eV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlpot.analysis.thermo import Estimate, format_value_error

__all__ = ["CUMULANT_ASSUMPTION", "CommitteeHeatCapacity", "ReweightedHeatCapacity"]

CUMULANT_ASSUMPTION = (
    "second-order cumulant: (E_model, δ) jointly Gaussian on the model's samples, so reweighting shifts means "
    "but not variances and Var_ref(E_ref) = Var_model(E_ref); biased when δ is skewed (e.g. δ ∝ U)"
)


@dataclass(frozen=True)
class ReweightedHeatCapacity:
    """The reference's canonical C_V from the model's frames, with what the reweighting measured.

    Attributes:
        value, error: C_V of the reference by reweighting, k_B per cell, 1σ (block bootstrap).
        effective_sample_size: Kish ESS of the weights (≤ n_frames).
        n_frames: frames used.
        temperature_K: the temperature of the model's run.
        model_value, model_error: the model's own C_V on the same frames, Var(K + U_model)/(k_B T)², or
            f/2 + Var(U_model)/(k_B T)² with ``n_dof_kinetic``.
        cumulant_value, cumulant_error: the second-order cumulant estimate of the reference's C_V.
        cumulant_assumption: what that estimate assumes.
        error_mean_eV: ⟨δ⟩ on the model's frames, δ = U_ref − U_model.
        error_variance_eV2: measured Var(δ) (what the white-noise formula would subtract).
        error_energy_covariance_eV2: measured Cov(δ, U_model); zero if δ were white noise.
        model_potential_variance_eV2: Var(U_model) on the frames.
        white_noise_value: Var(K + U_model) − Var(δ) over (k_B T)²: the white-noise approximation, for comparison.
        block_length: frames per bootstrap block; n_bootstrap: resamples.
        n_atoms: atoms in the cell (optional, for per-atom values).
        n_dof_kinetic: f when the estimates are configurational (f/2 + Var(U)/(k_B T)²), else None.
    """

    value: float
    error: float
    effective_sample_size: float
    n_frames: int
    temperature_K: float
    model_value: float
    model_error: float
    cumulant_value: float
    cumulant_error: float
    error_mean_eV: float
    error_variance_eV2: float
    error_energy_covariance_eV2: float
    white_noise_value: float
    block_length: int
    n_bootstrap: int
    model_potential_variance_eV2: float
    n_atoms: int | None = None
    cumulant_assumption: str = CUMULANT_ASSUMPTION
    n_dof_kinetic: int | None = None

    @property
    def reference(self) -> Estimate:
        """C_V of the reference, k_B per cell."""
        return Estimate(self.value, self.error)

    @property
    def model(self) -> Estimate:
        """C_V of the model on the same frames, k_B per cell."""
        return Estimate(self.model_value, self.model_error)

    @property
    def per_atom(self) -> Estimate:
        """C_V of the reference in k_B per atom."""
        if self.n_atoms is None:
            raise ValueError("pass n_atoms= to heat_capacity_reweighted for per-atom values")
        return Estimate(self.value / self.n_atoms, self.error / self.n_atoms)

    @property
    def error_energy_correlation(self) -> float:
        """Corr(δ, U_model) implied by the measured covariance (0 for white noise)."""
        scale = math.sqrt(self.error_variance_eV2 * self.model_potential_variance_eV2)
        return self.error_energy_covariance_eV2 / scale if scale > 0 else 0.0

    def as_dict(self) -> dict:
        """Plain numbers for JSON."""
        out = {
            "kB_per_cell_reference": {"value": self.value, "error": self.error},
            "kB_per_cell_model": {"value": self.model_value, "error": self.model_error},
            "kB_per_cell_cumulant": {"value": self.cumulant_value, "error": self.cumulant_error,
                                     "assumption": self.cumulant_assumption},
            "kB_per_cell_white_noise_approximation": self.white_noise_value,
            "effective_sample_size": self.effective_sample_size,
            "n_frames": self.n_frames,
            "temperature_K": self.temperature_K,
            "model_error_mean_eV": self.error_mean_eV,
            "model_error_variance_eV2": self.error_variance_eV2,
            "model_error_energy_covariance_eV2": self.error_energy_covariance_eV2,
            "model_error_energy_correlation": self.error_energy_correlation,
            "block_length_frames": self.block_length,
            "n_bootstrap": self.n_bootstrap,
            "n_atoms": self.n_atoms,
            "estimator": "total" if self.n_dof_kinetic is None else "configurational",
            "n_dof_kinetic": self.n_dof_kinetic,
        }
        if self.n_atoms is not None:
            out["kB_per_atom_reference"] = dict(zip(("value", "error"), self.per_atom))
        return out

    def __str__(self) -> str:
        return (
            f"C_V[reference] = {format_value_error(self.value, self.error)} k_B per cell by reweighting "
            f"(ESS {self.effective_sample_size:.0f} of {self.n_frames} frames); C_V[model] = "
            f"{format_value_error(self.model_value, self.model_error)}; cumulant "
            f"{format_value_error(self.cumulant_value, self.cumulant_error)}; "
            f"Var(δ) = {self.error_variance_eV2:.3g} eV², "
            f"Cov(δ, U) = {self.error_energy_covariance_eV2:.3g} eV²"
        )


@dataclass(frozen=True)
class CommitteeHeatCapacity:
    """C_V of a committee's members by reweighting the same frames: mean, statistical error, model spread.

    Attributes:
        value: mean over members of their reweighted C_V, k_B per cell.
        error: its 1σ statistical error (bootstrap, members resampled together).
        model_spread: standard deviation (ddof = 1) of the members' C_V: the model uncertainty.
        members: each member's :class:`ReweightedHeatCapacity`.
        model_value, model_error: C_V of the potential that drove the run (the committee mean) on the frames.
        effective_sample_size: the smallest ESS over members.
    """

    value: float
    error: float
    model_spread: float
    members: tuple[ReweightedHeatCapacity, ...]
    model_value: float
    model_error: float
    effective_sample_size: float

    def as_dict(self) -> dict:
        return {
            "kB_per_cell_members_mean": {"value": self.value, "error": self.error},
            "model_spread_kB_per_cell": self.model_spread,
            "kB_per_cell_model": {"value": self.model_value, "error": self.model_error},
            "min_effective_sample_size": self.effective_sample_size,
            "members": [m.as_dict() for m in self.members],
        }

    def __str__(self) -> str:
        return (
            f"C_V = {format_value_error(self.value, self.error)} (statistical) ± {self.model_spread:.2g} "
            f"(model spread, {len(self.members)} members) k_B per cell; the committee mean's own C_V "
            f"{format_value_error(self.model_value, self.model_error)}"
        )
