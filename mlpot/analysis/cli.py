"""`mlpot heat-capacity`: C_V from energy fluctuations over temperatures and supercell sizes.

    mlpot heat-capacity MODEL STRUCTURE --temperatures 100 300 --sizes 2 3 4 \\
        --equilibration-steps 2000 --production-steps 20000 --out runs/cv
    mlpot heat-capacity --reference emt Cu --temperatures 300 --sizes 2 3 --out runs/cv_emt

MODEL is a saved mlpot model (``mlpot.save_model``; a committee enables the committee noise correction);
with ``--reference emt`` (ASE's EMT) no model is given, for validation. STRUCTURE is a file that
``ase.io.read`` understands (last frame), or a chemical symbol such as ``Cu`` for ASE's reference crystal
(``ase.build.bulk(symbol, cubic=True)``). Each size n is the n×n×n supercell of STRUCTURE.

The MD runs all sizes (× replicas) of one temperature in one batched call, with Langevin (BAOAB) or Bussi
thermostats. Printed: a table of C_V per size and extrapolated (C_V/N = c_∞ + b/N), in k_B per atom,
J/(mol·K) and J/(g·K), with the kinetic degrees of freedom used; raw values are shown next to the
noise-corrected ones when a correction applies. Written: DIR/heat_capacity.json and DIR/heat_capacity.png.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["register_cli", "run_cli"]

_REFERENCES = {"emt": ("ase.calculators.emt", "EMT")}


def register_cli(subparsers) -> None:
    """Add the ``heat-capacity`` sub-command."""
    parser = subparsers.add_parser(
        "heat-capacity",
        help="heat capacity from energy fluctuations, with noise and finite-size corrections",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="MODEL STRUCTURE, or STRUCTURE alone with --reference")
    parser.add_argument("--reference", choices=sorted(_REFERENCES), help="use an ASE reference potential, no MODEL")
    parser.add_argument("--temperatures", type=float, nargs="+", required=True, metavar="K", help="temperatures, K")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 3, 4], metavar="N", help="supercells N×N×N (2 3 4)")
    parser.add_argument("--equilibration-steps", type=int, default=2000, help="steps before sampling (2000)")
    parser.add_argument("--production-steps", type=int, default=20000, help="sampled steps (20000)")
    parser.add_argument("--timestep-fs", type=float, default=2.0, help="time step in fs (2.0)")
    parser.add_argument("--thermostat", choices=("langevin", "bussi"), default="langevin")
    parser.add_argument("--friction-per-fs", type=float, default=0.05, help="Langevin γ or Bussi 1/τ, 1/fs (0.05)")
    parser.add_argument("--replicas", type=int, default=1, help="independent runs per size, batched (1)")
    parser.add_argument("--sample-interval", type=int, default=1, help="steps between energy samples (1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument(
        "--noise-rmse-meV", type=float, default=None, help="validation RMSE of the energy per atom, meV/atom"
    )
    parser.add_argument(
        "--noise-validation-atoms", type=int, default=None, help="atoms per validation structure (default: STRUCTURE's)"
    )
    parser.add_argument("--noise-validation-structures", type=int, default=None, help="number of validation structures")
    parser.add_argument("--no-committee-noise", action="store_true", help="ignore a committee's spread")
    parser.add_argument(
        "--estimator",
        choices=("total", "configurational"),
        default="total",
        help="Var(E) of K + U (total, the default) or f/2 + Var(U)/(k_B T)² (configurational: smaller error)",
    )
    parser.add_argument("--device", default=None, help="torch device for an mlpot model")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_cli)


def load_structure(spec: str):
    """An ``ase.Atoms`` from a file path, or ASE's reference crystal for a chemical symbol."""
    path = Path(spec)
    if path.exists():
        import ase.io

        return ase.io.read(path, index=-1)
    from ase.build import bulk
    from ase.data import atomic_numbers

    if spec in atomic_numbers:
        return bulk(spec, cubic=True)
    raise SystemExit(f"mlpot heat-capacity: STRUCTURE {spec!r} is neither a file nor a chemical symbol")


def _load_potential(args):
    if args.reference:
        import importlib

        if len(args.inputs) != 1:
            raise SystemExit("mlpot heat-capacity: with --reference give only STRUCTURE, not a MODEL")
        module, name = _REFERENCES[args.reference]
        return getattr(importlib.import_module(module), name)(), args.inputs[0]
    if len(args.inputs) != 2:
        raise SystemExit("mlpot heat-capacity: give MODEL and STRUCTURE (or --reference emt and STRUCTURE)")
    model_path, structure = args.inputs
    if not Path(model_path).exists():
        raise SystemExit(f"mlpot heat-capacity: model file {model_path!r} not found")
    from mlpot import load_model

    model = load_model(model_path)
    if args.device is not None:
        model = model.to(args.device)
    return model, structure


def run_cli(args: argparse.Namespace) -> int:
    """Run ``mlpot heat-capacity``; returns the exit code."""
    import torch

    from mlpot.analysis.plots import plot_heat_capacity
    from mlpot.analysis.workflow import run_heat_capacity

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    potential, structure_spec = _load_potential(args)
    structure = load_structure(structure_spec)
    try:
        study = run_heat_capacity(
            structure,
            potential,
            temperatures_K=args.temperatures,
            supercells=args.sizes,
            equilibration_steps=args.equilibration_steps,
            production_steps=args.production_steps,
            timestep_fs=args.timestep_fs,
            thermostat=args.thermostat,
            friction_per_fs=args.friction_per_fs,
            replicas=args.replicas,
            sample_interval=args.sample_interval,
            seed=args.seed,
            noise_rmse_eV_per_atom=None if args.noise_rmse_meV is None else 1e-3 * args.noise_rmse_meV,
            noise_validation_atoms=args.noise_validation_atoms,
            noise_validation_structures=args.noise_validation_structures,
            committee_noise=not args.no_committee_noise,
            estimator=args.estimator,
            progress=not args.no_progress,
        )
    except ValueError as error:  # too-short runs, noise larger than the signal, bad settings: say so plainly
        print(f"mlpot heat-capacity: {error}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    summary = study.as_dict()
    summary["settings"]["potential"] = args.reference or str(args.inputs[0])
    summary["settings"]["structure"] = structure_spec
    json_path = args.out / "heat_capacity.json"
    json_path.write_text(json.dumps(summary, indent=2))
    png_path = plot_heat_capacity(summary, args.out / "heat_capacity.png")
    print(study.table())
    print(f"\nwrote {json_path} and {png_path}")
    return 0
