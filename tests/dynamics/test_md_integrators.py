"""Velocity Verlet: equivalence with ASE, symplectic behaviour, time reversibility, batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones as ASELennardJones
from ase.cluster import Icosahedron
from ase.md.velocitydistribution import ZeroRotation
from ase.md.verlet import VelocityVerlet as ASEVelocityVerlet

from mlpot.dynamics import Simulation, ThermoRecorder, simulate
from mlpot.models.reference import LennardJones

ARGON = dict(sigma=3.4, epsilon=0.0104, rc=6.5, smooth=True)


def _thermalised(atoms, temperature_K, seed):
    """A copy with Maxwell–Boltzmann momenta (numpy generator), zero total momentum and, for an
    isolated cluster, zero angular momentum (the engine would remove either, with a warning)."""
    atoms = atoms.copy()
    masses = atoms.get_masses()[:, None]
    momenta = np.random.default_rng(seed).normal(size=(len(atoms), 3)) * np.sqrt(masses * units.kB * temperature_K)
    atoms.set_momenta(momenta - masses * momenta.sum(axis=0) / masses.sum())
    if not atoms.pbc.any():
        ZeroRotation(atoms)
    return atoms


def _ase_run(atoms, calc, steps, timestep_fs):
    reference = atoms.copy()
    reference.calc = calc
    ASEVelocityVerlet(reference, timestep=timestep_fs * units.fs).run(steps)
    return reference


def _minimum_image(difference, cell):
    fractional = difference @ np.linalg.inv(cell)
    return (fractional - np.round(fractional)) @ cell


# --- equivalence with ase.md.verlet.VelocityVerlet (generic path, float64) -----------------------


def test_matches_ase_velocity_verlet_emt_copper():
    atoms = _thermalised(bulk("Cu", "fcc", a=3.61, cubic=True).repeat(3), 300, seed=0)
    assert len(atoms) == 108 and atoms.pbc.all()
    ours = simulate(atoms, EMT(), steps=200, timestep_fs=5.0)
    reference = _ase_run(atoms, EMT(), 200, 5.0)
    assert np.abs(ours.positions - reference.positions).max() <= 1e-10
    assert np.abs(ours.get_momenta() - reference.get_momenta()).max() <= 1e-10
    assert ours.info["md_step"] == 200


def test_matches_ase_velocity_verlet_lennard_jones_cluster():
    atoms = _thermalised(Icosahedron("Ar", noshells=3), 30, seed=1)
    atoms.center(vacuum=5.0)
    calc = dict(sigma=3.4, epsilon=0.0104, rc=10.0)
    ours = simulate(atoms, ASELennardJones(**calc), steps=200, timestep_fs=5.0)
    reference = _ase_run(atoms, ASELennardJones(**calc), 200, 5.0)
    assert np.abs(ours.positions - reference.positions).max() <= 1e-10
    assert np.abs(ours.get_momenta() - reference.get_momenta()).max() <= 1e-10


def test_simulate_does_not_modify_input_and_returns_momenta():
    atoms = _thermalised(Icosahedron("Ar", noshells=2), 30, seed=2)
    before_positions, before_momenta = atoms.positions.copy(), atoms.get_momenta().copy()
    final = simulate(atoms, ASELennardJones(sigma=3.4, epsilon=0.0104, rc=10.0), steps=5, timestep_fs=5.0)
    assert np.array_equal(atoms.positions, before_positions)
    assert np.array_equal(atoms.get_momenta(), before_momenta)
    assert atoms.calc is None
    assert final is not atoms and not np.array_equal(final.positions, before_positions)
    assert np.abs(final.get_momenta()).max() > 0


# --- the fast path: neighbour list with skin, wrapping ------------------------------------------


def _argon_crystal(temperature_K=60, seed=0, repeat=2):
    atoms = bulk("Ar", "fcc", a=5.26, cubic=True).repeat(repeat)
    atoms.rattle(0.05, seed=seed)
    return _thermalised(atoms, temperature_K, seed)


def test_fast_path_matches_ase_lennard_jones_with_rebuilds_and_wrapping():
    atoms = _argon_crystal()
    fast_rec, ase_rec = ThermoRecorder(50, positions=True), ThermoRecorder(50, positions=True)
    sim = Simulation(atoms, LennardJones(**ARGON), 5.0, reporters=[fast_rec], skin=0.5)
    sim.run(300)
    simulate(atoms, ASELennardJones(**ARGON), 300, 5.0, reporters=[ase_rec])
    assert sim.forces.n_rebuilds > 2  # the list was reused *and* rebuilt
    fast, slow = fast_rec.arrays(), ase_rec.arrays()
    difference = _minimum_image(fast["positions"] - slow["positions"], atoms.cell.array)
    assert np.abs(difference).max() < 1e-9
    assert np.abs(fast["momenta"] - slow["momenta"]).max() < 1e-9
    assert np.allclose(fast["E_pot"], slow["E_pot"], rtol=0, atol=1e-9)
    # Wrapping happens at rebuilds, so atoms are never further out of the cell than skin/2.
    fractional = sim.state.positions.numpy() @ np.linalg.inv(atoms.cell.array)
    overshoot = np.maximum(-fractional, fractional - 1).max() * atoms.cell.lengths().max()
    assert overshoot <= 0.25 + 1e-9


def test_batched_replicas_equal_single_runs():
    systems = [_argon_crystal(60, seed=s) for s in range(2)]
    cluster = _thermalised(Icosahedron("Ar", noshells=2), 30, seed=5)
    cluster.center(vacuum=4.0)
    systems.append(cluster)
    potential = LennardJones(**ARGON)
    together = simulate(systems, potential, steps=50, timestep_fs=5.0)
    assert isinstance(together, list) and len(together) == 3
    for system, batched in zip(systems, together):
        alone = simulate(system, potential, steps=50, timestep_fs=5.0)
        # Wrapping happens at (global) list rebuilds, so compare positions modulo the cell.
        difference = batched.positions - alone.positions
        if system.pbc.any():
            difference = _minimum_image(difference, system.cell.array)
        assert np.abs(difference).max() < 1e-10
        assert np.abs(batched.get_momenta() - alone.get_momenta()).max() < 1e-10
        assert batched.get_potential_energy() == pytest.approx(alone.get_potential_energy(), abs=1e-10)


# --- symplectic behaviour on a harmonic system ---------------------------------------------------


def _nve_energies(atoms, potential, timestep_fs, steps, interval=1):
    recorder = ThermoRecorder(interval)
    sim = Simulation(atoms, potential, timestep_fs, reporters=[recorder], temperature_K=300, seed=4)
    sim.run(steps)
    return recorder.arrays(), sim


def test_shadow_hamiltonian_is_conserved_to_round_off(harmonic_molecule):
    """For harmonic U, velocity Verlet conserves H̃ = K + U − (h²/8) Σ F²/m exactly."""
    atoms, potential = harmonic_molecule
    recorder = ThermoRecorder(1)
    shadow = []
    sim = Simulation(atoms, potential, 4.0, temperature_K=300, seed=1, reporters=[recorder])
    h = sim.integrator.dt

    def record(s):
        f2m = (s.state.forces.square().sum(dim=1) / s.state.masses).sum()
        shadow.append(float(s.conserved()[0] - h**2 / 8 * f2m))

    sim.run(500, progress=record)
    energy = recorder.arrays()["conserved"][:, 0]
    assert np.std(energy) > 1e-6  # K + U itself fluctuates...
    assert np.std(shadow) < 1e-12 * abs(np.mean(energy) or 1.0) + 1e-13  # ...its shadow does not


def test_halving_the_timestep_quarters_the_energy_fluctuation(harmonic_molecule):
    atoms, potential = harmonic_molecule
    total_fs = 2000.0
    rms = {}
    for dt in (2.0, 1.0):
        data, _ = _nve_energies(atoms, potential, dt, int(total_fs / dt), interval=int(2 / dt))
        rms[dt] = np.std(data["conserved"][:, 0])
    assert rms[2.0] / rms[1.0] == pytest.approx(4.0, rel=0.25)


def test_no_linear_drift_over_ten_thousand_steps(harmonic_molecule):
    """The least-squares slope of a quasi-periodic K + U over T has a noise floor ~ σ/(ω_min T):
    a 5 fs step (ω_max·dt ≈ 0.4, well inside stability) spans enough periods to put it far below 1%."""
    atoms, potential = harmonic_molecule
    omega_max = potential.normal_mode_frequencies(atoms.get_masses()).max()
    assert omega_max * 5.0 * units.fs < 0.5
    data, _ = _nve_energies(atoms, potential, 5.0, 10_000, interval=1)
    t, energy = data["time_fs"], data["conserved"][:, 0]
    slope = np.polyfit(t, energy, 1)[0]
    drift = abs(slope) * (t[-1] - t[0])
    assert drift < 0.01 * np.std(energy)


def _reversal_error(atoms, potential, timestep_fs, steps, skin=1.0):
    sim = Simulation(atoms, potential, timestep_fs, temperature_K=60, seed=7, skin=skin)
    start = sim.state.positions.clone()
    sim.run(steps)
    sim.state.momenta.neg_()
    sim.run(steps)
    difference = (sim.state.positions - start).numpy()
    if atoms.pbc.any():
        difference = _minimum_image(difference, atoms.cell.array)
    return np.abs(difference).max(), sim


def test_momentum_reversal_returns_to_start_harmonic(harmonic_crystal):
    atoms, potential = harmonic_crystal
    error, _ = _reversal_error(atoms, potential, 2.0, 1000)
    assert error <= 1e-8


def test_momentum_reversal_returns_to_start_lennard_jones_fast_path():
    """Time reversibility survives neighbour-list rebuilds and wrapping."""
    atoms = bulk("Ar", "fcc", a=5.26, cubic=True).repeat(2)
    atoms.rattle(0.02, seed=0)
    error, sim = _reversal_error(atoms, LennardJones(**ARGON), 5.0, 1000, skin=0.3)
    assert sim.forces.n_rebuilds > 2
    assert error <= 1e-8


def test_float32_state_follows_the_potential():
    atoms = _argon_crystal()
    potential = LennardJones(**ARGON)
    potential.register_buffer("anchor", torch.zeros(1, dtype=torch.float32))
    sim = Simulation(atoms, potential, 5.0)
    assert sim.state.positions.dtype == torch.float32
    sim.run(20)
    assert torch.isfinite(sim.state.positions).all()
