"""`mlpot md --resume` continues only the run that wrote the checkpoint; checkpoints survive a full
disk; an interrupt prints the exact command that resumes."""

from __future__ import annotations

import errno
import shlex
import signal

import ase.io
import pytest
import torch
from ase.build import bulk

from mlpot.cli import main
from mlpot.dynamics import reporters
from mlpot.dynamics.engine import Simulation
from mlpot.files import FileWriteError


@pytest.fixture
def copper(tmp_path):
    structure = tmp_path / "cu.xyz"
    ase.io.write(structure, bulk("Cu", "fcc", a=3.61, cubic=True))
    return structure


def _argv(structure, out, *extra):
    return ["md", "ase:EMT", str(structure), "--timestep-fs", "2", "--temperature-K", "300", "--ensemble", "langevin",
            "--seed", "3", "--thermo-every", "5", "--checkpoint-every", "5", "--no-progress", "--out", str(out), *extra]


def test_resume_with_changed_flags_is_an_error_naming_them(copper, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_argv(copper, out, "--steps", "10")) == 0
    before = (out / "checkpoint.pt").read_bytes()
    capsys.readouterr()
    changed = _argv(copper, out, "--steps", "20", "--resume")
    changed[changed.index("--timestep-fs") + 1] = "1"
    changed[changed.index("--temperature-K") + 1] = "500"
    assert main(changed) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "timestep_fs: 2.0 in the checkpoint, now 1.0" in err
    assert "temperature_K: 300.0 in the checkpoint, now 500.0" in err
    assert (out / "checkpoint.pt").read_bytes() == before
    assert main(_argv(copper, out, "--steps", "20", "--resume", "--seed", "4")) == 2
    assert "seed: 3 in the checkpoint, now 4" in capsys.readouterr().err
    # the same flags (and a longer run) continue; so does a command that leaves them out
    assert main(_argv(copper, out, "--steps", "20", "--resume")) == 0
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 20
    assert main(["md", "ase:EMT", str(copper), "--steps", "25", "--out", str(out), "--resume", "--no-progress"]) == 0
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert checkpoint["step"] == 25 and checkpoint["integrator"]["ensemble"] == "langevin"


def test_resume_with_another_model_is_an_error(tmp_path, capsys):
    from mlpot import save_model
    from mlpot.models import DescriptorModel

    structure = tmp_path / "si.xyz"
    ase.io.write(structure, bulk("Si", "diamond", a=5.43, cubic=True))
    for seed in (0, 1):
        save_model(DescriptorModel(["Si"], cutoff=3.0, n_radial=4, n_channels=4, l_max=1, hidden=[8], seed=seed),
                   tmp_path / f"model{seed}.pt")
    common = [
        str(structure), "--timestep-fs", "1", "--checkpoint-every", "2", "--no-progress", "--out", str(tmp_path / "run")
    ]
    assert main(["md", str(tmp_path / "model0.pt"), *common, "--steps", "2"]) == 0
    capsys.readouterr()
    assert main(["md", str(tmp_path / "model1.pt"), *common, "--steps", "4", "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "another potential" in err
    assert main(["md", str(tmp_path / "model0.pt"), *common, "--steps", "4", "--resume"]) == 0


def test_a_full_disk_keeps_the_previous_md_checkpoint(copper, tmp_path, monkeypatch):
    from ase.calculators.emt import EMT

    sim = Simulation(ase.io.read(copper), EMT(), 2.0, seed=1)
    sim.run(3)
    path = sim.save_checkpoint(tmp_path / "checkpoint.pt")
    before = path.read_bytes()
    sim.run(3)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(FileWriteError, match=str(tmp_path.resolve())):
        sim.save_checkpoint(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name != "cu.xyz"] == ["checkpoint.pt"]
    resumed = Simulation.from_checkpoint(path, ase.io.read(copper), EMT())
    assert resumed.state.step == 3


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_prints_the_exact_command_that_resumes(copper, tmp_path, capsys, monkeypatch, signum):
    class SignalAtStep10(reporters.ThermoLog):
        def report(self, sim):
            super().report(sim)
            if sim.state.step == 10:
                signal.raise_signal(signum)

    monkeypatch.setattr(reporters, "ThermoLog", SignalAtStep10)
    argv = _argv(copper, tmp_path / "run", "--steps", "40")
    assert main(argv) == 130
    err = capsys.readouterr().err
    command = err.split("resume with: ")[1].strip()
    assert command == shlex.join(["mlpot", *argv, "--resume"])
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"] == 10
    monkeypatch.undo()
    assert main(shlex.split(command)[1:]) == 0
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"] == 40
