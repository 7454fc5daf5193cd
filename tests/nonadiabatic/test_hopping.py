"""FSSH and Ehrenfest: exact pieces (propagator, hops, decoherence), conservation laws, exact limits,
and a seeded, statistically toleranced comparison with the exact wave-packet result."""

import json
import math

import pytest
import torch

from mlpot.nonadiabatic import ehrenfest, surface_hopping, systems, wavepacket
from mlpot.nonadiabatic.adiabatic import AdiabaticStates
from mlpot.nonadiabatic.ehrenfest import run_ehrenfest
from mlpot.nonadiabatic.hopping import _edc, _rescale, propagate_amplitudes, write_csv, write_json

CHANNELS = ("transmission_lower", "transmission_upper", "reflection_lower", "reflection_upper")


def _random_amplitudes(m, n, seed=0):
    generator = torch.Generator().manual_seed(seed)
    c = torch.randn(m, n, generator=generator, dtype=torch.complex128)
    return c / c.norm(dim=-1, keepdim=True), generator


def test_two_state_propagator_is_the_exact_unitary_exponential():
    c, generator = _random_amplitudes(64, 2)
    energies = 0.05 * torch.randn(64, 2, generator=generator, dtype=torch.float64)
    w = 0.02 * torch.randn(64, generator=generator, dtype=torch.float64)
    vd = torch.zeros(64, 2, 2, dtype=torch.float64)
    vd[:, 0, 1], vd[:, 1, 0] = w, -w
    vd[0] = 0.0  # the |n| → 0 limit of the closed form
    energies[0] = 0.0
    closed = propagate_amplitudes(c, energies, vd, 3.0)
    generic = torch.linalg.matrix_exp(-1j * 3.0 * torch.diag_embed(energies - energies.mean(-1, keepdim=True)).to(
        torch.complex128) - 3.0 * vd.to(torch.complex128)) @ c.unsqueeze(-1)
    assert torch.allclose(closed, generic.squeeze(-1), atol=1e-14)
    assert torch.allclose(closed.norm(dim=-1), torch.ones(64, dtype=torch.float64), atol=1e-14)


def test_hops_conserve_energy_or_are_frustrated():
    m, mass = 200, 2000.0
    generator = torch.Generator().manual_seed(1)
    p = 5.0 * torch.randn(m, 1, generator=generator, dtype=torch.float64)
    energies = torch.sort(0.01 * torch.randn(m, 2, generator=generator, dtype=torch.float64), dim=-1).values
    couplings = torch.zeros(m, 2, 2, 1, dtype=torch.float64)
    couplings[:, 0, 1, 0], couplings[:, 1, 0, 0] = 0.3, -0.3
    states = AdiabaticStates(energies, None, None, couplings, None, None)
    active = torch.randint(0, 2, (m,), generator=generator)
    target = 1 - active
    p_new, accepted = _rescale(p, states, active, target, torch.ones(m, dtype=torch.bool), mass)
    before = energies.gather(1, active[:, None]).squeeze(1) + p.squeeze(1) ** 2 / (2 * mass)
    after = energies.gather(1, target[:, None]).squeeze(1) + p_new.squeeze(1) ** 2 / (2 * mass)
    assert torch.allclose(after[accepted], before[accepted], atol=1e-15, rtol=0)
    assert torch.equal(p_new[~accepted], p[~accepted])  # frustrated: momentum kept as it was
    # Frustrated exactly when the kinetic energy cannot pay the gap; momentum direction kept on success.
    gap = (energies.gather(1, target[:, None]) - energies.gather(1, active[:, None])).squeeze(1)
    assert torch.equal(~accepted, gap > p.squeeze(1) ** 2 / (2 * mass))
    assert bool((torch.sign(p_new[accepted]) == torch.sign(p[accepted])).all())
    assert 0 < int(accepted.sum()) < m


def test_energy_based_decoherence_damps_inactive_states_and_keeps_the_norm():
    c, _ = _random_amplitudes(10, 2, seed=2)
    energies = torch.tensor([[0.0, 0.02]] * 10, dtype=torch.float64)
    active = torch.zeros(10, dtype=torch.long)
    kinetic = torch.full((10,), 0.05, dtype=torch.float64)
    dt = 2.0
    damped = _edc(c, energies, active, kinetic, 0.1, dt)
    tau = (1 + 0.1 / 0.05) / 0.02
    assert torch.allclose(damped[:, 1], c[:, 1] * math.exp(-dt / tau), atol=1e-15)
    assert torch.allclose(damped.norm(dim=-1), torch.ones(10, dtype=torch.float64), atol=1e-14)
    assert torch.allclose(damped[:, 0] / damped[:, 0].abs(), c[:, 0] / c[:, 0].abs(), atol=1e-14)  # phase kept


@pytest.fixture(scope="module")
def simple_k25():
    system = systems.TullySimpleAvoidedCrossing()
    return (wavepacket(system, 25.0, timestep_au=2.0),
            surface_hopping(system, 25.0, n_trajectories=400, seed=7, timestep_au=1.5, show_progress=False))


