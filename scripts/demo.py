"""mlpot's main job, end to end (``make demo``): DFT data → trained potential → MD → heat capacity.

On the bundled rMD17 ethanol data (PBE/def2-SVP, 1,000 training configurations):

1. neighbour lists of a crystal and a molecule, checked against ASE;
2. train the default descriptor model (950 train / 50 validation) within a stated time budget;
3. evaluate on the 1,000 test configurations and print the MAE table next to published models;
4. run NVE MD with the trained model through ``MLPotCalculator`` + ASE's VelocityVerlet and
   with mlpot's own engine, reporting steps/s for both;
5. check energy conservation in a longer NVE run and report the drift;
6. estimate the heat capacity at 300 K from batched Langevin replicas (the model's own C_V,
   nothing subtracted), with block-averaged error bars and the harmonic quantum correction from
   the vibrational density of states;
7. write ``demo_output/``: report.md, results.json and PNG plots (parity, learning curve,
   energy vs time, C_V with error bars).

    python scripts/demo.py                 # about 15 minutes on 2 CPU cores
    python scripts/demo.py --quick         # a 2-minute smoke run with tiny budgets
    python scripts/demo.py --train-minutes 30

An interrupted run can be restarted: training resumes from its last checkpoint.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from ase import units
from ase.build import bulk, molecule
from ase.md.verlet import VelocityVerlet
from ase.neighborlist import neighbor_list as ase_neighbor_list

import mlpot
from mlpot.analysis import average_replicas, heat_capacity_canonical, quantum_correction, vibrational_density_of_states
from mlpot.data import atomic_data_from_atoms, atoms_from_atomic_data
from mlpot.data.datasets import read_structures
from mlpot.dynamics import ProgressBar, ThermoRecorder, simulate
from mlpot.training.config import config_from_dict
from mlpot.training.trainer import evaluate, train

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "datasets" / "rmd17" / "rmd17_ethanol_train_01.npz"
TEST = ROOT / "datasets" / "rmd17" / "rmd17_ethanol_test_01.npz"
# Batatia et al. 2022 (MACE), Table 1, rMD17 ethanol, 950 training configurations: (E meV, F meV/Å).
PUBLISHED = {"GAP": (3.5, 18.1), "ANI": (2.5, 13.4), "ACE": (1.2, 7.3), "NequIP": (0.4, 2.8), "MACE": (0.4, 2.1)}


def banner(text: str) -> None:
    print(f"\n== {text} ==", flush=True)


def neighbour_summary() -> dict:
    banner("1. Neighbour lists (mlpot cell list vs ASE)")
    systems = {"Cu fcc 4x4x4 (periodic)": (bulk("Cu", "fcc", a=3.61, cubic=True).repeat(4), 5.0),
               "ethanol (molecule)": (molecule("CH3CH2OH"), 3.0)}
    rows = {}
    print(f"{'system':<26} {'atoms':>6} {'cutoff/Å':>9} {'pairs':>8} {'agree with ASE':>15}")
    for name, (atoms, cutoff) in systems.items():
        data = atomic_data_from_atoms(atoms, cutoff=cutoff)
        i, j, shift = ase_neighbor_list("ijS", atoms, cutoff)
        ours = np.column_stack([data["edge_index"].T.numpy(), data["edge_shift"].numpy()])
        theirs = np.column_stack([i, j, shift])
        agree = np.array_equal(ours[np.lexsort(ours.T[::-1])], theirs[np.lexsort(theirs.T[::-1])])
        if not agree:
            raise SystemExit(f"neighbour lists disagree with ASE for {name}")
        rows[name] = {"atoms": len(atoms), "cutoff": cutoff, "pairs": len(ours)}
        print(f"{name:<26} {len(atoms):>6} {cutoff:>9.1f} {len(ours):>8} {str(agree):>15}")
    return rows


def train_model(out: Path, minutes: float, n_train: int) -> tuple:
    banner(f"2. Training the descriptor model on rMD17 ethanol ({n_train} train / 50 val, budget {minutes:g} min)")
    config = config_from_dict({
        "data": {"train": str(TRAIN), "test": None, "energy_unit": "kcal/mol", "n_train": n_train, "n_val": 50,
                 "seed": 0},
        "model": {"cutoff": 5.0, "chirality": "even"},
        # A wall-clock budget ends training at an unknown epoch, so the learning rate follows the
        # validation loss (halved after 3 epochs without improvement) instead of a fixed cosine.
        "trainer": {"max_epochs": 10_000, "max_minutes": minutes, "seed": 0, "progress": True,
                    "schedule": "plateau", "plateau_factor": 0.5, "plateau_patience": 3},
        "output": str(out / "training"),
    })
    result = train(config, resume=(out / "training" / "last.pt").exists())
    print(f"trained in {result.wall_s / 60:.1f} min")
    return result


def evaluate_on_test(model, out: Path) -> dict:
    banner("3. Test set: 1,000 rMD17 ethanol configurations")
    from mlpot.training.cli import parity_plot

    test = read_structures(TEST, energy_unit="kcal/mol")
    metrics, predictions = evaluate(model, test, return_predictions=True)
    parity_plot(test, predictions, out / "parity.png", metrics)
    print(f"{'model':<10} {'E MAE meV':>10} {'F MAE meV/Å':>12}")
    print(f"{'mlpot':<10} {metrics['energy_mae_meV']:>10.2f} {metrics['forces_mae_meV_per_A']:>12.2f}   (this run)")
    for name, (e, f) in PUBLISHED.items():
        print(f"{name:<10} {e:>10.1f} {f:>12.1f}   (Batatia et al. 2022, 950 configurations)")
    return metrics


def md_speed(model, atoms, steps: int) -> dict:
    banner(f"4. NVE MD, {steps} steps of 0.5 fs: ASE VelocityVerlet + MLPotCalculator vs the mlpot engine")
    ase_atoms = atoms.copy()
    ase_atoms.calc = mlpot.MLPotCalculator(model)
    ase_atoms.set_momenta(np.zeros((len(atoms), 3)))
    dynamics = VelocityVerlet(ase_atoms, timestep=0.5 * units.fs)
    dynamics.run(5)  # warm-up
    start = time.perf_counter()
    dynamics.run(steps)
    ase_rate = steps / (time.perf_counter() - start)
    simulate(atoms, model, steps=5, timestep_fs=0.5, temperature_K=300, seed=0)  # warm-up
    start = time.perf_counter()
    simulate(atoms, model, steps=steps, timestep_fs=0.5, temperature_K=300, seed=0)
    engine_rate = steps / (time.perf_counter() - start)
    print(f"ASE driver: {ase_rate:8.1f} steps/s\n"
          f"mlpot engine: {engine_rate:6.1f} steps/s ({engine_rate / ase_rate:.1f}x)")
    return {"ase_steps_per_s": ase_rate, "engine_steps_per_s": engine_rate}


def nve_conservation(model, atoms, steps: int, out: Path) -> dict:
    banner(f"5. Energy conservation: {steps} NVE steps of 0.5 fs from 300 K")
    recorder = ThermoRecorder(interval=10)
    simulate(atoms, model, steps=steps, timestep_fs=0.5, temperature_K=300, seed=1,
             reporters=[recorder, ProgressBar(steps, interval=100, desc="NVE")])
    rows = recorder.arrays()
    time_ps, conserved = rows["time_fs"] / 1000, rows["conserved"][:, 0]
    slope = np.polyfit(time_ps, conserved, 1)[0]
    fluctuation = float(np.std(conserved - np.polyval(np.polyfit(time_ps, conserved, 1), time_ps)))
    thermal = 1.5 * len(atoms) * units.kB * 300
    print(f"drift {1e3 * slope:+.4f} meV/ps, fluctuation {1e3 * fluctuation:.4f} meV "
          f"(thermal energy 3N/2 k_B T = {1e3 * thermal:.0f} meV), mean T {rows['T_K'].mean():.0f} K")
    _plot_energy(time_ps, rows, out / "nve_energy.png")
    return {"drift_meV_per_ps": 1e3 * slope, "fluctuation_meV": 1e3 * fluctuation, "steps": steps, "timestep_fs": 0.5}


def heat_capacity(model, atoms, rmse_eV: float, n_test: int, replicas: int, equilibration: int, production: int,
                  out: Path) -> dict:
    banner(f"6. Heat capacity at 300 K: {replicas} Langevin replicas, {production} steps of 0.5 fs each")
    recorder = ThermoRecorder(interval=5, positions=True)  # momenta too, for the VDOS
    start = simulate([atoms] * replicas, model, steps=equilibration, timestep_fs=0.5, ensemble="langevin",
                     temperature_K=300, friction_per_fs=0.02, seed=2,
                     reporters=[ProgressBar(equilibration, interval=100, desc="equilibration")])
    simulate(start, model, steps=production, timestep_fs=0.5, ensemble="langevin", temperature_K=300,
             friction_per_fs=0.02, seed=3,
             reporters=[recorder, ProgressBar(production, interval=100, desc="production")])
    rows = recorder.arrays()
    total = rows["E_pot"] + rows["E_kin"]  # [frames, replicas]
    # The MD samples the model's Boltzmann distribution: the fluctuation is the model's C_V, nothing is
    # subtracted (the reference's C_V needs reference energies on frames: mlpot.analysis.heat_capacity_reweighted).
    per_replica = [heat_capacity_canonical(total[:, r], 300.0, n_atoms=len(atoms)) for r in range(replicas)]
    result = average_replicas(per_replica)
    # Harmonic quantum correction from the VDOS of the same run (momenta every 5 steps = 2.5 fs).
    masses = atoms.get_masses()
    momenta = rows["momenta"].reshape(len(rows["step"]), replicas, len(atoms), 3).transpose(1, 0, 2, 3)
    velocities = momenta / masses[None, None, :, None] * units.fs  # Å/fs
    frequencies, dos = vibrational_density_of_states(velocities, masses, 2.5)
    quantum = quantum_correction(result.value, frequencies, dos, 300.0)
    # A classical molecule with free translation and rotation: kinetic 3N/2 plus (3N − 6)/2 of
    # harmonic vibrations gives C_V = (3N − 3) k_B in the harmonic limit.
    harmonic = 3 * len(atoms) - 3
    print(f"C_V of the model (classical MD) {result.value:6.2f} ± {result.error:.2f} k_B")
    print(f"with the harmonic quantum correction {quantum:6.2f} k_B  (C–H and O–H stretches freeze out at 300 K)")
    print(f"harmonic classical limit (3N − 3) k_B = {harmonic} k_B; test RMSE {1e3 * rmse_eV:.2f} meV "
          f"({n_test} structures) — the reference's C_V would need its energies on frames (reweighting)")
    _plot_heat_capacity(result, quantum, harmonic, out / "heat_capacity.png")
    return {"model_kB": result.value, "model_error_kB": result.error, "quantum_corrected_kB": quantum,
            "harmonic_limit_kB": harmonic, "replicas": replicas, "production_steps": production}


def _plot_energy(time_ps, rows, path: Path) -> None:
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.5))
    e0 = rows["conserved"][0, 0]
    axis.plot(time_ps, 1e3 * (rows["E_pot"][:, 0] - rows["E_pot"][0, 0]), lw=0.6, label="U − U₀")
    axis.plot(time_ps, 1e3 * (rows["conserved"][:, 0] - e0), lw=1.2, label="K + U − E₀")
    axis.set_xlabel("time / ps"), axis.set_ylabel("energy / meV"), axis.legend(), axis.set_title("NVE, ethanol")
    figure.tight_layout(), figure.savefig(path, dpi=120), plt.close(figure)


def _plot_heat_capacity(result, quantum: float, harmonic: float, path: Path) -> None:
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(4.5, 3.5))
    axis.errorbar([0, 1], [result.value, quantum], yerr=[result.error, result.error], fmt="o", capsize=5)
    axis.axhline(harmonic, color="grey", ls="--", label="harmonic limit (3N−3) k_B")
    axis.set_xticks([0, 1], ["model (classical MD)", "+ quantum correction"]), axis.set_xlim(-0.5, 1.5)
    axis.set_ylabel("C_V / k_B"), axis.set_title("ethanol, 300 K"), axis.legend()
    figure.tight_layout(), figure.savefig(path, dpi=120), plt.close(figure)


def _plot_learning_curve(history: list[dict], path: Path) -> None:
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.5))
    epochs = [h["epoch"] for h in history]
    for key, label in (("train_loss", "training loss"), ("val_loss", "validation loss")):
        if all(key in h for h in history):
            axis.semilogy(epochs, [h[key] for h in history], label=label)
    force_key = next((k for k in history[-1] if k.startswith("val_") and "forces_mae" in k), None)
    if force_key:
        twin = axis.twinx()
        twin.semilogy(epochs, [h[force_key] for h in history], color="C3", label="validation force MAE")
        twin.set_ylabel("validation force MAE / (meV/Å)")
        twin.legend(loc="lower left")
    axis.set_xlabel("epoch"), axis.set_ylabel("loss"), axis.legend(loc="upper right")
    figure.tight_layout(), figure.savefig(path, dpi=120), plt.close(figure)


def write_report(out: Path, results: dict) -> None:
    m, md, nve, cv = results["test_metrics"], results["md_speed"], results["nve"], results["heat_capacity"]
    lines = [
        "# mlpot demo report", "",
        f"Training: rMD17 ethanol, {results['n_train']} training + 50 validation configurations, "
        f"budget {results['train_minutes']:g} min on this machine ({results['train_wall_min']:.1f} min used).", "",
        "## Test-set accuracy (1,000 configurations of test_01)", "",
        "| model | energy MAE (meV) | force MAE (meV/Å) |", "|---|---|---|",
        f"| **mlpot (this run)** | {m['energy_mae_meV']:.2f} | {m['forces_mae_meV_per_A']:.2f} |",
        *[f"| {k} (published) | {e} | {f} |" for k, (e, f) in PUBLISHED.items()], "",
        "Published numbers: Batatia et al. 2022, Table 1 (950 training configurations).", "",
        "![parity](parity.png)", "", "![learning curve](learning_curve.png)", "",
        "## MD speed (NVE, 0.5 fs)", "",
        "| driver | steps/s |", "|---|---|",
        f"| ASE VelocityVerlet + MLPotCalculator | {md['ase_steps_per_s']:.1f} |",
        f"| mlpot engine | {md['engine_steps_per_s']:.1f} |", "",
        "## Energy conservation", "",
        f"{nve['steps']} NVE steps: drift {nve['drift_meV_per_ps']:+.4f} meV/ps, "
        f"fluctuation {nve['fluctuation_meV']:.4f} meV.", "",
        "![NVE energy](nve_energy.png)", "",
        "## Heat capacity at 300 K", "",
        "| estimate | C_V (k_B) |", "|---|---|",
        f"| model, classical MD | {cv['model_kB']:.2f} ± {cv['model_error_kB']:.2f} |",
        f"| model, harmonic quantum correction (VDOS) | {cv['quantum_corrected_kB']:.2f} |",
        f"| harmonic classical limit | {cv['harmonic_limit_kB']} |", "",
        "Errors are 1σ from block averaging over replicas. ![C_V](heat_capacity.png)", "",
        f"Total wall time: {results['wall_min']:.1f} min.",
    ]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny budgets: a smoke run of every stage")
    parser.add_argument("--train-minutes", type=float, default=None, help="training budget (default 7; quick 0.5)")
    parser.add_argument("--out", default="demo_output")
    args = parser.parse_args()
    # Ethanol batches are tiny: one thread beats two, whose synchronisation costs more than the work.
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    minutes = args.train_minutes or (0.5 if args.quick else 7.0)
    n_train = 200 if args.quick else 950
    start = time.time()

    results = {"neighbours": neighbour_summary(), "train_minutes": minutes, "n_train": n_train}
    trained = train_model(out, minutes, n_train)
    model = trained.model
    results["train_wall_min"] = trained.wall_s / 60
    _plot_learning_curve(trained.fits[0].history, out / "learning_curve.png")
    results["test_metrics"] = metrics = evaluate_on_test(model, out)

    atoms = atoms_from_atomic_data(read_structures(TEST, energy_unit="kcal/mol", index="0")[0])[0]
    results["md_speed"] = md_speed(model, atoms, steps=100 if args.quick else 500)
    results["nve"] = nve_conservation(model, atoms, steps=1000 if args.quick else 20_000, out=out)
    rmse_eV = metrics["energy_rmse_meV"] / 1e3
    results["heat_capacity"] = heat_capacity(
        model, atoms, rmse_eV, n_test=1000, replicas=4 if args.quick else 8,
        equilibration=500 if args.quick else 2000, production=12_000 if args.quick else 20_000, out=out,
    )
    results["wall_min"] = (time.time() - start) / 60
    write_report(out, results)
    banner(f"Done in {results['wall_min']:.1f} min: {out / 'report.md'}")


if __name__ == "__main__":
    main()
