"""The model registry: a potential defined and registered in this file alone is trainable by
`mlpot train`, saveable, loadable and runnable by `mlpot md` (issue 20, point 1)."""

from __future__ import annotations

import math
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch
from ase.build import molecule
from helpers import _close, assert_model_contract, evaluate

import mlpot
from mlpot.cli import main
from mlpot.data import keys as K
from mlpot.models import DescriptorModel, EquivariantModel, Potential, registry
from mlpot.models.serialization import build_model

ETHANOL = Path(__file__).resolve().parents[2] / "datasets" / "rmd17" / "rmd17_ethanol_train_01.npz"


class MorseToy(Potential):
    """E_i = ½ Σ_j D [(1 − e^{−a(r_ij − r0)})² − 1] · s(r_ij), s the smooth cutoff; one learnable D."""

    def __init__(self, elements, cutoff=4.0, chirality="even", dtype=torch.float64, r0=1.2, width=2.0):
        super().__init__()
        self.cutoff, self.chirality, self.elements = float(cutoff), chirality, list(elements)
        self.r0, self.width = float(r0), float(width)
        dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        self.depth = torch.nn.Parameter(torch.tensor(0.5, dtype=dtype))

    def config(self):
        return {"elements": self.elements, "cutoff": self.cutoff, "chirality": self.chirality,
                "dtype": str(self.dtype).removeprefix("torch."), "r0": self.r0, "width": self.width}

    def atomic_energies(self, data, edge_index, vectors, training=True):
        from mlpot.descriptors.radial import smooth_cutoff

        r = vectors.norm(dim=1)
        pair = self.depth * ((1 - torch.exp(-self.width * (r - self.r0))).square() - 1) * smooth_cutoff(r, self.cutoff)
        return vectors.new_zeros(data[K.NUMBERS].shape[0]).index_add(0, edge_index[0], 0.5 * pair)


@pytest.fixture
def toy():
    cls = registry.register("morse_toy")(MorseToy)
    yield cls
    registry.unregister("morse_toy")


def test_builtin_models_are_registered():
    assert {"descriptor", "equivariant"} <= set(registry.names())
    assert registry.get("descriptor") is DescriptorModel and DescriptorModel.registry_name == "descriptor"
    assert registry.get("equivariant") is EquivariantModel
    assert registry.name_of(EquivariantModel(["H"], channels=2, latent=4, hidden=(4,))) == "equivariant"


def test_unknown_and_clashing_names_are_clear_errors(toy, tmp_path):
    with pytest.raises(ValueError, match="unknown model 'nope'; known models: .*descriptor"):
        registry.get("nope")
    with pytest.raises(ValueError, match="already registered"):
        registry.register("descriptor")(MorseToy)
    with pytest.raises(TypeError, match="no config"):
        registry.register("bare")(type("Bare", (torch.nn.Module,), {}))
    with pytest.raises(TypeError, match="not a registered model"):
        mlpot.save_model(torch.nn.Linear(1, 1), tmp_path / "linear.pt")


def test_toy_obeys_the_contract(toy):
    assert_model_contract(toy(["H", "C", "O"]))


def test_old_model_files_name_the_class_and_still_load(tmp_path):
    model = DescriptorModel(["H", "O"], n_channels=3, hidden=(4,), seed=1)
    path = mlpot.save_model(model, tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    assert payload["model"] == "descriptor" and payload["class"] == "DescriptorModel"
    del payload["model"]  # a file written before the registry
    torch.save(payload, tmp_path / "old.pt")
    loaded = mlpot.load_model(tmp_path / "old.pt")
    water = molecule("H2O")
    assert torch.equal(evaluate(loaded, water)["energy"], evaluate(model, water)["energy"])
    assert isinstance(build_model("DescriptorModel", model.config()), DescriptorModel)


def test_toy_trains_saves_loads_and_runs_md_through_the_command_line(toy, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        f"data: {{train: {ETHANOL}, energy_unit: kcal/mol, n_train: 8, n_val: 4, seed: 0}}\n"
        "model: {type: morse_toy, cutoff: 4.0, r0: 1.3}\n"
        "trainer: {max_epochs: 2, batch_size: 4, progress: false, lr: 0.01}\n"
        f"output: {tmp_path / 'run'}\n"
    )
    assert main(["train", str(config)]) == 0
    model = mlpot.load_model(tmp_path / "run" / "model.pt")
    assert isinstance(model, MorseToy) and model.r0 == 1.3
    depth = model.depth.item()
    assert depth != 0.5 and math.isfinite(depth)  # trained: the optimiser moved the one weight

    water = molecule("H2O")
    ase.io.write(tmp_path / "water.xyz", water)
    out = tmp_path / "md"
    assert main(["md", str(tmp_path / "run" / "model.pt"), str(tmp_path / "water.xyz"), "--steps", "5",
                 "--temperature-K", "100", "--no-progress", "--out", str(out)]) == 0
    final = ase.io.read(out / "final.extxyz")
    assert len(final) == 3 and np.isfinite(final.positions).all()

    # a committee of registered toys round-trips through its members' class names
    committee = mlpot.models.Committee([model, toy(["H", "O"], r0=1.0)])
    loaded = mlpot.load_model(mlpot.save_model(committee, tmp_path / "committee.pt"))
    assert _close(evaluate(loaded, water)["energy"], evaluate(committee, water)["energy"])


def test_training_config_names_the_model_by_type_or_name(toy):
    from mlpot.training.config import config_from_dict

    data = {"train": "unused.xyz"}
    assert config_from_dict({"data": data, "model": {"type": "equivariant", "channels": 8}}).model.name == "equivariant"
    named = config_from_dict({"data": data, "model": {"name": "morse_toy", "r0": 1.1}})
    assert named.model.hyperparameters == {"r0": 1.1}
    assert config_from_dict({"data": data}).model.name == "descriptor"  # old configs: the default
    with pytest.raises(ValueError, match="model.type .* and model.name .* disagree"):
        config_from_dict({"data": data, "model": {"type": "equivariant", "name": "descriptor"}})
    with pytest.raises(ValueError, match="unknown model 'allegro'; known: .*equivariant"):
        config_from_dict({"data": data, "model": {"type": "allegro"}})
    with pytest.raises(ValueError, match="unknown key 'model.n_channels'; the model's hyper-parameters are: channels"):
        config_from_dict({"data": data, "model": {"type": "equivariant", "n_channels": 8}})
