"""An interrupted heat-capacity study resumes from its checkpoints to the numbers of an uninterrupted one."""

from __future__ import annotations

import json
import signal

import pytest
from ase.build import bulk

from mlpot.analysis.workflow import run_heat_capacity
from mlpot.dynamics import Simulation, ThermoRecorder
from mlpot.interrupts import RunInterrupted
from mlpot.models.reference import LennardJones

STEPS = 50 + 1500  # equilibration + production, per temperature


def _study(folder, resume=False, production_steps=1500, lattice=5.26, overwrite=False):
    """Argon, 4 atoms, two temperatures; the reference (ASE's LJ, the same potential) keeps frames,
    so the checkpoints carry the reweighting frames as well as the energies."""
    from ase.calculators.lj import LennardJones as AseLennardJones

    potential = LennardJones(sigma=3.4, epsilon=0.0104, rc=6.5, smooth=True)
    return run_heat_capacity(
        bulk("Ar", "fcc", a=lattice, cubic=True), potential, temperatures_K=[40, 60], supercells=[1],
        equilibration_steps=50, production_steps=production_steps, timestep_fs=8, seed=3,
        reference=AseLennardJones(sigma=3.4, epsilon=0.0104, rc=6.5, smooth=True), reference_frames=60,
        progress=False, checkpoint_folder=folder, checkpoint_every=100, resume=resume, overwrite=overwrite,
    )


def _numbers(study) -> str:
    return json.dumps(study.as_dict(), sort_keys=True)


def test_an_interrupted_study_resumes_bit_for_bit(tmp_path, monkeypatch):
    """Ctrl-C at step 1137 of the second temperature (between checkpoints): the first temperature's MD
    is not run again, the second continues from the checkpoint written at the interruption with the
    records kept so far (energies, the reweighting frames), and every number equals the uninterrupted
    study's."""
    whole = _numbers(_study(tmp_path / "whole"))

    record = ThermoRecorder.report

    def ctrl_c_at_1137_of_60K(self, sim):
        record(self, sim)
        if sim.state.step == 1137 and sim.integrator.config()["temperature_K"] == 60:
            signal.raise_signal(signal.SIGINT)

    with monkeypatch.context() as patch:
        patch.setattr(ThermoRecorder, "report", ctrl_c_at_1137_of_60K)
        with pytest.raises(RunInterrupted) as info:
            _study(tmp_path / "parts")
    assert info.value.checkpoint == tmp_path / "parts" / "heat_capacity_60K.pt"
    assert info.value.signum == signal.SIGINT and "heat capacity at 60 K interrupted" in str(info.value)

    run = Simulation.run
    steps_run = []

    def counted(self, steps, **kwargs):
        steps_run.append(steps)
        return run(self, steps, **kwargs)

    monkeypatch.setattr(Simulation, "run", counted)
    assert _numbers(_study(tmp_path / "parts", resume=True)) == whole
    assert steps_run == [0, STEPS - 1137]  # 40 K from its checkpoint; 60 K from step 1137

    # Another study is refused, naming what differs; a fresh one over these checkpoints needs overwrite.
    with pytest.raises(ValueError, match=r"production_steps: 1500 in the checkpoint, now 1600"):
        _study(tmp_path / "parts", resume=True, production_steps=1600)
    with pytest.raises(ValueError, match=r"structure_sha256: "):
        _study(tmp_path / "parts", resume=True, lattice=5.30)
    with pytest.raises(ValueError, match="checkpoints of an earlier heat-capacity study .*--overwrite"):
        _study(tmp_path / "parts", production_steps=1600)
    steps_run.clear()
    _study(tmp_path / "parts", production_steps=1600, overwrite=True)
    assert steps_run == [50 + 1600, 50 + 1600]  # started afresh: both temperatures in full
    with pytest.raises(ValueError, match="resume needs the checkpoint_folder"):
        _study(None, resume=True)
