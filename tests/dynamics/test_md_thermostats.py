"""Thermostats: Maxwell–Boltzmann start, canonical sampling (BAOAB, Bussi), conserved quantities."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk

from mlpot.dynamics import Simulation, ThermoRecorder, maxwell_boltzmann_momenta, simulate
from mlpot.models.reference import LennardJones
from mlpot.units import KB_EV_PER_K

TARGET_K = 300.0


def test_maxwell_boltzmann_is_reproducible_with_zero_total_momentum():
    masses = torch.rand(500, dtype=torch.float64) * 50 + 1
    batch = torch.repeat_interleave(torch.arange(2), torch.tensor([200, 300]))
    draws = []
    for _ in range(2):
        generator = torch.Generator().manual_seed(11)
        draws.append(maxwell_boltzmann_momenta(masses, batch, 2, 500.0, generator))
    assert torch.equal(draws[0], draws[1])
    momenta = draws[0]
    for s in range(2):
        assert momenta[batch == s].sum(dim=0).abs().max() < 1e-10
    # Expected kinetic energy (3N − 3)/2 k_B T; 3N = 1500 quadratic terms give a 3.7% relative spread.
    kinetic = 0.5 * (momenta.square().sum(dim=1) / masses).sum().item()
    expected = 0.5 * (1500 - 6) * KB_EV_PER_K * 500.0
    assert kinetic == pytest.approx(expected, rel=4 * np.sqrt(2 / 1494))


def test_initial_momenta_and_degrees_of_freedom():
    atoms = bulk("Ar", "fcc", a=5.26, cubic=True).repeat(2)
    potential = LennardJones(sigma=3.4, epsilon=0.0104, rc=6.5)
    for ensemble, n_dof in (("nve", 93), ("bussi", 93), ("langevin", 96)):
        sim = Simulation(atoms, potential, 2.0, ensemble=ensemble, temperature_K=TARGET_K, seed=3)
        assert sim.state.n_dof.tolist() == [n_dof]
        assert sim.state.momenta.sum(dim=0).abs().max() < 1e-10
    same = [Simulation(atoms, potential, 2.0, temperature_K=TARGET_K, seed=3).state.momenta for _ in range(2)]
    assert torch.equal(*same)
    other = Simulation(atoms, potential, 2.0, temperature_K=TARGET_K, seed=4).state.momenta
    assert not torch.equal(same[0], other)
    # Momenta carried by the atoms are kept, less any net momentum: a constant of motion that the
    # temperature's N_dof excludes, removed with a warning.
    moving = atoms.copy()
    given = np.random.default_rng(0).normal(scale=0.1, size=(len(atoms), 3))
    moving.set_momenta(given - given.mean(axis=0))  # equal masses: zero total momentum
    kept = Simulation(moving, potential, 2.0, temperature_K=TARGET_K, seed=3).state.momenta
    assert torch.allclose(kept, torch.as_tensor(moving.get_momenta()), rtol=0, atol=1e-15)
    drifting = atoms.copy()
    drifting.set_momenta(np.full((len(atoms), 3), 0.1))
    with pytest.warns(UserWarning, match="net momentum"):
        cleaned = Simulation(drifting, potential, 2.0, temperature_K=TARGET_K, seed=3).state.momenta
    assert cleaned.abs().max() < 1e-12


@pytest.mark.parametrize("ensemble", ["langevin", "bussi"])
def test_canonical_sampling_of_a_harmonic_crystal(ensemble, harmonic_crystal, block_mean_error):
    """Mean kinetic temperature and Var(E_kin) = (N_dof/2)(k_B T)² within 3 block-averaged standard errors.

    Eight replicas of a harmonic crystal with a non-degenerate spectrum (ω_max·dt ≈ 0.07, so the
    O(dt²) bias of the kinetic temperature, ~0.1%, is far below the standard error).
    """
    atoms, potential = harmonic_crystal
    replicas = 8
    recorder = ThermoRecorder(interval=2)
    sim = Simulation(
        [atoms] * replicas,
        potential,
        timestep_fs=1.0,
        ensemble=ensemble,
        temperature_K=TARGET_K,
        friction_per_fs=0.1,
        seed=2024,
        reporters=[recorder],
    )
    sim.run(500)  # equilibration, not recorded
    recorder.clear()
    sim.run(12_000)
    data = recorder.arrays()
    n_dof = float(sim.state.n_dof[0])
    assert n_dof == (96 if ensemble == "langevin" else 93)

    mean_T, error_T = block_mean_error(data["T_K"].mean(axis=1))
    assert abs(mean_T - TARGET_K) < 3 * error_T, (mean_T, error_T)
    assert error_T < 0.01 * TARGET_K  # the test has teeth: a 1% error in T would be caught

    kinetic = data["E_kin"]
    squared_deviation = ((kinetic - kinetic.mean()) ** 2).mean(axis=1)
    var_K, error_var = block_mean_error(squared_deviation)
    canonical = 0.5 * n_dof * (KB_EV_PER_K * TARGET_K) ** 2
    assert abs(var_K - canonical) < 3 * error_var, (var_K, error_var, canonical)
    assert error_var < 0.1 * canonical


@pytest.mark.parametrize("ensemble", ["langevin", "bussi"])
def test_thermostat_conserved_quantity_is_an_integration_error(ensemble, harmonic_crystal):
    """K + U − W stays bounded and its fluctuation shrinks as dt² while K + U wanders freely."""
    atoms, potential = harmonic_crystal
    spread = {}
    for dt in (2.0, 1.0):
        recorder = ThermoRecorder(interval=int(4 / dt))
        sim = Simulation(
            atoms, potential, dt, ensemble=ensemble, temperature_K=TARGET_K, friction_per_fs=0.05, seed=1,
            reporters=[recorder],
        )
        sim.run(int(2000 / dt))
        data = recorder.arrays()
        spread[dt] = np.std(data["conserved"][:, 0])
        total = data["E_pot"][:, 0] + data["E_kin"][:, 0]
        assert np.std(total) > 20 * spread[dt]
    assert spread[2.0] / spread[1.0] == pytest.approx(4.0, rel=0.35)


def test_replicas_are_independent_and_seeded(harmonic_crystal):
    atoms, potential = harmonic_crystal
    run = lambda seed: simulate([atoms] * 3, potential, 50, 1.0, "langevin", TARGET_K, seed=seed)  # noqa: E731
    first, again, other = run(5), run(5), run(6)
    for a, b in zip(first, again):
        assert np.array_equal(a.positions, b.positions) and np.array_equal(a.get_momenta(), b.get_momenta())
    assert not np.allclose(first[0].positions, first[1].positions)
    assert not np.allclose(first[0].positions, other[0].positions)
