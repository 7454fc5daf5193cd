"""Microcanonical heat capacity from NVE kinetic-energy fluctuations (Lebowitz, Percus & Verlet 1967).

The kinetic degrees of freedom f come from the run (3N − 3 for a periodic NVE run that conserves momentum;
pass ``n_constraints`` to match the state's ``n_dof``), never guessed here.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from mlpot.analysis.blocking import MIN_BLOCKS, as_series, block_average
from mlpot.analysis.noise import NoiseVariance
from mlpot.units import KB_EV_PER_K

if TYPE_CHECKING:  # thermo imports this module; the annotation alone needs the name
    from mlpot.analysis.thermo import HeatCapacityResult

__all__ = ["heat_capacity_microcanonical"]


def heat_capacity_microcanonical(
    kinetic_energy_eV,
    n_atoms: int,
    n_constraints: int = 3,
    *,
    mass_amu: float | None = None,
    min_blocks: int = MIN_BLOCKS,
    n_dof: int | None = None,
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
        n_dof: the run's own kinetic degrees of freedom (``sim.state.n_dof``, or the thermo log's column:
            3N − 3 periodic, 3N − 6 / 3N − 5 for an isolated molecule); overrides ``n_constraints``.

    Returns:
        :class:`HeatCapacityResult` in k_B per cell; ``temperature_K`` is the kinetic temperature and
        ``n_dof`` the degrees of freedom used. There is no noise correction (raw = corrected).

    Raises:
        ValueError: NaN/inf or non-positive kinetic energies, bad n_atoms/n_constraints, or kinetic
            fluctuations at or above the canonical value (a thermostat left on, or no equilibrium).
        InsufficientSamplingError: too short a series for block averaging.
    """
    from mlpot.analysis.thermo import HeatCapacityResult, _check_atoms, _check_mass

    n_atoms = _check_atoms(n_atoms)
    if n_dof is not None:
        if int(n_dof) != n_dof or not 0 < n_dof <= 3 * n_atoms:
            raise ValueError(f"n_dof must be an integer in (0, 3N] = (0, {3 * n_atoms}], got {n_dof!r}")
        n_constraints = 3 * n_atoms - int(n_dof)
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


