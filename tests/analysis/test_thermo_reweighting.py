"""Reweighting a model's samples to a reference, and a committee's uncertainty.

The audit case: two harmonic spring crystals (k = 0.9 and 1.1 eV/Å², thermo_springs.py) as a committee drive
Langevin MD. Every member, and the committee mean (k = 1.0) that drives the run, is a harmonic crystal with the
exact C_V = 3N − 3/2 = 94.5 k_B (32 atoms; see test_thermo_harmonic.py), whatever its stiffness. The old
white-noise subtraction of the committee spread gave 57 ± 10 k_B for it; reweighting must give 94.5.

The reweighting here is configurational (``n_dof_kinetic``: the momenta's share is exactly f/2), as in the
workflow. The total-energy form Var_w(K + U) scatters more (over eight seeds of this fixture: standard deviation
4.4 k_B against 1.6, one seed at −3.5σ of its own error bar through a −3σ fluctuation of Cov(K, U)); the seed
is 0, not picked.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ase.build import bulk
from thermo_springs import QuarticSprings

from mlpot import dynamics  # noqa: E402
from mlpot.analysis import (
    InsufficientOverlapError,
    effective_sample_size,
    heat_capacity_committee,
    heat_capacity_reweighted,
)
from mlpot.units import KB_EV_PER_K

T = 300.0
KT = KB_EV_PER_K * T
EXACT = 94.5  # 3N − 3/2 for N = 32 under Langevin
REPLICAS = 24
FRAME_INTERVAL = 20  # steps between frames: ≫ the 2-3 step correlation time of (δE)² at γ = 0.1/fs
EQUILIBRATION = 400
FRAMES = 100


@pytest.fixture(scope="module")
def committee_frames():
    """K, U_committee and each member's U on decorrelated frames of a committee-driven Langevin run."""
    from mlpot.models import Committee

    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    members = [QuarticSprings(atoms, 2.9, k, 0.0) for k in (0.9, 1.1)]
    committee = Committee(members)
    recorder = dynamics.ThermoRecorder(interval=FRAME_INTERVAL, positions=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        sim = dynamics.Simulation(
            [atoms] * REPLICAS, committee, timestep_fs=2.0, ensemble="langevin", temperature_K=T,
            friction_per_fs=0.1, seed=0, reporters=[recorder],
        )
        sim.run(EQUILIBRATION + FRAMES * FRAME_INTERVAL)
        n_dof = int(sim.state.n_dof[0])
        arrays = recorder.arrays()
        keep = arrays["step"] > EQUILIBRATION
        positions = torch.as_tensor(arrays["positions"][keep])  # [F, REPLICAS·32, 3]
        cell = torch.as_tensor(np.stack([atoms.cell.array] * REPLICAS))
        with torch.no_grad():
            member_energies = np.stack(
                [np.stack([m({"positions": p, "cell": cell})["energy"].numpy() for p in positions]) for m in members]
            )  # [members, F, REPLICAS]
    finally:
        torch.set_num_threads(threads)
    # Frames of independent replicas are independent samples: pool them, replica after replica.
    kinetic = arrays["E_kin"][keep].T.reshape(-1)
    model = arrays["E_pot"][keep].T.reshape(-1)
    member_energies = member_energies.transpose(0, 2, 1).reshape(len(members), -1)
    return kinetic, model, member_energies, n_dof


def test_audit_committee_of_two_spring_crystals_gives_the_exact_heat_capacity(committee_frames):
    kinetic, model, members, n_dof = committee_frames
    assert n_dof == 96  # Langevin: all 3N momenta are thermalised
    # The committee mean drives the run; its energy is the members' mean, exactly.
    np.testing.assert_allclose(members.mean(axis=0), model, rtol=1e-12, atol=1e-9)
    result = heat_capacity_committee(kinetic, model, members, T, n_atoms=32, n_dof_kinetic=n_dof)
    assert abs(result.value - EXACT) < 2 * result.error, str(result)
    assert result.error < 0.06 * EXACT  # and the test has teeth
    for member in result.members:
        assert abs(member.value - EXACT) < 2 * member.error
        # δ = ±0.1 U: correlated with U, the case the white-noise formula gets wrong.
        assert abs(member.error_energy_correlation) == pytest.approx(1.0, abs=1e-9)
    # Both members are harmonic crystals with the same C_V: the spread is statistical, a few error bars at most.
    assert result.model_spread < 3 * math.sqrt(2) * max(m.error for m in result.members)
    assert abs(result.model_value - EXACT) < 2 * result.model_error
    # What the removed white-noise subtraction of the committee spread gave: far below the exact value.
    spread_variance = members.var(axis=0, ddof=1).mean()
    subtracted = (np.var(kinetic + model, ddof=1) - spread_variance) / KT**2
    assert subtracted < EXACT - 4 * result.error


def test_reweighting_to_a_stiffer_crystal_and_the_cumulant_bias(committee_frames):
    """U_ref = 1.1 U (+ a constant, which cancels): exact C_V unchanged; the Gaussian cumulant is biased by the skew."""
    kinetic, model, _, n_dof = committee_frames
    result = heat_capacity_reweighted(kinetic, model, 1.1 * model + 7.0, T, n_atoms=32, n_dof_kinetic=n_dof)
    assert abs(result.value - EXACT) < 2 * result.error
    assert result.effective_sample_size > 0.5 * kinetic.size
    # U is Gamma-distributed (93 quadratic dof): Var(1.1 U) on the model's frames is 1.21 Var(U), so the cumulant
    # estimate is f_K/2 + 1.21·f_U/2 = 48 + 1.21·46.5 = 104.3, not 94.5; its assumption says so.
    assert abs(result.cumulant_value - (48 + 1.21 * 46.5)) < 3 * result.cumulant_error
    assert "Gaussian" in result.cumulant_assumption
    assert result.error_variance_eV2 == pytest.approx(0.01 * np.var(model, ddof=1), rel=1e-9)
    assert result.per_atom.value == pytest.approx(result.value / 32)


def test_error_bars_are_calibrated():
    """Independent data sets of i.i.d. canonical samples: the ±2σ interval covers the exact value ~95% of the time."""
    rng = np.random.default_rng(0)
    z = []
    for _ in range(60):
        kinetic = rng.gamma(48, KT, 400)
        potential = rng.gamma(46.5, KT, 400)
        result = heat_capacity_reweighted(kinetic, potential, 0.95 * potential, T, n_bootstrap=300, seed=1)
        z.append((result.value - EXACT) / result.error)
    z = np.asarray(z)
    assert np.mean(np.abs(z) < 2) >= 0.85  # binomial: 95% ± 3% over 60 draws
    assert 0.7 < z.std() < 1.35


def test_low_effective_sample_size_is_refused():
    rng = np.random.default_rng(1)
    kinetic = rng.gamma(48, KT, 500)
    potential = rng.gamma(46.5, KT, 500)
    reference = potential + rng.normal(size=500) * 5 * KT  # an error of 5 k_B T per frame: no overlap left
    weights = np.exp(-(reference - potential) / KT)
    assert effective_sample_size(weights) < 50
    with pytest.raises(InsufficientOverlapError, match="more decorrelated frames, or improve the model"):
        heat_capacity_reweighted(kinetic, potential, reference, T)
    assert issubclass(InsufficientOverlapError, ValueError)
    lowered = heat_capacity_reweighted(kinetic, potential, reference, T, min_effective_samples=1)
    assert lowered.effective_sample_size < 50


def test_bad_input():
    ok = np.linspace(1.0, 2.0, 100)
    with pytest.raises(ValueError, match="must match frame by frame"):
        heat_capacity_reweighted(ok, ok, ok[:-1], T)
    bad = ok.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        heat_capacity_reweighted(ok, bad, ok, T)
    with pytest.raises(ValueError, match="temperature_K"):
        heat_capacity_reweighted(ok, ok, ok, -1.0)
    with pytest.raises(ValueError, match="at least 20 frames"):
        heat_capacity_reweighted(ok[:10], ok[:10], ok[:10], T)
    with pytest.raises(ValueError, match="n_members"):
        heat_capacity_committee(ok, ok, ok[None], T)


def test_configurational_form_adds_exactly_half_the_kinetic_degrees_of_freedom():
    """With n_dof_kinetic f, every estimate is f/2 + Var(U)/(k_B T)² (weighted for the reference); K is not read."""
    rng = np.random.default_rng(2)
    kinetic = rng.gamma(48, KT, 300)
    potential = rng.gamma(46.5, KT, 300)
    reference = potential + 0.2 * KT * np.sin(potential / KT)
    result = heat_capacity_reweighted(kinetic, potential, reference, T, n_dof_kinetic=96)
    weights = np.exp(-(reference - potential) / KT)
    weights /= weights.sum()
    # Weighted variance with the reliability-weight correction 1/(1 − Σw²) (n/(n − 1) for equal weights).
    weighted_variance = np.sum(weights * (reference - np.sum(weights * reference)) ** 2) / (1 - np.sum(weights**2))
    assert result.n_dof_kinetic == 96
    assert result.value == pytest.approx(48 + weighted_variance / KT**2, rel=1e-10)
    assert result.model_value == pytest.approx(48 + np.var(potential, ddof=1) / KT**2, rel=1e-12)
    shuffled = heat_capacity_reweighted(rng.permutation(kinetic), potential, reference, T, n_dof_kinetic=96)
    assert shuffled.value == result.value  # the sampled kinetic energies do not enter
    with pytest.raises(ValueError, match="n_dof_kinetic"):
        heat_capacity_reweighted(kinetic, potential, reference, T, n_dof_kinetic=0)
