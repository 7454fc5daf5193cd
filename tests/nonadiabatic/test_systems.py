"""Reference systems: Tully's published forms and limits, exact gradients, the initial packet."""

import math

import numpy as np
import pytest
import torch

from mlpot.nonadiabatic import systems

ONE_D = [systems.TullySimpleAvoidedCrossing(), systems.TullyDualAvoidedCrossing(), systems.TullyExtendedCoupling()]
ALL = ONE_D + [systems.LinearVibronicCoupling2D()]


def _points(system, n=41, seed=0):
    generator = torch.Generator().manual_seed(seed)
    shape = (n,) if system.dim == 1 else (n, system.dim)
    return 8.0 * torch.rand(shape, generator=generator, dtype=torch.float64) - 4.0


@pytest.mark.parametrize("system", ALL, ids=repr)
def test_diabatic_is_symmetric_with_batch_shape(system):
    x = _points(system).reshape(-1, 1) if system.dim == 1 else _points(system).reshape(-1, 1, system.dim)
    h = system.diabatic(x)
    assert h.shape == (*x.shape[: x.ndim - (system.dim > 1)], 2, 2)
    assert torch.equal(h, h.transpose(-1, -2))


@pytest.mark.parametrize("system", ALL, ids=repr)
def test_analytic_gradient_matches_central_differences(system):
    x = _points(system)
    h_step = 1e-5
    gradient = system.diabatic_gradient(x)
    for k in range(system.dim):
        shift = torch.zeros_like(x)
        if system.dim == 1:
            shift += h_step
        else:
            shift[:, k] = h_step
        numeric = (system.diabatic(x + shift) - system.diabatic(x - shift)) / (2 * h_step)
        # Central-difference error ~ h²/6 |H'''| (|H'''| ≲ 0.1 Hartree/Bohr³ here) plus round-off ~1e-17/h.
        assert torch.allclose(gradient[..., k], numeric, atol=1e-10, rtol=0)


@pytest.mark.parametrize("system", ALL, ids=repr)
def test_autograd_gradient_is_exact_including_the_branch_point(system):
    from mlpot.nonadiabatic.adiabatic import diabatic_gradient

    x = torch.cat([_points(system), torch.zeros((1,) if system.dim == 1 else (1, system.dim), dtype=torch.float64)])
    _, autograd = diabatic_gradient(system.diabatic, x)
    assert torch.allclose(autograd, system.diabatic_gradient(x), atol=1e-15, rtol=1e-13)


def test_tully_parameters_and_asymptotes():
    far = torch.tensor([-60.0, 60.0], dtype=torch.float64)
    simple = systems.TullySimpleAvoidedCrossing()
    assert (simple.A, simple.B, simple.C, simple.D) == (0.01, 1.6, 0.005, 1.0)
    h = simple.diabatic(far)
    assert torch.allclose(h[:, 0, 0], torch.tensor([-0.01, 0.01], dtype=torch.float64), atol=1e-15)
    assert torch.equal(h[:, 1, 1], -h[:, 0, 0]) and float(h[:, 0, 1].abs().max()) == 0.0
    assert float(simple.diabatic(torch.tensor(0.0, dtype=torch.float64))[0, 1]) == simple.C

    dual = systems.TullyDualAvoidedCrossing()
    assert (dual.A, dual.B, dual.C, dual.D, dual.E0) == (0.10, 0.28, 0.015, 0.06, 0.05)
    h0 = dual.diabatic(torch.tensor(0.0, dtype=torch.float64))
    assert math.isclose(float(h0[1, 1]), dual.E0 - dual.A, rel_tol=1e-15) and float(h0[0, 1]) == dual.C
    assert math.isclose(float(dual.diabatic(far)[1, 1, 1]), dual.E0, rel_tol=1e-15)

    extended = systems.TullyExtendedCoupling()
    assert (extended.A, extended.B, extended.C) == (6e-4, 0.10, 0.90)
    h = extended.diabatic(far)
    assert math.isclose(float(h[1, 0, 1]), 2 * extended.B, rel_tol=1e-15) and float(h[0, 0, 1]) < 1e-24
    at_zero = extended.diabatic(torch.tensor(0.0, dtype=torch.float64))
    assert float(at_zero[0, 1]) == pytest.approx(extended.B, rel=1e-15)
    assert extended.start_position_bohr == -15.0 and simple.start_position_bohr == -10.0


