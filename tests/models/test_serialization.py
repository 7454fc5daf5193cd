"""Model files: bitwise round trip, and clear errors (never code execution) for bad files."""

import json
import os
import pickle

import pytest
import torch
from ase.build import molecule
from helpers import evaluate

import mlpot
from mlpot.models import Committee, DescriptorModel, read_metadata
from mlpot.models.serialization import FORMAT_VERSION


@pytest.fixture
def model():
    m = DescriptorModel(["H", "C", "O"], seed=11)
    m.set_energy_statistics({1: -13.5, 6: -1025.0, 8: -2035.5}, scale=0.7)
    return m


def test_round_trip_is_bitwise(tmp_path, model):
    path = mlpot.save_model(model, tmp_path / "model.pt", metadata={"split": [0, 1, 2]})
    loaded = mlpot.load_model(path)
    atoms = molecule("CH3CH2OH")
    before, after = evaluate(model, atoms), evaluate(loaded, atoms)
    for key in ("energy", "forces", "atomic_energy"):
        assert torch.equal(before[key], after[key])
    assert read_metadata(path) == {"split": [0, 1, 2]}
    assert loaded.config() == model.config()


def test_committee_round_trip_and_spread(tmp_path, model):
    committee = Committee([model, DescriptorModel(["H", "C", "O"], seed=12)])
    loaded = mlpot.load_model(mlpot.save_model(committee, tmp_path / "committee.pt"))
    out, ref = evaluate(loaded, molecule("CH3CH2OH")), evaluate(committee, molecule("CH3CH2OH"))
    assert torch.equal(out["energy"], ref["energy"]) and float(out["energy_std"][0]) > 0


def test_truncated_file_is_a_clear_error(tmp_path, model):
    path = mlpot.save_model(model, tmp_path / "model.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable mlpot model file"):
        mlpot.load_model(path)


def test_pickle_bomb_is_refused_without_running(tmp_path):
    marker = tmp_path / "executed"

    class Bomb:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "bomb.pt"
    torch.save({"format": "mlpot-model", "payload": Bomb()}, path)  # a legitimate-looking torch file
    with pytest.raises(ValueError, match="refused for safety"):
        mlpot.load_model(path)
    path.write_bytes(pickle.dumps(Bomb()))  # and a bare pickle
    with pytest.raises(ValueError):
        mlpot.load_model(path)
    assert not marker.exists(), "loading a model file executed code"


def test_future_format_version_is_a_clear_error(tmp_path, model):
    path = mlpot.save_model(model, tmp_path / "model.pt")
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = FORMAT_VERSION + 1
    torch.save(payload, path)
    with pytest.raises(ValueError, match="newer than this mlpot reads"):
        mlpot.load_model(path)


def test_mismatched_weights_and_unknown_class(tmp_path, model):
    path = mlpot.save_model(model, tmp_path / "model.pt")
    payload = torch.load(path, weights_only=True)
    config = json.loads(payload["config"])
    config["n_channels"] = 3
    payload["config"] = json.dumps(config)
    torch.save(payload, path)
    with pytest.raises(ValueError, match="weights do not match"):
        mlpot.load_model(path)
    with pytest.raises(FileNotFoundError):
        mlpot.load_model(tmp_path / "missing.pt")
    with pytest.raises(TypeError, match="cannot save"):
        mlpot.save_model(torch.nn.Linear(2, 2), tmp_path / "x.pt")


def test_training_min_distances_are_kept_and_old_files_load_with_none(tmp_path, model):
    assert mlpot.load_model(mlpot.save_model(model, tmp_path / "none.pt")).training_min_distances is None
    model.training_min_distances = {"C-H": 1.02, "H-O": 0.93}
    loaded = mlpot.load_model(mlpot.save_model(model, tmp_path / "with.pt"))
    assert loaded.training_min_distances == {"C-H": 1.02, "H-O": 0.93}
    committee = Committee([model, DescriptorModel(["H", "C", "O"], seed=12)])
    committee.training_min_distances = {"C-H": 1.02}
    loaded = mlpot.load_model(mlpot.save_model(committee, tmp_path / "committee.pt"))
    assert loaded.training_min_distances == {"C-H": 1.02}
    assert all(m.training_min_distances == {"C-H": 1.02} for m in loaded.members)
    # a file of an older mlpot: the same payload without the key
    payload = torch.load(tmp_path / "with.pt", weights_only=True)
    del payload["training_min_distances"]
    torch.save(payload, tmp_path / "old.pt")
    assert mlpot.load_model(tmp_path / "old.pt").training_min_distances is None


def test_a_full_disk_leaves_the_previous_model_file_loadable(tmp_path, model, monkeypatch):
    import errno

    from mlpot.files import FileWriteError

    path = mlpot.save_model(model, tmp_path / "model.pt")
    before = path.read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(FileWriteError) as info:
        mlpot.save_model(DescriptorModel(["H"], seed=1), path)
    assert str(tmp_path.resolve()) in str(info.value) and "\n" not in str(info.value)
    monkeypatch.undo()
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["model.pt"]
    assert mlpot.load_model(path).config() == model.config()


def test_model_fingerprint_tells_models_apart():
    from mlpot.models.serialization import model_fingerprint

    a, b = DescriptorModel(["H", "O"], seed=0), DescriptorModel(["H", "O"], seed=0)
    assert model_fingerprint(a) == model_fingerprint(b)
    with torch.no_grad():
        b.networks.weights[0][0, 0, 0] += 1e-12  # one weight, one part in 10^12
    assert model_fingerprint(a) != model_fingerprint(b)
    assert model_fingerprint(a) != model_fingerprint(DescriptorModel(["H", "O"], seed=0, cutoff=4.0))
