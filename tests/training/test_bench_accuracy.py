"""Smoke test of scripts/bench_accuracy.py (slow: run with `pytest -m slow`)."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


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
    assert (tmp_path / "acc_learning_curve.png").exists()
