"""run_heat_capacity plumbing on the cheap spring crystal: batching of sizes × replicas, committee noise, plot."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ase.build import bulk
from thermo_springs import QuarticSprings

from mlpot.analysis.plots import plot_blocking, plot_heat_capacity  # noqa: E402
from mlpot.analysis.workflow import run_heat_capacity  # noqa: E402


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_committee_members_are_reweighted_not_subtracted(one_thread, tmp_path):
    """Two harmonic members (k = 0.9, 1.1): each, and their mean that drives the run, has C_V = 3N − 3/2 = 94.5."""
    from mlpot.models import Committee

    cell = bulk("Cu", "fcc", a=3.6, cubic=True)
    reference = cell.repeat(2)
    members = [QuarticSprings(reference, 2.9, k, 0.0) for k in (0.9, 1.1)]
    study = run_heat_capacity(
        # γ = 0.05/fs and 3,200 steps: at 0.1/fs the softest modes are overdamped (U's statistical inefficiency
        # ~110 steps), and 1,600 steps held too few independent samples for a 2σ test.
        cell, Committee(members), temperatures_K=[300.0], supercells=[2], equilibration_steps=400,
        production_steps=3200, timestep_fs=2.0, friction_per_fs=0.05, replicas=4, seed=0, progress=False,
        reference_frames=400, frames_folder=tmp_path,
    )
    (size,) = study.results[300.0]
    result, committee = size.result, size.committee
    assert result.noise.value == 0.0 and result.value == result.raw_value  # nothing subtracted
    assert size.n_dof_kinetic == 96 and result.n_atoms == 32 and result.n_replicas == 4
    assert committee is not None and len(committee.members) == 2
    assert committee.members[0].n_frames == 400
    assert abs(committee.value - 94.5) < 2 * committee.error
    assert committee.model_spread > 0
    summary = study.as_dict()
    assert summary["settings"]["committee_reweighting"] is True
    assert "committee" in summary["temperatures"][0]["sizes"][0]
    assert "committee members" in study.table()
    assert (tmp_path / "frames_300K_32atoms.extxyz").exists()
    assert plot_heat_capacity(summary, tmp_path / "cv.png").stat().st_size > 10_000
    json.dumps(summary)  # serialisable


def test_bussi_replicas_and_both_estimators(one_thread):
    """Bussi keeps the total momentum at zero (3N − 3 kinetic dof). Global velocity rescaling only samples the
    canonical ensemble when the dynamics mixes energy between modes, so the crystal here is anharmonic (with
    purely harmonic springs Bussi leaves the mode energies where they started and C_V comes out wrong)."""
    cell = bulk("Cu", "fcc", a=3.6, cubic=True)
    potential = QuarticSprings(cell.repeat(2), 2.9, 1.0, 100.0)
    with pytest.raises(ValueError, match="estimator"):
        run_heat_capacity(cell, potential, [300.0], supercells=[2], estimator="magic")
    with pytest.raises(ValueError, match="thermostat"):
        run_heat_capacity(cell, potential, [300.0], supercells=[2], thermostat="berendsen")
    study = run_heat_capacity(
        cell, potential, temperatures_K=[300.0], supercells=[2], equilibration_steps=300, production_steps=2048,
        timestep_fs=2.0, thermostat="bussi", friction_per_fs=0.1, replicas=3, seed=4, progress=False,
        estimator="configurational",
    )
    (size,) = study.results[300.0]
    assert size.n_dof_kinetic == 93 and size.result.n_dof == 93
    assert size.result.ensemble == "canonical (configurational)" and size.alternative.ensemble == "canonical"
    combined = np.hypot(size.result.error, size.alternative.error)
    assert abs(size.result.value - size.alternative.value) < 3 * combined
    assert size.result.error < size.alternative.error
    # Quartic stiffening lowers C_V below the harmonic 3N − 3 = 93 (the Langevin runs of test_thermo_ensembles
    # give ≈ 78 k_B for the same crystal).
    assert 60 < size.result.value < 93
    assert abs(size.kinetic_temperature_K - 300) < 4 * size.kinetic_temperature_error_K + 3
    assert not study.fits  # one size: nothing to extrapolate


def test_blocking_plot(tmp_path):
    from mlpot.analysis import blocking_levels

    rng = np.random.default_rng(0)
    x = np.convolve(rng.normal(size=5000), np.ones(20) / 20, mode="valid")
    assert plot_blocking(blocking_levels(x), tmp_path / "blocking.png").stat().st_size > 5_000
