"""Reduced EMT copper check (scripts/heat_capacity_emt_cu.py) and the `mlpot heat-capacity` command.

ASE's EMT is pure numpy and costs milliseconds per force call, so these runs are short: the checks are about
the pipeline (MD → estimators → extrapolation → JSON/PNG/table) and about physics only within the
statistical error of so short a run. The full check (c_∞ within 5% of 3 k_B, three sizes, 100 K and 300 K)
is the script itself.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
from ase.build import bulk

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "heat_capacity_emt_cu.py"


def load_script():
    spec = importlib.util.spec_from_file_location("heat_capacity_emt_cu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reduced_emt_copper(tmp_path):
    script = load_script()
    a0 = script.emt_lattice_constant()
    assert a0 == pytest.approx(3.59, abs=0.01)  # EMT's own Cu lattice constant
    script.run(
        cubic=False,
        sizes=[2, 3],  # 8 and 27 atoms
        temperatures=[300.0],
        equilibration_steps=200,
        production_steps=2048,
        replicas=1,
        progress=False,
        out_json=tmp_path / "cu.json",
        out_png=tmp_path / "cu.png",
    )
    assert (tmp_path / "cu.png").stat().st_size > 10_000
    saved = json.loads((tmp_path / "cu.json").read_text())
    entry = saved["temperatures"][0]
    assert [s["n_atoms"] for s in entry["sizes"]] == [8, 27]
    for size in entry["sizes"]:
        assert size["n_dof_kinetic"] == 3 * size["n_atoms"]  # Langevin
        assert size["ensemble"] == "canonical (configurational)"
        assert size["alternative_estimator"]["ensemble"] == "canonical"
        c, dc = size["kB_per_atom"]["value"], size["kB_per_atom"]["error"]
        # Harmonic value under Langevin is 3 − 1.5/N; EMT's anharmonicity at 300 K is a few per cent.
        assert abs(c - (3 - 1.5 / size["n_atoms"])) < 4 * dc + 0.1
        kinetic = size["kinetic_temperature_K"]
        assert kinetic["value"] == pytest.approx(300, abs=5 * kinetic["error"] + 3)
    check = saved["dulong_petit_check"]["300K"]
    assert math.isfinite(check["c_inf_kB_per_atom"]) and check["c_inf_error"] > 0
    assert abs(check["c_inf_kB_per_atom"] - 3.0) < 4 * check["c_inf_error"] + 0.1
    assert saved["anharmonic_deviation"]["temperature_K"] == 300.0


def test_heat_capacity_command(tmp_path, capsys):
    from mlpot.cli import main

    structure = tmp_path / "cu.extxyz"
    bulk("Cu", "fcc", a=3.59).write(structure)
    out = tmp_path / "cv"
    argv = [
        "heat-capacity", "--reference", "emt", str(structure),
        "--temperatures", "300", "--sizes", "2", "--equilibration-steps", "100", "--production-steps", "1024",
        "--timestep-fs", "5", "--threads", "1", "--no-progress", "--noise-rmse-meV", "0.5",
        "--assume-uncorrelated-error",
        "--out", str(out),
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "C_V (k_B/atom)" in printed and "J/(mol·K)" in printed and "J/(g·K)" in printed
    assert "raw (k_B/atom)" in printed and "dof" in printed
    saved = json.loads((out / "heat_capacity.json").read_text())
    size = saved["temperatures"][0]["sizes"][0]
    assert size["n_atoms"] == 8 and size["n_dof_kinetic"] == 24
    assert size["noise_variance_eV2"]["source"] == "validation RMSE"
    assert saved["settings"]["white_noise_approximation"] == "validation RMSE"
    # 0.5 meV/atom on 1-atom validation structures, scaled to 8 atoms: σ² = 8 (0.5 meV)².
    assert size["noise_variance_eV2"]["value"] == pytest.approx(8 * 0.0005**2)
    assert size["kB_per_cell_raw"]["value"] > size["kB_per_cell"]["value"]
    assert (out / "heat_capacity.png").exists()
    assert main(["heat-capacity", str(tmp_path / "missing.pt"), str(structure), "--temperatures", "300",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlpot heat-capacity: error: model file") and "not found" in err


def test_reference_calculator_reweighting_to_itself_is_exact(tmp_path, capsys):
    """EMT drives the MD and EMT is the reference: every weight is equal, ESS = frames, values identical."""
    from mlpot.cli import main

    structure = tmp_path / "cu.extxyz"
    bulk("Cu", "fcc", a=3.61, cubic=True).write(structure)
    out = tmp_path / "cv"
    argv = [
        "heat-capacity", "--reference", "emt", str(structure), "--temperatures", "300", "--sizes", "1",
        "--equilibration-steps", "100", "--production-steps", "600", "--timestep-fs", "5", "--threads", "1",
        "--no-progress", "--reference-calculator", "emt", "--reference-frames", "60", "--out", str(out),
    ]
    assert main(argv) == 0
    assert "reference by reweighting" in capsys.readouterr().out
    reference = json.loads((out / "heat_capacity.json").read_text())["temperatures"][0]["sizes"][0]["reference"]
    assert reference["effective_sample_size"] == pytest.approx(60, rel=1e-9)
    model_value = reference["kB_per_cell_model"]["value"]
    assert reference["kB_per_cell_reference"]["value"] == pytest.approx(model_value, rel=1e-9)
    assert reference["model_error_variance_eV2"] < 1e-20
    assert main(argv[:-2] + ["--reference-option", "sigma", "--out", str(out)]) == 2
    assert "--reference-option wants KEY=VALUE, got 'sigma'" in capsys.readouterr().err
    # The white-noise approximation is never implicit: refused before any MD.
    assert main(argv[:-6] + ["--noise-rmse-meV", "1", "--out", str(tmp_path / "noise")]) == 2
    assert "assume-uncorrelated-error" in capsys.readouterr().err
    # An earlier run's results are never replaced unless asked, and the refusal comes before the MD.
    before = (out / "heat_capacity.json").read_text()
    assert main(argv) == 2
    assert f"{out} holds an earlier heat-capacity run ({out / 'heat_capacity.json'}): continue it with --resume" \
        in capsys.readouterr().err
    assert (out / "heat_capacity.json").read_text() == before
    # --resume continues from DIR/checkpoints: here every temperature is finished, so no MD runs again
    # and the numbers are the same (tests/analysis/test_heat_capacity_resume.py interrupts one).
    assert main(argv + ["--resume"]) == 0
    assert json.loads((out / "heat_capacity.json").read_text())["temperatures"] == json.loads(before)["temperatures"]
    assert main(argv + ["--overwrite"]) == 0
    assert main(argv[:-2] + ["--out", str(tmp_path / "empty"), "--resume"]) == 2
    assert "holds no heat-capacity study to continue" in capsys.readouterr().err
