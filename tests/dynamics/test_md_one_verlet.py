"""One velocity-Verlet kick–drift–kick serves the whole code base: the MD engine's step, the same
step compiled with the force evaluation, and the Hamiltonian layer's leapfrog take the same
trajectory on the same system with the same time step.

Eager MD and the Hamiltonian leapfrog run the same floating-point operations in the same order
(:func:`mlpot.dynamics.integrators.kick_drift_kick`, with −∂H/∂q as the force and ∂H/∂p = p·(1/m)
as the velocity), so they agree bit for bit. The compiled step is the same function, but the
compiler fuses and reorders the model's arithmetic: it agrees to round-off.
"""

from __future__ import annotations

import copy
import shutil

import pytest
import torch
from ase.build import molecule
from helpers import ROUND_OFF

from mlpot.dynamics import Simulation
from mlpot.hamiltonian.integrators import leapfrog
from mlpot.models import DescriptorModel

needs_compiler = pytest.mark.skipif(
    shutil.which("c++") is None and shutil.which("g++") is None, reason="no C++ compiler for torch.compile"
)

STEPS = 40
TIMESTEP_FS = 0.5


def _ethanol_and_model():
    """Ethanol and a small random model whose list at cutoff + skin holds every pair (never rebuilt)."""
    model = DescriptorModel(["H", "C", "O"], cutoff=4.0, n_radial=4, n_channels=4, l_max=2, hidden=(8,), seed=0)
    return molecule("CH3CH2OH"), model


def _md_trajectory(atoms, model) -> tuple[Simulation, torch.Tensor, torch.Tensor]:
    """The engine's NVE run from 300 K Maxwell–Boltzmann momenta: the simulation after step 0 is
    prepared, and positions and momenta [STEPS + 1, n, 3] at every step."""
    sim = Simulation(atoms, model, TIMESTEP_FS, temperature_K=300, seed=0)
    sim.run(0)  # forces at step 0
    positions, momenta = [sim.state.positions.clone()], [sim.state.momenta.clone()]
    for _ in range(STEPS):
        sim.run(1)
        positions.append(sim.state.positions.clone())
        momenta.append(sim.state.momenta.clone())
    return sim, torch.stack(positions), torch.stack(momenta)


def test_md_engine_and_hamiltonian_leapfrog_take_identical_steps():
    atoms, model = _ethanol_and_model()
    sim, positions, momenta = _md_trajectory(atoms, model)
    assert sim.forces.n_rebuilds == 1  # one list, one evaluator: the same force function throughout
    n = positions.shape[1]
    evaluate = sim.forces.topology(sim.state)  # the engine's force evaluation on its list
    inverse_masses = sim.integrator.params.inverse_masses.expand(n, 3).reshape(1, 3 * n)

    def dH_dq(q, p):  # −F(q), [1, 3n]
        return -evaluate(q.reshape(n, 3))[1].reshape(1, 3 * n)

    def dH_dp(q, p):  # p/m, as the engine's drift computes it
        return p * inverse_masses

    z0 = torch.cat([positions[0].reshape(1, -1), momenta[0].reshape(1, -1)], dim=-1)
    with torch.no_grad():
        z = leapfrog((dH_dq, dH_dp), z0, sim.integrator.dt, STEPS)
    q, p = z[:, 0, : 3 * n].reshape(STEPS + 1, n, 3), z[:, 0, 3 * n :].reshape(STEPS + 1, n, 3)
    assert (positions[-1] - positions[0]).abs().max() > 1e-3  # the atoms did move
    assert torch.equal(q, positions)
    assert torch.equal(p, momenta)


@needs_compiler
def test_compiled_md_step_takes_the_same_steps_to_round_off():
    atoms, model = _ethanol_and_model()
    _, positions, momenta = _md_trajectory(atoms, model)
    compiled_sim, compiled_positions, compiled_momenta = _md_trajectory(atoms, copy.deepcopy(model).compile())
    assert compiled_sim._compiled_step is not None
    for expected, result in ((positions, compiled_positions), (momenta, compiled_momenta)):
        assert not torch.equal(expected[1:], expected[:-1])
        assert float((result - expected).abs().max()) <= ROUND_OFF * float(expected.abs().max())
