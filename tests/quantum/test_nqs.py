"""NQS ground states: exact-sum convergence, Monte Carlo vs exact over seeds, checkpoints, API.

The issue's full-size targets (TFIM N = 20, Heisenberg N = 16, 4×4 and the 40-site chain) are
@pytest.mark.slow here and reported by scripts/quantum_benchmarks.py.
"""

import inspect
import math

import pytest
import torch

from mlpot.quantum import nqs
from mlpot.quantum.nqs import ground_state, save_checkpoint
from mlpot.quantum.spins import bethe_ansatz_energy, exact_ground_energy


@pytest.mark.parametrize("model,n_sites,field",
                         [("tfim", 8, 1.0), ("heisenberg", 8, None), ("heisenberg", (2, 4), None)])
def test_exact_sum_sr_reaches_the_ground_state(model, n_sites, field):
    exact = exact_ground_energy(model, n_sites, field=field)
    result = ground_state(model, n_sites, field, n_iterations=100, exact_sum=True, show_progress=False)
    assert result.error == 0.0
    assert result.energy >= exact - 1e-12 * abs(exact)  # the variational principle, exactly
    assert (result.energy - exact) / abs(exact) < 1e-3  # the N = 16 target, at N = 8
    assert result.variance >= 0.0


def test_adam_also_descends():
    exact = exact_ground_energy("heisenberg", 6)
    result = ground_state("heisenberg", 6, n_iterations=150, exact_sum=True, optimizer="adam", show_progress=False)
    assert result.energy >= exact - 1e-12
    assert result.history["energy"][-1] < result.history["energy"][0]
    assert (result.energy - exact) / abs(exact) < 1e-2


@pytest.mark.parametrize("model,field", [("tfim", 1.0), ("heisenberg", None)])
def test_monte_carlo_energies_respect_the_variational_bound_over_seeds(model, field):
    exact = exact_ground_energy(model, 6, field=field)
    for seed in range(3):
        result = ground_state(model, 6, field, n_samples=256, n_iterations=20, seed=seed, n_final_samples=8192,
                              show_progress=False)
        assert result.error > 0
        assert result.energy > exact - 3 * result.error, f"seed {seed}: {result.energy} below {exact} by > 3σ"
        assert (result.energy - exact) / abs(exact) < 2e-2


def test_checkpoint_resume_continues_identically(tmp_path):
    path = tmp_path / "nqs.pt"
    kwargs = dict(n_samples=128, seed=3, show_progress=False, optimizer="adam")
    straight = ground_state("heisenberg", 6, n_iterations=8, **kwargs)
    ground_state("heisenberg", 6, n_iterations=4, checkpoint=path, checkpoint_every=2, **kwargs)
    resumed = ground_state("heisenberg", 6, n_iterations=8, checkpoint=path, **kwargs)
    assert resumed.history["energy"] == straight.history["energy"]
    assert resumed.energy == straight.energy


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "state.pt"
    save_checkpoint(path, {"iteration": 1})

    def broken_save(obj, stream):
        stream.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(nqs.torch, "save", broken_save)
    with pytest.raises(OSError):
        save_checkpoint(path, {"iteration": 2})
    assert torch.load(path, weights_only=True) == {"iteration": 1}
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_public_signature_and_bad_input():
    parameters = inspect.signature(ground_state).parameters
    defaults = {name: parameters[name].default for name in
                ("field", "periodic", "ansatz", "alpha", "n_samples", "n_iterations", "seed")}
    assert defaults == {"field": None, "periodic": True, "ansatz": "rbm", "alpha": 2, "n_samples": 4096,
                        "n_iterations": 600, "seed": 0}
    with pytest.raises(ValueError, match="ansatz"):
        ground_state("tfim", 4, 1.0, ansatz="transformer", n_iterations=1)
    with pytest.raises(ValueError, match="optimizer"):
        ground_state("tfim", 4, 1.0, optimizer="sgd", n_iterations=1)
    with pytest.raises(ValueError, match="bipartite"):
        ground_state("heisenberg", 5, marshall_sign=True, n_iterations=1)


def test_ffnn_and_complex_rbm_run():
    exact = exact_ground_energy("heisenberg", 6)
    # (a complex RBM can also learn the Marshall sign itself, but slowly from a near-constant start)
    for options in ({"ansatz": "ffnn", "alpha": 1}, {"complex_parameters": True, "marshall_sign": True}):
        result = ground_state("heisenberg", 6, n_iterations=60, exact_sum=True, show_progress=False, **options)
        assert exact - 1e-12 <= result.energy < 0.9 * exact  # variational, and well below the start


# ---------------------------------------------------------------- the targets (slow)


@pytest.mark.slow
@pytest.mark.parametrize("model,lattice,field,target", [("tfim", 20, 1.0, 1e-4), ("heisenberg", 16, None, 1e-3),
                                                       ("heisenberg", (4, 4), None, 2e-3)])
def test_full_size_targets(model, lattice, field, target):
    exact = exact_ground_energy(model, lattice, field=field)
    result = ground_state(model, lattice, field, n_iterations=300, show_progress=False)
    assert abs(result.energy - exact) / abs(exact) <= target
    assert result.energy > exact - 3 * result.error


@pytest.mark.slow
def test_forty_site_chain_is_close_to_the_bethe_ansatz():
    result = ground_state("heisenberg", 40, n_iterations=300, show_progress=False)
    assert abs(result.energy_per_site - bethe_ansatz_energy(40) / 40) <= 1e-2
    assert result.energy > bethe_ansatz_energy(40) - 3 * result.error
    assert math.isfinite(result.variance)
