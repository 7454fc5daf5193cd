"""Combining heat capacities from several runs: independent replicas, and the finite-size extrapolation.

:func:`average_replicas` averages independent runs of one state point; :func:`fit_finite_size` fits
C_V/N = c_∞ + b/N over several supercells by weighted least squares and returns c_∞ with its error.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mlpot.analysis.noise import NoiseVariance
from mlpot.analysis.thermo import GAS_CONSTANT_J_PER_MOL_K, Estimate, HeatCapacityResult

__all__ = ["FiniteSizeFit", "average_replicas", "fit_finite_size"]


def average_replicas(results: Sequence[HeatCapacityResult]) -> HeatCapacityResult:
    """Average the estimates of independent replicas of the same system and state point.

    The weights are equal: inverse-variance weights would be biased, because a fluctuation estimate's error
    grows with the estimate itself. Error = √(Σ σ_i²)/n.

    Args:
        results: estimates from independent runs (same ensemble, cell and temperature).

    Returns:
        A :class:`HeatCapacityResult` with ``n_replicas`` = len(results) and no per-series statistics.
    """
    results = list(results)
    if not results:
        raise ValueError("average_replicas needs at least one result")
    first = results[0]
    for r in results[1:]:
        if r.ensemble != first.ensemble or r.n_atoms != first.n_atoms or r.n_dof != first.n_dof:
            raise ValueError("replicas must share the ensemble, the number of atoms and the degrees of freedom")
    n = len(results)

    def mean_and_error(values, errors):
        return float(np.mean(values)), float(np.sqrt(np.sum(np.square(errors))) / n)

    value, error = mean_and_error([r.value for r in results], [r.error for r in results])
    raw_value, raw_error = mean_and_error([r.raw_value for r in results], [r.raw_error for r in results])
    temperature, temperature_error = mean_and_error(
        [r.temperature_K for r in results], [r.temperature_error_K for r in results]
    )
    variance, variance_error = mean_and_error(
        [r.fluctuation_variance_eV2 for r in results], [r.fluctuation_variance_error_eV2 for r in results]
    )
    noise_value, noise_error = mean_and_error([r.noise.value for r in results], [r.noise.error for r in results])
    return dataclasses.replace(
        first,
        value=value,
        error=error,
        raw_value=raw_value,
        raw_error=raw_error,
        temperature_K=temperature,
        temperature_error_K=temperature_error,
        fluctuation_variance_eV2=variance,
        fluctuation_variance_error_eV2=variance_error,
        noise=NoiseVariance(noise_value, noise_error, first.noise.source),
        statistics=None,
        n_replicas=sum(r.n_replicas for r in results),
    )


@dataclass(frozen=True)
class FiniteSizeFit:
    """Weighted least-squares fit of C_V/N = c_∞ + b/N over several cell sizes.

    Attributes:
        value, error: c_∞ in k_B per atom and its 1σ error.
        slope, slope_error: b in k_B (per cell) and its 1σ error.
        covariance: [2, 2] covariance of (c_∞, b).
        chi2, dof: χ² of the fit and its degrees of freedom (sizes − 2).
        errors_scaled: whether the parameter errors were scaled by √(χ²/dof) because χ²/dof > 1.
        n_atoms, per_atom, per_atom_errors: the data that were fitted.
    """

    value: float
    error: float
    slope: float
    slope_error: float
    covariance: tuple[tuple[float, float], tuple[float, float]]
    chi2: float
    dof: int
    errors_scaled: bool
    n_atoms: tuple[int, ...]
    per_atom: tuple[float, ...]
    per_atom_errors: tuple[float, ...]

    @property
    def c_infinity(self) -> Estimate:
        """c_∞ in k_B per atom."""
        return Estimate(self.value, self.error)

    @property
    def J_per_mol_K(self) -> Estimate:
        """c_∞ in J/(mol·K) per mole of atoms."""
        return Estimate(self.value * GAS_CONSTANT_J_PER_MOL_K, self.error * GAS_CONSTANT_J_PER_MOL_K)

    def predict(self, n_atoms) -> tuple[np.ndarray, np.ndarray]:
        """Fitted C_V/N at ``n_atoms`` (k_B per atom) and its 1σ band from the parameter covariance."""
        n = np.asarray(n_atoms, dtype=np.float64)
        design = np.stack([np.ones_like(n), 1.0 / n], axis=-1)
        cov = np.asarray(self.covariance)
        value = design @ np.array([self.value, self.slope])
        band = np.sqrt(np.einsum("...i,ij,...j->...", design, cov, design))
        return value, band

    def as_dict(self) -> dict:
        """Plain-number summary for JSON."""
        return {
            "c_inf_kB_per_atom": {"value": self.value, "error": self.error},
            "c_inf_J_per_mol_K": dict(zip(("value", "error"), self.J_per_mol_K)),
            "slope_kB": {"value": self.slope, "error": self.slope_error},
            "chi2": self.chi2,
            "dof": self.dof,
            "errors_scaled": self.errors_scaled,
            "n_atoms": list(self.n_atoms),
            "kB_per_atom": list(self.per_atom),
            "kB_per_atom_error": list(self.per_atom_errors),
        }


def fit_finite_size(n_atoms, per_atom=None, per_atom_errors=None, scale_errors: bool = True) -> FiniteSizeFit:
    """Extrapolate a per-atom heat capacity to the infinite cell: C_V/N = c_∞ + b/N.

    Weighted least squares with weights 1/σ_i². When χ²/dof > 1 (scatter beyond the error bars, e.g. a
    1/N² term), the parameter errors are scaled by √(χ²/dof) if ``scale_errors``; they are never shrunk.

    Args:
        n_atoms: [k] atoms in each cell (k ≥ 2 distinct sizes); or a sequence of :class:`HeatCapacityResult`
            that know their n_atoms, with the next two arguments left out.
        per_atom: [k] C_V/N in k_B per atom.
        per_atom_errors: [k] 1σ errors of ``per_atom`` (all > 0).
        scale_errors: apply the χ²/dof scaling.

    Returns:
        :class:`FiniteSizeFit`.
    """
    if per_atom is None and per_atom_errors is None:
        results = list(n_atoms)
        if not all(isinstance(r, HeatCapacityResult) for r in results):
            raise ValueError("give n_atoms, per_atom and per_atom_errors, or a sequence of HeatCapacityResult")
        n_atoms = [r._require_atoms() for r in results]
        per_atom = [r.per_atom.value for r in results]
        per_atom_errors = [r.per_atom.error for r in results]
    elif per_atom is None or per_atom_errors is None:
        raise ValueError("give both per_atom and per_atom_errors")
    n = np.asarray(n_atoms, dtype=np.float64)
    y = np.asarray(per_atom, dtype=np.float64)
    sigma = np.asarray(per_atom_errors, dtype=np.float64)
    if not (n.ndim == y.ndim == sigma.ndim == 1 and n.size == y.size == sigma.size):
        raise ValueError("n_atoms, per_atom and per_atom_errors must be 1-D and of one length")
    if np.unique(n).size < 2:
        raise ValueError("the finite-size fit needs at least two different cell sizes")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(sigma)) and np.all(sigma > 0.0) and np.all(n > 0)):
        raise ValueError("per-atom values must be finite, errors > 0 and n_atoms > 0")
    design = np.stack([np.ones_like(n), 1.0 / n], axis=1)
    weights = 1.0 / sigma**2
    normal = design.T @ (weights[:, None] * design)
    covariance = np.linalg.inv(normal)
    params = covariance @ (design.T @ (weights * y))
    residual = (y - design @ params) / sigma
    chi2 = float(residual @ residual)
    dof = int(n.size - 2)
    scaled = bool(scale_errors and dof > 0 and chi2 / dof > 1.0)
    if scaled:
        covariance = covariance * (chi2 / dof)
    return FiniteSizeFit(
        value=float(params[0]),
        error=float(math.sqrt(covariance[0, 0])),
        slope=float(params[1]),
        slope_error=float(math.sqrt(covariance[1, 1])),
        covariance=tuple(tuple(float(c) for c in row) for row in covariance),
        chi2=chi2,
        dof=dof,
        errors_scaled=scaled,
        n_atoms=tuple(int(v) for v in n),
        per_atom=tuple(float(v) for v in y),
        per_atom_errors=tuple(float(v) for v in sigma),
    )
