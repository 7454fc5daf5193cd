"""Integrators: symplecticity by autograd Jacobian, exact discrete invariants, orders of accuracy."""

from __future__ import annotations

import math

import pytest
import torch

from mlpot.hamiltonian import HNN, integrators, symplectic_matrix
from mlpot.hamiltonian.integrators import implicit_midpoint, leapfrog, leapfrog_step, rk4, symplectic_euler
from mlpot.hamiltonian.systems import Pendulum

DTYPE = torch.float64


def strong_hnn(dim, separable, seed=0, scale=3.0):
    """A random HNN with weights scaled up so that its flow is clearly nonlinear."""
    torch.manual_seed(seed)
    model = HNN(dim, hidden=(32, 32), separable=separable).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    return model


def step_jacobian(integrator, dynamics, z, dt, **kwargs):
    """M = ∂z₁/∂z₀ of one step, by autograd through the integrator (implicit solves unrolled)."""
    return torch.autograd.functional.jacobian(lambda x: integrator(dynamics, x[None], dt, 1, **kwargs)[-1, 0], z)


def symplecticity_defect(M, dim):
    J = symplectic_matrix(dim)
    return float((M.T @ J @ M - J).abs().max())


SYMPLECTIC_CASES = [
    ("leapfrog, separable H", leapfrog, True, {}),
    ("leapfrog, general H (generalised Störmer–Verlet)", leapfrog, False, {"separable": False}),
    ("symplectic Euler, separable H", symplectic_euler, True, {}),
    ("symplectic Euler, general H", symplectic_euler, False, {"separable": False}),
    ("implicit midpoint, fixed point", implicit_midpoint, False, {}),
    ("implicit midpoint, Newton", implicit_midpoint, False, {"solver": "newton"}),
]


@pytest.mark.parametrize("name,integrator,separable,kwargs", SYMPLECTIC_CASES, ids=[c[0] for c in SYMPLECTIC_CASES])
def test_one_step_is_symplectic(name, integrator, separable, kwargs):
    dim = 2
    model = strong_hnn(dim, separable)
    gen = torch.Generator().manual_seed(1)
    for z in torch.randn(3, 2 * dim, generator=gen, dtype=DTYPE):
        M = step_jacobian(integrator, model, z, 0.1, **kwargs)
        assert symplecticity_defect(M, dim) <= 1e-10, name


def test_rk4_fails_the_symplecticity_check():
    """Control: the same check detects a non-symplectic map."""
    dim = 2
    model = strong_hnn(dim, separable=False)
    z = torch.randn(2 * dim, generator=torch.Generator().manual_seed(1), dtype=DTYPE)
    assert symplecticity_defect(step_jacobian(rk4, model, z, 0.1), dim) > 1e-6


def test_symplecticity_also_holds_for_hamiltonian_callables():
    """A plain H(z) callable goes through autograd inside the integrator; still symplectic."""
    def hamiltonian(z):  # non-separable
        q, p = z[..., 0], z[..., 1]
        return 0.5 * p**2 * (1 + 0.3 * torch.sin(q)) + (1 - torch.cos(q))

    z = torch.tensor([0.4, -0.9], dtype=DTYPE)
    for integrator, kwargs in [(implicit_midpoint, {}), (leapfrog, {"separable": False})]:
        assert symplecticity_defect(step_jacobian(integrator, hamiltonian, z, 0.2, **kwargs), 1) <= 1e-10
    assert symplecticity_defect(step_jacobian(rk4, hamiltonian, z, 0.4), 1) > 1e-6


def test_leapfrog_conserves_the_harmonic_shadow_hamiltonian_over_1e5_steps():
    """For H = p²/2m + kq²/2, kick–drift–kick conserves H̃ = p²/2m + ½kq²(1 − h²ω²/4) exactly."""
    mass = 0.5
    k = torch.tensor([[0.5], [2.0], [8.0], [20.0]], dtype=DTYPE)  # hω from 0.1 to 0.63
    h, steps = 0.1, 100_000
    z0 = torch.tensor([[1.0, 0.0], [0.3, -0.7], [-0.2, 1.1], [0.05, 0.4]], dtype=DTYPE)
    path = leapfrog((lambda q, p: k * q, lambda q, p: p / mass), z0, h, steps)
    assert path.shape == (steps + 1, 4, 2)
    q, p = path[..., 0], path[..., 1]
    omega2 = (k / mass).squeeze(-1)
    shadow = p**2 / (2 * mass) + 0.5 * k.squeeze(-1) * q**2 * (1 - h**2 * omega2 / 4)
    relative = ((shadow - shadow[0]) / shadow[0]).abs().max()
    assert relative < 1e-11  # round-off accumulates as a random walk, ~√n·ε ≈ 1e-13
    energy = p**2 / (2 * mass) + 0.5 * k.squeeze(-1) * q**2
    assert ((energy - energy[0]) / energy[0]).abs().max() > 1e-4  # the true energy does oscillate


def test_rk4_energy_decays_exactly_as_predicted():
    """For the harmonic oscillator RK4 multiplies the energy by 1 − y⁶/72 + y⁸/576 per step, y = hω."""
    mass, k, h, steps = 0.5, 2.0, 0.2, 500
    y = h * math.sqrt(k / mass)
    z0 = torch.tensor([[0.8, 0.3]], dtype=DTYPE)
    path = rk4((lambda q, p: k * q, lambda q, p: p / mass), z0, h, steps)
    energy = path[..., 1] ** 2 / (2 * mass) + 0.5 * k * path[..., 0] ** 2
    factor = 1 - y**6 / 72 + y**8 / 576
    n = torch.arange(steps + 1, dtype=DTYPE)[:, None]
    torch.testing.assert_close(energy, energy[0] * factor**n, rtol=1e-12, atol=0)


