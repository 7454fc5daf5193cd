"""The MD engine stops on broken input at every step, and on close contacts that the model's
training data never covered; what was written before the stop is kept."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule

from mlpot.dynamics import CloseContactError, MDInstabilityError, Simulation, ThermoLog, simulate
from mlpot.dynamics.health import CloseContactGuard, pair_key
from mlpot.models import DescriptorModel

needs_compiler = pytest.mark.skipif(
    shutil.which("c++") is None and shutil.which("g++") is None, reason="no C++ compiler for torch.compile"
)


def _silicon_model(**kwargs):
    return DescriptorModel(["Si"], cutoff=3.5, n_radial=4, n_channels=4, l_max=2, hidden=(8,), seed=0, **kwargs)


def _ethanol_model():
    return DescriptorModel(["H", "C", "O"], cutoff=4.0, n_radial=4, n_channels=4, l_max=2, hidden=(8,), seed=0)


def _nan_on_second_run(sim):
    sim.run(2)
    sim.state.positions[3, 1] = float("nan")
    with pytest.raises(MDInstabilityError, match=r"non-finite positions \(atoms \[3\]\)"):
        sim.run(2)


def test_nan_position_stops_the_generic_step():
    """A NaN atom's edges all fail the cutoff test: without the check the reused list would give
    a finite energy and the run would go on."""
    crystal = bulk("Si", "diamond", a=5.43, cubic=True)
    _nan_on_second_run(Simulation(crystal, _silicon_model(), 1.0, temperature_K=300, seed=0))


@needs_compiler
def test_nan_position_stops_the_compiled_step():
    sim = Simulation(molecule("CH3CH2OH"), _ethanol_model().compile(), 0.5, temperature_K=300, seed=0)
    assert sim._compiled_step is not None
    _nan_on_second_run(sim)


def test_pair_keys_are_alphabetical():
    assert pair_key(8, 1) == "H-O" and pair_key(1, 8) == "H-O" and pair_key(14, 14) == "Si-Si"


def test_close_contact_stops_md_and_keeps_the_log(tmp_path):
    """Two atoms pushed towards each other: the run stops with an error naming them, their
    distance and the training minimum, and the thermo log holds every step before."""
    crystal = bulk("Si", "diamond", a=5.43, cubic=True)
    model = _silicon_model()
    model.training_min_distances = {"Si-Si": 2.2}
    # Atoms 0 and 1 (2.35 Å apart) fly at each other at ~0.06 Å/fs: a contact within ~10 fs.
    momenta = np.zeros((len(crystal), 3))
    bond = crystal.positions[1] - crystal.positions[0]
    direction = bond / np.linalg.norm(bond)
    speed = 0.06 * crystal.get_masses()[0] * 10.1805  # Å/fs → amu·Å/(ASE time)
    momenta[0], momenta[1] = speed * direction, -speed * direction
    crystal.set_momenta(momenta)
    log = tmp_path / "thermo.csv"
    with pytest.raises(CloseContactError, match=r"atoms [01] and [01] \(Si-Si\) are 1\.\d+ Å apart.*2\.200 Å"):
        simulate(crystal, model, steps=200, timestep_fs=0.5, reporters=[ThermoLog(log, interval=1)])
    steps = [int(line.split(",")[0]) for line in log.read_text().splitlines()[1:]]
    assert steps[0] == 0 and steps == list(range(len(steps))) and 5 < len(steps) < 200


def test_close_contact_check_is_configurable_and_off_without_a_record():
    crystal = bulk("Si", "diamond", a=5.43, cubic=True)
    crystal.positions[1] = crystal.positions[0] + [0.6, 0.6, 0.6]  # 1.04 Å
    model = _silicon_model()
    simulate(crystal, model, steps=1, timestep_fs=0.1)  # no record: no check
    model.training_min_distances = {"Si-Si": 2.2}
    with pytest.raises(CloseContactError):
        simulate(crystal, model, steps=1, timestep_fs=0.1)
    simulate(crystal, model, steps=1, timestep_fs=0.1, min_distance_fraction=None)  # turned off
    simulate(crystal, model, steps=1, timestep_fs=0.1, min_distance_fraction=0.4)  # 1.04 > 0.4 × 2.2
    with pytest.raises(ValueError, match="min_distance_fraction"):
        simulate(crystal, model, steps=1, timestep_fs=0.1, min_distance_fraction=1.5)


def test_guard_finds_the_deepest_pair_with_periodic_images():
    """The guard compares pair distances (periodic images included) against per-pair thresholds."""
    guard = CloseContactGuard({"H-O": 0.9, "H-H": 1.4}, 0.75)
    numbers = torch.tensor([8, 1, 1])
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    vectors = torch.tensor([[0.8, 0, 0], [-0.8, 0, 0], [0.5, 0, 0], [-0.5, 0, 0]], dtype=torch.float64)
    i, j, distance, minimum = guard.find(vectors, edge_index, numbers)
    assert {i, j} == {1, 2} and math.isclose(distance, 0.5) and minimum == 1.4  # O–H at 0.8 > 0.675 is fine
    assert guard.find(vectors[:2], edge_index[:, :2], numbers) is None
