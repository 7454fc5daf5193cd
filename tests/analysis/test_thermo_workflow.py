"""run_heat_capacity plumbing on the cheap spring crystal: batching of sizes × replicas, committee noise, plot."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ase.build import bulk
from thermo_springs import QuarticSprings

pytest.importorskip("mlpot.dynamics")

from mlpot.analysis.plots import plot_blocking, plot_heat_capacity  # noqa: E402
from mlpot.analysis.workflow import run_heat_capacity  # noqa: E402


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_committee_spread_is_subtracted(one_thread, tmp_path):
    from mlpot.models import Committee

    cell = bulk("Cu", "fcc", a=3.6, cubic=True)
    reference = cell.repeat(2)
    # Two members that disagree: their energy difference along the run plays the model noise.
    members = [QuarticSprings(reference, 2.9, k, 0.0) for k in (0.9, 1.1)]
    study = run_heat_capacity(
        cell, Committee(members), temperatures_K=[300.0], supercells=[2], equilibration_steps=200,
        production_steps=1024, timestep_fs=2.0, friction_per_fs=0.1, replicas=2, seed=3, progress=False,
    )
    (size,) = study.results[300.0]
    result = size.result
    assert result.noise.source == "committee" and result.noise.value > 0
    assert result.raw_value - result.value == pytest.approx(result.noise.value / (8.617333262e-5 * 300) ** 2, rel=1e-6)
    assert size.n_dof_kinetic == 96 and result.n_atoms == 32 and result.n_replicas == 2
    # The spread of two members is |E1 − E2|/2 (population form); the unbiased member variance is (E1 − E2)²/2.
    # With k = 0.9 and 1.1 the members' energies are 0.9 U and 1.1 U (U at the mean k = 1, which drives the run):
    # (E1 − E2)²/2 = 0.02 U², and ⟨U²⟩ = ⟨U⟩² + Var(U) = (f/2 kT)² + f/2 (kT)² with f = 93 configurational dof.
    kT = 8.617333262e-5 * 300
    expected = 0.02 * ((46.5 * kT) ** 2 + 46.5 * kT**2)
    assert abs(result.noise.value - expected) < 4 * result.noise.error + 0.02 * expected
    summary = study.as_dict()
    assert summary["settings"]["noise_correction"] == "committee"
    text = study.table()
    assert "raw (k_B/atom)" in text
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
