"""Reporters, checkpoints and bit-for-bit restart."""

from __future__ import annotations

import csv
import os
import signal

import ase.io
import numpy as np
import pytest
import torch
from ase.build import bulk

from mlpot.dynamics import (
    CheckpointWriter,
    Simulation,
    ThermoLog,
    ThermoRecorder,
    TrajectoryWriter,
)
from mlpot.models.reference import LennardJones

ARGON = dict(sigma=3.4, epsilon=0.0104, rc=6.5, smooth=True)


def _argon():
    atoms = bulk("Ar", "fcc", a=5.26, cubic=True).repeat(2)
    atoms.rattle(0.05, seed=0)
    return atoms


def _reporters(folder, traj_name="traj.extxyz"):
    return [
        ThermoLog(folder / "thermo.csv", interval=5),
        TrajectoryWriter(folder / traj_name, interval=10),
        CheckpointWriter(folder / "checkpoint.pt", interval=30),
        ThermoRecorder(interval=1, positions=True),
    ]


def _make(folder, ensemble, skin=0.3, reporters=None, **kw):
    return Simulation(
        _argon(),
        LennardJones(**ARGON),
        5.0,
        ensemble=ensemble,
        temperature_K=80.0,
        friction_per_fs=0.02,
        seed=99,
        reporters=_reporters(folder) if reporters is None else reporters,
        skin=skin,
        **kw,
    )


