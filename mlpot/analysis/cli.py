"""`mlpot heat-capacity` and `mlpot phonons`: heat capacities of a model and of its reference; phonons.

    mlpot heat-capacity MODEL STRUCTURE --temperatures 100 300 --sizes 2 3 4 \\
        --equilibration-steps 2000 --production-steps 20000 --out runs/cv
    mlpot heat-capacity MODEL STRUCTURE --temperatures 300 --sizes 2 \\
        --reference-calculator emt --reference-frames 200 --out runs/cv_vs_emt
    mlpot heat-capacity --reference emt Cu --temperatures 300 --sizes 2 3 --out runs/cv_emt
    mlpot phonons MODEL STRUCTURE --supercell 3 3 3 --temperatures 100 300 --out runs/phonons

MODEL is a saved mlpot model (``mlpot.save_model``); the MD samples *its* Boltzmann distribution, so the
fluctuations give the model's C_V, nothing subtracted. ``--reference-calculator NAME`` evaluates an ASE
calculator (emt, lj; tblite when installed) on ``--reference-frames`` decorrelated frames and reports the
reference's C_V by reweighting, with its effective sample size; ``--reference-energies FILE`` takes the same
frames labelled elsewhere (write them with ``--write-frames``, same seed). A committee MODEL also gives each
member's C_V and their spread. With ``--reference emt`` (ASE's EMT drives the MD) no model is given. STRUCTURE
is a file that ``ase.io.read`` understands (last frame), or a chemical symbol such as ``Cu`` for ASE's reference crystal
(``ase.build.bulk(symbol, cubic=True)``). Each size n is the n×n×n supercell of STRUCTURE.

The MD runs all sizes (× replicas) of one temperature in one batched call, with Langevin (BAOAB) or Bussi
thermostats. Printed: a table of C_V per size and extrapolated (C_V/N = c_∞ + b/N), in k_B per atom,
J/(mol·K) and J/(g·K), with the kinetic degrees of freedom used; raw values are shown next to the
noise-corrected ones when a correction applies. Written: DIR/heat_capacity.json and DIR/heat_capacity.png,
and the MD's checkpoints in DIR/checkpoints (every ``--checkpoint-every`` steps and at Ctrl-C or SIGTERM):
``--resume`` continues an interrupted study to the numbers an uninterrupted one gives; ``--overwrite``
replaces an earlier study in DIR, which is otherwise refused before any MD.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mlpot.dynamics.cli import add_min_distance_argument, min_distance_argument
from mlpot.files import atomic_write_text, refuse_to_replace_run

__all__ = ["register_cli", "run_cli"]

_REFERENCES = {"emt": ("ase.calculators.emt", "EMT")}
#: ASE calculators for --reference-calculator (module, class); tblite only when installed.
_CALCULATORS = {
    "emt": ("ase.calculators.emt", "EMT"),
    "lj": ("ase.calculators.lj", "LennardJones"),
    "tblite": ("tblite.ase", "TBLite"),
}


def register_cli(subparsers) -> None:
    """Add the ``heat-capacity`` and ``phonons`` sub-commands."""
    parser = subparsers.add_parser(
        "heat-capacity",
        help="heat capacity of a model (fluctuations), of its reference (reweighting), finite-size extrapolated",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="MODEL STRUCTURE, or STRUCTURE alone with --reference")
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
        "--reference-calculator", choices=sorted(_CALCULATORS), default=None,
        help="ASE calculator evaluated on decorrelated frames: the reference's C_V by reweighting",
    )
    parser.add_argument("--reference-option", action="append", default=[], metavar="KEY=VALUE",
                        help="keyword for the reference calculator (repeatable), e.g. sigma=2.3 for lj")
    parser.add_argument("--reference-frames", type=int, default=200, help="frames per size for reweighting (200)")
    parser.add_argument("--reference-energies", type=Path, default=None, metavar="FILE",
                        help="extxyz of the frames labelled elsewhere (matched by index; one T and one size)")
    parser.add_argument("--write-frames", action="store_true", help="write the frames to DIR for labelling")
    parser.add_argument("--min-ess", type=float, default=50, help="smallest effective sample size accepted (50)")
    parser.add_argument("--no-committee", action="store_true", help="skip reweighting to each committee member")
    parser.add_argument(
        "--noise-rmse-meV", type=float, default=None,
        help="validation RMSE per atom, meV/atom: the white-noise approximation (needs --assume-uncorrelated-error)",
    )
    parser.add_argument("--assume-uncorrelated-error", action="store_true",
                        help="accept the white-noise approximation of --noise-rmse-meV")
    parser.add_argument(
        "--noise-validation-atoms", type=int, default=None, help="atoms per validation structure (default: STRUCTURE's)"
    )
    parser.add_argument("--noise-validation-structures", type=int, default=None, help="number of validation structures")
    parser.add_argument(
        "--estimator",
        choices=("total", "configurational"),
        default="total",
        help="Var(E) of K + U (total, the default) or f/2 + Var(U)/(k_B T)² (configurational: smaller error)",
    )
    parser.add_argument("--device", default=None, help="torch device for an mlpot model")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    add_min_distance_argument(parser)
    parser.add_argument("--checkpoint-every", type=int, default=1000, metavar="STEPS",
                        help="MD steps between checkpoints in DIR/checkpoints (1000); Ctrl-C writes one too")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run from DIR/checkpoints (same settings)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the results and checkpoints of an earlier run in DIR")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_cli)
    _register_phonons(subparsers)


def _register_phonons(subparsers) -> None:
    parser = subparsers.add_parser(
        "phonons",
        help="harmonic phonons with phonopy: bands, DOS, C_V(T), free energy, entropy",
        description="Finite-displacement phonons of STRUCTURE with forces from MODEL (or --reference emt), through "
        "phonopy (pip install 'mlpot[phonons]'). Writes DIR/phonons.json (C_V in k_B, F in eV, S in k_B per input "
        "cell), DIR/phonon_bands.png and DIR/phonon_dos.png.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="MODEL STRUCTURE, or STRUCTURE alone with --reference")
    parser.add_argument("--reference", choices=sorted(_REFERENCES), help="use an ASE reference potential, no MODEL")
    parser.add_argument("--supercell", type=int, nargs=3, default=[3, 3, 3], metavar="N", help="supercell (3 3 3)")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[100.0, 300.0], metavar="K")
    parser.add_argument("--mesh", type=int, nargs=3, default=[20, 20, 20], metavar="N", help="q mesh (20 20 20)")
    parser.add_argument("--displacement", type=float, default=0.01, help="finite displacement, Å (0.01)")
    parser.add_argument("--primitive", action="store_true", help="let phonopy reduce to the primitive cell")
    parser.add_argument("--no-bands", action="store_true", help="skip the band-structure plot")
    parser.add_argument("--device", default=None, help="torch device for an mlpot model")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace the results of an earlier run in DIR")
    parser.set_defaults(func=run_phonons_cli)


def _reference_calculator(args):
    """The ASE calculator of --reference-calculator (with --reference-option KEY=VALUE), or None."""
    if args.reference_calculator is None:
        if args.reference_option:
            raise ValueError("--reference-option needs --reference-calculator")
        return None
    import importlib

    module, name = _CALCULATORS[args.reference_calculator]
    try:
        cls = getattr(importlib.import_module(module), name)
    except ImportError as error:
        raise ValueError(f"--reference-calculator {args.reference_calculator} needs "
                         f"{module.split('.')[0]} installed ({error})") from error
    options = {}
    for item in args.reference_option:
        key, _, value = item.partition("=")
        if not key or not value:
            raise ValueError(f"--reference-option wants KEY=VALUE, got {item!r}")
        try:
            options[key] = float(value)
        except ValueError:
            options[key] = value
    return cls(**options)


def run_phonons_cli(args: argparse.Namespace) -> int:
    """Run ``mlpot phonons``; returns the exit code."""
    from mlpot.analysis.phonons import compute_phonons

    potential, structure_spec = _load_potential(args)
    if not hasattr(potential, "get_forces"):  # an mlpot model: through its ASE calculator
        from mlpot import MLPotCalculator

        potential = MLPotCalculator(potential)
    structure = load_structure(structure_spec)
    earlier = [path for path in [args.out / "phonons.json"] if path.exists()]
    refuse_to_replace_run(args.out, earlier, False, args.overwrite, "an earlier run's results", resumable=False)
    result = compute_phonons(structure, potential, supercell=args.supercell, temperatures_K=args.temperatures,
                             mesh=args.mesh, displacement_A=args.displacement, primitive=args.primitive)
    written = result.write(args.out, band_structure=not args.no_bands)
    print(f"{'T (K)':>8} {'C_V (k_B/atom)':>15} {'F (eV/atom)':>12} {'S (k_B/atom)':>13}")
    for t, c, f, e in zip(result.temperatures_K, result.heat_capacity_kB, result.free_energy_eV, result.entropy_kB):
        n = result.n_atoms
        print(f"{t:8.1f} {c / n:15.4f} {f / n:12.5f} {e / n:13.4f}")
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def load_structure(spec: str):
    """An ``ase.Atoms`` from a file path, or ASE's reference crystal for a chemical symbol."""
    path = Path(spec)
    if path.exists():
        from mlpot.data.datasets import read_structure

        return read_structure(path)  # empty or truncated file: a ValueError, one line from `mlpot`
    from ase.build import bulk
    from ase.data import atomic_numbers

    if spec in atomic_numbers:
        return bulk(spec, cubic=True)
    raise ValueError(f"STRUCTURE {spec!r} is neither a file nor a chemical symbol")