def test_implicit_midpoint_conserves_quadratic_energy_exactly():
    """Up to the solver tolerance (64ε per step, with a consistent sign: ≲ 500·64ε ≈ 7e-12)."""
    mass, k = 1.0, 4.0
    z0 = torch.tensor([[1.0, 0.5], [0.0, 2.0]], dtype=DTYPE)
    for solver in ("fixed_point", "newton"):
        path = implicit_midpoint(lambda z: torch.cat([z[:, 1:] / mass, -k * z[:, :1]], -1), z0, 0.2, 500, solver=solver)
        energy = path[..., 1] ** 2 / (2 * mass) + 0.5 * k * path[..., 0] ** 2
        assert ((energy - energy[0]) / energy[0]).abs().max() < 1e-11


@pytest.mark.parametrize(
    "integrator,kwargs,order",
    [(rk4, {}, 4), (leapfrog, {}, 2), (leapfrog, {"separable": False}, 2), (implicit_midpoint, {}, 2),
     (symplectic_euler, {}, 1), (symplectic_euler, {"separable": False}, 1)],
)
def test_order_of_accuracy_on_the_pendulum(integrator, kwargs, order):
    pendulum = Pendulum()
    z0 = torch.tensor([[1.0, 0.5]], dtype=DTYPE)
    t_end = 2.0
    reference = rk4(pendulum.vector_field, z0, t_end / 2000, 2000)[-1]
    errors = []
    for n in (40, 80):
        final = integrator(pendulum.hamiltonian, z0, t_end / n, n, **kwargs)[-1]
        errors.append(float((final - reference).abs().max()))
    observed = math.log2(errors[0] / errors[1])
    assert abs(observed - order) < 0.35, (observed, errors)


def test_all_forms_of_the_dynamics_agree():
    """Vector field, Hamiltonian, gradient pair and model inputs give the same trajectory."""
    pendulum = Pendulum()
    z0 = torch.tensor([[0.3, -0.2], [1.0, 0.4]], dtype=DTYPE)
    m, l, g = pendulum.mass, pendulum.length, pendulum.gravity
    pair = (lambda q, p: m * g * l * torch.sin(q), lambda q, p: p / (m * l**2))
    for integrator in (rk4, leapfrog, symplectic_euler, implicit_midpoint):
        reference = integrator(pendulum.vector_field, z0, 0.05, 20)
        for source, kwargs in [(pendulum.hamiltonian, {}), (pair, {}), (pendulum.hamiltonian, {"kind": "hamiltonian"})]:
            torch.testing.assert_close(integrator(source, z0, 0.05, 20, **kwargs), reference, rtol=1e-12, atol=1e-12)
    # leapfrog_step is the same splitting (velocity Verlet, as an MD engine would call it)
    q, p = z0[:, :1], z0[:, 1:]
    g_now = None
    for _ in range(20):
        q, p, g_now = leapfrog_step(q, p, 0.05, *pair, dH_dq_now=g_now)
    torch.testing.assert_close(torch.cat([q, p], -1), leapfrog(pair, z0, 0.05, 20)[-1], rtol=0, atol=0)


def test_newton_and_fixed_point_midpoint_agree():
    model = strong_hnn(2, separable=False, scale=2.0)
    z0 = torch.randn(4, 4, generator=torch.Generator().manual_seed(3), dtype=DTYPE)
    a = implicit_midpoint(model, z0, 0.1, 10)
    b = implicit_midpoint(model, z0, 0.1, 10, solver="newton")
    torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-11)


def test_separable_hnn_uses_its_two_networks_in_leapfrog():
    model = strong_hnn(1, separable=True, scale=1.0)
    z0 = torch.randn(3, 2, generator=torch.Generator().manual_seed(0), dtype=DTYPE)
    dyn = integrators.as_dynamics(model, z0)
    assert dyn.kind == "gradients"
    via_field = leapfrog(model.vector_field, z0, 0.1, 50)
    torch.testing.assert_close(leapfrog(model, z0, 0.1, 50), via_field, rtol=1e-12, atol=1e-12)


def test_time_dependent_driven_oscillator_matches_the_exact_solution():
    """q̈ = −q + cos(2t), q(0)=0, q̇(0)=0 → q = (cos t − cos 2t)/3."""
    field = lambda z, t: torch.cat([z[:, 1:], -z[:, :1] + math.cos(2 * t)], -1)  # noqa: E731
    z0 = torch.zeros(1, 2, dtype=DTYPE)
    path = rk4(field, z0, 0.01, 300, time_dependent=True)
    t = 3.0
    assert abs(float(path[-1, 0, 0]) - (math.cos(t) - math.cos(2 * t)) / 3) < 1e-9


def test_rollout_of_a_blown_up_model_fills_nan_without_raising():
    field = lambda z: z**3  # noqa: E731  (finite-time blow-up)
    out = rk4(field, torch.full((2, 2), 3.0, dtype=DTYPE), 0.5, 300)
    assert out.shape == (301, 2, 2)
    assert torch.isnan(out[-1]).all()


def test_gradients_flow_through_a_rollout_only_on_request():
    model = HNN(1, hidden=(8,)).double()
    z0 = torch.randn(2, 2, dtype=DTYPE)
    assert not leapfrog(model, z0, 0.1, 5).requires_grad  # training mode, but no graph kept
    out = leapfrog(model, z0, 0.1, 5, track_grad=True)
    out.sum().backward()
    assert model.net[0].weight.grad is not None
