"""``mlpot hnn SYSTEM`` end to end, with a tiny budget."""

from __future__ import annotations

import json

import pytest

from mlpot.cli import main


def test_mlpot_hnn_trains_rolls_out_and_plots(tmp_path, capsys):
    assert main(["hnn", "mass-spring", "--quick", "--epochs", "30", "--horizon", "5", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "mass-spring.json").read_text())
    assert {"baseline", "hnn", "settings", "data", "figure"} <= set(result)
    assert result["settings"]["epochs"] == 30 and result["settings"]["long_horizon"] == 5
    for model in ("baseline", "hnn"):
        assert result[model]["test_loss"] > 0
    assert (tmp_path / "mass-spring.png").stat().st_size > 10_000
    assert "wrote" in capsys.readouterr().out


def test_mlpot_hnn_rejects_an_unknown_system(capsys):
    with pytest.raises(SystemExit):
        main(["hnn", "three-body"])
    assert "invalid choice" in capsys.readouterr().err
