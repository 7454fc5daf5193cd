"""Exact test: canonical C_V of a classical harmonic crystal from Langevin MD (mlpot.dynamics), with calibration.

The crystal is 32 Cu-mass atoms on an fcc lattice joined by zero-length vector springs (thermo_springs.py,
quartic term off), periodic. Its quadratic degrees of freedom under Langevin dynamics: 3N momenta (the
friction and noise act on every atom, so the centre of mass is thermalised too) and 3N − 3 configurational
ones (translations cost no energy). Equipartition: C_V/k_B = 3N/2 + (3N − 3)/2 = 3N − 3/2 = 94.5.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ase import units
from ase.build import bulk
from thermo_springs import QuarticSprings, baoab_energy_variance, normal_mode_frequencies

from mlpot import dynamics
from mlpot.analysis import average_replicas, heat_capacity_canonical, heat_capacity_configurational
from mlpot.units import KB_EV_PER_K

T = 300.0
TIMESTEP_FS = 2.0
FRICTION_PER_FS = 0.1
REPLICAS = 40
PRODUCTION = 4096
EQUILIBRATION = 400


@pytest.fixture(scope="module")
def harmonic_run():
    """Total energies [PRODUCTION, REPLICAS] of independent Langevin replicas (one batched MD call)."""
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    potential = QuarticSprings(atoms, bond_cutoff=2.9, spring_constant=1.0, quartic=0.0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only add overhead on a shared machine
    recorder = dynamics.ThermoRecorder(interval=1)
    try:
        sim = dynamics.Simulation(
            [atoms] * REPLICAS,
            potential,
            timestep_fs=TIMESTEP_FS,
            ensemble="langevin",
            temperature_K=T,
            friction_per_fs=FRICTION_PER_FS,
            seed=11,
            reporters=[recorder],
        )
        sim.run(EQUILIBRATION + PRODUCTION)
    finally:
        torch.set_num_threads(threads)
    arrays = recorder.arrays()
    production = arrays["step"] > EQUILIBRATION  # equilibration: ≫ 1/γ = 10 fs and the slowest mode's 80 fs
    energies = (arrays["E_pot"] + arrays["E_kin"])[production]
    assert energies.shape == (PRODUCTION, REPLICAS)
    arrays["E_pot"] = arrays["E_pot"][production]
    return atoms, potential, energies, arrays["E_pot"]


def exact_heat_capacity(n_atoms: int) -> float:
    return 3 * n_atoms - 1.5


def test_time_step_bias_is_negligible(harmonic_run):
    """The discretisation bias of BAOAB at this time step, computed exactly, is far below the error bars."""
    atoms, potential, energies, _ = harmonic_run
    omegas = normal_mode_frequencies(potential, atoms.get_masses())
    assert np.sum(omegas < 1e-6) == 3
    kT = KB_EV_PER_K * T
    discrete = baoab_energy_variance(omegas, TIMESTEP_FS * units.fs, FRICTION_PER_FS / units.fs, kT) / kT**2
    # With dt → 0 the same formula gives equipartition.
    continuum = baoab_energy_variance(omegas, 1e-3 * units.fs, FRICTION_PER_FS / units.fs, kT) / kT**2
    assert continuum == pytest.approx(exact_heat_capacity(len(atoms)), rel=1e-5)
    pooled_error = exact_heat_capacity(len(atoms)) * math.sqrt(2 * 15 / energies.size)  # g of (δE)² is ~10-15 steps
    assert abs(discrete - exact_heat_capacity(len(atoms))) < 0.25 * pooled_error


def test_canonical_heat_capacity_of_harmonic_crystal_is_exact(harmonic_run):
    atoms, _, energies, _ = harmonic_run
    exact = exact_heat_capacity(len(atoms))
    results = [heat_capacity_canonical(energies[:, r], T, n_atoms=len(atoms)) for r in range(REPLICAS)]
    mean = average_replicas(results)
    assert abs(mean.value - exact) < 2 * mean.error
    assert mean.error < 0.02 * exact  # and the test has teeth
    per_atom = mean.per_atom  # 3 − 1.5/N k_B per atom
    assert abs(per_atom.value - exact / len(atoms)) < 2 * per_atom.error


def test_error_bars_are_calibrated_over_independent_seeds(harmonic_run):
    """Each replica is an independent run: its ±2σ interval should cover the exact value ~95% of the time."""
    atoms, _, energies, _ = harmonic_run
    exact = exact_heat_capacity(len(atoms))
    z = []
    for r in range(REPLICAS):
        result = heat_capacity_canonical(energies[:, r], T)
        z.append((result.value - exact) / result.error)
    z = np.array(z)
    coverage = np.mean(np.abs(z) < 2)
    assert coverage >= 0.85, f"2σ coverage {coverage:.2f} over {REPLICAS} seeds; z = {np.round(z, 2)}"
    assert 0.6 < z.std() < 1.4  # errors neither inflated nor too small (the std of 40 draws is ±0.11)


def test_noise_correction_on_a_harmonic_run(harmonic_run):
    """Gaussian noise of known σ: raw C_V biased by σ²/(k_B T)²; corrected C_V recovers the exact value."""
    atoms, _, energies, _ = harmonic_run
    exact = exact_heat_capacity(len(atoms))
    kT = KB_EV_PER_K * T
    sigma = math.sqrt(0.5 * exact) * kT  # σ² = half the thermal variance: a bias of 47 k_B
    rng = np.random.default_rng(11)
    noisy = energies + rng.normal(size=energies.shape) * sigma
    raw = average_replicas([heat_capacity_canonical(noisy[:, r], T) for r in range(REPLICAS)])
    corrected = average_replicas(
        [
            heat_capacity_canonical(noisy[:, r], T, error_variance_eV2=sigma**2, assume_uncorrelated_error=True)
            for r in range(REPLICAS)
        ]
    )
    bias = sigma**2 / kT**2
    assert abs(raw.raw_value - (exact + bias)) < 2 * raw.raw_error
    assert abs(raw.raw_value - exact) > 10 * raw.raw_error
    assert abs(corrected.value - exact) < 2 * corrected.error
    assert corrected.raw_value == pytest.approx(raw.raw_value)


def test_configurational_estimator_is_exact_and_sharper(harmonic_run):
    """C_V = 3N/2 + Var(U)/(k_B T)²: the kinetic part is exact under Langevin (3N momenta thermalised)."""
    atoms, _, energies, potential_energies = harmonic_run
    exact = exact_heat_capacity(len(atoms))
    f = 3 * len(atoms)
    configurational = average_replicas(
        [heat_capacity_configurational(potential_energies[:, r], T, f) for r in range(REPLICAS)]
    )
    total = average_replicas([heat_capacity_canonical(energies[:, r], T) for r in range(REPLICAS)])
    assert abs(configurational.value - exact) < 2 * configurational.error
    assert configurational.n_dof == f
    # Var(U) is about half of Var(E) and Var(K) carries no information, so the error is smaller: its square scales
    # with Var² × the correlation time of the squared deviations, longer for U (slow overdamped modes) than for K.
    assert configurational.error < 0.85 * total.error
