"""The potential trainer: accuracy on a small ethanol subset, DDP = single process, mirror
augmentation, stress training, ensembles, losses with missing labels."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mlpot.data import collate
from mlpot.data.datasets import read_structures
from mlpot.training.batching import INPUT_KEYS, add_label_masks
from mlpot.training.config import config_from_dict
from mlpot.training.losses import PotentialLoss
from mlpot.training.trainer import (
    _elements,
    build_model,
    evaluate,
    fit_energy_statistics,
    mirror_structure,
    prepare_data,
    train,
    train_model,
)

ROOT = Path(__file__).resolve().parents[2]
ETHANOL = str(ROOT / "datasets" / "rmd17" / "rmd17_ethanol_train_01.npz")
SI = str(ROOT / "datasets" / "mlearn_si" / "Si_training.xyz")
SMALL_MODEL = {"n_radial": 6, "n_channels": 6, "l_max": 2, "hidden": [32, 32]}
TINY_MODEL = {"n_radial": 4, "n_channels": 4, "l_max": 1, "hidden": [8]}


def test_training_on_50_ethanol_configurations_lowers_the_validation_force_error_3x():
    """50 rMD17 ethanol configurations, 10 epochs: the validation force MAE drops at least 3-fold."""
    config = config_from_dict({
        "data": {"train": ETHANOL, "energy_unit": "kcal/mol", "n_train": 50, "n_val": 25, "seed": 0},
        "model": {"cutoff": 5.0, **SMALL_MODEL},
        "trainer": {"max_epochs": 10, "lr": 1e-2, "batch_size": 5, "warmup_epochs": 1, "progress": False},
    })
    train_set, val_set, _, split = prepare_data(config, config.model.cutoff, verbose=False)
    assert len(train_set) == 50 and len(val_set) == 25 and not set(split["train"]) & set(split["val"])
    torch.manual_seed(0)
    model = build_model(config, _elements(config, train_set))
    model.set_energy_statistics(*fit_energy_statistics(train_set))
    before = evaluate(model, val_set)["forces_mae_meV_per_A"]
    result = train_model(model, train_set, val_set, config)
    after = evaluate(model, val_set)["forces_mae_meV_per_A"]
    assert after == pytest.approx(result.history[result.best_epoch - 1]["val_forces_mae_meV_per_A"], rel=1e-9)
    assert after * 3 <= before, f"validation force MAE {before:.0f} → {after:.0f} meV/Å"


def test_ddp_with_two_cpu_processes_equals_single_process(tmp_path):
    """torchrun with 2 gloo processes on the same global batches gives the single-process weights."""
    worker = Path(__file__).parent / "ddp_worker.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, str(worker), str(tmp_path / "single"), str(ROOT)],
                            env=env, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
         str(worker), str(tmp_path / "ddp"), str(ROOT)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    a = torch.load(tmp_path / "single" / "result.pt", weights_only=True)
    b = torch.load(tmp_path / "ddp" / "result.pt", weights_only=True)
    assert a["weights"].keys() == b["weights"].keys()
    for key in a["weights"]:
        torch.testing.assert_close(a["weights"][key], b["weights"][key], rtol=0, atol=1e-12, msg=key)
    assert a["history"][-1]["val_loss"] == pytest.approx(b["history"][-1]["val_loss"], rel=1e-10)


def test_mirror_image_has_the_same_energy_and_mirrored_forces():
    (s,) = read_structures(ETHANOL, energy_unit="kcal/mol", index="7", cutoff=4.0)
    mirrored = mirror_structure(s)
    assert torch.equal(mirrored["energy"], s["energy"])
    assert torch.equal(mirrored["forces"][:, 0], -s["forces"][:, 0])
    assert torch.equal(mirrored["forces"][:, 1:], s["forces"][:, 1:])
    torch.manual_seed(0)
    from mlpot.models import DescriptorModel

    model = DescriptorModel([1, 6, 8], cutoff=4.0, chirality="even", **TINY_MODEL)
    inputs = lambda d: {k: d[k] for k in INPUT_KEYS if k in d}  # noqa: E731
    p, q = model(inputs(s)), model(inputs(mirrored))
    torch.testing.assert_close(q["energy"], p["energy"], rtol=0, atol=1e-12)
    torch.testing.assert_close(q["forces"], p["forces"] * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64))


def test_mirror_of_a_periodic_structure_keeps_its_neighbour_list_and_stress():
    (s,) = read_structures(SI, index="60", cutoff=3.0)
    m = mirror_structure(s)
    assert torch.equal(m["edge_index"], s["edge_index"]) and torch.equal(m["edge_shift"], s["edge_shift"])
    flip = torch.diag(torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(m["stress"][0], flip @ s["stress"][0] @ flip)
    from mlpot.neighbors import neighbor_list

    # the mirrored cell and positions give the same edges (as a set) as the stored list
    ei, es = neighbor_list(m["positions"], 3.0, m["cell"], m["pbc"])
    as_set = lambda i, sh: {(int(a), int(b), *map(int, c)) for a, b, c in zip(i[0], i[1], sh)}  # noqa: E731
    assert as_set(ei, es) == as_set(m["edge_index"], m["edge_shift"])


def test_loss_uses_only_the_labels_present():
    structures = read_structures(SI, index="0:3", cutoff=3.0)
    del structures[1]["forces"]
    del structures[2]["stress"]
    batch = collate(add_label_masks(structures))
    n1, n2 = len(structures[1]["numbers"]), len(structures[2]["numbers"])
    assert batch["forces_mask"].tolist() == [True] * 63 + [False] * n1 + [True] * n2
    torch.manual_seed(0)
    from mlpot.models import DescriptorModel

    model = DescriptorModel(["Si"], cutoff=3.0, **TINY_MODEL)
    loss_fn = PotentialLoss(energy_weight=1.0, forces_weight=2.0, stress_weight=3.0, kind="mse", scale=0.5)
    loss, sums = loss_fn(model, batch, training=False)
    out = model({k: batch[k] for k in INPUT_KEYS}, compute_forces=True, compute_stress=True)
    n = batch["n_atoms"].double()
    e = ((out["energy"] - batch["energy"]) / n / 0.5).square().mean()
    fm = batch["forces_mask"]
    f = ((out["forces"][fm] - batch["forces"][fm]) / 0.5).square().mean()
    vol = torch.linalg.det(batch["cell"]).abs()
    st = ((out["stress"][:2] - batch["stress"][:2]) * (vol[:2] / n[:2])[:, None, None] / 0.5).square().mean()
    torch.testing.assert_close(loss, e + 2.0 * f + 3.0 * st)
    assert sums["n_e"] == 3 and sums["n_f"] == 3 * int(fm.sum()) and sums["n_s"] == 18


def test_stress_training_on_silicon_and_an_ensemble_saved_as_a_committee(tmp_path):
    import mlpot
    from mlpot.models import Committee, read_metadata

    # small surface cells (12-24 atoms) keep this fast; the split file picks them
    (tmp_path / "split.json").write_text('{"train": [57, 59, 63, 64, 65, 66], "val": [67, 68]}')
    config = config_from_dict({
        "data": {"train": SI, "split_file": str(tmp_path / "split.json")},
        "model": {"cutoff": 3.5, "chirality": "augment", **TINY_MODEL},
        "trainer": {"max_epochs": 2, "batch_size": 3, "ensemble": 2, "progress": False, "stress_weight": 10.0},
        "output": str(tmp_path / "si"),
    })
    result = train(config)
    assert len(result.fits) == 2 and "stress_mae_meV_per_A3" in result.metrics["val"]
    assert "train_stress_mae_meV_per_A3" in result.fits[0].history[0]
    model = mlpot.load_model(tmp_path / "si" / "model.pt")
    assert isinstance(model, Committee) and len(model.members) == 2
    # members were trained from different seeds
    w0, w1 = (m.networks.weights[0] for m in model.members)
    assert not torch.equal(w0, w1)
    meta = read_metadata(tmp_path / "si" / "model.pt")
    assert meta["split"]["train"] == [57, 59, 63, 64, 65, 66] and meta["split"]["val"] == [67, 68]
    for k in range(2):
        assert (tmp_path / "si" / f"member_{k}" / "metrics.csv").exists()
        assert (tmp_path / "si" / f"member_{k}" / "last.pt").exists()
    val = read_structures(SI, cutoff=3.5)
    val = [val[i] for i in meta["split"]["val"]]
    out = model(collate([{k: s[k] for k in INPUT_KEYS} for s in val]))
    assert out["energy_std"].shape == (2,) and bool((out["energy_std"] > 0).all())


def test_training_history_plot_draws_the_metrics_a_history_holds(tmp_path):
    """plot_training_history: panels for the metrics present, one line pair per run; a history
    without any drawable metric is an error, not an empty figure."""
    import pytest

    from mlpot.training.plots import plot_training_history

    history = [{"epoch": k, "train_forces_mae_meV_per_A": 100.0 / k, "val_forces_mae_meV_per_A": 120.0 / k}
               for k in range(1, 6)]
    path = plot_training_history({"a": history, "b": history[:3]}, tmp_path / "h.png", best_epochs={"a": 4})
    assert path.stat().st_size > 10_000
    with pytest.raises(ValueError, match="no epoch holds a metric"):
        plot_training_history({"a": [{"epoch": 1, "lr": 0.01}]}, tmp_path / "none.png")
