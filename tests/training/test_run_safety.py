"""`mlpot train` never loses a run: existing checkpoints, interrupts, resume checks, progress in a log."""

from __future__ import annotations

import shlex
import signal
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch
from ase.build import molecule
from ase.calculators.lj import LennardJones
from ase.calculators.singlepoint import SinglePointCalculator

import mlpot
from mlpot.cli import main
from mlpot.training import trainer
from mlpot.training.loop import LoopConfig, fit, load_checkpoint

CONFIG = """
data: {{train: {train}, n_val: 2, seed: 0}}
model: {{cutoff: 3.0, n_radial: 4, n_channels: 4, l_max: 1, hidden: [8]}}
trainer: {{max_epochs: 2, batch_size: 2, progress: false}}
output: {output}
"""


def _write_data(path: Path, scale: float = 1.0) -> None:
    """Eight rattled ethanol molecules with Lennard-Jones labels (times ``scale``)."""
    frames = []
    for k in range(8):
        atoms = molecule("CH3CH2OH")
        atoms.rattle(0.05, seed=k)
        atoms.calc = LennardJones(sigma=1.2, epsilon=0.03, rc=3.0, smooth=True)
        atoms.calc = SinglePointCalculator(atoms, energy=scale * atoms.get_potential_energy(),
                                           forces=scale * atoms.get_forces())
        frames.append(atoms)
    ase.io.write(path, frames, format="extxyz")


@pytest.fixture
def run(tmp_path):
    _write_data(tmp_path / "data.extxyz")
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(train=tmp_path / "data.extxyz", output=tmp_path / "run"))
    return config, tmp_path / "run"


def test_a_folder_with_checkpoints_needs_resume_or_overwrite(run, capsys):
    config, out = run
    assert main(["train", str(config)]) == 0
    before = (out / "last.pt").read_bytes()
    capsys.readouterr()
    assert main(["train", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--resume" in err and "--overwrite" in err and str(out) in err
    assert (out / "last.pt").read_bytes() == before  # nothing deleted, nothing rewritten

    assert main(["train", str(config), "--overwrite", "--set", "trainer.max_epochs=1"]) == 0
    assert load_checkpoint(out / "last.pt")["epoch"] == 1 and len((out / "metrics.csv").read_text().splitlines()) == 2


def test_the_model_records_the_shortest_distances_of_its_training_set(run):
    config, out = run
    assert main(["train", str(config)]) == 0
    import json

    train_indices = json.loads((out / "split.json").read_text())["train"]
    frames = ase.io.read(config.parent / "data.extxyz", ":")
    expected: dict[str, float] = {}
    for atoms in (frames[i] for i in train_indices):
        d, symbols = atoms.get_all_distances(), atoms.get_chemical_symbols()
        for i, j in zip(*np.triu_indices(len(atoms), 1)):
            if d[i, j] < 3.0:
                key = "-".join(sorted((symbols[i], symbols[j])))
                expected[key] = min(expected.get(key, np.inf), float(d[i, j]))
    found = mlpot.load_model(out / "model.pt").training_min_distances
    assert list(found) == ["C-C", "C-H", "C-O", "H-H", "H-O"] == sorted(expected)  # O-O: one O per molecule
    for key, value in expected.items():
        assert found[key] == pytest.approx(value, abs=1e-12), key


_POTENTIAL_LOSS = trainer.PotentialLoss


def _loss_that_signals(signum: int, step: int):
    """A stand-in for PotentialLoss whose ``step``-th training call sends ``signum`` to this process."""
    count = [0]

    def make(**kwargs):
        loss = _POTENTIAL_LOSS(**kwargs)

        def call(model, batch, training):
            if training:
                count[0] += 1
                if count[0] == step:
                    signal.raise_signal(signum)
            return loss(model, batch, training)

        call.reduce_metrics = loss.reduce_metrics
        return call

    return make


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_prints_the_exact_command_that_resumes(run, capsys, monkeypatch, signum):
    config, out = run
    argv = ["train", str(config), "--set", "trainer.lr=0.002"]
    monkeypatch.setattr(trainer, "PotentialLoss", _loss_that_signals(signum, step=4))
    assert main(argv) == 130
    err = capsys.readouterr().err
    command = err.split("resume with: ")[1].strip()
    assert command == shlex.join(["mlpot", *argv, "--resume"])
    assert load_checkpoint(out / "last.pt")["batch_in_epoch"] == 1  # 3 batches per epoch; stopped in epoch 2

    monkeypatch.undo()
    assert main(shlex.split(command)[1:]) == 0
    assert load_checkpoint(out / "last.pt")["epoch"] == 2 and (out / "model.pt").exists()


def test_resume_with_other_settings_or_other_data_is_refused_naming_them(run, capsys):
    config, out = run
    assert main(["train", str(config), "--set", "trainer.max_epochs=1"]) == 0
    capsys.readouterr()
    assert main(["train", str(config), "--resume", "--set", "trainer.lr=0.02", "--set", "model.n_radial=5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "trainer.lr: 0.005 in the checkpoint, now 0.02" in err and "model.n_radial" in err

    _write_data(config.parent / "data.extxyz", scale=1.5)  # same file name, other numbers
    assert main(["train", str(config), "--resume"]) == 2
    assert "the model differs" in capsys.readouterr().err

    _write_data(config.parent / "data.extxyz")  # the original data: a larger epoch budget continues the run
    assert main(["train", str(config), "--resume", "--set", "trainer.max_epochs=2"]) == 0
    assert load_checkpoint(out / "last.pt")["epoch"] == 2


def test_training_progress_in_a_log_is_a_few_plain_lines(capsys):
    x = torch.linspace(-1, 1, 40, dtype=torch.float64).reshape(-1, 1)
    batches = [(x[i : i + 4], x[i : i + 4] ** 2) for i in range(0, 40, 4)]
    model = torch.nn.Linear(1, 1).double()
    fit(model, lambda m, b, t: (((m(b[0]) - b[1]) ** 2).mean(), {}), batches,
        config=LoopConfig(max_epochs=30, progress=True, ema_decay=None))
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "\r" not in text  # no bar redraws in a log
    progress_lines = [line for line in text.splitlines() if line.startswith("training:")]
    assert 1 <= len(progress_lines) <= 100 / 5 + 1  # one line every 5% of the 300 batches, and the last
    assert len([line for line in text.splitlines() if line.startswith("epoch ")]) == 30


def test_allow_unusual_units_lets_implausible_labels_train(run, capsys):
    config, out = run
    _write_data(config.parent / "data.extxyz", scale=1 / 51.4)  # as if Hartree/Bohr numbers were read as eV/Å
    assert main(["train", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "median force is 0.0" in err and "--allow-unusual-units" in err
    assert not out.exists()  # refused before writing anything
    with pytest.warns(UserWarning, match="allowed by allow_unusual_units"):
        assert main(["train", str(config), "--allow-unusual-units"]) == 0
    assert (out / "model.pt").exists()
