"""Heat capacity of fcc copper with ASE's EMT: a physical check of mlpot's MD + fluctuation analysis.

    python scripts/heat_capacity_emt_cu.py            # full: 32/108/256 atoms, 100 K and 300 K (hours on 2 cores)
    python scripts/heat_capacity_emt_cu.py --quick    # minutes: 8/27/64-atom primitive supercells

EMT (ASE's effective-medium theory) is a potential no one in mlpot wrote. Classical C_V of a solid tends to
Dulong–Petit, 3 k_B per atom, as T → 0; anharmonicity shifts it at higher T. The script runs Langevin MD at
each temperature for several supercells (all sizes in one batched call through the generic ASE path),
estimates C_V from the energy fluctuations, extrapolates C_V/N = c_∞ + b/N, checks c_∞ against 3 k_B (5%),
and reports the anharmonic deviation c_∞/3 − 1 at the highest temperature. The volume is fixed at EMT's
0 K lattice constant (C_V at V(0 K); thermal expansion is left out).

Both canonical estimators are computed on the same trajectories; the configurational one,
C_V = f/2 k_B + Var(U)/(k_B T²), carries about 0.55 of the statistical error here and is used for the check (the
total-energy one, Var(K + U)/(k_B T²), is in the JSON next to it).

Writes benchmarks/results/heat_capacity_emt_cu.json and .png (override with --out-json/--out-png).
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results"

FULL = {
    "cubic": True,
    "sizes": [2, 3, 4],
    "temperatures": [100.0, 300.0],
    "equilibration_steps": 2000,
    "production_steps": 40000,
    "replicas": 2,
}
QUICK = {
    "cubic": False,
    "sizes": [2, 3, 4],
    "temperatures": [100.0, 300.0],
    "equilibration_steps": 500,
    "production_steps": 4000,
    "replicas": 1,
}


def emt_lattice_constant() -> float:
    """EMT's equilibrium fcc lattice constant of Cu at 0 K, Å."""
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from scipy.optimize import minimize_scalar

    def energy(a):
        atoms = bulk("Cu", "fcc", a=a)
        atoms.calc = EMT()
        return atoms.get_potential_energy()

    return float(minimize_scalar(energy, bracket=(3.5, 3.6, 3.7), tol=1e-8).x)


def run(
    cubic: bool,
    sizes,
    temperatures,
    equilibration_steps: int,
    production_steps: int,
    replicas: int,
    timestep_fs: float = 5.0,
    friction_per_fs: float = 0.05,
    seed: int = 0,
    progress: bool = True,
    out_json: Path | None = None,
    out_png: Path | None = None,
) -> dict:
    """Run the study and return (and optionally write) its JSON-ready summary."""
    import torch
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from mlpot.analysis.plots import plot_heat_capacity
    from mlpot.analysis.workflow import run_heat_capacity

    torch.set_num_threads(1)  # EMT runs in numpy; torch only moves small tensors
    a0 = emt_lattice_constant()
    structure = bulk("Cu", "fcc", a=a0, cubic=cubic)
    start = time.time()
    study = run_heat_capacity(
        structure,
        EMT(),
        temperatures_K=temperatures,
        supercells=sizes,
        equilibration_steps=equilibration_steps,
        production_steps=production_steps,
        timestep_fs=timestep_fs,
        thermostat="langevin",
        friction_per_fs=friction_per_fs,
        replicas=replicas,
        seed=seed,
        estimator="configurational",
        progress=progress,
    )
    elapsed = time.time() - start
    summary = study.as_dict()
    summary["settings"].update(
        {"potential": "ase.calculators.emt.EMT", "lattice_constant_A": a0, "cubic_cell": cubic}
    )
    checks = {}
    for temperature, fit in study.fits.items():
        deviation = fit.value / 3.0 - 1.0
        checks[f"{temperature:g}K"] = {
            "c_inf_kB_per_atom": fit.value,
            "c_inf_error": fit.error,
            "deviation_from_3kB": deviation,
            "deviation_error": fit.error / 3.0,
            "within_5_percent": abs(deviation) < 0.05,
        }
    summary["dulong_petit_check"] = checks
    if study.fits:
        hottest = max(study.fits)
        fit = study.fits[hottest]
        summary["anharmonic_deviation"] = {
            "temperature_K": hottest,
            "value": fit.value / 3.0 - 1.0,
            "error": fit.error / 3.0,
            "note": "classical C_V/(3 k_B) - 1 after the finite-size extrapolation",
        }
    summary["run"] = {
        "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "",
        "wall_time_s": elapsed,
        "machine": platform.platform(),
        "python": platform.python_version(),
    }
    if out_json is not None:
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(summary, indent=2))
    if out_png is not None:
        plot_heat_capacity(summary, out_png, title=f"EMT Cu, a = {a0:.4f} Å (classical MD, Langevin)")
    summary["_table"] = study.table()
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small primitive supercells, short runs")
    parser.add_argument("--temperatures", type=float, nargs="+", help="K (default 100 300)")
    parser.add_argument("--sizes", type=int, nargs="+", help="supercell repeats (default 2 3 4)")
    parser.add_argument("--production-steps", type=int)
    parser.add_argument("--equilibration-steps", type=int)
    parser.add_argument("--replicas", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-json", type=Path, default=RESULTS / "heat_capacity_emt_cu.json")
    parser.add_argument("--out-png", type=Path, default=RESULTS / "heat_capacity_emt_cu.png")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    settings = dict(QUICK if args.quick else FULL)
    for key in ("temperatures", "sizes", "production_steps", "equilibration_steps", "replicas"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    summary = run(
        **settings,
        seed=args.seed,
        progress=not args.no_progress,
        out_json=args.out_json,
        out_png=args.out_png,
    )
    print(summary.pop("_table"))
    print()
    for name, check in summary["dulong_petit_check"].items():
        print(
            f"{name}: c_∞ = {check['c_inf_kB_per_atom']:.4f} ± {check['c_inf_error']:.4f} k_B/atom, "
            f"{100 * check['deviation_from_3kB']:+.2f} ± {100 * check['deviation_error']:.2f}% from 3 k_B "
            f"({'within' if check['within_5_percent'] else 'NOT within'} 5%)"
        )
    if "anharmonic_deviation" in summary:
        dev = summary["anharmonic_deviation"]
        print(
            f"anharmonic deviation at {dev['temperature_K']:g} K: {100 * dev['value']:+.2f} ± {100 * dev['error']:.2f}%"
        )
    print(f"wrote {args.out_json} and {args.out_png}")
    ok = all(check["within_5_percent"] for check in summary["dulong_petit_check"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