def _read(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


@pytest.mark.parametrize("ensemble", ["nve", "langevin", "bussi"])
def test_restart_continues_bit_for_bit(tmp_path, ensemble):
    steps, stop_at = 120, 47  # stop between checkpoints and list rebuilds
    whole = tmp_path / "whole"
    reference = _make(whole, ensemble)
    reference.run(steps)
    assert reference.forces.n_rebuilds > 2

    parts = tmp_path / "parts"
    first = _make(parts, ensemble)
    first.run(stop_at)  # closing writes a final checkpoint at step 47
    resumed = Simulation.from_checkpoint(parts / "checkpoint.pt", _argon(), LennardJones(**ARGON), _reporters(parts))
    assert resumed.state.step == stop_at
    resumed.run(steps - stop_at)

    for name in ("positions", "momenta", "forces", "energy", "thermostat_work"):
        assert torch.equal(getattr(resumed.state, name), getattr(reference.state, name)), name
    assert torch.equal(resumed.generator.get_state(), reference.generator.get_state())
    # The files of the interrupted run are those of the uninterrupted one.
    assert _read(parts / "thermo.csv") == _read(whole / "thermo.csv")
    frames_whole = ase.io.read(whole / "traj.extxyz", ":")
    frames_parts = ase.io.read(parts / "traj.extxyz", ":")
    assert [f.info["md_step"] for f in frames_parts] == list(range(0, steps + 1, 10))
    for a, b in zip(frames_whole, frames_parts):
        assert np.array_equal(a.positions, b.positions) and np.array_equal(a.get_momenta(), b.get_momenta())
    # Same trajectory step by step after the restart point (the resumed run reports from step 48).
    tail = resumed.reporters[-1].arrays()
    full = reference.reporters[-1].arrays()
    assert tail["step"][0] == stop_at + 1
    assert np.array_equal(tail["positions"], full["positions"][stop_at + 1 :])
    assert np.array_equal(tail["conserved"], full["conserved"][stop_at + 1 :])


def test_checkpoint_is_plain_tensors_and_written_atomically(tmp_path):
    sim = _make(tmp_path, "langevin")
    sim.run(30)
    path = tmp_path / "checkpoint.pt"
    data = torch.load(path, weights_only=True)
    assert data["step"] == 30 and data["integrator"]["ensemble"] == "langevin"
    assert data["rng_state"].dtype == torch.uint8
    assert {"edge_index", "edge_shift", "reference_positions"} <= set(data["forces_provider"])
    assert [p.name for p in tmp_path.iterdir() if ".tmp" in p.name] == []


def test_resume_truncates_files_written_after_the_checkpoint(tmp_path):
    # A run that crashed at step 50 after its last checkpoint at 30 leaves rows 35..50 behind.
    sim = _make(tmp_path, "nve", reporters=[ThermoLog(tmp_path / "thermo.csv", 5),
                                            TrajectoryWriter(tmp_path / "t.traj", 10),
                                            CheckpointWriter(tmp_path / "checkpoint.pt", 30, final=False)])
    sim.run(50)
    assert int(_read(tmp_path / "thermo.csv")[-1][0]) == 50
    resumed = Simulation.from_checkpoint(
        tmp_path / "checkpoint.pt", _argon(), LennardJones(**ARGON),
        [ThermoLog(tmp_path / "thermo.csv", 5), TrajectoryWriter(tmp_path / "t.traj", 10)],
    )
    resumed.run(0)
    steps = [int(r[0]) for r in _read(tmp_path / "thermo.csv")[1:]]
    assert steps == list(range(0, 31, 5))
    assert [a.info["md_step"] for a in ase.io.read(tmp_path / "t.traj", ":")] == [0, 10, 20, 30]


def test_interrupt_finishes_the_step_and_checkpoints(tmp_path):
    reference = _make(tmp_path / "ref", "langevin")
    reference.run(60)

    sim = _make(tmp_path / "run", "langevin")
    handler_before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the suite runs in the background

    def interrupt(s):
        if s.state.step == 23:
            os.kill(os.getpid(), signal.SIGINT)

    sim.run(60, handle_signals=True, progress=interrupt)
    assert sim.interrupted and sim.state.step == 23
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"] == 23
    assert signal.getsignal(signal.SIGINT) is handler_before, "the engine must restore the caller's SIGINT handler"
    resumed = Simulation.from_checkpoint(
        tmp_path / "run" / "checkpoint.pt", _argon(), LennardJones(**ARGON), _reporters(tmp_path / "run")
    )
    resumed.run(37)
    assert torch.equal(resumed.state.positions, reference.state.positions)
    assert _read(tmp_path / "run" / "thermo.csv") == _read(tmp_path / "ref" / "thermo.csv")


def test_thermo_log_columns_and_values(tmp_path):
    sim = _make(tmp_path, "nve", reporters=[ThermoLog(tmp_path / "thermo.csv", 10)])
    sim.run(20)
    rows = _read(tmp_path / "thermo.csv")
    assert rows[0] == ["step", "time_fs", "T_K", "E_pot", "E_kin", "conserved", "n_dof"]
    last = dict(zip(rows[0], rows[-1]))
    assert int(last["step"]) == 20 and float(last["time_fs"]) == 100.0 and int(last["n_dof"]) == 93
    kinetic = float(sim.kinetic_energy()[0])
    assert float(last["E_kin"]) == kinetic
    assert float(last["conserved"]) == pytest.approx(float(last["E_pot"]) + kinetic, abs=1e-12)
    assert float(last["T_K"]) == pytest.approx(2 * kinetic / (93 * 8.617333262e-5), rel=1e-6)


def test_batched_reporters_write_one_row_and_file_per_system(tmp_path):
    systems = [_argon(), _argon()]
    sim = Simulation(
        systems, LennardJones(**ARGON), 5.0, ensemble="langevin", temperature_K=50, seed=1,
        reporters=[ThermoLog(tmp_path / "thermo.csv", 5), TrajectoryWriter(tmp_path / "traj.xyz", 5)],
    )
    sim.run(10)
    rows = _read(tmp_path / "thermo.csv")
    assert rows[0][2] == "system" and len(rows) == 1 + 3 * 2
    for k in range(2):
        frames = ase.io.read(tmp_path / f"traj.system{k}.xyz", ":")
        assert len(frames) == 3 and len(frames[0]) == 32


def test_consecutive_runs_continue_the_same_files(tmp_path):
    once = _make(tmp_path / "once", "langevin")
    once.run(60)
    twice = _make(tmp_path / "twice", "langevin")
    twice.run(25)
    twice.run(35)
    assert torch.equal(once.state.positions, twice.state.positions)
    assert _read(tmp_path / "once" / "thermo.csv") == _read(tmp_path / "twice" / "thermo.csv")
    frames = ase.io.read(tmp_path / "twice" / "traj.extxyz", ":")
    assert [f.info["md_step"] for f in frames] == [0, 10, 20, 30, 40, 50, 60]
    assert np.array_equal(once.reporters[-1].arrays()["positions"], twice.reporters[-1].arrays()["positions"])
