"""Exact split-operator propagation: unitarity, free spreading, probability bookkeeping, exact limits."""

import math

import numpy as np
import pytest
import torch

from mlpot.nonadiabatic import systems, wavepacket
from mlpot.nonadiabatic.wavepacket import (
    Grid,
    adiabatic_vectors_on_grid,
    free_gaussian_sigma,
    potential_propagator,
    split_operator_step,
)


class Free(systems.DiabaticSystem):
    """Two uncoupled, flat states: a free particle."""

    def diabatic(self, x):
        x = systems.as_positions(x)
        return torch.zeros(*x.shape, 2, 2, dtype=x.dtype)


def _propagate(system, packet, grid, mass, dt, n_steps):
    x = grid.x
    h = system.diabatic(torch.as_tensor(x)).numpy()
    _, vectors = adiabatic_vectors_on_grid(h)
    psi = packet.amplitude(x)[None, :] * vectors[:, :, 0].T
    half = potential_propagator(h, dt / 2)
    kinetic = np.exp(-1j * grid.k**2 * dt / (2 * mass))
    for _ in range(n_steps):
        psi = split_operator_step(psi, half, kinetic)
    return psi


def test_free_gaussian_spreads_as_the_analytic_formula():
    grid = Grid(-100.0, 200.0 / 4096, 4096)
    mass, sigma0, k0 = 2000.0, 1.0, 5.0
    packet = systems.GaussianPacket(x0_bohr=-10.0, k0_au=k0, sigma_bohr=sigma0)
    dt, n_steps = 10.0, 800
    psi = _propagate(Free(), packet, grid, mass, dt, n_steps)
    density = (np.abs(psi) ** 2).sum(0) * grid.dx
    mean = (density * grid.x).sum()
    sigma = math.sqrt((density * (grid.x - mean) ** 2).sum())
    t = dt * n_steps
    # The free kinetic factor is exact and the grid resolves the packet spectrally: only round-off remains.
    assert density.sum() == pytest.approx(1.0, abs=1e-12)
    assert mean == pytest.approx(-10.0 + k0 / mass * t, abs=1e-9)
    assert sigma == pytest.approx(free_gaussian_sigma(sigma0, t, mass), rel=1e-9)
    assert free_gaussian_sigma(sigma0, 2 * mass * sigma0**2, mass) == pytest.approx(math.sqrt(2) * sigma0, rel=1e-15)


def test_norm_is_kept_to_round_off_on_coupled_surfaces():
    system = systems.TullyDualAvoidedCrossing()
    packet = systems.GaussianPacket.tully(system, 20.0)
    grid = Grid(-60.0, 120.0 / 2048, 2048)
    psi = _propagate(system, packet, grid, 2000.0, 1.0, 1500)  # through both crossings
    norm = (np.abs(psi) ** 2).sum() * grid.dx
    upper = (np.abs(psi[1]) ** 2).sum() * grid.dx
    assert abs(norm - 1.0) < 1e-10
    assert upper > 1e-3  # the packet did reach the coupling region (population moved between diabats)


def test_uncoupled_crossing_is_a_diabatic_passage():
    # With C = 0 the packet stays on its diabat, which ends as the upper adiabatic state on the right.
    result = wavepacket(systems.TullySimpleAvoidedCrossing(C=0.0), 20.0, timestep_au=2.0)
    assert result["transmission_upper"] > 1 - 1e-6


def test_probabilities_are_all_accounted_for():
    result = wavepacket(systems.TullySimpleAvoidedCrossing(), 30.0, timestep_au=2.0)
    channels = ("transmission_lower", "transmission_upper", "reflection_lower", "reflection_upper")
    fractions = [result[k] for k in channels]
    assert min(fractions) >= 0 and abs(sum(fractions) - 1.0) < 1e-10
    # At k = 30 the passage is far from adiabatic: most of the packet ends on the upper state.
    assert 0.5 < result["transmission_upper"] < 1.0 and result["reflection_lower"] < 1e-6


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="k0_au"):
        wavepacket(systems.TullySimpleAvoidedCrossing(), 0.0)
    with pytest.raises(ValueError, match="mass_au"):
        wavepacket(systems.TullySimpleAvoidedCrossing(), 10.0, mass_au=-1.0)
