"""scripts/bench_accuracy.py: its EMA and energy-weight rules, the protocol of docs/benchmarks.md (median of
seeds; the test set read once per run, after training), and a smoke run (slow: run with `pytest -m slow`)."""

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import bench_accuracy  # noqa: E402

TINY = {"n_radial": 4, "n_channels": 4, "l_max": 1, "hidden": [8]}


def test_ema_decays_per_epoch_alike_for_every_training_set_size():
    """A learning-curve point's EMA forgets as much per epoch as the 950-configuration run's does."""
    batch = 32
    per_epoch_950 = 0.999 ** math.ceil(950 / batch)
    assert bench_accuracy.ema_decay(0.999, 950, batch) == 0.999
    for n in (20, 50, 100, 250, 500):
        decay = bench_accuracy.ema_decay(0.999, n, batch)
        assert decay < 0.999
        assert math.isclose(decay ** math.ceil(n / batch), per_epoch_950, rel_tol=1e-12)


def test_energy_weight_falls_with_the_training_set_size_but_not_below_one():
    assert bench_accuracy.energy_weight(100.0, 950) == 100.0
    assert math.isclose(bench_accuracy.energy_weight(100.0, 475), 50.0)
    weights = [bench_accuracy.energy_weight(100.0, n) for n in (5, 9, 50, 100, 250, 500, 950)]
    assert weights == sorted(weights) and weights[0] == weights[1] == 1.0
    # a weight already at or below 1 (aspirin's recipe) stays what it is at every size
    assert bench_accuracy.energy_weight(1.0, 50) == 1.0 and bench_accuracy.energy_weight(0.5, 50) == 0.5


def test_progress_reporter_prints_at_its_interval_and_at_the_end(capsys):
    rows = [{"epoch": e, "max_epochs": 3, "lr": 1e-3, "val_forces_mae_meV_per_A": f}
            for e, f in ((1, 9.0), (2, 7.0), (3, 8.0))]
    report = bench_accuracy.progress_reporter("ethanol", every_s=3600.0, budget_minutes=60.0)
    for row in rows:
        report(row)
    assert capsys.readouterr().out.splitlines() == [
        "ethanol: epoch 3, 0.0 of 60.0 min, lr 1.00e-03, validation F MAE 8.00 meV/Å (best 7.00)"]
    report = bench_accuracy.progress_reporter("ethanol", every_s=0.0, budget_minutes=60.0)
    for row in rows:
        report(row)
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_summarise_gives_median_min_and_max_over_seeds():
    assert bench_accuracy.summarise([9.8, 9.4, 10.7]) == {"median": 9.8, "min": 9.4, "max": 10.7}
    # even count: the median is the mean of the middle two
    assert bench_accuracy.summarise([2.0, 1.0]) == {"median": 1.5, "min": 1.0, "max": 2.0}
    with pytest.raises(ValueError, match="NaN"):
        bench_accuracy.summarise([1.0, math.nan, 2.0])
    with pytest.raises(ValueError):
        bench_accuracy.summarise([])


def test_summarise_runs_groups_by_training_set_size():
    runs = [{"n_train": n, "seed": s, "energy_mae_meV": float(n + s), "forces_mae_meV_per_A": float(10 * n - s)}
            for n in (950, 50) for s in (2, 0, 1)]
    summary = bench_accuracy.summarise_runs(runs)
    assert [row["n_train"] for row in summary] == [50, 950]
    assert [row["seeds"] for row in summary] == [[0, 1, 2], [0, 1, 2]]
    assert summary[1]["energy_mae_meV"] == {"median": 951.0, "min": 950.0, "max": 952.0}
    assert summary[0]["forces_mae_meV_per_A"] == {"median": 499.0, "min": 498.0, "max": 500.0}
    assert "wall_s" not in summary[0]  # a metric missing from the runs is left out, not invented


class CountingStructures(Sequence):
    """A test set that counts how often its structures are read."""

    def __init__(self, structures):
        self.structures, self.reads = structures, 0

    def __len__(self):
        return len(self.structures)

    def __getitem__(self, index):
        item = self.structures[index]  # IndexError ends an iteration: not a read
        self.reads += len(item) if isinstance(index, slice) else 1
        return item


@pytest.fixture(scope="module")
def test_structures():
    return bench_accuracy.read_test_set("ethanol", 5.0)[:12]


