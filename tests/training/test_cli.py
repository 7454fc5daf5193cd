"""`mlpot train` and `mlpot eval` end to end on a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlpot.cli import main

ROOT = Path(__file__).resolve().parents[2]
ETHANOL = ROOT / "datasets" / "rmd17" / "rmd17_ethanol_train_01.npz"

CONFIG = """
data: {{train: {train}, energy_unit: kcal/mol, n_train: 12, n_val: 4, seed: 0}}
model: {{cutoff: 4.0, n_radial: 4, n_channels: 4, l_max: 1, hidden: [8]}}
trainer: {{max_epochs: 2, batch_size: 4, progress: false}}
output: {output}
"""


def test_train_then_eval_writes_model_metrics_json_and_plot(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(train=ETHANOL, output=tmp_path / "run"))
    assert main(["train", str(config), "--set", "trainer.lr=0.005"]) == 0
    run = tmp_path / "run"
    for name in ("model.pt", "split.json", "metrics.csv", "last.pt", "best.pt", "config.yaml", "metrics.json"):
        assert (run / name).exists(), name
    assert len(json.loads((run / "split.json").read_text())["train"]) == 12
    assert (run / "training.png").stat().st_size > 10_000  # errors per epoch, training and validation

    code = main(["eval", str(run / "model.pt"), str(ETHANOL), "--energy-unit", "kcal/mol", "--index", "0:6",
                 "--json", str(tmp_path / "eval.json"), "--plot", str(tmp_path / "parity.png")])
    assert code == 0
    metrics = json.loads((tmp_path / "eval.json").read_text())
    for key in ("energy_mae_meV", "energy_rmse_meV", "energy_mae_meV_per_atom", "forces_mae_meV_per_A",
                "forces_rmse_meV_per_A"):
        assert metrics[key] > 0, key
    assert "stress_mae_meV_per_A3" not in metrics and metrics["n_structures"] == 6
    assert (tmp_path / "parity.png").stat().st_size > 1000
    assert "forces_mae_meV_per_A" in capsys.readouterr().out


def test_eval_of_a_float32_model_runs_in_float64_unless_asked(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(train=ETHANOL, output=tmp_path / "run"))
    assert main(["train", str(config), "--set", "trainer.dtype=float32", "--set", "trainer.max_epochs=1"]) == 0
    results = {}
    for dtype in ("float64", "model"):
        out = tmp_path / f"eval_{dtype}.json"
        argv = ["eval", str(tmp_path / "run" / "model.pt"), str(ETHANOL), "--energy-unit", "kcal/mol", "--index", "0:6"]
        dtype_flag = ["--dtype", dtype] if dtype != "float64" else []
        assert main(argv + dtype_flag + ["--json", str(out)]) == 0
        results[dtype] = json.loads(out.read_text())
    assert results["float64"]["dtype"] == "float64" and results["model"]["dtype"] == "float32"
    # the same weights: the float32 evaluation differs only by its rounding (a total energy of
    # ~4,200 eV holds ~0.25 meV in float32)
    assert abs(results["float64"]["energy_mae_meV"] - results["model"]["energy_mae_meV"]) < 1.0
    assert abs(results["float64"]["forces_mae_meV_per_A"] - results["model"]["forces_mae_meV_per_A"]) < 0.1


def test_train_rejects_a_config_with_an_unknown_key(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(train=ETHANOL, output=tmp_path / "run"))
    assert main(["train", str(config), "--set", "trainer.epochs=3"]) == 2
    assert "unknown key 'trainer.epochs'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_eval_reports_a_missing_model_or_unit(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "none.pt"), str(ETHANOL)]) == 2
    assert "none.pt" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["train", "--help"], ["eval", "--help"]])
def test_help(argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
