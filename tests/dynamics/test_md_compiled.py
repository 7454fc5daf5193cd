"""NVE with a compiled mlpot potential: one compiled graph per step (mlpot.dynamics.compiled_step)
takes the steps of the generic path, rebuilds, restarts and health checks included; and a list
that holds every pair of a molecule is never rebuilt."""

from __future__ import annotations

import copy
import shutil
import warnings

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule
from helpers import ROUND_OFF

from mlpot.data import atomic_data_from_atoms
from mlpot.dynamics import HealthCheck, MDInstabilityError, Simulation, compiled_step
from mlpot.dynamics.compiled_step import CompiledStep
from mlpot.dynamics.health import health_measures
from mlpot.models import DescriptorModel, atomistic
from mlpot.models import potential as potential_module
from mlpot.units import KB_EV_PER_K

needs_compiler = pytest.mark.skipif(
    shutil.which("c++") is None and shutil.which("g++") is None, reason="no C++ compiler for torch.compile"
)

#: Neighbour-list skin, Å: crossed every few steps at 600 K, so that runs rebuild often.
SKIN = 0.25


def _systems_and_model():
    """A periodic 16-atom Cu cell, ethanol and water, advanced together (one periodic system and
    two molecules larger than cutoff + skin), and a small random model for them."""
    copper = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 1))
    copper.rattle(0.05, seed=1)
    model = DescriptorModel(["H", "C", "O", "Cu"], cutoff=3.5, n_radial=4, n_channels=4, l_max=2, hidden=(16,), seed=0)
    model.set_energy_statistics({z: 0.0 for z in model.atomic_numbers}, scale=10.0)  # forces ~0.1 eV/Å
    return [copper, molecule("CH3CH2OH"), molecule("H2O")], model


def _count_compiled_steps(monkeypatch) -> dict:
    """Count the steps that the compiled graph took (the others went the generic way) and keep
    the health measures of the last one."""
    taken = {"steps": 0, "measures": None}
    step = CompiledStep.step

    def counting(self, state):
        result = step(self, state)
        if result is not None:
            taken["steps"] += 1
            taken["measures"] = result[1]
        return result

    monkeypatch.setattr(CompiledStep, "step", counting)
    return taken


