"""Heat capacity from energy fluctuations, with model-noise and finite-size corrections.

Estimators (each takes a 1-D, equilibrated, correlated time series; errors are 1σ and come from
:mod:`mlpot.analysis.blocking`, which measures the statistical inefficiency of the series):

* canonical (NVT): C_V = Var(E)/(k_B T²), with E = K + U the total energy of the simulation cell;
* canonical, configurational part only: C_V/k_B = f/2 + Var(U)/(k_B T)² (the kinetic part is exact);
* microcanonical (NVE), Lebowitz, Percus & Verlet, Phys. Rev. 153, 250 (1967):
  C_V/k_B = (f/2) / (1 − f Var(K)/(2⟨K⟩²)), with f = 3N − n_constraints kinetic degrees of freedom.

Model noise. If a potential's energies carry noise of variance σ² uncorrelated with the configuration,
Var(E_model) = Var(E) + σ², and the canonical estimate is biased up by σ²/(k_B T²). The corrected value
subtracts σ², with the uncertainty of σ² propagated. σ² comes from a committee's disagreement along the
trajectory (:func:`noise_variance_from_committee`) or from a validation RMSE
(:func:`noise_variance_from_rmse`). A σ² larger than the raw variance raises
:class:`NoiseVarianceTooLargeError`: it is reported, never turned into a negative heat capacity.
The microcanonical estimator uses kinetic energies only, which energy noise does not touch.

Finite size. :func:`fit_finite_size` fits C_V/N = c_∞ + b/N over several supercells by weighted least
squares and returns c_∞ with its error.

Units. ``value`` and ``error`` are in k_B per simulation cell; ``per_atom`` in k_B per atom;
``J_per_mol_K`` per mole of atoms (k_B per atom × R); ``J_per_g_K`` per gram (needs the cell's mass).
The derivations are written out in docs/thermodynamics.md.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import units as _ase

from mlpot.analysis.blocking import MIN_BLOCKS, BlockAverage, as_series, block_average, mean_error
from mlpot.units import KB_EV_PER_K

__all__ = [
    "Estimate",
    "FiniteSizeFit",
    "HeatCapacityResult",
    "NoiseVariance",
    "NoiseVarianceTooLargeError",
    "GAS_CONSTANT_J_PER_MOL_K",
    "average_replicas",
    "fit_finite_size",
    "heat_capacity_canonical",
    "heat_capacity_configurational",
    "heat_capacity_microcanonical",
    "noise_variance_from_committee",
    "noise_variance_from_rmse",
]

#: Molar gas constant R = N_A k_B in J/(mol·K), from ase.units.
GAS_CONSTANT_J_PER_MOL_K: float = _ase._k * _ase._Nav
#: k_B in J/K and one atomic mass unit in grams, from ase.units.
_KB_J_PER_K: float = _ase._k
_AMU_G: float = _ase._amu * 1e3


class NoiseVarianceTooLargeError(ValueError):
    """The model-noise variance is at least the raw energy variance: no positive heat capacity is left."""


class Estimate(float):
    """A float that carries its 1σ error: ``x.value`` (the float itself) and ``x.error``.

    It behaves as a plain float in arithmetic and comparisons (the error is then dropped), so
    ``result.per_atom`` can be used as a number while ``result.per_atom.error`` stays at hand.
    """

    error: float

    def __new__(cls, value: float, error: float) -> Estimate:
        obj = super().__new__(cls, value)
        obj.error = float(error)
        return obj

    @property
    def value(self) -> float:
        """The central value as a plain float."""
        return float(self)

    def __iter__(self):
        """Unpack as ``value, error = estimate``."""
        return iter((float(self), self.error))

    def __reduce__(self):
        return (Estimate, (float(self), self.error))

    def __repr__(self) -> str:
        return f"Estimate({float(self)!r}, error={self.error!r})"

    def __str__(self) -> str:
        return format_value_error(float(self), self.error)


def format_value_error(value: float, error: float) -> str:
    """'value ± error' with two significant digits in the error (e.g. '3.012 ± 0.045')."""
    if not math.isfinite(error) or error <= 0.0:
        return f"{value:.6g}"
    digits = max(0, 1 - int(math.floor(math.log10(error))))
    return f"{value:.{digits}f} ± {error:.{digits}f}"


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


@dataclass(frozen=True)
class HeatCapacityResult:
    """A heat capacity with its 1σ error, raw and noise-corrected, and its conversions.

    Attributes:
        value: C_V in k_B per simulation cell (noise-corrected where a correction was applied).
        error: its 1σ statistical error (noise-variance uncertainty included).
        raw_value, raw_error: before the model-noise correction.
        temperature_K, temperature_error_K: the temperature (given for canonical; kinetic 2⟨K⟩/(f k_B),
            with error, for microcanonical).
        ensemble: "canonical" or "microcanonical".
        fluctuation_variance_eV2, fluctuation_variance_error_eV2: Var(E) or Var(K) of the series.
        noise: the model-noise variance that was subtracted (zero for none).
        n_atoms: atoms in the cell (``None`` if not given; needed for per-atom and molar values).
        mass_amu: total mass of the cell (``None`` if not given; needed for J/(g·K)).
        n_dof: kinetic degrees of freedom used (microcanonical; ``None`` for canonical, where the formula
            needs none).
        n_constraints: constraints subtracted from 3N (microcanonical).
        statistics: blocking statistics of the input series.
        n_replicas: number of independent runs averaged into this result.
    """

    value: float
    error: float
    raw_value: float
    raw_error: float
    temperature_K: float
    temperature_error_K: float
    ensemble: str
    fluctuation_variance_eV2: float
    fluctuation_variance_error_eV2: float
    noise: NoiseVariance
    n_atoms: int | None = None
    mass_amu: float | None = None
    n_dof: int | None = None
    n_constraints: int | None = None
    statistics: BlockAverage | None = None
    n_replicas: int = 1

    # --- conversions -------------------------------------------------------------------------
    def _require_atoms(self) -> int:
        if self.n_atoms is None:
            raise ValueError(
                "this heat capacity does not know its number of atoms: pass n_atoms= to the estimator "
                "or use result.with_system(n_atoms=...)"
            )
        return self.n_atoms

    @property
    def corrected(self) -> Estimate:
        """C_V in k_B per cell after the model-noise correction (same as value ± error)."""
        return Estimate(self.value, self.error)

    @property
    def raw(self) -> Estimate:
        """C_V in k_B per cell before the model-noise correction."""
        return Estimate(self.raw_value, self.raw_error)

    @property
    def per_atom(self) -> Estimate:
        """C_V in k_B per atom (corrected)."""
        n = self._require_atoms()
        return Estimate(self.value / n, self.error / n)

    @property
    def raw_per_atom(self) -> Estimate:
        """C_V in k_B per atom before the model-noise correction."""
        n = self._require_atoms()
        return Estimate(self.raw_value / n, self.raw_error / n)

    @property
    def J_per_mol_K(self) -> Estimate:
        """C_V in J/(mol·K) per mole of atoms (corrected)."""
        per_atom = self.per_atom
        return Estimate(per_atom.value * GAS_CONSTANT_J_PER_MOL_K, per_atom.error * GAS_CONSTANT_J_PER_MOL_K)

    @property
    def J_per_g_K(self) -> Estimate:
        """C_V in J/(g·K): the cell's heat capacity over the cell's mass (corrected)."""
        if self.mass_amu is None:
            raise ValueError(
                "J/(g·K) needs the mass of the simulation cell: pass mass_amu= to the estimator or use "
                "result.with_system(mass_amu=atoms.get_masses().sum())"
            )
        factor = _KB_J_PER_K / (self.mass_amu * _AMU_G)
        return Estimate(self.value * factor, self.error * factor)

    def with_system(self, n_atoms: int | None = None, mass_amu: float | None = None, atoms=None) -> HeatCapacityResult:
        """Return a copy that knows its cell size and mass (from ``atoms`` or given explicitly)."""
        if atoms is not None:
            n_atoms = len(atoms) if n_atoms is None else n_atoms
            mass_amu = float(np.sum(atoms.get_masses())) if mass_amu is None else mass_amu
        return dataclasses.replace(
            self,
            n_atoms=self.n_atoms if n_atoms is None else _check_atoms(n_atoms),
            mass_amu=self.mass_amu if mass_amu is None else _check_mass(mass_amu),
        )

    def as_dict(self) -> dict:
        """Plain-number summary for JSON: every unit that the cell's data allow, raw and corrected."""
        out = {
            "ensemble": self.ensemble,
            "temperature_K": self.temperature_K,
            "temperature_error_K": self.temperature_error_K,
            "n_atoms": self.n_atoms,
            "mass_amu": self.mass_amu,
            "n_dof": self.n_dof,
            "n_constraints": self.n_constraints,
            "n_replicas": self.n_replicas,
            "kB_per_cell": {"value": self.value, "error": self.error},
            "kB_per_cell_raw": {"value": self.raw_value, "error": self.raw_error},
            "fluctuation_variance_eV2": {
                "value": self.fluctuation_variance_eV2,
                "error": self.fluctuation_variance_error_eV2,
            },
            "noise_variance_eV2": {"value": self.noise.value, "error": self.noise.error, "source": self.noise.source},
        }
        if self.n_atoms is not None:
            out["kB_per_atom"] = dict(zip(("value", "error"), self.per_atom))
            out["kB_per_atom_raw"] = dict(zip(("value", "error"), self.raw_per_atom))
            out["J_per_mol_K"] = dict(zip(("value", "error"), self.J_per_mol_K))
        if self.mass_amu is not None:
            out["J_per_g_K"] = dict(zip(("value", "error"), self.J_per_g_K))
        if self.statistics is not None:
            out["statistics"] = self.statistics.as_dict()
        return out

    def __str__(self) -> str:
        text = f"C_V = {format_value_error(self.value, self.error)} k_B per cell ({self.ensemble}"
        text += f", T = {format_value_error(self.temperature_K, self.temperature_error_K)} K"
        if self.n_dof is not None:
            text += f", {self.n_dof} kinetic degrees of freedom"
        text += ")"
        if self.noise.value > 0.0:
            text += f"; raw {format_value_error(self.raw_value, self.raw_error)}"
        if self.n_atoms is not None:
            text += f"; {self.per_atom} k_B/atom, {self.J_per_mol_K} J/(mol·K)"
        if self.mass_amu is not None:
            text += f", {self.J_per_g_K} J/(g·K)"
        return text


