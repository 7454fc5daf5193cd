"""The force provider hands the MD state the model's whole output dict: a committee's spread is
there for reporters at every step (``sim.state.outputs``), with no side channel."""

from __future__ import annotations

import numpy as np
from ase.build import molecule
from helpers import ROUND_OFF

from mlpot.data import atomic_data_from_atoms
from mlpot.dynamics import Simulation
from mlpot.models import DescriptorModel
from mlpot.models.committee import Committee


class SpreadRecorder:
    """A reporter that keeps the committee's energy spread [n_systems] eV at every step."""

    interval = 1

    def __init__(self):
        self.energy_std = []

    def start(self, sim):
        pass

    def report(self, sim):
        self.energy_std.append(sim.state.outputs["energy_std"].clone())

    def close(self, sim):
        pass


def test_a_committees_spread_reaches_the_reporters():
    members = [
        DescriptorModel(["H", "C", "O"], cutoff=4.0, n_radial=4, n_channels=4, l_max=2, hidden=(8,), seed=seed)
        for seed in (0, 1)
    ]
    committee = Committee(members)
    recorder = SpreadRecorder()
    sim = Simulation(molecule("CH3CH2OH"), committee, 0.5, temperature_K=300, seed=0, reporters=[recorder])
    sim.run(5)
    assert len(recorder.energy_std) == 6  # steps 0 to 5
    final = sim.atoms()[0]
    expected = committee(atomic_data_from_atoms(final, cutoff=committee.cutoff))
    outputs = sim.state.outputs
    for key in ("energy_std", "forces_std", "energy", "forces"):
        reference = expected[key].detach().numpy()
        assert outputs[key].shape == expected[key].shape, key
        assert np.abs(outputs[key].numpy() - reference).max() <= ROUND_OFF * np.abs(reference).max(), key
    assert float(recorder.energy_std[-1][0]) > 0.0  # two different members disagree
    assert not all(bool((spread == recorder.energy_std[0]).all()) for spread in recorder.energy_std[1:])
