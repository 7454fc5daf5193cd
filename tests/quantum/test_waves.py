"""Plane-wave networks solve the free Schrödinger equation exactly; the fitted packet spreads
exactly as σ(t) = σ₀√(1 + (ħt/2mσ₀²)²)."""

import math

import pytest
import torch

from mlpot.quantum.waves import PlaneWaveNetwork, free_packet, gaussian_packet, packet_width, schrodinger_residual


def analytic_width(sigma0, t, mass=1.0, hbar=1.0):
    return sigma0 * math.sqrt(1.0 + (hbar * t / (2.0 * mass * sigma0**2)) ** 2)


@pytest.mark.parametrize("mass,hbar", [(1.0, 1.0), (2.5, 0.7)])
def test_free_packet_width_follows_the_analytic_spreading(mass, hbar):
    x0, k0, sigma0 = -1.0, 1.5, 0.8
    network = free_packet(x0, k0, sigma0, mass=mass, hbar=hbar)
    spreading_time = 2.0 * mass * sigma0**2 / hbar
    for t in (0.0, 0.5 * spreading_time, 2.0 * spreading_time, 6.0 * spreading_time):
        exact = analytic_width(sigma0, t, mass, hbar)
        centre = x0 + hbar * k0 * t / mass
        measured = float(packet_width(network, t, centre, 10.0 * exact)[0])
        assert abs(measured / exact - 1.0) < 1e-6


def test_free_packet_is_the_exact_packet_pointwise():
    network = free_packet(0.5, -2.0, 1.2)
    x = torch.linspace(-10, 10, 301, dtype=torch.float64)
    for t in (0.0, 1.0, 5.0):
        # the fit is spectrally accurate: the Gaussian's Fourier tail beyond the grid is < 1e-17
        assert (network(x, t) - gaussian_packet(x, 0.5, -2.0, 1.2, t)).abs().max() < 1e-12


def test_free_packet_2d_width_and_residual():
    # a 24 × 24 box (48² waves) holds the packet while 8σ(t) < 12, i.e. up to t ≈ 2
    network = free_packet((0.0, 1.0), (1.0, -0.5), 1.0, box_length=24.0)
    t = 1.5
    widths = packet_width(network, t, (t, 1.0 - 0.5 * t), 11.0, n_points=80**2)
    expected = torch.full((2,), analytic_width(1.0, t), dtype=torch.float64)
    assert torch.allclose(widths, expected, rtol=1e-6, atol=0)
    points = 4.0 * torch.rand(50, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64) - 2.0
    residual = schrodinger_residual(network, points, torch.full((50,), 0.7, dtype=torch.float64))
    assert residual.abs().max() <= 1e-10


def test_schrodinger_residual_vanishes_at_random_points():
    network = free_packet(0.0, 3.0, 0.5, mass=1.3, hbar=0.9)
    generator = torch.Generator().manual_seed(0)
    x = 20.0 * torch.rand(200, generator=generator, dtype=torch.float64) - 10.0
    t = 5.0 * torch.rand(200, generator=generator, dtype=torch.float64)
    assert schrodinger_residual(network, x, t).abs().max() <= 1e-10


def test_any_plane_wave_network_is_an_exact_solution_but_a_wrong_dispersion_is_not():
    generator = torch.Generator().manual_seed(2)
    k = 3.0 * torch.randn(20, generator=generator, dtype=torch.float64)
    c = torch.randn(20, generator=generator, dtype=torch.complex128)
    network = PlaneWaveNetwork(k, c, mass=0.8)
    x = torch.randn(30, generator=generator, dtype=torch.float64)
    t = torch.rand(30, generator=generator, dtype=torch.float64)
    assert schrodinger_residual(network, x, t).abs().max() <= 1e-10 * c.abs().sum() * (1 + k.abs().max() ** 2)

    class WrongDispersion(PlaneWaveNetwork):
        def frequencies(self):  # ω = ħk²/m instead of ħk²/2m
            return 2.0 * super().frequencies()

    wrong = WrongDispersion(k, c, mass=0.8)
    assert schrodinger_residual(wrong, x, t).abs().max() > 1e-2  # the residual check has teeth


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="sigma0"):
        free_packet(0.0, 1.0, -1.0)
    with pytest.raises(ValueError, match="pairs"):
        free_packet((0.0, 1.0, 2.0), 1.0, 1.0)
    with pytest.raises(ValueError, match="mass"):
        PlaneWaveNetwork(torch.zeros(3), torch.zeros(3, dtype=torch.complex128), mass=0.0)
    network = free_packet(0.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="shape"):
        network(torch.zeros(4, 2))
