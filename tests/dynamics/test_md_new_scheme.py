"""A new integration scheme with state of its own fits the engine without touching it: a pure step
function over the same kick–drift–kick, an :class:`MDState` subclass with an extra field, and a
registered ensemble name; the extra field is checkpointed and restored like the built-in ones."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from helpers import ROUND_OFF
from torch import Tensor

from mlpot.dynamics import Integrator, MDState, Simulation, ThermoRecorder, register_integrator, velocity_verlet
from mlpot.dynamics.state import kinetic_energy


@dataclass
class ActionState(MDState):
    """The MD state plus the running time integral of the kinetic energy, [n_systems] eV·(ASE time)."""

    kinetic_action: Tensor | None = None


def verlet_with_action(state: ActionState, force_fn, params) -> ActionState:
    """Velocity Verlet, and ∫K dt over the step by the trapezoid rule."""
    new = velocity_verlet(state, force_fn, params)
    trapezoid = 0.5 * params.dt * (kinetic_energy(state) + kinetic_energy(new))
    return new.evolve(kinetic_action=state.kinetic_action + trapezoid)


class VerletWithAction(Integrator):
    ensemble = "test-nve-with-action"
    step_function = staticmethod(verlet_with_action)

    def init_state(self, state: MDState) -> ActionState:
        values = {f.name: getattr(state, f.name) for f in fields(state)}
        return ActionState(**values, kinetic_action=torch.zeros_like(state.energy))


register_integrator(
    VerletWithAction.ensemble, lambda timestep_fs, *_: VerletWithAction(timestep_fs), takes_options=False
)


def _simulation(atoms, potential, **kwargs) -> Simulation:
    return Simulation(atoms, potential, 2.0, ensemble=VerletWithAction.ensemble, temperature_K=300, seed=0, **kwargs)


def test_a_scheme_with_its_own_state_runs_checkpoints_and_resumes(harmonic_molecule, tmp_path):
    atoms, potential = harmonic_molecule
    recorder = ThermoRecorder(interval=1)
    straight = _simulation(atoms, potential, reporters=[recorder])
    straight.run(40)
    assert isinstance(straight.state, ActionState)
    # ∫K dt by the trapezoid rule over the recorded kinetic energies, in float64 numpy.
    kinetic = recorder.arrays()["E_kin"][:, 0]
    dt = straight.integrator.dt
    expected = dt * (kinetic.sum() - 0.5 * (kinetic[0] + kinetic[-1]))
    assert kinetic.min() > 0
    assert abs(float(straight.state.kinetic_action[0]) - expected) <= ROUND_OFF * expected

    first = _simulation(atoms, potential)
    first.run(25)
    path = first.save_checkpoint(tmp_path / "checkpoint.pt")
    resumed = Simulation.from_checkpoint(path, atoms, potential)
    assert resumed.integrator.ensemble == VerletWithAction.ensemble
    assert torch.equal(resumed.state.kinetic_action, first.state.kinetic_action)
    resumed.run(15)
    for name in ("positions", "momenta", "kinetic_action"):
        assert torch.equal(getattr(resumed.state, name), getattr(straight.state, name)), name
    assert np.isfinite(resumed.observables()["conserved"]).all()
