"""scripts/bench_stability.py (issue 21, stable MD): the bond-excursion detector and the distance
histograms on synthetic and on rMD17 positions; tiny Langevin runs of two analytic models saved to
files (a molecule held by springs survives, free atoms fly apart and fail by a bond excursion), the
JSON they write, resuming without rerunning, refusing to replace an output; the README section."""

from __future__ import annotations

import importlib.util
import json
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule

from mlpot import save_model
from mlpot.data import keys as K
from mlpot.models import Potential, registry

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import bench_stability as stability  # noqa: E402

SPRINGS = "stability_test_springs"
#: 0.1 ps at 1,000 K, two seeds: 200 steps a run, ten bond checks.
TINY = ["--temperatures", "1000", "--seeds", "0", "1", "--ps", "0.1", "--no-compile"]


class PairSprings(Potential):
    """E = ½ k Σ_{i<j} (r_ij − r⁰_ij)² over the pairs within the cutoff, r⁰ [n_atoms, n_atoms] (Å) the
    distances of a reference structure, k in eV/Å²: the molecule is held near that structure; k = 0
    gives free atoms."""

    def __init__(self, elements, cutoff=6.0, chirality="even", dtype="float64", rest_lengths=((0.0,),),
                 spring_constant=5.0):
        super().__init__()
        self.elements, self.cutoff, self.chirality = list(elements), float(cutoff), chirality
        self.spring_constant = float(spring_constant)
        dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        self.register_buffer("rest_lengths", torch.as_tensor(rest_lengths, dtype=dtype))

    def config(self):
        return {"elements": self.elements, "cutoff": self.cutoff, "chirality": self.chirality,
                "dtype": str(self.dtype).removeprefix("torch."), "rest_lengths": self.rest_lengths.tolist(),
                "spring_constant": self.spring_constant}

    def atomic_energies(self, data, edge_index, vectors, training=True):
        stretch = vectors.norm(dim=1) - self.rest_lengths[edge_index[0], edge_index[1]]
        # Each pair appears as two directed edges: a quarter of k stretch² on each gives ½ k stretch² per pair.
        pair = 0.25 * self.spring_constant * stretch.square()
        return vectors.new_zeros(data[K.NUMBERS].shape[0]).index_add(0, edge_index[0], pair)


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """The script sets torch's thread count: give the rest of the suite its own back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def training():
    return stability.read_training_set()


@pytest.fixture(scope="module")
def model_files(tmp_path_factory, training):
    """Two saved models of the starting structure: ``held`` (springs, k = 5 eV/Å²) and ``free`` (k = 0)."""
    registry.register(SPRINGS)(PairSprings)
    start, _ = training
    folder = tmp_path_factory.mktemp("models")
    rest = start.get_all_distances().tolist()
    paths = {name: save_model(PairSprings(["H", "C", "O"], rest_lengths=rest, spring_constant=k), folder / f"{name}.pt")
             for name, k in (("held", 5.0), ("free", 0.0))}
    yield paths
    registry.unregister(SPRINGS)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, model_files):
    """Both models, 1,000 K, seeds 0 and 1, 0.1 ps: the argv, the output path and its JSON."""
    out = tmp_path_factory.mktemp("run") / "stability.json"
    argv = [*TINY, "--model", f"held={model_files['held']}", "--model", f"free={model_files['free']}",
            "--output", str(out)]
    assert stability.main(argv) == 0
    return argv, out, json.loads(out.read_text())


def test_ethanol_has_its_eight_covalent_bonds(training):
    start, positions = training
    for atoms in (molecule("CH3CH2OH"), start):
        bonds = stability.covalent_bonds(atoms)
        symbols = atoms.get_chemical_symbols()
        pairs = sorted("-".join(sorted((symbols[i], symbols[j]))) for i, j in bonds)
        assert pairs == ["C-C", "C-H", "C-H", "C-H", "C-H", "C-H", "C-O", "H-O"]
        assert (bonds[:, 0] < bonds[:, 1]).all()
    # No bond breaks in the DFT data (500 K): each stays within a few tenths of an Å of its length.
    window = stability.BondWindow(stability.covalent_bonds(start), positions)
    assert (window.reference_max - window.reference_min < 0.5).all()
    assert (window.reference_max < 2.0).all() and (window.reference_min > 0.8).all()


def test_bond_window_flags_a_bond_just_outside_its_margin(training):
    start, reference = training
    bonds = stability.covalent_bonds(start)
    window = stability.BondWindow(bonds, reference, margin=0.5)
    np.testing.assert_allclose(window.upper - window.lower, window.reference_max - window.reference_min + 1.0)
    assert window.find_excursion(start.positions) is None  # a DFT frame is inside by construction
    symbols = start.get_chemical_symbols()
    k = next(k for k, (i, j) in enumerate(bonds) if {symbols[i], symbols[j]} == {"C", "H"})
    carbon, hydrogen = (int(a) for a in (bonds[k] if symbols[bonds[k][0]] == "C" else bonds[k][::-1]))
    direction = start.positions[hydrogen] - start.positions[carbon]
    direction /= np.linalg.norm(direction)
    for length, flagged in ((window.upper[k] - 0.01, False), (window.upper[k] + 0.01, True),
                            (window.lower[k] + 0.01, False), (window.lower[k] - 0.01, True)):
        # A hydrogen has one bond: moving it along that bond changes no other bond's length.
        positions = start.positions.copy()
        positions[hydrogen] = positions[carbon] + length * direction
        found = window.find_excursion(positions)
        assert (found is not None) == flagged
        if flagged:
            assert found[0] == k and found[1] == pytest.approx(length)


def test_distance_histograms_are_normalised_and_their_error_runs_from_0_to_2():
    def triangle(side):  # three distances, all equal to side (Å)
        return Atoms("H3", positions=[[0, 0, 0], [side, 0, 0], [side / 2, side * np.sqrt(3) / 2, 0]]).positions

    width = (stability.HISTOGRAM_RANGE_A[1] - stability.HISTOGRAM_RANGE_A[0]) / stability.HISTOGRAM_BINS
    counts = stability.pair_distance_counts(triangle(1.02))
    assert counts.sum() == 3 and counts[int(1.02 / width)] == 3
    assert stability.density(counts).sum() * width == pytest.approx(1.0)
    frames = np.stack([triangle(1.02), triangle(2.02)])  # [2, 3, 3]: frames are pooled
    assert stability.pair_distance_counts(frames).sum() == 6
    assert stability.histogram_error(counts, counts) == 0.0
    assert stability.histogram_error(counts, stability.pair_distance_counts(triangle(2.02))) == pytest.approx(2.0)
    # half of one distribution's weight where the other's all is: ∫|p − q| = 0.5 + 0.5
    assert stability.histogram_error(counts, stability.pair_distance_counts(frames)) == pytest.approx(1.0)


def test_held_molecule_survives_and_free_atoms_fail_by_a_bond_excursion(tiny_run, model_files):
    argv, out, data = tiny_run
    assert data["command"] == shlex.join(["python", "scripts/bench_stability.py", *argv])
    assert data["complete"] is True and data["quick"] is False and data["threads"] == 1
    settings = data["settings"]
    assert settings["ensemble"] == "langevin" and settings["timestep_fs"] == 0.5 and settings["ps"] == 0.1
    assert settings["friction_per_fs"] == 0.01 and settings["check_interval_fs"] == 10.0
    assert settings["training_file_sha256"] == stability.file_sha256(stability.TRAINING_FILE)
    for label, path in model_files.items():
        assert data["models"][label]["sha256"] == stability.file_sha256(path)
        assert data["models"][label]["family"] == SPRINGS
    assert len(data["bonds"]) == 8 and data["dft_histogram"]["frames"] == 1000
    assert {"mlpot", "torch", "ase"} <= set(data["versions"]) and data["wall_s"] > 0

    runs = {(r["model"], r["seed"]): r for r in data["runs"]}
    assert set(runs) == {(m, s) for m in ("held", "free") for s in (0, 1)}
    checks = round(0.1 * 1000 / 10.0)  # bond checks after step 0 in a full run
    for seed in (0, 1):
        held, free = runs["held", seed], runs["free", seed]
        assert held["temperature_K"] == 1000.0
        # springs of 5 eV/Å² hold each bond within √(kT/k) ≈ 0.13 Å of its rest length: no excursion
        assert not held["failed"] and held["reason"] is None and held["time_to_failure_ps"] is None
        assert held["ps_done"] == 0.1 and held["steps"] == 200 and held["frames"] == checks + 1
        assert sum(held["distance_histogram_counts"]) == 36 * held["frames"]
        # free atoms at 1,000 K separate at ~0.03 Å/fs per axis: a bond leaves its window within 0.1 ps
        assert free["failed"] and free["reason"] == "bond_excursion" and "outside its window" in free["message"]
        assert 0 < free["time_to_failure_ps"] == free["ps_done"] < 0.1
        # found at a check (every 10 fs = 0.01 ps); the frames before it, from step 0, are the sample
        assert free["time_to_failure_ps"] / 0.01 == pytest.approx(free["frames"])
        assert sum(free["distance_histogram_counts"]) == 36 * free["frames"]

    summary = {row["model"]: row for row in data["summary"]}
    assert summary["held"]["survived"] == 2 and summary["held"]["median_is_lower_bound"]
    assert summary["free"]["survived"] == 0 and not summary["free"]["median_is_lower_bound"]
    assert summary["free"]["median_time_to_failure_ps"] == pytest.approx(
        np.median([runs["free", s]["time_to_failure_ps"] for s in (0, 1)]))
    assert summary["free"]["failure_reasons"] == {"bond_excursion": 2}
    for row in summary.values():
        width = 5.0 / len(row["distance_density_per_A"])
        assert sum(row["distance_density_per_A"]) * width == pytest.approx(1.0, abs=1e-4)  # rounded to 5 digits
        assert 0.0 < row["histogram_error"] <= 2.0
    assert out.with_suffix(".png").stat().st_size > 0


def test_resume_skips_the_runs_done_and_refuses_other_settings(tmp_path, model_files, capsys):
    out = tmp_path / "stability.json"
    first = ["--model", f"held={model_files['held']}", "--temperatures", "500", "--ps", "0.05", "--no-compile",
             "--output", str(out)]
    assert stability.main([*first, "--seeds", "0"]) == 0
    before = json.loads(out.read_text())["runs"]
    assert stability.main([*first, "--seeds", "0", "1", "--resume"]) == 0
    assert "1 run(s) kept, 1 to do" in capsys.readouterr().out
    after = json.loads(out.read_text())["runs"]
    assert after[0] == before[0]  # not rerun: even its wall time is the first run's
    assert [(r["seed"], r["ps_done"]) for r in after] == [(0, 0.05), (1, 0.05)]

    text = out.read_text()
    longer = [a if a != "0.05" else "0.1" for a in first]
    assert stability.main([*longer, "--seeds", "0", "1", "--resume"]) == 2
    assert "other settings (ps)" in capsys.readouterr().err
    assert out.read_text() == text


def test_refuses_to_replace_an_output_without_overwrite_or_resume(tmp_path, model_files, capsys):
    out = tmp_path / "stability.json"
    out.write_text("{}")
    argv = ["--model", f"held={model_files['held']}", "--output", str(out)]
    with pytest.raises(SystemExit):
        stability.parse_args(argv)
    assert "--overwrite" in capsys.readouterr().err
    assert stability.parse_args([*argv, "--overwrite"]).overwrite
    with pytest.raises(SystemExit):
        stability.parse_args([*argv, "--overwrite", "--resume"])
    assert out.read_text() == "{}"


def load_section():
    spec = importlib.util.spec_from_file_location("readme_stability",
                                                  ROOT / "scripts" / "readme_sections" / "85_stability.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_section_renders_the_json(tiny_run, monkeypatch, tmp_path):
    _, _, data = tiny_run
    section = load_section()
    monkeypatch.setattr(section, "RESULT", tmp_path / "absent.json")
    assert section.render() == []
    lines = section.render_data(data)
    assert lines[0] == "### MD stability on rMD17 ethanol" and lines[-1] == ""
    assert data["command"] in lines[2] and "500 K" in lines[2] and "0.5 fs" in lines[2]
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in lines if line.startswith("| ")}
    assert rows["held"].startswith("| held | 1000 | 2/2 | ≥ 0.1 | none | ")
    free = {row["model"]: row for row in data["summary"]}["free"]
    assert rows["free"].startswith(f"| free | 1000 | 0/2 | {free['median_time_to_failure_ps']:.2f} | "
                                   "bond excursion 2 | ")


def test_runs_side_by_side_give_the_records_of_runs_one_after_another(tmp_path):
    """--jobs 2 runs in spawned processes (a model registered by mlpot itself: an untrained
    DescriptorModel); a run depends only on its model, temperature and seed, so every record is the
    serial one, bit for bit, apart from its timings."""
    from mlpot.models import DescriptorModel

    path = save_model(DescriptorModel(["H", "C", "O"], seed=0), tmp_path / "untrained.pt")
    argv = ["--model", f"untrained={path}", "--temperatures", "1000", "--seeds", "0", "1", "--ps", "0.05",
            "--no-compile"]
    records = {}
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}.json"
        assert stability.main([*argv, "--jobs", str(jobs), "--output", str(out)]) == 0
        data = json.loads(out.read_text())
        assert data["jobs"] == jobs
        records[jobs] = [{k: v for k, v in r.items() if k not in ("wall_s", "steps_per_s")} for r in data["runs"]]
    assert [(r["seed"], r["model"]) for r in records[2]] == [(0, "untrained"), (1, "untrained")]
    assert records[2] == records[1]
