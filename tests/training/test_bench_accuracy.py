"""scripts/bench_accuracy.py: its EMA rule, and a smoke run (slow: run with `pytest -m slow`)."""

import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_ema_decays_per_epoch_alike_for_every_training_set_size():
    """A learning-curve point's EMA forgets as much per epoch as the 950-configuration run's does."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import bench_accuracy

    batch = 32
    per_epoch_950 = 0.999 ** math.ceil(950 / batch)
    assert bench_accuracy.ema_decay(0.999, 950, batch) == 0.999
    for n in (20, 50, 100, 250, 500):
        decay = bench_accuracy.ema_decay(0.999, n, batch)
        assert decay < 0.999
        assert math.isclose(decay ** math.ceil(n / batch), per_epoch_950, rel_tol=1e-12)


@pytest.mark.slow
def test_bench_accuracy_smoke(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    import bench_accuracy

    out = tmp_path / "acc.json"
    tiny = json.dumps({"n_radial": 4, "n_channels": 4, "l_max": 1, "hidden": [8]})
    assert bench_accuracy.main(["--budget-minutes", "0.1", "--n-train", "50", "--curve", "20",
                                "--model", tiny, "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [c["n_train"] for c in result["learning_curve"]] == [20, 50]
    assert result["result"]["n_test"] == 1000 and result["result"]["forces_mae_meV_per_A"] > 0
    assert (tmp_path / "acc_learning_curve.png").exists() and (tmp_path / "acc_history.png").exists()
    history = result["result"]["history"]
    assert len(history["val_forces_mae_meV_per_A"]) == len(history["lr"]) == result["result"]["epochs_run"]
