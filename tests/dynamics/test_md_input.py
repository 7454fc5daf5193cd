"""Bad input fails before any step; unstable dynamics stops with a clear error and clean files."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from ase.constraints import FixAtoms

from mlpot.dynamics import CheckpointWriter, HealthCheck, MDInstabilityError, Simulation, ThermoLog, simulate
from mlpot.models.reference import LennardJones


class CountingPotential(torch.nn.Module):
    """A harmless pair-free potential that counts its calls (so "before any step" can be checked)."""

    cutoff = 3.0

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, data, compute_forces=True, compute_stress=False, training=False):
        self.calls += 1
        positions = data["positions"]
        n_systems = data["cell"].shape[0]
        return {
            "energy": torch.zeros(n_systems, dtype=positions.dtype),
            "atomic_energy": torch.zeros(positions.shape[0], dtype=positions.dtype),
            "forces": torch.zeros_like(positions),
        }


def _water():
    atoms = molecule("H2O")
    atoms.center(vacuum=3.0)
    return atoms


@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda a: a.positions.__setitem__((1, 0), np.nan), "NaN or infinite"),
        (lambda a: a.positions.__setitem__(2, a.positions[0] + 0.01), "overlap"),
        (lambda a: a.set_masses([15.999, 0.0, 1.008]), "non-positive or non-finite masses"),
        (lambda a: a.set_masses([15.999, -1.0, 1.008]), "non-positive or non-finite masses"),
        (lambda a: a.set_constraint(FixAtoms([0])), "constraints"),
    ],
    ids=["nan-position", "overlap", "zero-mass", "negative-mass", "constraint"],
)
def test_bad_structures_raise_before_any_step(spoil, message):
    atoms = _water()
    spoil(atoms)
    potential = CountingPotential()
    with pytest.raises(ValueError, match=message):
        simulate(atoms, potential, steps=10, timestep_fs=0.5)
    assert potential.calls == 0


def test_overlap_across_a_periodic_boundary_is_found():
    atoms = Atoms("Ar2", positions=[[0.05, 1, 1], [9.98, 1, 1]], cell=[10, 10, 10], pbc=True)
    with pytest.raises(ValueError, match="overlap"):
        simulate(atoms, CountingPotential(), steps=1, timestep_fs=1.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(timestep_fs=0.0), "timestep_fs must be a positive"),
        (dict(timestep_fs=-1.0), "timestep_fs must be a positive"),
        (dict(timestep_fs=float("nan")), "timestep_fs must be a positive"),
        (dict(ensemble="langevin"), "needs temperature_K"),
        (dict(ensemble="bussi", temperature_K=-5.0), "temperature_K must be positive"),
        (dict(ensemble="langevin", temperature_K=300, friction_per_fs=0.0), "friction_per_fs must be positive"),
        (dict(ensemble="nph"), "unknown ensemble"),
        (dict(steps=-1), "steps must be non-negative"),
        (dict(skin=-0.5), "skin must be"),
    ],
)
def test_bad_settings_raise_before_any_step(kwargs, message):
    settings = dict(steps=10, timestep_fs=0.5)
    settings.update(kwargs)
    potential = CountingPotential()
    with pytest.raises(ValueError, match=message):
        simulate(_water(), potential, **settings)
    assert potential.calls <= 1  # at most the initial force evaluation, never a step


def test_wrong_potential_type_is_rejected():
    with pytest.raises(TypeError, match="mlpot potential"):
        simulate(_water(), object(), steps=1, timestep_fs=0.5)


class ExplodingPotential(torch.nn.Module):
    """Harmless until call ``bad_from``, then NaN (or a huge force)."""

    cutoff = 3.0

    def __init__(self, bad_from: int, value: float):
        super().__init__()
        self.bad_from, self.value, self.calls = bad_from, value, 0

    def forward(self, data, compute_forces=True, compute_stress=False, training=False):
        self.calls += 1
        positions = data["positions"]
        forces = torch.zeros_like(positions)
        if self.calls > self.bad_from:
            forces[3, 1] = self.value
        return {
            "energy": torch.zeros(1, dtype=positions.dtype),
            "atomic_energy": torch.zeros(positions.shape[0], dtype=positions.dtype),
            "forces": forces,
        }


@pytest.mark.parametrize("value, message", [(float("nan"), "non-finite forces"), (5e4, "exceeds max_force")])
def test_unstable_dynamics_stops_with_files_up_to_the_last_good_step(tmp_path, value, message):
    atoms = bulk("Ar", "fcc", a=5.26, cubic=True)
    potential = ExplodingPotential(bad_from=23, value=value)  # call 1 is the initial evaluation: step 22 is bad
    sim = Simulation(
        atoms, potential, 2.0, temperature_K=50, seed=0,
        reporters=[ThermoLog(tmp_path / "thermo.csv", 5), CheckpointWriter(tmp_path / "ck.pt", 10)],
    )
    with pytest.raises(MDInstabilityError, match=message) as info:
        sim.run(100)
    assert "step 23" in str(info.value)
    with open(tmp_path / "thermo.csv") as f:
        steps = [int(row[0]) for row in list(csv.reader(f))[1:]]
    assert steps == [0, 5, 10, 15, 20]
    # The checkpoint holds the last good interval, not the broken state.
    checkpoint = torch.load(tmp_path / "ck.pt", weights_only=True)
    assert checkpoint["step"] == 20 and torch.isfinite(checkpoint["state"]["forces"]).all()


def test_temperature_bound():
    atoms = bulk("Ar", "fcc", a=5.26, cubic=True)
    sim = Simulation(
        atoms, LennardJones(sigma=3.4, epsilon=0.0104, rc=6.0), 2.0, temperature_K=500, seed=0,
        health=HealthCheck(max_temperature_K=100.0),
    )
    with pytest.raises(MDInstabilityError, match="exceeds max_temperature_K"):
        sim.run(5)