def test_three_seeds_read_the_test_set_once_each_after_training(tmp_path, monkeypatch, test_structures):
    """The protocol: per seed, training (calibration probe, then the run) ends before the test set is
    read, it is read once and evaluated once on the selected model; the JSON holds the median."""
    events, test_sets = [], []
    train_model, evaluate = bench_accuracy.train_model, bench_accuracy.evaluate

    def counting_train(model, train, val, config, **kwargs):
        assert config.data.test is None  # the trainer is never given the test file
        events.append(("train", config.data.seed))
        return train_model(model, train, val, config, **kwargs)

    def counting_read(molecule, cutoff):
        events.append(("read test", None))
        test_sets.append(CountingStructures(test_structures))
        return test_sets[-1]

    def recording_evaluate(model, structures, **kwargs):
        events.append(("evaluate test" if isinstance(structures, CountingStructures) else "evaluate other", None))
        return evaluate(model, structures, **kwargs)

    monkeypatch.setattr(bench_accuracy, "train_model", counting_train)
    monkeypatch.setattr(bench_accuracy, "read_test_set", counting_read)
    monkeypatch.setattr(bench_accuracy, "evaluate", recording_evaluate)
    out = tmp_path / "acc.json"
    assert bench_accuracy.main(["--seeds", "0", "1", "2", "--jobs", "1", "--no-curve", "--n-train", "16",
                                "--epochs", "2", "--budget-minutes", "0.5", "--report-minutes", "0",
                                "--model", json.dumps(TINY), "--output", str(out)]) == 0
    def per_seed(seed):  # calibration probe (trained, timed on validation), the run, then the test set
        return [("train", seed), ("evaluate other", None), ("train", seed), ("read test", None),
                ("evaluate test", None)]

    assert events == per_seed(0) + per_seed(1) + per_seed(2)
    # evaluate() touches each structure twice (predict, then the error sums): one evaluation, no more
    assert [t.reads for t in test_sets] == [2 * len(test_structures)] * 3

    result = json.loads(out.read_text())
    assert result["seeds"] == [0, 1, 2] and [r["seed"] for r in result["runs"]] == [0, 1, 2]
    (row,) = result["summary"]
    for key in ("energy_mae_meV", "forces_mae_meV_per_A", "val_forces_mae_meV_per_A"):
        values = sorted(r[key] for r in result["runs"])
        assert row[key] == {"median": values[1], "min": values[0], "max": values[2]}
    # the seeds drew different splits and initialisations, so the runs differ
    assert len({r["val_forces_mae_meV_per_A"] for r in result["runs"]}) == 3


