"""Checkpoints that are never lost: the atomic writer (mlpot.files) and the resume checks of fit."""

from __future__ import annotations

import errno
import os

import pytest
import torch

from mlpot.files import FileWriteError, atomic_torch_save, atomic_write
from mlpot.training.checkpoints import check_output_folder, existing_checkpoints, without_keys
from mlpot.training.loop import LoopConfig, fit, load_checkpoint


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_atomic_write_fsyncs_the_file_and_the_folder_then_renames(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    def recording_fsync(fd):
        synced.append(os.path.realpath(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    path = atomic_write(tmp_path / "a.bin", lambda f: f.write(b"payload"))
    assert path.read_bytes() == b"payload"
    # first the temporary file's data, then the folder that holds the rename
    assert len(synced) == 2 and synced[0].endswith(".tmp") and synced[1] == os.path.realpath(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_full_disk_is_one_line_naming_the_folder_and_the_previous_file_survives(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    atomic_torch_save({"weights": torch.arange(5.0)}, path)
    before = path.read_bytes()
    monkeypatch.setattr(torch, "save", _full_disk)
    with pytest.raises(FileWriteError) as info:
        atomic_torch_save({"weights": torch.zeros(5)}, path)
    message = str(info.value)
    assert "\n" not in message and str(tmp_path.resolve()) in message and "disk is full" in message
    assert info.value.errno == errno.ENOSPC
    assert path.read_bytes() == before  # intact ...
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)["weights"], torch.arange(5.0))  # ... and loadable
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left


def test_any_failure_inside_the_write_removes_the_temporary_file(tmp_path):
    def broken(f):
        f.write(b"half")
        raise RuntimeError("serialiser crashed")

    with pytest.raises(RuntimeError, match="serialiser crashed"):
        atomic_write(tmp_path / "x.pt", broken)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------- fit
def _problem(seed: int = 0):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(16, 2, generator=g, dtype=torch.float64)
    batches = [(x[i : i + 4], x[i : i + 4].sum(1, keepdim=True)) for i in range(0, 16, 4)]
    torch.manual_seed(seed)
    return torch.nn.Linear(2, 1).double(), batches


def _loss(model, batch, training):
    x, y = batch
    return ((model(x) - y) ** 2).mean(), {}


CONFIG = dict(max_epochs=2, lr=1e-2, progress=False, ema_decay=None)


def test_a_full_disk_during_training_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model, batches = _problem()
    fit(model, _loss, batches, config=LoopConfig(**CONFIG), output_dir=tmp_path)
    before = load_checkpoint(tmp_path / "last.pt")
    monkeypatch.setattr(torch, "save", _full_disk)
    model, batches = _problem()
    with pytest.raises(FileWriteError, match=str(tmp_path.resolve())):
        fit(model, _loss, batches, config=LoopConfig(**{**CONFIG, "max_epochs": 4}), output_dir=tmp_path, resume=True)
    monkeypatch.undo()
    after = load_checkpoint(tmp_path / "last.pt")
    assert after["epoch"] == before["epoch"] == 2 and torch.equal(after["model"]["weight"], before["model"]["weight"])
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_resume_refuses_other_settings_or_another_model_naming_them(tmp_path):
    settings = {"trainer": {"lr": 0.01, "batch_size": 4}, "data": {"n_train": 16}}
    model, batches = _problem()
    fit(model, _loss, batches, config=LoopConfig(**CONFIG), output_dir=tmp_path, settings=settings)
    assert load_checkpoint(tmp_path / "last.pt")["fingerprint"]["settings"] == settings

    changed = {"trainer": {"lr": 0.02, "batch_size": 4}, "data": {"n_train": 12}}
    model, batches = _problem()
    with pytest.raises(ValueError) as info:
        fit(model, _loss, batches, config=LoopConfig(**{**CONFIG, "max_epochs": 3}), output_dir=tmp_path,
            resume=True, settings=changed)
    assert "trainer.lr: 0.01 in the checkpoint, now 0.02" in str(info.value)
    assert "data.n_train: 16 in the checkpoint, now 12" in str(info.value) and "batch_size" not in str(info.value)

    model, batches = _problem(seed=1)  # other initial weights: another model
    with pytest.raises(ValueError, match="the model differs"):
        fit(model, _loss, batches, config=LoopConfig(**{**CONFIG, "max_epochs": 3}), output_dir=tmp_path,
            resume=True, settings=settings)

    model, batches = _problem()  # the same run continues
    result = fit(model, _loss, batches, config=LoopConfig(**{**CONFIG, "max_epochs": 3}), output_dir=tmp_path,
                 resume=True, settings=settings)
    assert len(result.history) == 3


def test_output_folder_with_checkpoints_needs_resume_or_overwrite(tmp_path):
    assert check_output_folder(tmp_path / "new", resume=False, overwrite=False) == []
    (tmp_path / "member_1").mkdir()
    torch.save({}, tmp_path / "member_1" / "last.pt")
    assert existing_checkpoints(tmp_path) == [tmp_path / "member_1" / "last.pt"]
    with pytest.raises(ValueError, match="--resume.*--overwrite"):
        check_output_folder(tmp_path, resume=False, overwrite=False)
    assert check_output_folder(tmp_path, resume=True, overwrite=False) == [tmp_path / "member_1" / "last.pt"]
    with pytest.raises(ValueError, match="exclude each other"):
        check_output_folder(tmp_path, resume=True, overwrite=True)


def test_without_keys_leaves_its_input_alone():
    values = {"trainer": {"lr": 1.0, "max_epochs": 3}, "output": "x", "model": {"hidden": (8, 8)}}
    assert without_keys(values, ["trainer.max_epochs", "output", "data.test"]) == {
        "trainer": {"lr": 1.0}, "model": {"hidden": [8, 8]}}
    assert values["trainer"]["max_epochs"] == 3 and values["output"] == "x"
