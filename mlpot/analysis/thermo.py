"""Heat capacity from energy fluctuations: the fluctuation estimators of one potential's own samples.

Estimators (each takes a 1-D, equilibrated, correlated time series; errors are 1σ and come from
:mod:`mlpot.analysis.blocking`, which measures the statistical inefficiency of the series):

* canonical (NVT): C_V = Var(E)/(k_B T²), with E = K + U the total energy of the simulation cell;
* canonical, configurational part only: C_V/k_B = f/2 + Var(U)/(k_B T)² (the kinetic part is exact);
* microcanonical (NVE), Lebowitz, Percus & Verlet, Phys. Rev. 153, 250 (1967):
  C_V/k_B = (f/2) / (1 − f Var(K)/(2⟨K⟩²)), with f the kinetic degrees of freedom of the run.

MD with a model samples *that model's* Boltzmann distribution, so these give the model's C_V exactly;
nothing is subtracted. The reference's C_V (DFT, EMT, ...) comes from reweighting the model's samples
(:mod:`mlpot.analysis.reweighting`), a committee's uncertainty from reweighting to each member. The old
white-noise subtraction survives only as the explicit approximation ``error_variance_eV2=σ²,
assume_uncorrelated_error=True`` (:mod:`mlpot.analysis.noise`).

Units. ``value`` and ``error`` are in k_B per simulation cell; ``per_atom`` in k_B per atom;
``J_per_mol_K`` per mole of atoms (k_B per atom × R); ``J_per_g_K`` per gram (needs the cell's mass).
The derivations are written out in docs/thermodynamics.md. Replicas and the finite-size fit are in
:mod:`mlpot.analysis.combine`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from ase import units as _ase

from mlpot.analysis.blocking import MIN_BLOCKS, BlockAverage, block_average
from mlpot.analysis.noise import NoiseVariance, NoiseVarianceTooLargeError
from mlpot.units import KB_EV_PER_K

__all__ = [
    "Estimate",
    "HeatCapacityResult",
    "GAS_CONSTANT_J_PER_MOL_K",
    "heat_capacity_canonical",
    "heat_capacity_configurational",
]

_REMOVED = object()

#: Molar gas constant R = N_A k_B in J/(mol·K), from ase.units.
GAS_CONSTANT_J_PER_MOL_K: float = _ase._k * _ase._Nav
#: k_B in J/K and one atomic mass unit in grams, from ase.units.
_KB_J_PER_K: float = _ase._k
_AMU_G: float = _ase._amu * 1e3


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


def _removed_noise_argument(function: str) -> TypeError:
    return TypeError(
        f"{function}() no longer takes noise_variance_eV2: MD with a model samples that model's Boltzmann "
        "distribution, so the fluctuation is the model's C_V and subtracting a committee spread or an RMSE² is "
        "not a correction. For the reference's C_V use mlpot.analysis.heat_capacity_reweighted (reference "
        "energies on decorrelated frames); for a committee's uncertainty mlpot.analysis.heat_capacity_committee; "
        "the white-noise formula only as error_variance_eV2=..., assume_uncorrelated_error=True"
    )


def heat_capacity_canonical(
    total_energy_eV,
    temperature_K: float,
    noise_variance_eV2=_REMOVED,
    *,
    n_atoms: int | None = None,
    mass_amu: float | None = None,
    min_blocks: int = MIN_BLOCKS,
    error_variance_eV2: float | tuple[float, float] | NoiseVariance | None = None,
    assume_uncorrelated_error: bool = False,
) -> HeatCapacityResult:
    """Canonical heat capacity C_V = Var(E)/(k_B T²) from an NVT total-energy series.

    Args:
        total_energy_eV: [n] total energy K + U of the simulation cell (eV), sampled along an equilibrated
            canonical trajectory (correlated samples are fine; the correlation is measured).
        temperature_K: the thermostat's temperature (K).
        noise_variance_eV2: removed; passing it raises a TypeError that names the replacements.
        n_atoms: atoms in the cell, for per-atom and molar values (optional).
        mass_amu: total mass of the cell, for J/(g·K) (optional).
        min_blocks: fewest effective samples / plateau blocks accepted (see :func:`block_average`).
        error_variance_eV2: σ² of the model's energy error for this cell (a float, a (σ², error) pair or a
            :class:`~mlpot.analysis.noise.NoiseVariance`), subtracted from Var(E) *only* together with
            ``assume_uncorrelated_error=True``: the white-noise approximation, right only if the error is
            uncorrelated with the configuration (:func:`mlpot.analysis.heat_capacity_reweighted` measures
            whether it is). None (the default): the model's own C_V, nothing subtracted.
        assume_uncorrelated_error: accept the white-noise approximation above.

    Returns:
        :class:`HeatCapacityResult` in k_B per cell: the C_V of the potential that drove the run.

    Raises:
        ValueError: NaN/inf energies, T ≤ 0, a series that is not 1-D or is constant; an error variance without
            ``assume_uncorrelated_error=True``.
        InsufficientSamplingError: too short a series for block averaging.
        NoiseVarianceTooLargeError: σ² ≥ Var(E) under the white-noise approximation.
    """
    if noise_variance_eV2 is not _REMOVED:
        raise _removed_noise_argument("heat_capacity_canonical")
    noise = _error_variance(error_variance_eV2, assume_uncorrelated_error)
    return _fluctuation_heat_capacity(
        total_energy_eV, temperature_K, noise, 0.0, "canonical", None, n_atoms, mass_amu, min_blocks,
        name="total_energy_eV",
    )


def heat_capacity_configurational(
    potential_energy_eV,
    temperature_K: float,
    n_dof_kinetic: int,
    noise_variance_eV2=_REMOVED,
    *,
    n_atoms: int | None = None,
    mass_amu: float | None = None,
    min_blocks: int = MIN_BLOCKS,
    error_variance_eV2: float | tuple[float, float] | NoiseVariance | None = None,
    assume_uncorrelated_error: bool = False,
) -> HeatCapacityResult:
    """Canonical heat capacity from potential-energy fluctuations: C_V/k_B = f/2 + Var(U)/(k_B T)².

    In the canonical ensemble the momenta are independent of the positions and Maxwellian, so the kinetic
    energy contributes exactly f/2 (f kinetic degrees of freedom: 3N under Langevin, 3N − 3 when the total
    momentum is conserved, as with Bussi) and Var(E) = Var(K) + Var(U). Estimating only the configurational
    part cuts the statistical error of the total-energy estimator for a near-harmonic solid (Var(K) is about
    half of Var(E) and carries no information; measured: 0.5–0.75 of the error) and is immune to the
    integrator's kinetic-energy bias.

    Args:
        potential_energy_eV: [n] potential energy U of the cell (eV) along an equilibrated canonical run.
        temperature_K: the thermostat's temperature (K).
        n_dof_kinetic: f, from the run's state or thermo log (``sim.state.n_dof``).
        noise_variance_eV2: removed, as in :func:`heat_capacity_canonical`.
        n_atoms, mass_amu, min_blocks, error_variance_eV2, assume_uncorrelated_error: as in
            :func:`heat_capacity_canonical` (the error is in U).

    Returns:
        :class:`HeatCapacityResult` with ensemble "canonical (configurational)" and ``n_dof`` = f.
    """
    if noise_variance_eV2 is not _REMOVED:
        raise _removed_noise_argument("heat_capacity_configurational")
    if int(n_dof_kinetic) != n_dof_kinetic or n_dof_kinetic < 0:
        raise ValueError(f"n_dof_kinetic must be a non-negative integer, got {n_dof_kinetic!r}")
    noise = _error_variance(error_variance_eV2, assume_uncorrelated_error)
    return _fluctuation_heat_capacity(
        potential_energy_eV, temperature_K, noise, 0.5 * int(n_dof_kinetic),
        "canonical (configurational)", int(n_dof_kinetic), n_atoms, mass_amu, min_blocks, name="potential_energy_eV",
    )


def _error_variance(error_variance_eV2, assume_uncorrelated_error: bool) -> NoiseVariance:
    """The σ² to subtract: zero unless the caller explicitly accepts the white-noise approximation."""
    if error_variance_eV2 is None:
        return NoiseVariance(0.0, 0.0, "none")
    if not assume_uncorrelated_error:
        raise ValueError(
            "error_variance_eV2 is subtracted only under the white-noise approximation (a model error "
            "uncorrelated with the configuration), which a trained potential rarely satisfies: pass "
            "assume_uncorrelated_error=True to use it knowingly, or reweight to reference energies with "
            "mlpot.analysis.heat_capacity_reweighted, which also measures Var(δ) and Cov(δ, U)"
        )
    noise = NoiseVariance.coerce(error_variance_eV2)
    return noise if noise.source != "given" else NoiseVariance(noise.value, noise.error, "assumed uncorrelated")


def _fluctuation_heat_capacity(
    energy_eV, temperature_K, noise, offset, ensemble, n_dof, n_atoms, mass_amu, min_blocks, name
) -> HeatCapacityResult:
    """C_V/k_B = offset + (Var(series) − σ²)/(k_B T)², with the checks and errors of both canonical estimators."""
    temperature = _check_temperature(temperature_K)
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
