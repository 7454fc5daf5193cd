"""scripts/bench_peers.py on tiny sizes, without MACE's environment: the JSON says what it timed and
that MACE was not installed; the plumbing to the MACE worker (a stand-in interpreter answers for
it) gives each mlpot row its ratio to MACE 64x0e + 64x1o; an existing output is never replaced
without --overwrite; and the README section renders a peers.json."""

import importlib.util
import json
import shlex
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import bench_peers  # noqa: E402

# Two steps, one block, the 32-atom copper cell and the package defaults: a smoke run of a few seconds.
TINY = ["--quick", "--no-compile", "--hyperparameters", "defaults", "--copper-repeat", "2", "2", "2",
        "--steps", "2", "--blocks", "1"]
ROW_KEYS = {"system", "n_atoms", "code", "model", "dtype", "driver", "steps_per_s", "best_steps_per_s",
            "atom_steps_per_s", "steps_per_block", "blocks"}


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """The script sets torch's thread count: give the rest of the suite its own back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def load_section():
    spec = importlib.util.spec_from_file_location("readme_peers", ROOT / "scripts" / "readme_sections" / "80_peers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mlpot_side_without_mace_says_so(tmp_path):
    out = tmp_path / "peers.json"
    argv = [*TINY, "--bench-venv", str(tmp_path / "no-venv"), "--output", str(out)]
    assert bench_peers.main(argv) == 0
    data = json.loads(out.read_text())
    assert data["command"] == shlex.join(["python", "scripts/bench_peers.py", *argv])
    assert data["mace"] == "not installed (python scripts/bench_peers.py --setup)"
    assert data["threads"] == 1 and data["timestep_fs"] == 0.5 and data["quick"] is True
    assert "median" in data["statistic"] and set(data["timed"]) == {"ase", "engine"}
    assert "untrained" in data["weights"]
    assert data["systems"] == {"ethanol": {"n_atoms": 9, "periodic": False, "formula": "C2H6O"},
                               "cu_fcc": {"n_atoms": 32, "periodic": True, "formula": "Cu32"}}
    versions = data["mlpot"]["versions"]
    assert versions["torch"] == torch.__version__ and {"e3nn", "mlpot", "ase"} <= set(versions)
    assert data["mlpot"]["hyperparameters"] == "defaults"
    assert {family: model["compiled"] for family, model in data["mlpot"]["models"].items()} == \
        {"descriptor": False, "equivariant": False}

    rows = data["results"]
    # every system × dtype × family × driver once, all mlpot
    assert sorted((r["system"], r["dtype"], r["model"], r["driver"]) for r in rows) == sorted(
        (s, d, f, drv) for s in ("ethanol", "cu_fcc") for d in ("float64", "float32")
        for f in ("descriptor", "equivariant") for drv in ("ase", "engine"))
    for row in rows:
        assert set(row) == ROW_KEYS and row["code"] == "mlpot"
        assert 0 < row["steps_per_s"] <= row["best_steps_per_s"] * (1 + 1e-12)  # the fastest block is no slower
        assert row["atom_steps_per_s"] == pytest.approx(row["steps_per_s"] * row["n_atoms"])
        assert row["n_atoms"] == data["systems"][row["system"]]["n_atoms"]


def test_refuses_to_replace_an_output_without_overwrite(tmp_path, capsys):
    out = tmp_path / "peers.json"
    out.write_text("{}")
    with pytest.raises(SystemExit):
        bench_peers.parse_args(["--output", str(out)])
    assert "--overwrite" in capsys.readouterr().err
    assert bench_peers.parse_args(["--output", str(out), "--overwrite"]).overwrite
    assert out.read_text() == "{}"


def test_mace_rows_come_from_the_worker_and_set_the_ratio(tmp_path):
    """A stand-in for .bench-venv/bin/python answers as the worker does, with fixed rates (10 steps/s
    for the smaller MACE), so the request, the rows and the ratios are checked without MACE."""
    fake_venv = tmp_path / "venv"
    (fake_venv / "bin").mkdir(parents=True)
    python = fake_venv / "bin" / "python"
    python.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        "request = json.loads(sys.stdin.read())\n"
        "assert request['atoms']['numbers'] and request['threads'] == 1 and request['timestep_fs'] == 0.5\n"
        "assert (request['num_interactions'], request['correlation'], request['max_ell']) == (2, 3, 3)\n"
        "rate = 10.0 if request['hidden_irreps'] == '64x0e + 64x1o' else 5.0\n"
        "print(json.dumps({'steps_per_s': rate, 'best_steps_per_s': rate, 'threads': 1, 'calculator': 'stand-in',\n"
        "                  'hidden_irreps': request['hidden_irreps'], 'dtype': request['dtype'],\n"
        "                  'model': {'n_parameters': 1}, 'versions': {'mace': 'x', 'torch': 'y', 'e3nn': '0.4.4'}}))\n"
    )
    python.chmod(0o755)
    out = tmp_path / "peers.json"
    argv = [*TINY, "--families", "descriptor", "--dtypes", "float32", "--bench-venv", str(fake_venv),
            "--output", str(out)]
    assert bench_peers.main(argv) == 0
    data = json.loads(out.read_text())
    assert data["mace"]["versions"]["e3nn"] == "0.4.4" and data["mace"]["threads"] == 1
    assert set(data["mace"]["models"]) == {f"{s} {size} float32" for s in ("ethanol", "cu_fcc")
                                           for size in bench_peers.MACE_SIZES}
    mace_rows = [r for r in data["results"] if r["code"] == "mace"]
    assert len(mace_rows) == 4 and all(r["driver"] == "ase" for r in mace_rows)
    for row in data["results"]:
        if row["code"] == "mlpot":
            assert row["speedup_over_mace_64"] == pytest.approx(row["steps_per_s"] / 10.0)
    lines = load_section().render_data(data)
    assert any("MACE x (torch y, e3nn 0.4.4" in line for line in lines)
    assert sum(line.startswith("| mace |") for line in lines) == 2  # one line per size, systems as columns


def test_readme_section_renders_a_small_json(tmp_path, monkeypatch):
    section = load_section()
    monkeypatch.setattr(section, "RESULT", tmp_path / "absent.json")
    assert section.render() == []

    def row(system, n_atoms, code, model, driver, rate, speedup=None):
        entry = {"system": system, "n_atoms": n_atoms, "code": code, "model": model, "dtype": "float64",
                 "driver": driver, "steps_per_s": rate, "best_steps_per_s": rate, "atom_steps_per_s": rate * n_atoms,
                 "steps_per_block": 10, "blocks": 3}
        return entry | ({"speedup_over_mace_64": speedup} if speedup is not None else {})

    data = {
        "command": "python scripts/bench_peers.py", "timestep_fs": 0.5, "temperature_K": 300.0, "threads": 1,
        "quick": False, "statistic": "median over blocks of steps_per_block MD steps after 2 warm-up steps",
        "speedup_target": {"min": 3.0},
        "systems": {"ethanol": {"n_atoms": 9}, "cu_fcc": {"n_atoms": 864}},
        "mlpot": {"hyperparameters": {"descriptor": "scripts/configs/rmd17_ethanol.yaml"},
                  "models": {"descriptor": {"compiled": True}}, "skin_A": 1.0,
                  "versions": {"mlpot": "0.1.0", "torch": "2.13.0", "e3nn": "0.6.0"}},
        "mace": "not installed (python scripts/bench_peers.py --setup)",
        "results": [row("ethanol", 9, "mlpot", "descriptor", "ase", 300.0, 6.0),
                    row("cu_fcc", 864, "mlpot", "descriptor", "ase", 2.0, 4.0),
                    row("ethanol", 9, "mace", "64x0e + 64x1o", "ase", 50.0),
                    row("cu_fcc", 864, "mace", "64x0e + 64x1o", "ase", 0.5)],
    }
    (tmp_path / "peers.json").write_text(json.dumps(data))
    monkeypatch.setattr(section, "RESULT", tmp_path / "peers.json")
    lines = section.render()
    assert lines[0] == "### MD speed against MACE" and lines[-1] == ""
    caption = lines[2]
    assert "`python scripts/bench_peers.py`" in caption and "1 torch thread(s)" in caption
    assert "untrained" in caption and "compiled: descriptor" in caption and "MACE not installed" in caption
    # The JSON's key names give way to each system's blocks; a report lacking block_start is flagged.
    assert "(ethanol 3 × 10 steps, cu_fcc 3 × 10 steps)" in caption and "steps_per_block" not in caption
    assert "Measured with the protocol before 2026-12-03" in caption
    table = [line for line in lines if line.startswith("|")]
    assert table[0].count("steps/s |") == 2 + 2  # steps/s and atom-steps/s for each of the two systems
    assert table[2] == "| mlpot | descriptor | float64 | ase | 300 | 2.7e+03 | 6.00 | 2 | 1.73e+03 | 4.00 |"
    assert table[3] == "| mace | `64x0e + 64x1o` | float64 | ase | 50 | 450 |  | 0.5 | 432 |  |"


def test_an_interrupted_run_keeps_its_timings_and_resume_times_only_the_rest(tmp_path, monkeypatch, capsys):
    out = tmp_path / "peers.json"
    argv = [*TINY, "--families", "descriptor", "--systems", "ethanol", "--bench-venv", str(tmp_path / "no-venv"),
            "--output", str(out)]
    time_mlpot = bench_peers.time_mlpot
    calls = []

    def interrupted_at_the_third(*args, **kwargs):
        calls.append(args[2])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return time_mlpot(*args, **kwargs)

    monkeypatch.setattr(bench_peers, "time_mlpot", interrupted_at_the_third)
    with pytest.raises(KeyboardInterrupt):
        bench_peers.main(argv)
    partial = json.loads(out.read_text())  # written after each of the two finished timings
    assert partial["complete"] is False and len(partial["results"]) == 2
    assert [r["dtype"] for r in partial["results"]] == ["float64", "float64"]

    with pytest.raises(SystemExit):  # neither --resume nor --overwrite: the report is not replaced
        bench_peers.parse_args(argv)
    assert "--resume" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench_peers.parse_args([*argv, "--resume", "--overwrite"])
    with pytest.raises(SystemExit, match=r"other settings \(threads\)"):
        bench_peers.main([*argv, "--resume", "--threads", "2"])

    calls.clear()
    monkeypatch.setattr(bench_peers, "time_mlpot", lambda *args, **kwargs: calls.append(args[2]) or (4.0, 5.0))
    assert bench_peers.main([*argv, "--resume"]) == 0
    assert calls == ["ase", "engine"]  # only the two float32 timings the report lacked
    resumed = json.loads(out.read_text())
    assert resumed["complete"] is True and resumed["results"][:2] == partial["results"]
    assert [(r["dtype"], r["driver"], r["steps_per_s"]) for r in resumed["results"][2:]] == \
        [("float32", "ase", 4.0), ("float32", "engine", 4.0)]
    assert resumed["commands"] == [shlex.join(["python", "scripts/bench_peers.py", *a])
                                   for a in (argv, [*argv, "--resume"])]
    assert resumed["command"] == resumed["commands"][0]

    # adding a system to a finished report times that system alone
    calls.clear()
    both_systems = [*TINY, "--families", "descriptor", "--bench-venv", str(tmp_path / "no-venv"), "--output", str(out)]
    assert bench_peers.main([*both_systems, "--resume"]) == 0
    assert len(calls) == 4  # copper: two dtypes × two drivers
    grown = json.loads(out.read_text())
    assert set(grown["systems"]) == {"ethanol", "cu_fcc"} and grown["results"][:4] == resumed["results"]
    assert sorted(timing[:2] for timing in map(bench_peers.timing_key, grown["results"][4:])) == \
        [("cu_fcc", "float32"), ("cu_fcc", "float32"), ("cu_fcc", "float64"), ("cu_fcc", "float64")]