def test_fssh_matches_the_exact_transmission_on_the_simple_crossing(simple_k25):
    exact, fssh = simple_k25
    assert sum(fssh[c] for c in CHANNELS) == pytest.approx(1.0, abs=1e-12)
    for channel in ("transmission_lower", "transmission_upper"):
        # The target, ±0.05, widened by three binomial standard errors of 400 trajectories.
        standard_error = math.sqrt(exact[channel] * (1 - exact[channel]) / 400)
        assert abs(fssh[channel] - exact[channel]) < 0.05 + 3 * standard_error
        assert fssh["standard_error"][channel] == pytest.approx(
            math.sqrt(fssh[channel] * (1 - fssh[channel]) / 400), rel=1e-12)
    assert fssh["unfinished"] == 0 and fssh["mean_hops"] > 0
    # Velocity Verlet at dt = 1.5 a.u.: the total energy error is O(dt²) and tiny; hops conserve it exactly.
    assert fssh["max_energy_error_au"] < 1e-5


def test_results_write_as_json_and_csv(simple_k25, tmp_path):
    _, fssh = simple_k25
    write_json(fssh, tmp_path / "fssh.json")
    loaded = json.loads((tmp_path / "fssh.json").read_text())
    assert loaded["transmission_upper"] == fssh["transmission_upper"]
    write_csv(fssh, tmp_path / "fssh.csv")
    rows = (tmp_path / "fssh.csv").read_text().strip().splitlines()
    assert len(rows) == 401 and rows[0].startswith("x0_bohr,p0_au,state")
    upper_right = sum(1 for r in rows[1:] if float(r.split(",")[0]) > 0 and r.split(",")[2] == "1")
    assert upper_right / 400 == pytest.approx(fssh["transmission_upper"], abs=1e-12)


def test_fssh_is_reproducible_and_validates_its_options():
    system = systems.TullyDualAvoidedCrossing()
    short = dict(x0_bohr=-4.0, timestep_au=2.0, show_progress=False)  # a short run across both crossings
    a = surface_hopping(system, 30.0, n_trajectories=20, seed=3, **short)
    b = surface_hopping(system, 30.0, n_trajectories=20, seed=3, **short)
    assert torch.equal(a["trajectories"]["state"], b["trajectories"]["state"])
    with pytest.raises(ValueError, match="decoherence"):
        surface_hopping(system, 30.0, n_trajectories=2, decoherence="magic", show_progress=False)
    with pytest.raises(ValueError, match="n_trajectories"):
        surface_hopping(system, 30.0, n_trajectories=0, show_progress=False)
    edc = surface_hopping(system, 30.0, n_trajectories=20, seed=3, decoherence="edc", **short)
    populations = edc["trajectories"]["populations"]
    assert torch.allclose(populations.sum(-1), torch.ones(20, dtype=torch.float64), atol=1e-12)


def test_ehrenfest_conserves_energy_to_second_order_in_the_step():
    system = systems.TullyDualAvoidedCrossing()
    x = torch.full((4,), -4.0, dtype=torch.float64)
    p = torch.tensor([15.0, 20.0, 25.0, 30.0], dtype=torch.float64)
    errors = []
    for dt in (4.0, 2.0):
        final = run_ehrenfest(system.diabatic, x, p, 2000.0, timestep_au=dt, max_time_au=800.0, show_progress=False)
        errors.append(final["energy_error_au"].abs())
        assert torch.allclose(final["populations"].sum(-1), torch.ones(4, dtype=torch.float64), atol=1e-12)
    # Halving dt divides a second-order error by 4 (within the O(dt⁴) remainder).
    ratio = errors[0] / errors[1]
    assert bool(((ratio > 3.5) & (ratio < 4.5)).all()), ratio


def test_ehrenfest_without_coupling_stays_diabatic():
    result = ehrenfest(systems.TullySimpleAvoidedCrossing(C=0.0), 20.0, n_trajectories=8, x0_bohr=-4.0,
                       timestep_au=2.0, show_progress=False)
    assert result["transmission_upper"] == pytest.approx(1.0, abs=1e-12)
    assert sum(result[c] for c in CHANNELS) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("k0", [10.0, 20.0, 30.0])
def test_fssh_matches_exact_for_k_at_least_10_with_many_trajectories(k0):
    system = systems.TullySimpleAvoidedCrossing()
    exact = wavepacket(system, k0, timestep_au=2.0)
    fssh = surface_hopping(system, k0, n_trajectories=2000, seed=11, timestep_au=min(2.0, 30.0 / k0),
                           show_progress=False)
    for channel in CHANNELS:
        standard_error = math.sqrt(exact[channel] * (1 - exact[channel]) / 2000)
        assert abs(fssh[channel] - exact[channel]) < 0.05 + 3 * standard_error, channel