def test_lvc_gap_is_conical_at_the_intersection():
    lvc = systems.LinearVibronicCoupling2D()
    x_ci, y_ci = lvc.intersection
    centre = torch.tensor([x_ci, y_ci], dtype=torch.float64)
    angles = torch.linspace(0, 2 * math.pi, 9, dtype=torch.float64)[:-1]
    directions = torch.stack([torch.cos(angles), torch.sin(angles)], -1)
    gaps = []
    for radius in (1e-3, 2e-3):
        e = np.linalg.eigvalsh(lvc.diabatic(centre + radius * directions).numpy())
        gaps.append(e[:, 1] - e[:, 0])
    at_centre = np.linalg.eigvalsh(lvc.diabatic(centre).numpy())
    assert np.abs(at_centre[1] - at_centre[0]) < 1e-15
    # A linear (conical) gap doubles exactly with the radius, in every direction.
    assert np.allclose(gaps[1], 2 * gaps[0], rtol=1e-10)
    # Slopes: 2Ka along x (tuning), 2λ along y (coupling).
    assert gaps[0][0] / 1e-3 == pytest.approx(2 * lvc.K * lvc.a, rel=1e-10)
    assert gaps[0][2] / 1e-3 == pytest.approx(2 * lvc.lam, rel=1e-10)


def test_bad_positions_raise():
    with pytest.raises(ValueError, match="NaN"):
        systems.TullySimpleAvoidedCrossing().diabatic(torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match=r"\[\.\.\., 2\]"):
        systems.LinearVibronicCoupling2D().diabatic(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="k0_au"):
        systems.GaussianPacket.tully(systems.TullySimpleAvoidedCrossing(), -5.0)


def test_packet_is_normalised_and_its_wigner_samples_have_its_moments():
    packet = systems.GaussianPacket.tully(systems.TullySimpleAvoidedCrossing(), 20.0)
    assert (packet.x0_bohr, packet.sigma_bohr, packet.sigma_k) == (-10.0, 0.5, 1.0)
    grid = np.linspace(-20, 0, 20001)
    density = np.abs(packet.amplitude(grid)) ** 2
    # The Riemann sum of a smooth, decayed Gaussian is spectrally exact; what is left is the round-off
    # of 20001 additions, ~n·ε ≈ 5e-12.
    assert np.sum(density) * (grid[1] - grid[0]) == pytest.approx(1.0, abs=1e-10)
    n = 20000
    x, p = packet.wigner_sample(n, seed=3)
    # Means within 4 standard errors σ/√n; variances within 4 × σ²√(2/n).
    assert abs(float(x.mean()) - packet.x0_bohr) < 4 * packet.sigma_bohr / math.sqrt(n)
    assert abs(float(p.mean()) - packet.k0_au) < 4 * packet.sigma_k / math.sqrt(n)
    assert abs(float(x.var()) - packet.sigma_bohr**2) < 4 * packet.sigma_bohr**2 * math.sqrt(2 / n)
    assert abs(float(p.var()) - packet.sigma_k**2) < 4 * packet.sigma_k**2 * math.sqrt(2 / n)
    assert torch.equal(packet.wigner_sample(5, seed=1)[0], packet.wigner_sample(5, seed=1)[0])


def test_public_api_names():
    import mlpot.nonadiabatic as na

    for name in ("adiabatic", "surface_hopping", "wavepacket", "DiabaticModel", "ehrenfest", "train_diabatic"):
        assert callable(getattr(na, name))
    assert na.systems.TullyDualAvoidedCrossing is systems.TullyDualAvoidedCrossing
