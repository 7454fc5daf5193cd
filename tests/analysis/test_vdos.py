"""VDOS and harmonic quantum heat capacity on a harmonic crystal whose normal modes are known exactly.

The 32-atom spring crystal (thermo_springs.py, quartic term off) has normal modes from its Laplacian. It is
started with every mode carrying exactly k_B T of energy (k_B T/2 of kinetic energy on time average, as in
equilibrium) and random phases, and run with the engine's velocity Verlet: then the VDOS must put exactly one
mode's weight at each normal-mode frequency, and the quantum C_V = Σ_modes c_E(hν/k_B T) must follow. The
remaining errors are the integrator's frequency shift (ωh)²/24 ≈ 4·10⁻⁴ and the Hann window's leakage.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import units
from ase.build import bulk
from thermo_springs import QuarticSprings

from mlpot import dynamics  # noqa: E402
from mlpot.analysis import quantum_correction, quantum_heat_capacity, vibrational_density_of_states
from mlpot.analysis.vdos import PLANCK_EV_PS, einstein_heat_capacity
from mlpot.units import KB_EV_PER_K

T = 100.0
TIMESTEP_FS = 2.0
STEPS = 2048


def normal_modes(potential: QuarticSprings, masses):
    """Angular frequencies ω (1/ASE time) and mass-weighted eigenvectors [3N, 3N] of the spring crystal."""
    n = potential.n_structure
    laplacian = np.zeros((n, n))
    for i, j in zip(potential.i.tolist(), potential.j.tolist()):  # directed bonds, half the energy each
        for a, b, sign in ((i, i, 1), (j, j, 1), (i, j, -1), (j, i, -1)):
            laplacian[a, b] += 0.5 * sign * potential.k
    inv_sqrt_m = 1.0 / np.sqrt(masses)
    dynamical = np.kron(laplacian * inv_sqrt_m[:, None] * inv_sqrt_m[None, :], np.eye(3))
    omega2, vectors = np.linalg.eigh(dynamical)
    return np.sqrt(np.clip(omega2, 0.0, None)), vectors


@pytest.fixture(scope="module")
def equipartitioned_run():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    potential = QuarticSprings(atoms, 2.9, 1.0, 0.0)
    masses = atoms.get_masses()
    omega, vectors = normal_modes(potential, masses)
    kT = KB_EV_PER_K * T
    rng = np.random.default_rng(0)
    phase = rng.uniform(0, 2 * np.pi, omega.size)
    moving = omega > 1e-8
    # Mass-weighted mode coordinates q_k = A_k cos(φ_k), q̇_k = −A_k ω_k sin(φ_k), with ½ω²A² = k_B T. The three
    # zero modes (translations) stay at rest, as in a run that conserves a zero total momentum; the VDOS puts
    # them at ν = 0.
    amplitude = np.where(moving, np.sqrt(2 * kT) / np.where(moving, omega, 1.0), 0.0)
    q = amplitude * np.cos(phase)
    qdot = np.where(moving, -amplitude * omega * np.sin(phase), 0.0)
    sqrt_m = np.sqrt(np.repeat(masses, 3))
    start = atoms.copy()
    start.positions += ((vectors @ q) / sqrt_m).reshape(-1, 3)
    start.set_momenta(((vectors @ qdot) * sqrt_m).reshape(-1, 3))
    recorder = dynamics.ThermoRecorder(interval=1, positions=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        dynamics.simulate(start, potential, STEPS, TIMESTEP_FS, ensemble="nve", reporters=[recorder])
    finally:
        torch.set_num_threads(threads)
    momenta = recorder.arrays()["momenta"]  # [F, N, 3], amu·Å/(ASE time)
    velocities_A_per_fs = momenta / masses[None, :, None] * units.fs
    frequencies_THz = omega * units.fs / (2 * np.pi) * 1e3  # 1/(ASE time) → 1/fs → THz
    return velocities_A_per_fs, masses, frequencies_THz


def test_normal_modes_are_recovered(equipartitioned_run):
    velocities, masses, exact = equipartitioned_run
    nu, dos = vibrational_density_of_states(velocities, masses, TIMESTEP_FS)
    spacing = nu[1] - nu[0]
    assert np.sum(dos) * spacing == pytest.approx(3 * len(masses), rel=1e-12)
    distinct = np.unique(np.round(exact, 6))
    assert distinct.size >= 3
    # Counting the modes below each midpoint between distinct exact frequencies: each group's weight is where
    # it belongs, to within the leakage of the Hann window (a 4 ps window resolves 0.25 THz; the gaps are > 1 THz).
    cumulative = np.cumsum(dos) * spacing
    for lower, upper in zip(distinct[:-1], distinct[1:]):
        midpoint = 0.5 * (lower + upper)
        expected = np.sum(exact < midpoint)
        assert np.interp(midpoint, nu, cumulative) == pytest.approx(expected, abs=0.005 * 3 * len(masses))


@pytest.mark.parametrize("temperature_K", [30.0, 100.0, 300.0])
def test_quantum_heat_capacity_of_the_harmonic_crystal_is_exact(equipartitioned_run, temperature_K):
    velocities, masses, exact_frequencies = equipartitioned_run
    nu, dos = vibrational_density_of_states(velocities, masses, TIMESTEP_FS)
    exact = einstein_heat_capacity(exact_frequencies, temperature_K).sum()
    assert quantum_heat_capacity(nu, dos, temperature_K) == pytest.approx(exact, rel=0.005)
    assert exact < 0.95 * 3 * len(masses)  # the quantum effect is real at these temperatures
    # Applied as a correction to an (exact, classical) MD value 3N: the same number.
    assert quantum_correction(3 * len(masses), nu, dos, temperature_K) == pytest.approx(exact, rel=0.005)


def test_einstein_function_limits():
    assert einstein_heat_capacity(np.array([0.0]), 300.0)[0] == 1.0
    x = 2.0
    nu = x * KB_EV_PER_K * 300.0 / PLANCK_EV_PS
    assert einstein_heat_capacity(np.array([nu]), 300.0)[0] == pytest.approx(x**2 * np.exp(x) / np.expm1(x) ** 2)
    assert einstein_heat_capacity(np.array([1e6]), 1.0)[0] == 0.0


def test_bad_input():
    v = np.zeros((32, 4, 3))
    with pytest.raises(ValueError, match="masses_amu"):
        vibrational_density_of_states(v + 1.0, np.ones(3), 1.0)
    with pytest.raises(ValueError, match="all zero"):
        vibrational_density_of_states(v, np.ones(4), 1.0)
    with pytest.raises(ValueError, match="sample_interval_fs"):
        vibrational_density_of_states(v + 1.0, np.ones(4), 0.0)
    with pytest.raises(ValueError, match="evenly spaced"):
        quantum_heat_capacity(np.array([0.0, 1.0, 3.0]), np.ones(3), 300.0)
    with pytest.raises(ValueError, match="NaN"):
        vibrational_density_of_states(np.full((32, 4, 3), np.nan), np.ones(4), 1.0)