@pytest.mark.slow
def test_bench_accuracy_smoke(tmp_path):
    """Two seeds and a learning-curve point in two processes side by side, on the real test set."""
    out = tmp_path / "acc.json"
    assert bench_accuracy.main(["--budget-minutes", "0.1", "--n-train", "50", "--curve", "20", "--seeds", "0", "1",
                                "--jobs", "2", "--model", json.dumps(TINY), "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [(r["n_train"], r["seed"]) for r in result["runs"]] == [(20, 0), (20, 1), (50, 0), (50, 1)]
    assert [r["energy_weight"] for r in result["runs"]] == [
        bench_accuracy.energy_weight(100.0, n) for n in (20, 20, 50, 50)]
    assert [row["n_seeds"] for row in result["summary"]] == [2, 2]
    assert all(r["n_test"] == 1000 and r["forces_mae_meV_per_A"] > 0 for r in result["runs"])
    assert (tmp_path / "acc_learning_curve.png").exists() and (tmp_path / "acc_history.png").exists()
    history = result["runs"][-1]["history"]
    assert len(history["val_forces_mae_meV_per_A"]) == len(history["lr"]) == result["runs"][-1]["epochs_run"]


def test_each_model_family_writes_its_own_json_and_has_its_own_targets():
    args = bench_accuracy.build_parser().parse_args([])
    assert bench_accuracy.default_output(args).name == "accuracy_rmd17_ethanol.json"  # the README's file
    args = bench_accuracy.build_parser().parse_args(["--molecule", "aspirin", "--model", '{"type": "equivariant"}'])
    assert bench_accuracy.model_family(args) == "equivariant"
    assert bench_accuracy.default_output(args).name == "accuracy_rmd17_aspirin_equivariant.json"

    def row(n, e, f):
        return {"n_train": n, "energy_mae_meV": {"median": e}, "forces_mae_meV_per_A": {"median": f}}

    summary = [row(50, 9.0, 29.9), row(100, 1.0, 1.0), row(950, 0.6, 2.9)]
    met = bench_accuracy.targets_met("equivariant", "ethanol", summary)
    assert set(met) == {"50", "950"}  # sizes without a target are not judged
    assert met["50"]["met"] and not met["950"]["met"]  # 0.6 meV misses the 0.5 meV energy target
    assert bench_accuracy.targets_met("descriptor", "ethanol", summary)["950"]["met"]


def test_validation_only_never_reads_the_test_set_and_saved_models_load(tmp_path, monkeypatch):
    """Choosing a recipe: training runs and reports validation errors; the test set is never read.
    --save-models keeps each selected model, loadable, and refuses to replace one."""
    from mlpot.models.serialization import load_model

    def no_test_set(molecule, cutoff):
        raise AssertionError("the test set was read in a validation-only run")

    monkeypatch.setattr(bench_accuracy, "read_test_set", no_test_set)
    argv = ["--seed", "3", "--no-curve", "--n-train", "16", "--epochs", "2", "--budget-minutes", "0.5",
            "--report-minutes", "0", "--model", json.dumps(TINY), "--validation-only",
            "--save-models", str(tmp_path / "models")]
    with pytest.raises(SystemExit, match="needs --output"):
        bench_accuracy.main(argv)
    out = tmp_path / "val.json"
    assert bench_accuracy.main([*argv, "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    (run,) = result["runs"]
    assert result["validation_only"] and run["n_test"] == 0 and "forces_mae_meV_per_A" not in run
    assert run["val_forces_mae_meV_per_A"] > 0 and result["targets"] == {}
    model = load_model(run["model_file"])
    assert Path(run["model_file"]).name == "ethanol_n16_seed3.pt" and model.cutoff == 5.0
    # as `mlpot train` records it, so that MD with the saved model stops on a close contact
    assert set(model.training_min_distances) == {"C-C", "C-H", "C-O", "H-H", "H-O"}
    assert 0.9 < model.training_min_distances["H-O"] < 1.1
    with pytest.raises(SystemExit, match="exists"):
        bench_accuracy.main([*argv, "--output", str(tmp_path / "again.json")])


def test_an_existing_report_is_never_replaced_without_overwrite(tmp_path, monkeypatch):
    """Hours of training must not end by silently replacing a reported JSON: refused before training."""

    def no_training(*args, **kwargs):
        raise AssertionError("trained although the report exists")

    monkeypatch.setattr(bench_accuracy, "train_model", no_training)
    out = tmp_path / "acc.json"
    out.write_text("{}")
    with pytest.raises(SystemExit, match="exists: pass --resume to add runs to it, --overwrite to replace it"):
        bench_accuracy.main(["--no-curve", "--n-train", "16", "--epochs", "1", "--output", str(out)])
    assert out.read_text() == "{}"


def test_an_interrupted_benchmark_keeps_its_finished_runs_and_resume_adds_only_the_missing(tmp_path, monkeypatch):
    """The report is written after every run; --resume runs only the (size, seed) pairs it lacks, under
    the same recipe, and refuses a report of another recipe."""
    trained = []

    def fake_run(args, n_train, seed, minutes, read_test=None):
        if len(trained) == 2 and interrupt:
            raise KeyboardInterrupt  # the third run is interrupted
        trained.append((n_train, seed))
        curve = [3.0, 2.0]
        return {"n_train": n_train, "seed": seed, "budget_minutes": minutes, "energy_mae_meV": 1.0 + seed,
                "forces_mae_meV_per_A": 10.0 + seed, "val_forces_mae_meV_per_A": 9.0,
                "history": {"lr": [1e-3, 1e-4], "train_forces_mae_meV_per_A": curve, "val_forces_mae_meV_per_A": curve}}

    monkeypatch.setattr(bench_accuracy, "run_point", fake_run)
    out = tmp_path / "acc.json"
    argv = ["--n-train", "40", "--curve", "20", "--seeds", "0", "1", "--jobs", "1", "--output", str(out)]
    interrupt = True
    with pytest.raises(KeyboardInterrupt):
        bench_accuracy.main(argv)
    partial = json.loads(out.read_text())
    assert not partial["complete"] and [(r["n_train"], r["seed"]) for r in partial["runs"]] == [(40, 0), (40, 1)]

    with pytest.raises(SystemExit, match="exists: pass --resume"):
        bench_accuracy.main(argv)
    interrupt, trained[:] = False, []
    assert bench_accuracy.main([*argv, "--resume", "--seeds", "0", "1", "2"]) == 0
    assert sorted(trained) == [(20, 0), (20, 1), (20, 2), (40, 2)]  # only what the report lacked
    result = json.loads(out.read_text())
    assert result["complete"] and result["seeds"] == [0, 1, 2] and len(result["commands"]) == 2
    assert [row["n_seeds"] for row in result["summary"]] == [3, 3]
    assert {r["budget_minutes"] for r in result["runs"] if r["n_train"] == 40} == {60.0}

    with pytest.raises(SystemExit, match=r"another recipe \(lr\)"):
        bench_accuracy.main([*argv, "--resume", "--lr", "1e-2"])

    # a report written before "commands" existed keeps its one "command" first in the list
    older = {key: value for key, value in result.items() if key != "commands"}
    older["command"], older["runs"] = "python scripts/bench_accuracy.py --first", result["runs"][:-1]
    out.write_text(json.dumps(older))
    assert bench_accuracy.main([*argv, "--resume", "--seeds", "0", "1", "2"]) == 0
    resumed = json.loads(out.read_text())
    assert resumed["command"] == "python scripts/bench_accuracy.py --first" and len(resumed["commands"]) == 2
