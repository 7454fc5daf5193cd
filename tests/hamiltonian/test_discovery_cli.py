"""``mlpot hnn discover DATA.npz`` and ``mlpot hnn koopman DATA.npz`` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlpot.cli import main
from mlpot.hamiltonian.reference_problems import REFERENCE_PROBLEMS


@pytest.fixture(scope="module")
def pendulum_npz(tmp_path_factory):
    problem = REFERENCE_PROBLEMS["pendulum"]
    q, p, _, _ = problem.simulate(substeps=2)
    path = tmp_path_factory.mktemp("data") / "pendulum.npz"
    np.savez(path, q=q, p=p, dt=np.array(problem.dt))
    return path


def test_discover_prints_the_law_and_writes_json_and_plot(pendulum_npz, tmp_path, capsys):
    assert main(["hnn", "discover", str(pendulum_npz), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "cos(q)" in out and "p^2" in out and "wrote" in out
    record = json.loads((tmp_path / "discover.json").read_text())
    assert set(record["terms"]) == {"p^2", "cos(q)"}
    # derivatives estimated from a clean leapfrog path: Savitzky–Golay truncation ~1e-5 (see
    # test_discovery), far inside 1e-3
    assert record["terms"]["cos(q)"] == pytest.approx(-1.0, rel=1e-3)
    assert record["command"].startswith("mlpot hnn discover")
    assert (tmp_path / "discover.png").stat().st_size > 10_000
    assert main(["hnn", "discover", str(pendulum_npz), "--out", str(tmp_path), "--library", "poly2"]) == 2
    assert "holds an earlier run's results" in capsys.readouterr().err
    assert json.loads((tmp_path / "discover.json").read_text()) == record  # kept unless --overwrite


def test_koopman_prints_the_spectrum_and_writes_json_and_plot(tmp_path, capsys):
    omega, dt = 1.5, 0.1
    t = np.arange(300) * dt
    path = tmp_path / "oscillator.npz"
    np.savez(path, q=np.cos(omega * t)[:, None], p=(-omega * np.sin(omega * t))[:, None], dt=np.array(dt))
    assert main(["hnn", "koopman", str(path), "--dictionary", "linear", "--out", str(tmp_path)]) == 0
    assert "dominant frequency 1.5" in capsys.readouterr().out
    record = json.loads((tmp_path / "koopman.json").read_text())
    assert record["dominant_frequency"] == pytest.approx(omega, rel=1e-8)  # exact for a linear flow
    assert (tmp_path / "koopman.png").stat().st_size > 5_000


def test_missing_file_and_arrays_are_clear_errors(tmp_path, capsys):
    assert main(["hnn", "discover", str(tmp_path / "absent.npz"), "--out", str(tmp_path)]) == 2
    assert "absent.npz" in capsys.readouterr().err
    path = tmp_path / "bad.npz"
    np.savez(path, x=np.zeros(3))
    assert main(["hnn", "discover", str(path), "--out", str(tmp_path)]) == 2
    assert "'q' and 'p'" in capsys.readouterr().err
    assert main(["hnn", "koopman", str(path), "--out", str(tmp_path)]) == 2  # no dt