def _check_atoms(n_atoms) -> int:
    if int(n_atoms) != n_atoms or n_atoms < 1:
        raise ValueError(f"n_atoms must be a positive integer, got {n_atoms!r}")
    return int(n_atoms)


def _check_mass(mass_amu) -> float:
    mass = float(mass_amu)
    if not (math.isfinite(mass) and mass > 0.0):
        raise ValueError(f"mass_amu must be positive, got {mass_amu!r}")
    return mass


def _check_temperature(temperature_K) -> float:
    temperature = float(temperature_K)
    if not math.isfinite(temperature) or temperature <= 0.0:
        raise ValueError(f"temperature_K must be a finite temperature > 0 K, got {temperature_K!r}")
    return temperature


def heat_capacity_canonical(
    total_energy_eV,
    temperature_K: float,
    noise_variance_eV2: float | tuple[float, float] | NoiseVariance = 0.0,
    *,
    n_atoms: int | None = None,
    mass_amu: float | None = None,
    min_blocks: int = MIN_BLOCKS,
) -> HeatCapacityResult:
    """Canonical heat capacity C_V = (Var(E) − σ²)/(k_B T²) from an NVT total-energy series.

    Args:
        total_energy_eV: [n] total energy K + U of the simulation cell (eV), sampled along an equilibrated
            canonical trajectory (correlated samples are fine; the correlation is measured).
        temperature_K: the thermostat's temperature (K).
        noise_variance_eV2: σ² of the model's energy noise for this cell: a float (error 0), a
            (σ², error) pair, or a :class:`NoiseVariance` (see :func:`noise_variance_from_committee`,
            :func:`noise_variance_from_rmse`). 0 for no correction.
        n_atoms: atoms in the cell, for per-atom and molar values (optional).
        mass_amu: total mass of the cell, for J/(g·K) (optional).
        min_blocks: fewest effective samples / plateau blocks accepted (see :func:`block_average`).

    Returns:
        :class:`HeatCapacityResult` in k_B per cell, raw and noise-corrected.

    Raises:
        ValueError: NaN/inf energies, T ≤ 0, a series that is not 1-D or is constant.
        InsufficientSamplingError: too short a series for block averaging.
        NoiseVarianceTooLargeError: σ² ≥ Var(E).
    """
    return _fluctuation_heat_capacity(
        total_energy_eV, temperature_K, noise_variance_eV2, 0.0, "canonical", None, n_atoms, mass_amu, min_blocks,
        name="total_energy_eV",
    )


