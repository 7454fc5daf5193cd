"""The toy systems: exact vector fields, data generation, finite differences."""

from __future__ import annotations

import math

import pytest
import torch

from mlpot.hamiltonian import SYSTEMS, DerivativeBatches, Duffing, MassSpring, Pendulum, TwoBody, get_system
from mlpot.hamiltonian.hnn import hamiltonian_gradient
from mlpot.hamiltonian.state import symplectic_gradient
from mlpot.hamiltonian.systems import finite_difference

DTYPE = torch.float64
CONSERVATIVE = ["mass-spring", "pendulum", "two-body"]


@pytest.mark.parametrize("name", CONSERVATIVE)
def test_conservative_vector_field_is_J_grad_H(name):
    system = get_system(name)
    z = system.sample_initial_states(16, torch.Generator().manual_seed(0))
    grad = hamiltonian_gradient(system.hamiltonian, z, create_graph=False)
    torch.testing.assert_close(system.vector_field(z), symplectic_gradient(grad), rtol=1e-12, atol=1e-12)


def test_duffing_is_port_hamiltonian():
    system = Duffing(damping=0.3, forcing=0.5, frequency=1.3)
    z = system.sample_initial_states(16, torch.Generator().manual_seed(0))
    t = 0.7
    grad = hamiltonian_gradient(system.hamiltonian, z, create_graph=False)
    R = torch.diag(torch.tensor([0.0, 0.3], dtype=DTYPE))
    expected = symplectic_gradient(grad) - grad @ R + system.control(t) @ system.input_matrix().T
    torch.testing.assert_close(system.vector_field(z, t), expected, rtol=1e-12, atol=1e-12)
    assert system.input_dim == 1 and Duffing().input_dim == 0 and Duffing().control(1.0) is None


@pytest.mark.parametrize("name", CONSERVATIVE)
def test_generated_trajectories_conserve_energy_and_carry_noise(name):
    system = get_system(name)
    n_points = 12  # a quarter of the default span, to keep it fast
    span = (system.t_span[0], system.t_span[0] + (system.t_span[1] - system.t_span[0]) / 4)
    data = system.generate(6, seed=1, n_points=n_points, t_span=span)
    assert data.z.shape == data.dz.shape == data.z_clean.shape == (6, n_points, 2 * system.dim)
    assert data.z.dtype == DTYPE and data.u is None
    energy = system.hamiltonian(data.z_clean)
    assert ((energy - energy[:, :1]).abs() / energy[:, :1].abs()).max() < 1e-6  # RK4 ground truth
    noise = data.z - data.z_clean
    if system.noise_std:
        assert abs(float(noise.std()) - system.noise_std) < 0.3 * system.noise_std
    else:
        assert float(noise.abs().max()) == 0.0
    torch.testing.assert_close(data.dz[:, 3], system.vector_field(data.z_clean[:, 3]))
    again = system.generate(6, seed=1, n_points=n_points, t_span=span)
    assert torch.equal(again.z, data.z)
    assert data.settings["name"] == name and data.settings["n_trajectories"] == 6


def test_two_body_initial_orbits_are_near_circular_with_the_centre_of_mass_at_rest():
    system = TwoBody()
    z = system.sample_initial_states(100, torch.Generator().manual_seed(0))
    q1, q2, p1, p2 = z[:, 0:2], z[:, 2:4], z[:, 4:6], z[:, 6:8]
    torch.testing.assert_close(p1 + p2, torch.zeros_like(p1), rtol=0, atol=1e-14)
    torch.testing.assert_close(q1 + q2, torch.zeros_like(q1), rtol=0, atol=1e-14)  # equal masses
    radius = q1.norm(dim=-1)
    assert radius.min() >= 0.5 and radius.max() <= 1.5
    # speeds are the circular speed √(GM/d) times (1 + 0.05 ξ), perpendicular to the separation
    separation = (q1 - q2).norm(dim=-1)
    v_rel = (p1 - p2).norm(dim=-1)  # unit masses
    ratio = v_rel / torch.sqrt(2.0 / separation)
    assert abs(float(ratio.mean()) - 1) < 0.02 and 0.03 < float(ratio.std()) < 0.07
    torch.testing.assert_close((p1 * q1).sum(-1), torch.zeros(100, dtype=DTYPE), rtol=0, atol=1e-14)
    energy = system.hamiltonian(z)
    assert (energy < 0).all()  # bound orbits


def test_duffing_data_dissipate_and_driven_data_carry_the_control():
    damped = Duffing(damping=0.2).generate(4, seed=0, n_points=50)
    energy = Duffing().hamiltonian(damped.z_clean)
    assert (energy[:, -1] < 0.5 * energy[:, 0]).all()
    driven = get_system("driven-duffing")
    data = driven.generate(3, seed=0, n_points=20)
    assert data.u.shape == (3, 20, 1)
    torch.testing.assert_close(data.u[0, :, 0], 0.5 * torch.cos(1.2 * data.t))
    batches = DerivativeBatches.from_data(data, batch_size=16)
    assert len(batches) == math.ceil(60 / 16)
    assert sum(b["z"].shape[0] for b in batches) == 60 and all("u" in b for b in batches)


def test_finite_difference_is_second_order_on_clean_data():
    system = Pendulum()
    errors = []
    for n_points in (50, 100):
        data = system.generate(3, seed=0, noise_std=0.0, n_points=n_points, derivatives="finite_difference")
        exact = torch.stack([system.vector_field(data.z_clean[:, i]) for i in range(n_points)], 1)
        errors.append(float((data.dz - exact).abs().max()))
    assert 3.0 < errors[0] / errors[1] < 5.0  # halving h quarters the error
    # non-uniform grids: exact for quadratics
    t = torch.tensor([0.0, 0.1, 0.35, 0.4, 0.9], dtype=DTYPE)
    z = torch.stack([t**2, 3 * t], -1)[None]
    torch.testing.assert_close(finite_difference(t, z)[0], torch.stack([2 * t, torch.full_like(t, 3.0)], -1))


def test_registry_and_parameters():
    assert set(SYSTEMS) == {"mass-spring", "pendulum", "two-body", "duffing", "driven-duffing"}
    assert MassSpring().omega == pytest.approx(2.0)
    z = torch.tensor([[0.3, 0.4]], dtype=DTYPE)
    torch.testing.assert_close(MassSpring().hamiltonian(z), z.pow(2).sum(-1))  # the paper's H = q² + p²
    torch.testing.assert_close(Pendulum().hamiltonian(z), 3 * (1 - torch.cos(z[:, 0])) + z[:, 1] ** 2)
    with pytest.raises(ValueError, match="unknown system"):
        get_system("three-body")
    with pytest.raises(ValueError):
        MassSpring(mass=-1.0)
