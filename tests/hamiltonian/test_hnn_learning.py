"""Learning tests: trained with the shared loop (mlpot.training.loop.fit), reduced to a few seconds.

The default-suite versions use small networks and a separable HNN (integrated with the explicit
leapfrog, like MD); the ``slow`` versions use the paper's architecture, a general HNN and the
implicit midpoint rule.
"""

from __future__ import annotations

import pytest
import torch

from mlpot.hamiltonian import HNN, DampedOscillatorNN, Duffing, MassSpring, NeuralODEBaseline, train_vector_field
from mlpot.hamiltonian.integrators import implicit_midpoint, leapfrog
from mlpot.hamiltonian.training import evaluate_vector_field
from mlpot.training.loop import LoopConfig


def fit_config(epochs, lr, seed=0):
    return LoopConfig(max_epochs=epochs, lr=lr, schedule="cosine", ema_decay=None, grad_clip=None,
                      progress=False, seed=seed)


def energy_errors(system, path):
    """|H(z_t) − H(z_0)| along a rollout [steps+1, batch, 2d] → [steps+1, batch]."""
    energy = system.hamiltonian(path)
    return (energy - energy[0]).abs()


@pytest.fixture(scope="module")
def spring_data():
    system = MassSpring()
    data = system.generate(50, seed=0)  # the paper's settings: noise σ = 0.1 on (q, p)
    train, test = data.split(25)
    return system, train, test


def test_hnn_conserves_energy_where_the_baseline_drifts(spring_data):
    system, train, test = spring_data
    models = {"hnn": HNN(1, hidden=(32, 32), separable=True).double(),
              "baseline": NeuralODEBaseline(1, hidden=(32, 32)).double()}
    z0 = test.z_clean[:5, 0]
    errors, mse = {}, {}
    for name, model in models.items():
        torch.manual_seed(0)
        train_vector_field(model, train, config=fit_config(150, 1e-2))
        model.eval()
        # both fit the noisy derivatives about equally well ...
        flat = test.flat()
        assert evaluate_vector_field(model, flat["z"], flat["dz"]) < 0.05  # noise floor ≈ 0.037
        # ... but only one conserves energy along a 10⁴-step symplectic (leapfrog) rollout
        with torch.no_grad():
            path = leapfrog(model, z0, 0.1, 10_000)
        errors[name] = energy_errors(system, path)
        mse[name] = float(torch.nan_to_num(errors[name] ** 2, nan=1e30).mean())
    energy0 = system.hamiltonian(z0)
    hnn = errors["hnn"]
    assert torch.isfinite(hnn).all()
    assert (hnn.max(0).values <= 0.25 * energy0 + 0.02).all()  # bounded, within the noise of the data
    early, late = hnn[:1000].mean(), hnn[-1000:].mean()
    assert late < 2 * early + 1e-3  # no secular drift over 1000 time units (~300 periods)
    assert mse["hnn"] * 10 <= mse["baseline"], mse


def test_damped_oscillator_recovers_the_damping_coefficient():
    system = Duffing(damping=0.2)  # m q̈ = −q − q³ − γ q̇
    data = system.generate(16, seed=0, noise_std=0.02, n_points=40)
    torch.manual_seed(0)
    model = DampedOscillatorNN(1, hidden=(32, 32)).double()
    train_vector_field(model, data, config=fit_config(400, 3e-2))
    assert abs(float(model.damping.detach()) - 0.2) <= 0.1 * 0.2
    # and the learned model dissipates: dH_θ/dt ≤ 0 along its own flow
    assert (model.energy_rate(data.z_clean.reshape(-1, 2)) <= 1e-12).all()


@pytest.mark.slow
def test_paper_size_hnn_with_implicit_midpoint(spring_data):
    """The full version: 200×200 tanh networks, 2000 steps, a general (non-separable) HNN."""
    system, train, test = spring_data
    z0 = test.z_clean[:, 0]
    mse = {}
    for name, model in {"hnn": HNN(1).double(), "baseline": NeuralODEBaseline(1).double()}.items():
        torch.manual_seed(0)
        train_vector_field(model, train, config=fit_config(2000, 1e-3))
        model.eval()
        with torch.no_grad():
            path = implicit_midpoint(model, z0, 0.1, 10_000)
        mse[name] = float(torch.nan_to_num(energy_errors(system, path) ** 2, nan=1e30).mean())
    assert mse["hnn"] * 100 <= mse["baseline"], mse