def heat_capacity_configurational(
    potential_energy_eV,
    temperature_K: float,
    n_dof_kinetic: int,
    noise_variance_eV2: float | tuple[float, float] | NoiseVariance = 0.0,
    *,
    n_atoms: int | None = None,
    mass_amu: float | None = None,
    min_blocks: int = MIN_BLOCKS,
) -> HeatCapacityResult:
    """Canonical heat capacity from potential-energy fluctuations: C_V/k_B = f/2 + (Var(U) − σ²)/(k_B T)².

    In the canonical ensemble the momenta are independent of the positions and Maxwellian, so the kinetic
    energy contributes exactly f/2 (f kinetic degrees of freedom: 3N under Langevin, 3N − 3 when the total
    momentum is conserved, as with Bussi) and Var(E) = Var(K) + Var(U). Estimating only the configurational
    part cuts the statistical error of the total-energy estimator for a near-harmonic solid (Var(K) is about
    half of Var(E) and carries no information; measured: 0.5–0.75 of the error) and is immune to the
    integrator's kinetic-energy bias.

    Args:
        potential_energy_eV: [n] potential energy U of the cell (eV) along an equilibrated canonical run.
        temperature_K: the thermostat's temperature (K).
        n_dof_kinetic: f.
        noise_variance_eV2: as in :func:`heat_capacity_canonical` (the noise is in U).
        n_atoms, mass_amu, min_blocks: as in :func:`heat_capacity_canonical`.

    Returns:
        :class:`HeatCapacityResult` with ensemble "canonical (configurational)" and ``n_dof`` = f.
    """
    if int(n_dof_kinetic) != n_dof_kinetic or n_dof_kinetic < 0:
        raise ValueError(f"n_dof_kinetic must be a non-negative integer, got {n_dof_kinetic!r}")
    return _fluctuation_heat_capacity(
        potential_energy_eV, temperature_K, noise_variance_eV2, 0.5 * int(n_dof_kinetic),
        "canonical (configurational)", int(n_dof_kinetic), n_atoms, mass_amu, min_blocks, name="potential_energy_eV",
    )


