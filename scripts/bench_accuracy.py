"""rMD17 accuracy benchmark under the protocol of docs/benchmarks.md: train, select on validation,
test once at the end, report the median of seeds.

Trains ``DescriptorModel`` on ``rmd17_<molecule>_train_01`` (950 train / 50 validation, the
standard setting) within a wall-clock budget, keeps the epoch with the lowest validation loss (the
trainer's best EMA weights), and only then reads ``test_01`` (1,000 configurations) and evaluates
that one model on it, once. ``--seeds 0 1 2`` repeats the whole run for each seed (the seed draws
the train/validation split and the initialisation; the recipe is the same for all) and writes one
JSON with the per-seed rows and, per training-set size, the median, minimum and maximum over
seeds: the reported figure is the median of three seeds with its min–max. Nothing here ranks runs
or settings by their test error. A learning curve over 50, 100, 250 and 500 training
configurations is added unless ``--no-curve``; its points follow the same protocol.

Runs go side by side in ``--jobs`` processes of ``--threads`` torch threads each (default: as many
as the cores allow), else one after another. The model is ``DescriptorModel`` with the
hyper-parameters of ``scripts/configs/rmd17_ethanol.yaml`` (``RMD17_MODEL``); ``--model '{}'``
trains the package defaults instead. Training runs in float32 with batch 32, learning rate 0.005,
an EMA of decay 0.999, weight decay 0.01 and loss weights 100 (energy; the learning-curve points
get a weight in proportion to their size, at least 1) and 10 (forces). How that recipe was found,
and which of its choices predate the protocol, is in benchmarks/accuracy_experiments.md. The test
set is evaluated in float64, where a total energy keeps its sub-meV digits.

Any registered model family trains the same way: ``--model '{"type": "equivariant", ...}'`` (the
JSON holds the model's hyper-parameters, as the ``model:`` block of a training config) writes
``accuracy_rmd17_<molecule>_equivariant.json``, so the two families' reports sit side by side.
``--validation-only`` is for choosing a recipe: it trains and reports the validation errors and
never reads the test set. ``--save-models DIR`` keeps each run's selected model
(``DIR/<molecule>_n<N>_seed<S>.pt``), for the MD-stability benchmark (``bench_stability.py``).

The cosine schedule follows the clock (the trainer's ``cosine_time`` schedule), so it ends with
the budget even when the calibrated epoch time was misjudged. ``--epochs`` fixes the number of
epochs instead (the budget stays a hard stop).

    python scripts/bench_accuracy.py --budget-minutes 2 --no-curve --output runs/smoke.json   # a smoke run

The commands behind the reported figures are in docs/benchmarks.md and in each report's
``commands``; the reports exist, so a new run of them names its own ``--output``.

The report is written after every finished run (``"complete": false`` until the last), so an
interrupted benchmark keeps its finished runs; ``--resume`` adds the runs a report lacks (the
interrupted ones, more seeds, more learning-curve sizes) under the same recipe. An existing
report is never replaced unless ``--overwrite`` is given (checked before training).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import multiprocessing
import os
import platform
import shlex
import sys
import threading
import time
from pathlib import Path
from statistics import median

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlpot.data.datasets import read_structures  # noqa: E402
from mlpot.files import atomic_write_text  # noqa: E402
from mlpot.models.serialization import save_model, set_training_min_distances  # noqa: E402
from mlpot.training.config import config_from_dict  # noqa: E402
from mlpot.training.data_checks import training_min_distances  # noqa: E402
from mlpot.training.plots import plot_training_history  # noqa: E402
from mlpot.training.trainer import (  # noqa: E402
    _elements,
    build_model,
    evaluate,
    fit_energy_statistics,
    prepare_data,
    train_model,
)

#: Published test MAEs on rMD17, (energy meV, forces meV/Å): Batatia et al., MACE, NeurIPS 2022, Table 1.
PUBLISHED = {
    "ethanol": {
        950: {"GAP": (3.5, 18.1), "ANI": (2.5, 13.4), "ACE": (1.2, 7.3), "NequIP": (0.4, 2.8), "MACE": (0.4, 2.1)},
        50: {"ACE": (8.6, 43.0), "MACE": (6.7, 32.6)},
    },
    "aspirin": {950: {"ANI": (16.6, 40.6), "ACE": (6.1, 17.9), "MACE": (2.2, 6.6)}},
}
#: Targets, per model family, molecule and training-set size: (energy MAE meV or None, force MAE meV/Å).
#: The descriptor family's are its own issue's; the equivariant family's are issue 21's.
TARGETS = {
    "descriptor": {"ethanol": {950: (1.5, 10.0)}, "aspirin": {950: (None, 25.0)}},
    "equivariant": {"ethanol": {950: (0.5, 3.0), 50: (None, 30.0)}, "aspirin": {950: (None, 8.0)}},
}
#: Configurations in every rMD17 test_01 file: known without reading the file, so that the time
#: the final evaluation needs can be budgeted before the test set is touched.
N_TEST = 1000
#: The metrics aggregated over seeds (test set, then validation set of the selected epoch).
SUMMARY_KEYS = ("energy_mae_meV", "forces_mae_meV_per_A", "energy_rmse_meV", "forces_rmse_meV_per_A",
                "val_energy_mae_meV", "val_forces_mae_meV_per_A", "wall_s")

#: DescriptorModel hyper-parameters for rMD17 (as in scripts/configs/rmd17_ethanol.yaml): the
#: power spectrum to l = 5, a 16-channel bispectrum to l = 3 and radial channels per element
#: pair. See benchmarks/accuracy_experiments.md for the runs behind it.
RMD17_MODEL = {"l_max": 5, "bispectrum_channels": 16, "bispectrum_l_max": 3, "species_channels": True,
               "repulsion": "zbl"}


def ema_decay(decay_950: float, n_train: int, batch_size: int) -> float:
    """The EMA decay per step for ``n_train`` configurations, given the one for 950.

    The EMA should average over the same number of *epochs* whatever the set size: 0.999 is ~30
    epochs at 950 configurations (30 steps per epoch) but ~500 epochs at 50 (2 steps per epoch),
    which drags a short learning-curve run's weights back towards their early values. So the
    decay is raised to the power (steps per epoch at 950) / (steps per epoch at n_train).
    """
    steps = math.ceil(n_train / batch_size)
    return decay_950 ** (math.ceil(950 / batch_size) / steps)


def energy_weight(weight_950: float, n_train: int) -> float:
    """The energy-loss weight for ``n_train`` configurations, given the one for 950.

    A set of n configurations holds n energy labels but 27 n force components (ethanol): with few
    configurations a heavy energy weight lets the model fit its few energies exactly at the
    forces' expense. So the weight falls in proportion to the set size, but not below 1 (or
    ``weight_950``, if that is smaller). The rule was chosen on the validation force error
    (benchmarks/accuracy_experiments.md, stop 16).
    """
    return max(min(weight_950, 1.0), weight_950 * n_train / 950)


def model_family(args: argparse.Namespace) -> str:
    """The registry name of the model ``--model`` builds (``type`` in its JSON; the descriptor model
    when absent)."""
    return json.loads(args.model).get("type", "descriptor")


def default_output(args: argparse.Namespace) -> Path:
    """benchmarks/results/accuracy_rmd17_<molecule>.json for the descriptor model (the file the README
    has always read), ..._<family>.json for any other family, so that one never replaces the other."""
    family = model_family(args)
    suffix = "" if family == "descriptor" else f"_{family}"
    return ROOT / "benchmarks" / "results" / f"accuracy_rmd17_{args.molecule}{suffix}.json"


def targets_met(family: str, molecule: str, summary: list[dict]) -> dict[str, dict]:
    """Per training-set size with a target: the target and whether the median over seeds meets it."""
    met = {}
    for row in summary:
        target = TARGETS.get(family, {}).get(molecule, {}).get(row["n_train"])
        if target is None or "forces_mae_meV_per_A" not in row:
            continue
        e_target, f_target = target
        met[str(row["n_train"])] = {
            "energy_mae_meV": e_target, "forces_mae_meV_per_A": f_target,
            "met": (e_target is None or row["energy_mae_meV"]["median"] <= e_target)
            and row["forces_mae_meV_per_A"]["median"] <= f_target,
        }
    return met


def summarise(values: list[float]) -> dict[str, float]:
    """Median, minimum and maximum of one metric over seeds (the median of an even count is the
    mean of the middle two)."""
    if not values or any(math.isnan(v) for v in values):
        raise ValueError(f"summarise needs at least one value and no NaN, got {values}")
    return {"median": median(values), "min": min(values), "max": max(values)}


def summarise_runs(runs: list[dict]) -> list[dict]:
    """Per training-set size, the median/min/max over seeds of each metric in SUMMARY_KEYS.

    Args:
        runs: one dict per (n_train, seed) run, as :func:`run_point` returns them.

    Returns:
        One dict per n_train, ascending: ``{"n_train", "seeds", "n_seeds", <metric>: {"median",
        "min", "max"}}`` (a metric missing from any run is left out).
    """
    summary = []
    for n in sorted({r["n_train"] for r in runs}):
        group = [r for r in runs if r["n_train"] == n]
        row = {"n_train": n, "seeds": sorted(r["seed"] for r in group), "n_seeds": len(group)}
        for key in SUMMARY_KEYS:
            if all(key in r for r in group):
                row[key] = summarise([float(r[key]) for r in group])
        summary.append(row)
    return summary


def make_config(args: argparse.Namespace, n_train: int, seed: int, epochs: int, minutes: float | None) -> object:
    """The training config of one run. It names no test file: the test set is read by
    :func:`read_test_set`, after training, and never by the trainer."""
    return config_from_dict({
        "data": {
            "train": str(ROOT / f"datasets/rmd17/rmd17_{args.molecule}_train_01.npz"),
            "energy_unit": "kcal/mol", "n_train": n_train, "n_val": 50, "seed": seed,
        },
        "model": {"cutoff": args.cutoff, **json.loads(args.model)},
        "trainer": {
            "max_epochs": epochs, "max_minutes": minutes, "lr": args.lr, "weight_decay": args.weight_decay,
            "batch_size": args.batch_size, "warmup_epochs": min(args.warmup_epochs, max(epochs // 10, 0)),
            # the cosine follows the clock, and ends with the budget, unless the epochs are fixed
            "schedule": "cosine" if args.epochs or minutes is None else "cosine_time",
            "ema_decay": ema_decay(args.ema_decay, n_train, args.batch_size),
            "grad_clip": args.grad_clip, "loss": args.loss, "energy_weight": energy_weight(args.energy_weight, n_train),
            "forces_weight": args.forces_weight, "seed": seed, "progress": args.progress, "dtype": args.dtype,
        },
    })


def read_test_set(molecule: str, cutoff: float) -> list[dict]:
    """test_01 of ``molecule`` in float64 (a total energy near −4,200 eV holds only ~0.25 meV in
    float32, too coarse to report), with neighbour lists for ``cutoff``."""
    path = ROOT / f"datasets/rmd17/rmd17_{molecule}_test_01.npz"
    return read_structures(path, cutoff=cutoff, dtype=torch.float64, energy_unit="kcal/mol")


def run_point(args: argparse.Namespace, n_train: int, seed: int, minutes: float, read_test=None) -> dict:
    """Train on ``n_train`` configurations (split and initialisation drawn by ``seed``) within
    ``minutes``, then read the test set (``read_test()``, default :func:`read_test_set`) and
    evaluate the model that validation selected on it, once.

    Returns:
        Test and validation metrics of the selected epoch, and the run's bookkeeping.
    """
    t0 = time.monotonic()
    dtype = getattr(torch, args.dtype)
    config = make_config(args, n_train, seed, 6, None)  # six epochs: the calibration below
    train, val, _, _ = prepare_data(config, config.model.cutoff, dtype, verbose=False)
    statistics = fit_energy_statistics(train)

    # calibration: six epochs of a throwaway model on a slice of the data; the median time of the
    # last five, scaled to the full set (the first, and the set-up before it, hold one-off costs)
    torch.manual_seed(seed)
    probe = build_model(config, _elements(config, train), dtype)
    n_probe = min(len(train), 12 * args.batch_size)
    history = train_model(probe, train[:n_probe], None, config, statistics=statistics).history
    per_epoch = median([h["time_s"] for h in history[1:]]) * len(train) / n_probe
    t = time.monotonic()
    evaluate(probe, val, batch_size=64)
    per_epoch += time.monotonic() - t
    test_s = per_epoch * N_TEST / len(train) / 3  # evaluation costs about a third of a training step
    remaining = 60.0 * minutes - (time.monotonic() - t0) - test_s
    epochs = args.epochs or max(int(remaining / per_epoch), 1)
    label = f"{args.molecule}, {len(train)} configurations, seed {seed}"
    print(f"{label}: ~{epochs} epochs of ~{per_epoch:.2f} s in {remaining / 60:.1f} min", flush=True)

    # The clock, not the epoch count, ends the schedule: max_epochs is only a cap.
    config = make_config(args, n_train, seed, args.epochs or 2 * epochs, max(remaining, 1.0) / 60.0)
    torch.manual_seed(seed)
    model = build_model(config, _elements(config, train), dtype)
    t = time.monotonic()
    report = None if args.progress or not args.report_minutes else progress_reporter(
        label, 60.0 * args.report_minutes, remaining / 60.0)
    result = train_model(model, train, val, config, statistics=statistics, on_epoch=report)
    train_s = time.monotonic() - t
    model_path = None
    if args.save_models:
        # the selected model itself, for what comes after the table (MD stability, heat capacity),
        # with its training data's shortest pair distances as `mlpot train` records them: the MD
        # engine's close-contact check needs them
        set_training_min_distances(model, training_min_distances(train))
        model_path = save_model(model, Path(args.save_models) / f"{args.molecule}_n{len(train)}_seed{seed}.pt",
                                metadata={"split_seed": seed, "n_train": len(train), "n_val": len(val),
                                          "data": config.data.train, "recipe": " ".join(sys.argv[1:])})
    if args.validation_only:  # choosing a recipe: the test set stays unread
        test, metrics = [], {}
    else:
        # Training is over and the model is fixed (the best validation epoch): only now the test set.
        test = (read_test or (lambda: read_test_set(args.molecule, config.model.cutoff)))()
        metrics = evaluate(model.to(torch.float64), test, batch_size=100)
    best = result.history[result.best_epoch - 1]  # the epoch whose (EMA) weights the model holds
    return {
        "n_train": len(train), "n_val": len(val), "n_test": len(test), "seed": seed,
        "budget_minutes": round(minutes, 2),
        **({"model_file": str(model_path)} if model_path else {}),
        **{k: round(v, 4) for k, v in metrics.items()},
        "epochs_planned": epochs, "epochs_run": len(result.history), "seconds_per_epoch": round(per_epoch, 3),
        "train_wall_s": round(train_s, 1), "wall_s": round(time.monotonic() - t0, 1),
        "best_epoch": result.best_epoch, "energy_weight": config.trainer.energy_weight,
        "ema_decay": config.trainer.ema_decay,
        **{key: round(best[key], 3) for key in ("val_energy_mae_meV", "val_forces_mae_meV_per_A") if key in best},
        # the last epoch's running training error (not EMA): against the test error, a measure of overfitting
        **{key: round(result.history[-1][key], 3) for key in ("train_forces_mae_meV_per_A", "train_energy_mae_meV")
           if key in result.history[-1]},
        "n_parameters": sum(p.numel() for p in model.parameters()),
        # per epoch, to show how steadily training went (a spike here is what makes runs differ)
        "history": {key: [float(f"{h[key]:.4g}") for h in result.history if key in h]
                    for key in ("lr", "train_forces_mae_meV_per_A", "val_forces_mae_meV_per_A")},
    }


def progress_reporter(label: str, every_s: float, budget_minutes: float):
    """An ``on_epoch`` callback that prints one line every ``every_s`` seconds of training (and at the
    last epoch): a long run should show it is alive and how far it has got, not an epoch per line."""
    start, due, best = time.monotonic(), every_s, math.inf

    def report(row: dict[str, float]) -> None:
        nonlocal due, best
        val = row.get("val_forces_mae_meV_per_A", math.nan)
        best = min(best, val)
        elapsed = time.monotonic() - start
        if elapsed >= due or row["epoch"] == row["max_epochs"]:
            due = elapsed + every_s
            print(f"{label}: epoch {row['epoch']:.0f}, {elapsed / 60:.1f} of {budget_minutes:.1f} min, "
                  f"lr {row['lr']:.2e}, validation F MAE {val:.2f} meV/Å (best {best:.2f})", flush=True)

    return report


def _exit_with(parent_pid: int) -> None:
    """Poll every few seconds; end this process once its parent has gone (killed, not just interrupted)."""
    while os.getppid() == parent_pid:
        time.sleep(5.0)
    os._exit(1)


def _worker_init(parent_pid: int, threads: int) -> None:
    # A killed main process (SIGTERM, SIGKILL) cannot shut its pool down, and a worker would
    # train on alone for up to an hour: follow the parent out instead.
    threading.Thread(target=_exit_with, args=(parent_pid,), daemon=True).start()
    torch.set_num_threads(threads)


def budget_minutes(args: argparse.Namespace, n_train: int) -> float:
    """The wall-clock budget of one run: the main one's, or a curve point's (scaled with its size)."""
    if n_train == args.n_train:
        return args.budget_minutes
    return args.curve_budget_minutes or max(1.0, args.budget_minutes * n_train / 950)


def run_all(args: argparse.Namespace, plan: list[tuple[int, int]], jobs: int):
    """Every (training-set size, seed) run of ``plan``, longest first, in ``jobs`` processes (1: here,
    in order); yields each run's record as it finishes."""
    plan = sorted(plan, key=lambda p: (-budget_minutes(args, p[0]), p[1]))
    if jobs <= 1:
        for n, s in plan:
            yield run_point(args, n, s, budget_minutes(args, n))
        return
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=_worker_init, initargs=(os.getpid(), args.threads)) as pool:
        futures = [pool.submit(run_point, args, n, s, budget_minutes(args, n)) for n, s in plan]
        for future in concurrent.futures.as_completed(futures):
            yield future.result()


