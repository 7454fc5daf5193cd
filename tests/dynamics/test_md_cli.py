"""`mlpot md` end to end with ASE's EMT (no trained model needed)."""

from __future__ import annotations

import csv

import ase.io
import numpy as np
import pytest
import torch
from ase.build import bulk

from mlpot.cli import main


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_md_command_runs_and_resumes_bit_for_bit(tmp_path):
    structure = tmp_path / "cu.xyz"
    ase.io.write(structure, bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2))
    common = ["md", "ase:EMT", str(structure), "--timestep-fs", "2", "--temperature-K", "300",
              "--ensemble", "langevin", "--seed", "3", "--thermo-every", "5", "--traj-every", "10",
              "--checkpoint-every", "10", "--no-progress"]

    assert main(common + ["--steps", "30", "--out", str(tmp_path / "whole")]) == 0
    # Stopped at a regular checkpoint: ASE calculators are reset there, so the restart is exact.
    assert main(common + ["--steps", "20", "--out", str(tmp_path / "parts")]) == 0
    assert main(common + ["--steps", "30", "--out", str(tmp_path / "parts"), "--resume"]) == 0

    whole, parts = tmp_path / "whole", tmp_path / "parts"
    rows = _rows(whole / "thermo.csv")
    assert rows[0] == ["step", "time_fs", "T_K", "E_pot", "E_kin", "conserved", "n_dof"]
    assert [int(r[0]) for r in rows[1:]] == list(range(0, 31, 5))
    assert rows[1][-1] == "96"  # Langevin: 3N degrees of freedom
    assert _rows(parts / "thermo.csv") == rows
    final_whole = ase.io.read(whole / "final.extxyz")
    final_parts = ase.io.read(parts / "final.extxyz")
    assert np.array_equal(final_whole.positions, final_parts.positions)
    assert len(ase.io.read(whole / "trajectory.extxyz", ":")) == 4
    assert torch.load(whole / "checkpoint.pt", weights_only=True)["step"] == 30
    assert (whole / "thermo.png").stat().st_size > 10_000  # T and energies against time, drawn from thermo.csv


def test_md_command_reports_a_missing_checkpoint(tmp_path, capsys):
    structure = tmp_path / "cu.xyz"
    ase.io.write(structure, bulk("Cu", "fcc", a=3.61, cubic=True))
    assert main(["md", "ase:EMT", str(structure), "--steps", "5", "--out", str(tmp_path / "x"), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlpot md: error: --resume given but") and "does not exist" in err and err.count("\n") == 1


def test_md_that_leaves_the_models_range_is_one_line_and_exit_code_1(tmp_path, capsys, monkeypatch):
    """A close contact (or any health stop) from `mlpot md` or `mlpot heat-capacity` is a result of
    the run: one line naming the pair and exit code 1, not a traceback."""
    import mlpot
    from mlpot.dynamics import CloseContactError
    from mlpot.models import DescriptorModel

    monkeypatch.delenv("MLPOT_DEBUG", raising=False)
    model = DescriptorModel(["Si"], cutoff=3.5, n_radial=4, n_channels=4, l_max=2, hidden=(8,), seed=0)
    model.training_min_distances = {"Si-Si": 2.2}
    path = mlpot.save_model(model, tmp_path / "si.pt")
    crystal = bulk("Si", "diamond", a=5.43, cubic=True)
    crystal.positions[1] = crystal.positions[0] + [0.6, 0.6, 0.6]  # 1.04 Å < 0.75 × 2.2 Å
    ase.io.write(tmp_path / "si.xyz", crystal)
    commands = {
        "md": ["md", str(path), str(tmp_path / "si.xyz"), "--steps", "2", "--no-progress",
               "--out", str(tmp_path / "md")],
        "heat-capacity": ["heat-capacity", str(path), str(tmp_path / "si.xyz"), "--temperatures", "300",
                          "--sizes", "1", "--no-progress", "--out", str(tmp_path / "cv")],
    }
    for verb, argv in commands.items():
        assert main(argv) == 1, verb
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith(f"mlpot {verb}: MD stopped at step 0 ") and "(Si-Si) are 1.039 Å apart" in err, err
        assert "Traceback" not in err
    # The check is the user's to turn off (here the untrained model's forces stay finite), not to misuse.
    unchecked = commands["md"][:-1] + [str(tmp_path / "md_unchecked")]
    assert main(unchecked + ["--min-distance-fraction", "0"]) == 0
    assert main(unchecked + ["--min-distance-fraction", "1.5"]) == 2
    assert "--min-distance-fraction must be in [0, 1]" in capsys.readouterr().err
    monkeypatch.setenv("MLPOT_DEBUG", "1")
    with pytest.raises(CloseContactError):
        main(commands["md"])


def test_md_never_starts_over_an_earlier_run_without_being_told(tmp_path, capsys):
    """A second `mlpot md` into the same folder would replace hours of trajectory: refused, one line;
    --overwrite replaces the run (its stale checkpoint deleted first), --resume continues it."""
    structure = tmp_path / "cu.xyz"
    ase.io.write(structure, bulk("Cu", "fcc", a=3.61, cubic=True))
    out = tmp_path / "run"
    argv = ["md", "ase:EMT", str(structure), "--steps", "4", "--checkpoint-every", "2", "--no-progress",
            "--out", str(out)]
    assert main(argv) == 0
    before = (out / "thermo.csv").read_text()
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mlpot md: error: {out} holds the files of an earlier MD run") and "--overwrite" in err
    assert (out / "thermo.csv").read_text() == before
    assert main(argv + ["--resume", "--overwrite"]) == 2
    (out / "trajectory.extxyz").write_text("stale")
    assert main(argv[:4] + ["2"] + argv[5:] + ["--overwrite"]) == 0
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 2  # this run's, not the 4 of before
    assert [int(row[0]) for row in _rows(out / "thermo.csv")[1:]] == [0]
    assert (out / "trajectory.extxyz").read_text() != "stale"
    assert main(argv[:4] + ["6"] + argv[5:] + ["--resume"]) == 0
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 6