def _fluctuation_heat_capacity(
    energy_eV, temperature_K, noise_variance_eV2, offset, ensemble, n_dof, n_atoms, mass_amu, min_blocks, name
) -> HeatCapacityResult:
    """C_V/k_B = offset + (Var(series) − σ²)/(k_B T)², with the checks and errors of both canonical estimators."""
    temperature = _check_temperature(temperature_K)
    noise = NoiseVariance.coerce(noise_variance_eV2)
    stats = block_average(energy_eV, min_blocks=min_blocks, name=name)
    kT2 = (KB_EV_PER_K * temperature) ** 2
    if noise.value >= stats.variance:
        raise NoiseVarianceTooLargeError(
            f"the model-noise variance σ² = {noise.value:.4g} ± {noise.error:.2g} eV² is not smaller than the raw "
            f"energy variance Var = {stats.variance:.4g} ± {stats.variance_error:.2g} eV² of {name} at "
            f"{temperature:g} K (raw C_V = {offset + stats.variance / kT2:.4g} k_B per cell): the corrected "
            "fluctuation would be ≤ 0. The model's energy noise swamps the thermal fluctuations; use a more "
            "accurate model, a larger cell or a higher temperature, or the microcanonical estimator "
            "mlpot.analysis.heat_capacity_microcanonical on an NVE run (kinetic energies carry no model noise)."
        )
    corrected_error = math.hypot(stats.variance_error, noise.error)
    return HeatCapacityResult(
        value=offset + (stats.variance - noise.value) / kT2,
        error=corrected_error / kT2,
        raw_value=offset + stats.variance / kT2,
        raw_error=stats.variance_error / kT2,
        temperature_K=temperature,
        temperature_error_K=0.0,
        ensemble=ensemble,
        fluctuation_variance_eV2=stats.variance,
        fluctuation_variance_error_eV2=stats.variance_error,
        noise=noise,
        n_atoms=None if n_atoms is None else _check_atoms(n_atoms),
        mass_amu=None if mass_amu is None else _check_mass(mass_amu),
        n_dof=n_dof,
        statistics=stats,
    )