def _load_potential(args):
    if args.reference:
        import importlib

        if len(args.inputs) != 1:
            raise ValueError("with --reference give only STRUCTURE, not a MODEL")
        module, name = _REFERENCES[args.reference]
        return getattr(importlib.import_module(module), name)(), args.inputs[0]
    if len(args.inputs) != 2:
        raise ValueError("give MODEL and STRUCTURE (or --reference emt and STRUCTURE)")
    model_path, structure = args.inputs
    if not Path(model_path).exists():
        raise FileNotFoundError(f"model file {model_path!r} not found")
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
    reference = _reference_calculator(args)
    json_path = args.out / "heat_capacity.json"
    checkpoints = args.out / "checkpoints"  # the study's checkpoints: refused or deleted by run_heat_capacity
    resumable = (checkpoints / "study.json").exists()
    if args.resume and not resumable:
        raise FileNotFoundError(f"--resume given but {checkpoints} holds no heat-capacity study to continue")
    # before hours of MD, not after; the JSON itself is replaced (atomically) only at the end
    refuse_to_replace_run(args.out, [json_path] if json_path.exists() else [], args.resume, args.overwrite,
                          "an earlier heat-capacity run", resumable=resumable)
    args.out.mkdir(parents=True, exist_ok=True)
    # too-short runs, noise larger than the signal, bad settings: a ValueError, one line from `mlpot`
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
        reference=reference,
        reference_frames=args.reference_frames,
        reference_energies_file=args.reference_energies,
        committee_reweighting=not args.no_committee,
        min_effective_samples=args.min_ess,
        frames_folder=args.out if args.write_frames else None,
        noise_rmse_eV_per_atom=None if args.noise_rmse_meV is None else 1e-3 * args.noise_rmse_meV,
        noise_validation_atoms=args.noise_validation_atoms,
        noise_validation_structures=args.noise_validation_structures,
        assume_uncorrelated_error=args.assume_uncorrelated_error,
        estimator=args.estimator,
        progress=not args.no_progress,
        checkpoint_folder=checkpoints,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
        overwrite=args.overwrite,
        min_distance_fraction=min_distance_argument(args),
    )
    summary = study.as_dict()
    summary["settings"]["potential"] = args.reference or str(args.inputs[0])
    summary["settings"]["structure"] = structure_spec
    atomic_write_text(json_path, json.dumps(summary, indent=2))
    png_path = plot_heat_capacity(summary, args.out / "heat_capacity.png")
    print(study.table())
    print(f"\nwrote {json_path} and {png_path}")
    return 0
