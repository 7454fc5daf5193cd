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