def heat_capacity_microcanonical(
    kinetic_energy_eV,
    n_atoms: int,
    n_constraints: int = 3,
    *,
    mass_amu: float | None = None,
    min_blocks: int = MIN_BLOCKS,
) -> HeatCapacityResult:
    """Microcanonical heat capacity from NVE kinetic-energy fluctuations (Lebowitz–Percus–Verlet).

    With f = 3N − n_constraints kinetic degrees of freedom and the kinetic temperature k_B T = 2⟨K⟩/f,
    Lebowitz, Percus & Verlet, Phys. Rev. 153, 250 (1967) give ⟨δK²⟩ = (f/2)(k_B T)² (1 − f k_B/(2 C_V)),
    hence C_V/k_B = (f/2)/(1 − f Var(K)/(2⟨K⟩²)). It is exact to leading order in 1/f: a finite cell's value
    differs from the canonical one by O(1) k_B per cell (docs/thermodynamics.md works the harmonic case).

    Args:
        kinetic_energy_eV: [n] kinetic energy of the cell (eV) along an equilibrated NVE trajectory.
        n_atoms: atoms in the cell.
        n_constraints: degrees of freedom removed from 3N (3 for a fixed centre-of-mass momentum, the
            usual NVE case; more for constrained bonds or frozen atoms).
        mass_amu: total mass of the cell, for J/(g·K) (optional).
        min_blocks: fewest effective samples / plateau blocks accepted.

    Returns:
        :class:`HeatCapacityResult` in k_B per cell; ``temperature_K`` is the kinetic temperature and
        ``n_dof`` the degrees of freedom used. There is no noise correction (raw = corrected).

    Raises:
        ValueError: NaN/inf or non-positive kinetic energies, bad n_atoms/n_constraints, or kinetic
            fluctuations at or above the canonical value (a thermostat left on, or no equilibrium).
        InsufficientSamplingError: too short a series for block averaging.
    """
    n_atoms = _check_atoms(n_atoms)
    if int(n_constraints) != n_constraints or not 0 <= n_constraints < 3 * n_atoms:
        raise ValueError(f"n_constraints must be an integer in [0, 3N) = [0, {3 * n_atoms}), got {n_constraints!r}")
    f = 3 * n_atoms - int(n_constraints)
    series = as_series(kinetic_energy_eV, name="kinetic_energy_eV")
    if np.any(series <= 0.0):
        raise ValueError("kinetic_energy_eV must be positive at every sample")
    stats = block_average(series, min_blocks=min_blocks, name="kinetic_energy_eV")
    mean, variance = stats.mean, stats.variance
    ratio = f * variance / (2.0 * mean**2)  # = Var(K)/Var_canonical(K); 1 − f k_B/(2 C_V) in LPV
    if ratio >= 1.0:
        raise ValueError(
            f"kinetic-energy fluctuations are at or above the canonical value (f Var(K)/(2⟨K⟩²) = {ratio:.3f} ≥ 1, "
            f"f = {f}): this is not an equilibrated microcanonical run (is a thermostat on? are n_constraints "
            "right?), and the Lebowitz–Percus–Verlet formula gives no finite heat capacity"
        )
    value = 0.5 * f / (1.0 - ratio)
    # Linear propagation; the covariance of ⟨K⟩ and Var(K) vanishes for a symmetric distribution of K and
    # the ⟨K⟩ term is O(1/f) smaller than the Var(K) term anyway.
    d_variance = value * (f / (2.0 * mean**2)) / (1.0 - ratio)
    d_mean = -value * 2.0 * ratio / ((1.0 - ratio) * mean)
    error = math.hypot(d_variance * stats.variance_error, d_mean * stats.mean_error)
    kinetic_temperature = 2.0 * mean / (f * KB_EV_PER_K)
    return HeatCapacityResult(
        value=value,
        error=error,
        raw_value=value,
        raw_error=error,
        temperature_K=kinetic_temperature,
        temperature_error_K=2.0 * stats.mean_error / (f * KB_EV_PER_K),
        ensemble="microcanonical",
        fluctuation_variance_eV2=variance,
        fluctuation_variance_error_eV2=stats.variance_error,
        noise=NoiseVariance(0.0),
        n_atoms=n_atoms,
        mass_amu=None if mass_amu is None else _check_mass(mass_amu),
        n_dof=f,
        n_constraints=int(n_constraints),
        statistics=stats,
    )


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
        variance *= _check_atoms(n_atoms) / _check_atoms(validation_n_atoms)
    error = 0.0
    if n_validation is not None:
        if int(n_validation) != n_validation or n_validation < 2:
            raise ValueError(f"n_validation must be an integer ≥ 2, got {n_validation!r}")
        error = variance * math.sqrt(2.0 / n_validation)
    return NoiseVariance(variance, error, "validation RMSE")


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