def print_comparison(molecule: str, summary: list[dict]) -> None:
    """Our medians (min–max) beside the published test MAEs, per training-set size."""
    print(f"\nrMD17 {molecule}, test_01 ({N_TEST} configurations): median (min–max) over seeds")
    print(f"{'model':<12}{'N':>5}{'seeds':>7}  {'E MAE (meV)':<22}{'F MAE (meV/Å)':<22}")
    for row in summary:
        if "forces_mae_meV_per_A" not in row:  # --validation-only: no test figures
            e, f = row["val_energy_mae_meV"], row["val_forces_mae_meV_per_A"]
            print(f"{'validation':<12}{row['n_train']:>5}{row['n_seeds']:>7}  "
                  f"{e['median']:.2f} ({e['min']:.2f}–{e['max']:.2f}){'':<4}"
                  f"{f['median']:.2f} ({f['min']:.2f}–{f['max']:.2f})")
            continue
        e, f = row["energy_mae_meV"], row["forces_mae_meV_per_A"]
        print(f"{'mlpot':<12}{row['n_train']:>5}{row['n_seeds']:>7}  "
              f"{e['median']:.2f} ({e['min']:.2f}–{e['max']:.2f}){'':<4}"
              f"{f['median']:.2f} ({f['min']:.2f}–{f['max']:.2f})")
        for name, (pe, pf) in PUBLISHED[molecule].get(row["n_train"], {}).items():
            print(f"{name + ' (pub.)':<12}{row['n_train']:>5}{'':>7}  {pe:<22}{pf:<22}")


