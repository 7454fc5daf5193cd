"""plot_thermo_log draws an MD log (one system or a batch) and refuses an empty one."""

from __future__ import annotations

import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from mlpot.analysis.plots import plot_thermo_log
from mlpot.dynamics import ThermoLog, simulate


def test_a_batched_log_is_drawn_and_an_empty_one_is_an_error(tmp_path):
    crystals = [bulk("Cu", "fcc", a=3.61, cubic=True), bulk("Cu", "fcc", a=3.65, cubic=True)]
    log = tmp_path / "thermo.csv"
    simulate(crystals, EMT(), steps=20, timestep_fs=2.0, temperature_K=300, seed=0,
             reporters=[ThermoLog(log, interval=2)])
    assert log.read_text().splitlines()[0].startswith("step,time_fs,system,")
    png = plot_thermo_log(log, tmp_path / "thermo.png")
    assert png.stat().st_size > 10_000
    log.write_text("step,time_fs,T_K,E_pot,E_kin,conserved,n_dof\n")
    with pytest.raises(ValueError, match="holds no MD rows"):
        plot_thermo_log(log, tmp_path / "empty.png")
