"""scripts/bench_accuracy.py: its EMA rule, and a smoke run (slow: run with `pytest -m slow`)."""

import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import bench_accuracy  # noqa: E402


def test_ema_decays_per_epoch_alike_for_every_training_set_size():
    """A learning-curve point's EMA forgets as much per epoch as the 950-configuration run's does."""
    batch = 32
    per_epoch_950 = 0.999 ** math.ceil(950 / batch)
    assert bench_accuracy.ema_decay(0.999, 950, batch) == 0.999
    for n in (20, 50, 100, 250, 500):
        decay = bench_accuracy.ema_decay(0.999, n, batch)
        assert decay < 0.999
        assert math.isclose(decay ** math.ceil(n / batch), per_epoch_950, rel_tol=1e-12)


def test_energy_weight_falls_with_the_training_set_size_but_not_below_one():
    assert bench_accuracy.energy_weight(100.0, 950) == 100.0
    assert math.isclose(bench_accuracy.energy_weight(100.0, 475), 50.0)
    weights = [bench_accuracy.energy_weight(100.0, n) for n in (5, 9, 50, 100, 250, 500, 950)]
    assert weights == sorted(weights) and weights[0] == weights[1] == 1.0
    # a weight already at or below 1 (aspirin's recipe) stays what it is at every size
    assert bench_accuracy.energy_weight(1.0, 50) == 1.0 and bench_accuracy.energy_weight(0.5, 50) == 0.5


def test_progress_reporter_prints_at_its_interval_and_at_the_end(capsys):
    rows = [{"epoch": e, "max_epochs": 3, "lr": 1e-3, "val_forces_mae_meV_per_A": f}
            for e, f in ((1, 9.0), (2, 7.0), (3, 8.0))]
    report = bench_accuracy.progress_reporter("ethanol", every_s=3600.0, budget_minutes=60.0)
    for row in rows:
        report(row)
    assert capsys.readouterr().out.splitlines() == [
        "ethanol: epoch 3, 0.0 of 60.0 min, lr 1.00e-03, validation F MAE 8.00 meV/Å (best 7.00)"]
    report = bench_accuracy.progress_reporter("ethanol", every_s=0.0, budget_minutes=60.0)
    for row in rows:
        report(row)
    assert len(capsys.readouterr().out.splitlines()) == 3


@pytest.mark.slow
def test_bench_accuracy_smoke(tmp_path):
    out = tmp_path / "acc.json"
    tiny = json.dumps({"n_radial": 4, "n_channels": 4, "l_max": 1, "hidden": [8]})
    assert bench_accuracy.main(["--budget-minutes", "0.1", "--n-train", "50", "--curve", "20",
                                "--model", tiny, "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [c["n_train"] for c in result["learning_curve"]] == [20, 50]
    assert [c["energy_weight"] for c in result["learning_curve"]] == [
        bench_accuracy.energy_weight(100.0, n) for n in (20, 50)]
    assert result["result"]["n_test"] == 1000 and result["result"]["forces_mae_meV_per_A"] > 0
    assert (tmp_path / "acc_learning_curve.png").exists() and (tmp_path / "acc_history.png").exists()
    history = result["result"]["history"]
    assert len(history["val_forces_mae_meV_per_A"]) == len(history["lr"]) == result["result"]["epochs_run"]
