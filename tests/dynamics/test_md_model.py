"""Symplectic behaviour on the fast path with a (random) mlpot DescriptorModel, and its batching."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk, molecule

from mlpot import models
from mlpot.dynamics import Simulation, ThermoRecorder, simulate


@pytest.fixture(scope="module")
def random_copper():
    """A small random DescriptorModel on a rattled, periodic 16-atom copper cell.

    The energy scale (20 eV per unit of network output) makes the untrained model bind the
    crystal, so atoms keep interacting (and crossing the cell, exercising wrapping) for the
    whole run rather than flying apart.
    """
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 1))
    atoms.rattle(0.05, seed=1)
    model = models.DescriptorModel(["Cu"], cutoff=4.0, n_radial=4, n_channels=4, l_max=2, hidden=(16,), seed=0)
    model.set_energy_statistics({29: 0.0}, scale=20.0)
    return atoms, model


def _energies(atoms, model, timestep_fs, steps, interval):
    recorder = ThermoRecorder(interval)
    sim = Simulation(atoms, model, timestep_fs, temperature_K=300, seed=0, reporters=[recorder])
    sim.run(steps)
    return recorder.arrays()


def test_halving_the_timestep_quarters_the_energy_fluctuation(random_copper):
    atoms, model = random_copper
    rms = {dt: np.std(_energies(atoms, model, dt, int(1000 / dt), int(2 / dt))["conserved"][:, 0]) for dt in (2.0, 1.0)}
    assert rms[2.0] / rms[1.0] == pytest.approx(4.0, rel=0.25)


def test_momentum_reversal_returns_to_start(random_copper):
    atoms, model = random_copper
    sim = Simulation(atoms, model, 2.0, temperature_K=300, seed=0, skin=0.5)
    start = sim.state.positions.clone()
    sim.run(1000)
    sim.state.momenta.neg_()
    sim.run(1000)
    difference = (sim.state.positions - start).numpy()
    fractional = difference @ np.linalg.inv(atoms.cell.array)
    difference = (fractional - np.round(fractional)) @ atoms.cell.array
    assert np.abs(difference).max() <= 1e-8


@pytest.mark.slow
def test_no_linear_drift_over_ten_thousand_steps(random_copper):
    """In the near-harmonic regime around a minimum of the model (relaxed, 5 K), K + U has no drift.

    (At high temperature the dynamics is chaotic and the fluctuation of K + U is correlated over
    a few steps, so the least-squares slope of 10⁴ samples is itself uncertain by ~10% of the
    fluctuation; a 1% criterion would then test the noise, not the integrator.)
    """
    from ase.optimize import BFGS

    from mlpot import MLPotCalculator

    atoms, model = random_copper
    relaxed = atoms.copy()
    relaxed.calc = MLPotCalculator(model)
    BFGS(relaxed, logfile=None).run(fmax=1e-4, steps=500)
    relaxed.calc = None
    recorder = ThermoRecorder(1)
    Simulation(relaxed, model, 2.0, temperature_K=5.0, seed=0, reporters=[recorder]).run(10_000)
    data = recorder.arrays()
    t, energy = data["time_fs"], data["conserved"][:, 0]
    drift = abs(np.polyfit(t, energy, 1)[0]) * (t[-1] - t[0])
    assert drift < 0.01 * np.std(energy)


def test_batched_molecules_equal_single_runs():
    model = models.DescriptorModel(["H", "C", "O"], cutoff=4.0, n_radial=4, n_channels=4, l_max=2, hidden=(16,), seed=1)
    ethanol, water = molecule("CH3CH2OH"), molecule("H2O")
    for atoms in (ethanol, water):
        atoms.center(vacuum=4.0)
    starts = []
    for k, system in enumerate((ethanol, water)):
        start = system.copy()
        start.set_momenta(np.random.default_rng(k).normal(size=(len(system), 3)) * 0.5)
        starts.append(start)
    batched = simulate(starts, model, 20, 0.5)
    for start, final in zip(starts, batched):
        single = simulate(start, model, 20, 0.5)
        assert np.abs(final.positions - single.positions).max() < 1e-10
        assert final.get_potential_energy() == pytest.approx(single.get_potential_energy(), abs=1e-10)


def test_mlpot_calculator_takes_the_fast_path(random_copper):
    from mlpot import MLPotCalculator

    atoms, model = random_copper
    sim = Simulation(atoms, MLPotCalculator(model), 2.0, temperature_K=100, seed=0)
    assert sim.fast_path
    direct = Simulation(atoms, model, 2.0, temperature_K=100, seed=0)
    sim.run(10)
    direct.run(10)
    assert np.array_equal(sim.state.positions.numpy(), direct.state.positions.numpy())
