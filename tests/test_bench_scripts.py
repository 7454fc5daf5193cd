"""The speed benchmarks (scripts/bench_neighbors.py, bench_inference.py, bench_md.py) on tiny sizes:
each JSON says what it timed, with which statistic, threads, dtype, torch version and the exact
command; the figures are consistent with each other; and the README renders captions that say so,
for these files and for the files written before the scripts recorded it."""

import builtins
import importlib.util
import json
import shlex
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import bench_inference  # noqa: E402
import bench_md  # noqa: E402
import bench_neighbors  # noqa: E402


def load_renderer():
    spec = importlib.util.spec_from_file_location("update_readme_benchmarks",
                                                  ROOT / "scripts" / "update_readme_benchmarks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """The scripts set torch's thread count: give the rest of the suite its own back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def assert_describes_itself(data: dict, argv: list[str], script: str) -> None:
    assert data["command"] == shlex.join(["python", f"scripts/{script}", *argv])
    assert shlex.split(data["command"])[2:] == argv  # quoted so that it runs as written
    assert data["torch"] == torch.__version__
    assert "median" in data["statistic"]
    assert data["timed"]


def test_neighbour_benchmark_records_threads_and_agrees_with_ase(tmp_path, capsys):
    out = tmp_path / "neighbors.json"
    argv = ["--sizes", "60", "120", "--repeats", "2", "--threads", "1", "2", "--output", str(out)]
    assert bench_neighbors.main(argv) == 0
    data = json.loads(out.read_text())
    assert_describes_itself(data, argv, "bench_neighbors.py")
    assert data["torch_threads"] == [1, 2] and data["ase_threads"] == 1
    for row in data["rows"]:
        assert row["n_pairs"] == row["ase_n_pairs"] > 0  # the same full list as ASE's
        for threads in (1, 2):
            for dtype in ("float64", "float32"):
                key = f"mlpot_{dtype}_{threads}t"
                assert 0 < row[f"{key}_min_s"] <= row[f"{key}_s"]  # the minimum never exceeds the median
    vesin_installed = importlib.util.find_spec("vesin") is not None
    assert data["vesin_ran"] == vesin_installed == all("vesin_s" in row for row in data["rows"])
    assert set(data["scaling_exponents"]) == {k for k in data["rows"][0] if k.endswith("_s") and "_min" not in k}


def test_neighbour_benchmark_without_vesin_says_so(tmp_path, capsys, monkeypatch):
    real_import = builtins.__import__

    def no_vesin(name, *args, **kwargs):
        if name == "vesin":
            raise ImportError("No module named 'vesin'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_vesin)
    out = tmp_path / "neighbors.json"
    assert bench_neighbors.main(["--sizes", "60", "--repeats", "1", "--threads", "1", "--output", str(out)]) == 0
    assert "vesin is not installed" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["vesin_ran"] is False and "vesin_s" not in data["rows"][0] and data["scaling_exponents"] == {}
    renderer = load_renderer()
    renderer.RESULTS = tmp_path
    text = "\n".join(renderer.neighbours())
    assert "vesin was not installed and did not run" in text and "vesin (C++" not in text


def test_inference_benchmark_times_fresh_structures_model_calls_and_the_md_path(tmp_path):
    out = tmp_path / "inference.json"
    argv = ["--sizes", "30", "--threads", "1", "--seconds", "0", "--min-calls", "2", "--no-compile",
            "--output", str(out)]
    assert bench_inference.main(argv) == 0
    data = json.loads(out.read_text())
    assert_describes_itself(data, argv, "bench_inference.py")
    assert set(data["timed"]) == {"full", "model", "prepared"} and data["torch_threads"] == 1
    assert [(r["system"], r["dtype"]) for r in data["rows"]] == [
        ("ethanol", "float64"), ("ethanol", "float32"), ("random 30", "float64"), ("random 30", "float32")]
    for r in data["rows"]:
        for region in ("full", "model", "prepared"):
            assert 0 < r[f"{region}_evaluations_per_s"] <= r[f"{region}_best_evaluations_per_s"]
        assert r["full_atom_evaluations_per_s"] == pytest.approx(r["full_evaluations_per_s"] * r["n_atoms"], rel=1e-12)


def test_fresh_copies_are_new_structures_of_the_same_atoms():
    atoms = bench_inference.systems(quick=True)["ethanol"]
    copies = bench_inference.fresh_copies(atoms)
    assert len({c.positions.tobytes() for c in copies}) == len(copies) == bench_inference.N_FRESH
    for copy in copies:
        assert copy.get_chemical_symbols() == atoms.get_chemical_symbols()
        assert 0 < abs(copy.positions - atoms.positions).max() < 0.1  # rattled by ~0.01 Å


def test_md_benchmark_measures_overhead_against_the_prepared_force_call(tmp_path):
    out = tmp_path / "md.json"
    argv = ["--no-compile", "--threads", "1", "--steps", "3", "--blocks", "2", "--copper-repeat", "2", "2", "2",
            "--output", str(out)]
    assert bench_md.main(argv) == 0
    data = json.loads(out.read_text())
    assert_describes_itself(data, argv, "bench_md.py")
    assert data["threads"] == 1 and data["compiled"] is False
    for r in data["results"].values():
        assert r["dtype"] == "float64" and r["steps_per_block"] == 3 and r["blocks"] == 2
        # the overhead is the engine's time over the prepared call's, from the same medians
        expected = r["prepared_force_calls_per_s"] / r["engine_steps_per_s"] - 1.0
        assert r["engine_overhead_over_prepared_force"] == pytest.approx(expected, rel=1e-12)
        assert r["n_edges_at_cutoff_plus_skin"] >= r["n_edges_at_cutoff"]
    assert set(data["results"]) == {"ethanol", "cu_fcc"} and data["results"]["cu_fcc"]["n_atoms"] == 32


def test_readme_captions_of_the_stored_results_say_what_was_timed():
    """The captions name the timed region, the statistic and the threads, whichever JSON is stored
    (files written before the scripts recorded it get captions that say what they lack)."""
    renderer = load_renderer()
    for section in (renderer.neighbours(), renderer.inference(), renderer.molecular_dynamics()):
        caption = section[2]
        assert "Timed:" in caption and "thread" in caption
        assert "Median" in caption or "Best of" in caption or "fastest single call" in caption
    inference, md = " ".join(renderer.inference()), " ".join(renderer.molecular_dynamics())
    assert "neighbour list" in inference
    assert "prepared force call" in md
    for molecule_section in "\n".join(renderer.accuracy()).split("### Accuracy")[1:]:
        assert "median" in molecule_section or "not yet a median of three seeds" in molecule_section


def test_hamiltonian_table_sets_the_published_numbers_beside_ours():
    import hnn_benchmarks

    from mlpot.hamiltonian.experiments import CONSERVATIVE_SYSTEMS

    assert set(hnn_benchmarks.PUBLISHED["systems"]) == set(CONSERVATIVE_SYSTEMS)
    assert "github.com/greydanus/hamiltonian-nn" in hnn_benchmarks.PUBLISHED["source"]
    lines = load_renderer().hamiltonian()
    for name in CONSERVATIVE_SYSTEMS:
        (row,) = [line for line in lines if line.startswith(f"| {name} | published |")]
        published = hnn_benchmarks.PUBLISHED["systems"][name]
        for quantity in ("test_loss", "energy_mse"):
            for model in ("baseline", "hnn"):
                assert f"{published[quantity][model][0]:.4e}" in row
    assert any("greydanus/hamiltonian-nn" in line for line in lines)
