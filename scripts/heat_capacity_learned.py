"""Heat capacity of a learned potential, reweighted to its reference: mlpot trained on EMT copper vs EMT itself.

    python scripts/heat_capacity_learned.py            # full: data at 300/600/900 K in 32- and 108-atom cells
    python scripts/heat_capacity_learned.py --quick    # minutes: 32-atom cells only, shorter runs

1. Data: Langevin MD of fcc Cu with ASE's EMT (through mlpot's engine) at 300, 600 and 900 K, frames labelled
   with EMT energies, forces and stress.
2. Two models: one trained for ``--train-minutes`` and one deliberately under-trained: ``--undertrained-epochs``
   epochs (3 by default). A budget in minutes would not do: mlpot fits EMT copper well within one minute, and
   a near-harmonic crystal's classical C_V is ≈ 3N k_B whatever its stiffness, so only a model whose
   anharmonicity is wrong (one that has barely started training) gives a C_V visibly off.
3. For each model and temperature (300 K, 900 K): Langevin MD of a 32-atom cell with the model gives C_V[model]
   (its own fluctuations); EMT evaluated on ``--reference-frames`` decorrelated frames gives C_V[model→EMT] by
   reweighting, with its effective sample size (refused below 50). EMT's own C_V comes from the same workflow
   with EMT driving the MD. The table compares them in units of the combined 1σ error. The model's own C_V on
   the same reweighted frames (δ ≡ 0) is kept beside it: it separates what the reweighting changes from the
   scatter of a few hundred frames.

Writes benchmarks/results/heat_capacity_learned.json and .png with the exact command that produced them.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results"

FULL = {"data_sizes": [2, 3], "data_frames": 60, "equilibration_steps": 1000, "production_steps": 8000,
        "replicas": 2, "train_minutes": 15.0}
QUICK = {"data_sizes": [2], "data_frames": 40, "equilibration_steps": 400, "production_steps": 3000,
         "replicas": 1, "train_minutes": 4.0}


def generate_data(path: Path, sizes, frames_per_run: int, seed: int) -> int:
    """EMT-labelled frames of Langevin MD at 300, 600 and 900 K for each cell size; returns the frame count."""
    import ase.io
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator

    from mlpot.dynamics import Simulation
    from mlpot.progress import progress

    frames = []
    runs = [(n, t) for n in sizes for t in (300.0, 600.0, 900.0)]
    with progress(total=len(runs), desc="EMT data", unit="run") as bar:
        for k, (n, temperature) in enumerate(runs):
            atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(n)
            sim = Simulation(atoms, EMT(), 5.0, ensemble="langevin", temperature_K=temperature,
                             friction_per_fs=0.05, seed=seed + k)
            sim.run(200)
            calc = EMT()
            for _ in range(frames_per_run):
                sim.run(10)
                frame = sim.atoms()[0]
                frame.calc = None
                frame.calc = calc
                energy, forces, stress = frame.get_potential_energy(), frame.get_forces(), frame.get_stress()
                frame.calc = SinglePointCalculator(frame, energy=energy, forces=forces, stress=stress)
                frames.append(frame)
            bar.update(1)
    ase.io.write(path, frames, format="extxyz")
    return len(frames)


def train(data: Path, out: Path, minutes: float, seed: int, epochs: int = 100_000):
    from mlpot.training.config import config_from_dict
    from mlpot.training.trainer import train as run_training

    config = config_from_dict({
        "data": {"train": str(data), "energy_unit": "eV", "n_val": 20, "seed": seed},
        "model": {"cutoff": 4.5, "chirality": "even"},
        "trainer": {"max_epochs": epochs, "max_minutes": minutes, "seed": seed, "progress": False,
                    "schedule": "plateau", "plateau_factor": 0.5, "plateau_patience": 3},
        "output": str(out),
    })
    result = run_training(config, overwrite=True)
    import mlpot

    return mlpot.load_model(out / "model.pt"), result


def heat_capacities(potential, temperature: float, settings: dict, seed: int, reference) -> dict:
    from ase.build import bulk

    from mlpot.analysis.workflow import run_heat_capacity

    study = run_heat_capacity(
        bulk("Cu", "fcc", a=3.61, cubic=True), potential, [temperature], supercells=[2],
        equilibration_steps=settings["equilibration_steps"], production_steps=settings["production_steps"],
        timestep_fs=5.0, friction_per_fs=0.05, replicas=settings["replicas"], seed=seed, reference=reference,
        reference_frames=settings["reference_frames"], estimator="configurational", progress=True,
    )
    return study.results[temperature][0].as_dict()


def z_score(a: dict, b: dict) -> float:
    return (a["value"] - b["value"]) / float(np.hypot(a["error"], b["error"]))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--train-minutes", type=float, default=None)
    parser.add_argument("--undertrained-epochs", type=int, default=3,
                        help="epochs of the deliberately under-trained model (default %(default)s)")
    parser.add_argument("--reference-frames", type=int, default=200)
    parser.add_argument("--temperatures", type=float, nargs="+", default=[300.0, 900.0])
    parser.add_argument("--production-steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("runs/heat_capacity_learned"))
    parser.add_argument("--out-json", type=Path, default=RESULTS / "heat_capacity_learned.json")
    parser.add_argument("--out-png", type=Path, default=RESULTS / "heat_capacity_learned.png")
    args = parser.parse_args(argv)

    import torch
    from ase.calculators.emt import EMT

    torch.set_num_threads(args.threads)
    settings = dict(QUICK if args.quick else FULL)
    if args.train_minutes is not None:
        settings["train_minutes"] = args.train_minutes
    if args.production_steps is not None:
        settings["production_steps"] = args.production_steps
    settings["reference_frames"] = args.reference_frames
    args.work.mkdir(parents=True, exist_ok=True)
    start = time.time()
    data = args.work / "emt_cu.extxyz"
    n_frames = generate_data(data, settings["data_sizes"], settings["data_frames"], args.seed)
    print(f"{n_frames} EMT frames in {data}")
    models = {}
    budgets = (("trained", settings["train_minutes"], 100_000), ("under-trained", settings["train_minutes"],
                                                                 args.undertrained_epochs))
    for name, minutes, epochs in budgets:
        model, result = train(data, args.work / name.replace("-", "_"), minutes, args.seed, epochs)
        epochs_run = len(result.fits[0].history)
        models[name] = {"model": model, "training": f"{minutes:g} min" if name == "trained" else f"{epochs} epochs",
                        "epochs_run": epochs_run}
        print(f"{name}: trained for {models[name]['training']} ({epochs_run} epochs)")

    rows = []
    for temperature in args.temperatures:
        emt = heat_capacities(EMT(), temperature, settings, args.seed + 100, None)
        emt_cv = emt["kB_per_cell"]
        for name, entry in models.items():
            run = heat_capacities(entry["model"], temperature, settings, args.seed + 200, EMT())
            row = {"temperature_K": temperature, "model": name, "training": entry["training"],
                   "epochs_run": entry["epochs_run"],
                   "emt_kB_per_cell": emt_cv, "model_kB_per_cell": run["kB_per_cell"],
                   "z_model_vs_emt": z_score(run["kB_per_cell"], emt_cv)}
            if "reference" in run:
                reweighted = run["reference"]["kB_per_cell_reference"]
                row.update(reweighted_kB_per_cell=reweighted, z_reweighted_vs_emt=z_score(reweighted, emt_cv),
                           model_on_frames_kB_per_cell=run["reference"]["kB_per_cell_model"],
                           effective_sample_size=run["reference"]["effective_sample_size"],
                           n_frames=run["reference"]["n_frames"],
                           model_error_variance_eV2=run["reference"]["model_error_variance_eV2"],
                           model_error_energy_correlation=run["reference"]["model_error_energy_correlation"])
            else:
                row["reweighting_refused"] = run.get("reweighting_error")
            rows.append(row)
            print(json.dumps(row))

    print(f"\n{'T (K)':>6} {'model':>14} {'C_V EMT':>14} {'C_V[model]':>14} {'z':>6} "
          f"{'C_V[model→EMT]':>16} {'z':>6} {'ESS':>6}")
    for r in rows:
        fmt = lambda e: f"{e['value']:.1f} ± {e['error']:.1f}"  # noqa: E731
        line = (f"{r['temperature_K']:6.0f} {r['model']:>14} {fmt(r['emt_kB_per_cell']):>14} "
                f"{fmt(r['model_kB_per_cell']):>14} {r['z_model_vs_emt']:6.1f}")
        if "reweighted_kB_per_cell" in r:
            line += (f" {fmt(r['reweighted_kB_per_cell']):>16} {r['z_reweighted_vs_emt']:6.1f} "
                     f"{r['effective_sample_size']:6.0f}")
        else:
            line += "   refused: ESS below 50"
        print(line)
    summary = {
        "command": shlex.join(["python", "scripts/heat_capacity_learned.py",
                               *(argv if argv is not None else sys.argv[1:])]),
        "settings": {**settings, "temperatures_K": args.temperatures, "undertrained_epochs": args.undertrained_epochs,
                     "cell": "32-atom fcc Cu (2x2x2 conventional), a = 3.61 Å", "timestep_fs": 5.0,
                     "thermostat": "Langevin, 0.05/fs"},
        "units": "C_V in k_B per 32-atom cell; z = difference over the combined 1σ error",
        "rows": rows,
        "wall_min": (time.time() - start) / 60,
        "machine": f"{platform.processor() or platform.machine()}, torch threads {args.threads}",
        "note": "CPU shared with other jobs while this ran; wall time is not a benchmark",
    }
    args.out_json.parent.mkdir(parents=True, exist_ok=True)
    args.out_json.write_text(json.dumps(summary, indent=2) + "\n")
    _plot(rows, args.out_png)
    print(f"wrote {args.out_json} and {args.out_png}")
    return summary


def _plot(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.8))
    labels = []
    for k, r in enumerate(rows):
        x = k
        labels.append(f"{r['model']}\n{r['temperature_K']:.0f} K")
        ax.errorbar(x - 0.2, r["emt_kB_per_cell"]["value"], r["emt_kB_per_cell"]["error"], fmt="ks", capsize=3,
                    label="EMT (direct)" if k == 0 else None)
        ax.errorbar(x, r["model_kB_per_cell"]["value"], r["model_kB_per_cell"]["error"], fmt="o", color="tab:red",
                    capsize=3, label="model (own fluctuations)" if k == 0 else None)
        if "reweighted_kB_per_cell" in r:
            ax.errorbar(x + 0.2, r["reweighted_kB_per_cell"]["value"], r["reweighted_kB_per_cell"]["error"], fmt="D",
                        color="tab:blue", capsize=3, label="model → EMT (reweighted)" if k == 0 else None)
    ax.set_xticks(range(len(rows)), labels, fontsize=8)
    ax.set_ylabel("C_V (k_B per 32 atoms)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
