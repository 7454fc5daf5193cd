"""Physics-informed Schrödinger networks with a plane-wave first layer: bound states and
stationary scattering against closed forms."""

import math

import pytest
import torch

from mlpot.quantum.pinn import (
    PlaneWaveFeatures,
    bound_states,
    evolve,
    scattering_transmission,
    square_barrier_transmission,
)
from mlpot.quantum.waves import free_packet


def test_closed_form_feature_derivatives_match_autograd():
    layer = PlaneWaveFeatures(torch.linspace(0.1, 3.0, 5, dtype=torch.float64), centre=0.3)
    x = torch.linspace(-2, 2, 11, dtype=torch.float64, requires_grad=True)
    for column in range(10):
        first = torch.autograd.grad(layer(x)[:, column].sum(), x, create_graph=True)[0]
        second = torch.autograd.grad(first.sum(), x)[0]
        assert torch.allclose(layer.derivative(x, 1)[:, column], first, atol=1e-13)
        assert torch.allclose(layer.derivative(x, 2)[:, column], second, atol=1e-13)


def check_harmonic_oscillator(n_states, **options):
    omega = 1.0
    energies, networks = bound_states(lambda x: 0.5 * omega**2 * x**2, n_states=n_states, **options)
    for n, energy in enumerate(energies):
        assert abs(energy - (n + 0.5) * omega) < 1e-3
    x = torch.linspace(-8, 8, 2001, dtype=torch.float64)
    dx = float(x[1] - x[0])
    with torch.no_grad():
        psi = torch.stack([network(x) for network in networks])
    overlaps = psi @ psi.T * dx
    assert torch.allclose(overlaps, torch.eye(n_states, dtype=torch.float64), atol=1e-3)
    # parity: level n is even/odd like the Hermite function H_n
    for n in range(n_states):
        assert torch.allclose(psi[n].flip(0), (-1) ** n * psi[n], atol=1e-2 * psi[n].abs().max())


def test_harmonic_oscillator_two_lowest_levels():
    check_harmonic_oscillator(2, n_steps=150, n_points=201)


@pytest.mark.slow
def test_harmonic_oscillator_four_lowest_levels():
    check_harmonic_oscillator(4)


@pytest.mark.parametrize("energy", [0.5, 1.0, 1.5])  # tunnelling, at the barrier top, above it
def test_square_barrier_transmission(energy):
    height, width = 1.0, 1.0
    fit = scattering_transmission(lambda x: ((x >= 0) & (x <= width)).to(torch.float64) * height, energy, [0.0, width])
    exact = square_barrier_transmission(energy, height, width)
    assert abs(fit["transmission"] / exact - 1.0) < 0.01
    assert abs(fit["transmission"] + fit["reflection"] - 1.0) < 0.01  # flux conservation


def test_transmission_formula_is_continuous_at_the_barrier_top():
    below = square_barrier_transmission(1.0 - 1e-7, 1.0, 1.3, mass=0.7, hbar=1.1)
    above = square_barrier_transmission(1.0 + 1e-7, 1.0, 1.3, mass=0.7, hbar=1.1)
    top = square_barrier_transmission(1.0, 1.0, 1.3, mass=0.7, hbar=1.1)
    assert abs(below - top) < 1e-6 and abs(above - top) < 1e-6
    # no barrier: full transmission
    assert square_barrier_transmission(0.7, 1e-12, 1.0) == pytest.approx(1.0, abs=1e-9)


def moments(psi, x):
    dx = float(x[1] - x[0])
    density = psi.abs() ** 2
    norm = float(density.sum() * dx)
    mean = float((density * x).sum() * dx / norm)
    return norm, mean, math.sqrt(float((density * (x - mean) ** 2).sum() * dx / norm))


def test_coherent_state_oscillates_rigidly_in_the_harmonic_potential():
    # a displaced ground state of V = ½mω²x² keeps its width 1/√2 and its centre follows x0 cos ωt
    x0 = 1.5
    evolution = evolve(lambda x: 0.5 * x**2, lambda x: math.pi**-0.25 * torch.exp(-0.5 * (x - x0) ** 2))
    x = torch.linspace(-10, 10, 4001, dtype=torch.float64)
    for t in (0.0, 0.7, 2.0, math.pi, 10.0):
        norm, mean, width = moments(evolution(x, t), x)
        assert abs(norm - 1.0) < 1e-10 and abs(mean - x0 * math.cos(t)) < 1e-10 and abs(width - math.sqrt(0.5)) < 1e-10


def test_time_evolution_agrees_with_the_exact_plane_wave_network():
    # V = 0 in a box much wider than the packet: the two methods must agree pointwise
    x0, k0, sigma0, t = 0.0, 1.0, 1.0, 3.0
    evolution = evolve(lambda x: 0 * x, lambda x: free_packet(x0, k0, sigma0)(x, 0.0), box=(-40.0, 40.0), n_waves=400)
    x = torch.linspace(-5, 10, 301, dtype=torch.float64)
    assert (evolution(x, t) - free_packet(x0, k0, sigma0)(x, t)).abs().max() < 1e-8


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="box"):
        bound_states(lambda x: x**2, box=(1.0, -1.0))
    with pytest.raises(ValueError, match="finite"):
        bound_states(lambda x: x / 0.0 * 0.0)
    with pytest.raises(ValueError, match="positive"):
        scattering_transmission(lambda x: 0 * x, -1.0, [0.0, 1.0])
    with pytest.raises(ValueError, match="n_waves"):
        evolve(lambda x: 0 * x, lambda x: torch.exp(-x**2), n_waves=1)
    with pytest.raises(ValueError, match="increasing"):
        scattering_transmission(lambda x: 0 * x, 1.0, [1.0, 0.0])