def plot_curves(curves: dict[str, list[dict]], molecule: str, path: Path) -> None:
    """Test MAE (median, min–max bars) against training-set size, log-log, one line per model family
    (``curves``: label → :func:`summarise_runs` rows), with the published points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    for ax, key, label, index in ((axes[0], "energy_mae_meV", "energy MAE (meV)", 0),
                                  (axes[1], "forces_mae_meV_per_A", "force MAE (meV/Å)", 1)):
        for name, summary in curves.items():
            n = [row["n_train"] for row in summary]
            mid = [row[key]["median"] for row in summary]
            spread = [[m - row[key]["min"] for m, row in zip(mid, summary)],
                      [row[key]["max"] - m for m, row in zip(mid, summary)]]
            ax.errorbar(n, mid, yerr=spread, fmt="o-", capsize=3, label=f"mlpot {name} (median, min–max)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        for size, models in PUBLISHED[molecule].items():
            for name, values in models.items():
                ax.scatter([size], [values[index]], marker="x", s=20, color="grey")
                ax.annotate(name, (size, values[index]), fontsize=7, xytext=(3, 0), textcoords="offset points")
        ax.set_xlabel("training configurations")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"rMD17 {molecule}: test error vs training-set size")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def family_curves(folder: Path, molecule: str) -> dict[str, list[dict]]:
    """Every model family's reported summary for ``molecule`` among the JSON files in ``folder``
    (validation-only files aside): family → summary rows."""
    curves = {}
    for path in sorted(folder.glob(f"accuracy_rmd17_{molecule}*.json")):
        data = json.loads(path.read_text())
        if "summary" in data and not data.get("validation_only"):
            curves[data.get("model_family", "descriptor")] = data["summary"]
    return curves


def plot_history(runs: list[dict], molecule: str, path: Path) -> None:
    """Training and validation force MAE per epoch of each seed's main run (log scale)."""
    histories = {}
    for run in runs:  # the report keeps one list per metric; the plot takes one dict per epoch
        columns = run["history"]
        histories[f"seed {run['seed']}"] = [dict(zip(columns, values)) for values in zip(*columns.values())]
    plot_training_history(histories, path,
                          title=f"rMD17 {molecule}, {runs[0]['n_train']} configurations: training history")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--molecule", default="ethanol", choices=sorted(PUBLISHED))
    p.add_argument("--budget-minutes", type=float, default=60.0, help="wall-clock budget of each main (n_train) run")
    p.add_argument("--n-train", type=int, default=950)
    p.add_argument("--curve", default="50,100,250,500", help="learning-curve sizes besides n_train")
    p.add_argument("--curve-budget-minutes", type=float, default=None,
                   help="budget of each learning-curve point (default: budget × n/950, at least 1 minute)")
    p.add_argument("--no-curve", action="store_true")
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="one run per seed (split and initialisation), same recipe; the report is their median "
                        "with min–max (the protocol: --seeds 0 1 2; default: --seed alone)")
    p.add_argument("--seed", type=int, default=0, help="the one seed when --seeds is not given")
    p.add_argument("--jobs", type=int, default=None,
                   help="runs side by side, one process each (default: cores // threads, at most the number of runs)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads per process (default 1: ethanol's tensors are tiny, and on a shared 2-core "
                        "machine 2 threads measured ~10x slower per step than 1)")
    p.add_argument("--epochs", type=int, default=None,
                   help="fixed number of epochs instead of the calibrated one (the budget stays a hard stop)")
    p.add_argument("--cutoff", type=float, default=5.0)
    p.add_argument("--model", default=json.dumps(RMD17_MODEL),
                   help="model hyper-parameters as JSON; \"type\" names another registered family, e.g. "
                        "'{\"type\": \"equivariant\"}' (default: the DescriptorModel of %(default)s)")
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--warmup-epochs", type=int, default=2)
    p.add_argument("--ema-decay", type=float, default=0.999,
                   help="EMA decay per step at 950 training configurations; smaller sets get the decay with "
                        "the same horizon in epochs")
    p.add_argument("--grad-clip", type=float, default=10.0, help="global gradient-norm clipping")
    p.add_argument("--loss", default="huber")
    p.add_argument("--energy-weight", type=float, default=100.0,
                   help="energy-loss weight at 950 training configurations; smaller sets get a weight in proportion "
                        "to their size, at least 1")
    p.add_argument("--forces-weight", type=float, default=10.0)
    p.add_argument("--dtype", default="float32", help="training dtype (the test set is always evaluated in float64)")
    p.add_argument("--progress", action="store_true", help="print every epoch")
    p.add_argument("--report-minutes", type=float, default=5.0,
                   help="without --progress, print a progress line this often (0: never)")
    p.add_argument("--output", default=None,
                   help="JSON path (default benchmarks/results/accuracy_rmd17_<molecule>.json, with _<family> "
                        "for a model family other than the descriptor model)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing JSON report (without it, an existing report is never replaced)")
    p.add_argument("--resume", action="store_true",
                   help="add to an existing report the (size, seed) runs it lacks, with the same recipe (after an "
                        "interruption, or for more seeds or learning-curve sizes); finished runs are kept")
    p.add_argument("--save-models", default=None, metavar="DIR",
                   help="save each run's selected model as DIR/<molecule>_n<N>_seed<S>.pt (refuses to replace one)")
    p.add_argument("--replot", action="store_true",
                   help="train nothing: redraw the figures from the JSON of --molecule and --model (or --output)")
    p.add_argument("--validation-only", action="store_true",
                   help="for choosing a recipe: train and report the validation errors, never read the test set "
                        "(needs --output, so that the reported JSON is never replaced)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.replot:
        out = Path(args.output) if args.output else default_output(args)
        plot_all(json.loads(out.read_text()), args.molecule, out)
        print(f"figures redrawn beside {out}")
        return 0
    seeds = sorted(set(args.seeds if args.seeds is not None else [args.seed]))
    sizes = sorted({args.n_train} | (set() if args.no_curve else {int(s) for s in args.curve.split(",") if s}))
    if (args.jobs is not None and args.jobs < 1) or args.threads < 1:
        raise ValueError(f"--jobs and --threads must be at least 1, got {args.jobs} and {args.threads}")
    if args.validation_only and not args.output:
        raise SystemExit("--validation-only needs --output: its figures must not replace the reported JSON")
    if args.overwrite and args.resume:
        raise SystemExit("--overwrite starts afresh, --resume adds to a report: give one of them")
    out = Path(args.output) if args.output else default_output(args)
    kept = resumable_runs(out, args) if args.resume else []
    if out.exists() and not (args.overwrite or args.resume):  # checked before hours of training, not after
        raise SystemExit(f"{out} exists: pass --resume to add runs to it, --overwrite to replace it, "
                         "or another --output")
    done = {(r["n_train"], r["seed"]) for r in kept}
    plan = [(n, s) for n in sizes for s in seeds if (n, s) not in done]
    if args.save_models:
        existing = [p for p in (Path(args.save_models) / f"{args.molecule}_n{n}_seed{s}.pt" for n, s in plan)
                    if p.exists()]
        if existing:
            raise SystemExit(f"--save-models: {existing[0]} exists; choose another folder or remove it")
    if kept:
        print(f"resuming {out}: {len(kept)} run(s) kept, {len(plan)} to do", flush=True)
    cores = os.cpu_count() or 1
    jobs = args.jobs or max(1, min(len(plan), cores // args.threads))
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    if jobs * args.threads > cores or (args.threads > 1 and load > cores):
        # Small molecules give tiny tensors: with the cores busy, intra-op threads spin-wait.
        print(f"warning: {jobs} job(s) × {args.threads} thread(s) on {cores} cores (load {load:.1f}): "
              "runs will slow each other down; wall-time budgets then buy fewer epochs")

    command = shlex.join(["python", "scripts/bench_accuracy.py", *(sys.argv[1:] if argv is None else argv)])
    previous = json.loads(out.read_text()) if kept else {}
    # a report from before "commands" was recorded names its one command under "command"
    commands = previous.get("commands", [previous["command"]] if previous else []) + [command]
    runs = list(kept)
    out.parent.mkdir(parents=True, exist_ok=True)

    def write(complete: bool) -> dict:
        # after every finished run: an interrupted benchmark keeps its finished runs (--resume goes on)
        result = report(args, sorted(runs, key=lambda r: (r["n_train"], r["seed"])), commands, jobs, complete)
        atomic_write_text(out, json.dumps(result, indent=1))
        return result

    for run in run_all(args, plan, jobs):
        runs.append(run)
        write(complete=False)
    result = write(complete=True)
    print_comparison(args.molecule, result["summary"])
    plot_all(result, args.molecule, out)
    print(f"\nwritten {out}")
    return 0


#: The settings that make two runs of the same recipe (what ``--resume`` requires to be unchanged).
#: The seeds, the learning-curve sizes and their budget, the number of jobs and where models are
#: saved may differ between the invocations that fill one report; each run records its own budget.
RECIPE_SETTINGS = ("molecule", "budget_minutes", "n_train", "threads", "epochs", "cutoff", "model", "lr",
                   "weight_decay", "batch_size", "warmup_epochs", "ema_decay", "grad_clip", "loss", "energy_weight",
                   "forces_weight", "dtype", "validation_only")


def resumable_runs(out: Path, args: argparse.Namespace) -> list[dict]:
    """The runs of the report ``out`` that ``--resume`` keeps (none when it does not exist yet).

    Raises:
        SystemExit: the report was written with another recipe (:data:`RECIPE_SETTINGS`).
    """
    if not out.exists():
        return []
    previous = json.loads(out.read_text())
    # a setting that an older report lacks had the default of today's option (options only get added)
    settings = {**vars(build_parser().parse_args([])), **previous.get("settings", {})}
    differ = [key for key in RECIPE_SETTINGS if settings[key] != getattr(args, key)]
    if differ:
        raise SystemExit(f"{out} was written with another recipe ({', '.join(differ)}): runs of different "
                         "recipes are not one report; use another --output or --overwrite")
    recorded = argparse.Namespace(**settings)
    # runs from before each run recorded its budget: the one their report's settings gave them
    return [{"budget_minutes": round(budget_minutes(recorded, r["n_train"]), 2), **r} for r in previous["runs"]]


def report(args: argparse.Namespace, runs: list[dict], commands: list[str], jobs: int, complete: bool) -> dict:
    """The JSON report of ``runs`` (sorted by size, then seed): per-size medians, targets, provenance."""
    summary = summarise_runs(runs)
    family = model_family(args)
    targets = targets_met(family, args.molecule, summary)
    return {
        "benchmark": f"rMD17 {args.molecule} (train_01 → test_01)",
        "model_family": family,
        "validation_only": args.validation_only,
        "complete": complete,
        "protocol": "docs/benchmarks.md: recipe fixed before the runs; per seed, the model is the best validation "
                    "epoch and the test set is read once, after training; reported: median (min–max) over seeds",
        "command": commands[0],
        "commands": commands,  # more than one when --resume added runs
        "budget_minutes": args.budget_minutes,
        "threads": args.threads,
        "jobs": jobs,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "seeds": sorted({r["seed"] for r in runs}),
        "settings": {k: v for k, v in vars(args).items()
                     if k not in ("output", "progress", "report_minutes", "overwrite", "resume")},
        "summary": summary,
        "runs": runs,
        "targets": targets,
        "meets_targets": all(t["met"] for t in targets.values()) if targets else None,
        "published": {str(n): {k: {"energy_mae_meV": e, "forces_mae_meV_per_A": f} for k, (e, f) in v.items()}
                      for n, v in PUBLISHED[args.molecule].items()},
        "published_source": "Batatia et al., MACE, NeurIPS 2022, Table 1",
    }


def plot_all(result: dict, molecule: str, out: Path) -> None:
    """The figures beside ``out`` (the JSON ``result`` was written to): the learning curve, the
    training histories of the main runs and, when the folder holds another family's report for
    ``molecule``, both families' learning curves in one plot."""
    summary, family = result["summary"], result.get("model_family", "descriptor")
    if len(summary) > 1 and not result.get("validation_only"):  # one point (--no-curve) is no curve
        plot_curves({family: summary}, molecule, out.with_name(out.stem + "_learning_curve.png"))
        curves = family_curves(out.parent, molecule)
        if len(curves) > 1:  # both families in one plot, as the README shows them
            plot_curves(curves, molecule, out.parent / f"accuracy_rmd17_{molecule}_families.png")
    n_train = result["settings"]["n_train"]
    plot_history([r for r in result["runs"] if r["n_train"] == n_train], molecule,
                 out.with_name(out.stem + "_history.png"))


if __name__ == "__main__":
    sys.exit(main())