@needs_compiler
@pytest.mark.parametrize("threads", [1, pytest.param(2, marks=pytest.mark.slow)])  # 2: other (parallel) code
def test_compiled_steps_equal_generic_steps(threads, monkeypatch):
    """The same trajectory to round-off over 60 steps with rebuilds (a step that must rebuild is
    taken by the generic path from the unchanged state); a restart continues bit for bit with one
    thread (with more, the compiled model's scatter-adds sum in a varying order: round-off)."""
    torch.set_num_threads(threads)  # restored by the autouse fixture
    torch._dynamo.reset()  # compile afresh for this thread count
    systems, model = _systems_and_model()
    taken = _count_compiled_steps(monkeypatch)
    kwargs = dict(temperature_K=600, seed=3, skin=SKIN)
    generic = Simulation(systems, model, 1.0, **kwargs)
    compiled_model = copy.deepcopy(model).compile()
    compiled = Simulation(systems, compiled_model, 1.0, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a fallback to uncompiled would be a failure here
        generic.run(60)
        compiled.run(30)
        checkpoint, rebuilds_at_checkpoint = compiled.checkpoint(), compiled.forces.n_rebuilds
        compiled.run(30)
        compiled_steps = taken["steps"]
        resumed = Simulation(systems, compiled_model, 1.0, **kwargs)
        resumed.load_checkpoint(checkpoint)
        resumed.run(30)
    rebuilds = compiled.forces.n_rebuilds
    assert rebuilds == generic.forces.n_rebuilds
    assert rebuilds_at_checkpoint > 2 and rebuilds > rebuilds_at_checkpoint + 2  # rebuilds before and after it
    assert 60 - compiled_steps == rebuilds - 1  # generic steps only to rebuild (the first list is built at step 0)
    # The compiler reorders sums: ~1e-16 relative per step, ~1e-15 after these 60 steps.
    for name in ("positions", "momenta", "forces", "energy"):
        expected, result, continued = (getattr(sim.state, name) for sim in (generic, compiled, resumed))
        assert float((result - expected).abs().max()) <= ROUND_OFF * float(expected.abs().max()), name
        if threads == 1:
            assert torch.equal(continued, result), name
        else:
            assert float((continued - result).abs().max()) <= ROUND_OFF * float(result.abs().max()), name


@needs_compiler
def test_compiled_steps_check_health(monkeypatch):
    """The health measures come out of the graph as the generic check computes them, and a step
    that breaks a bound stops the run, as on the generic path."""
    systems, model = _systems_and_model()
    taken = _count_compiled_steps(monkeypatch)
    # At rest, step 0 passes a 1 mK bound; by step 1 the forces have set the atoms moving.
    sim = Simulation(systems, model.compile(), 1.0, skin=SKIN, health=HealthCheck(max_temperature_K=1e-3))
    with pytest.raises(MDInstabilityError, match="step 1 .*exceeds max_temperature_K"):
        sim.run(5)
    assert taken["steps"] == 1 and not sim.state_is_good
    state = sim.state
    expected = health_measures(
        state.positions, state.momenta, state.forces, state.energy,
        1.0 / state.masses, 1.0 / (state.n_dof * KB_EV_PER_K), state.batch,
    )
    assert np.allclose(taken["measures"], expected.numpy(), rtol=ROUND_OFF, atol=0)


def test_a_complete_list_is_never_rebuilt():
    """A molecule within cutoff + skin has every pair in its list: no neighbour can be missing,
    however far the atoms move, so the list is kept, and the forces stay those of a fresh list."""
    atoms = molecule("CH3CH2OH")
    model = DescriptorModel(["H", "C", "O"], cutoff=5.0, n_radial=4, n_channels=4, l_max=2, hidden=(16,), seed=2)
    sim = Simulation(atoms, model, 1.0, temperature_K=600, seed=0, skin=1.0)
    start = sim.state.positions.clone()
    sim.run(100)
    assert (sim.state.positions - start).norm(dim=1).max() > 0.5  # beyond skin/2: a partial list would be rebuilt
    assert sim.forces.n_rebuilds == 1
    final = sim.atoms()[0]
    expected = model(atomic_data_from_atoms(final, cutoff=model.cutoff))["forces"].numpy()
    assert np.abs(final.get_forces() - expected).max() <= ROUND_OFF * np.abs(expected).max()


def test_a_list_too_large_for_one_pass_takes_the_generic_step_and_compiles_no_forward(monkeypatch):
    """A list of more than EDGES_PER_BLOCK edges is evaluated by the generic forward, block by block,
    which is not one graph: the engine must not compile a step (or an evaluator) around it. It did,
    inductor failed on the forward's energy sum, and the fallback made Cu 10,192-atom MD ~30% slower
    (and the ASE driver after it ~16%). The model's own passes are what run compiled there."""

    def no_compiling(function):
        raise AssertionError(f"compiled {function.__qualname__} around the generic forward")

    systems, model = _systems_and_model()
    monkeypatch.setattr(atomistic, "EDGES_PER_BLOCK", 16)  # every list here is too large for one pass
    monkeypatch.setattr(compiled_step, "compile_function", no_compiling)
    monkeypatch.setattr(potential_module, "compile_function", no_compiling)
    monkeypatch.setattr(DescriptorModel, "_pass", lambda self, function: function)  # its passes: not compiled here
    taken = _count_compiled_steps(monkeypatch)
    sim = Simulation(systems, model.compile(), 1.0, temperature_K=600, seed=3, skin=SKIN)
    sim.run(10)
    assert taken["steps"] == 0 and sim.forces.n_rebuilds >= 1
    assert not sim.forces.topology(sim.state).compiled
