"""`mlpot md`: run molecular dynamics from the command line.

    mlpot md MODEL STRUCTURE --steps 10000 --timestep-fs 0.5 --temperature-K 300 \\
        --ensemble langevin --out runs/md

MODEL is a saved mlpot model (``mlpot.save_model``) or ``ase:EMT`` / ``ase:LennardJones`` for
ASE's reference potentials. STRUCTURE is any file ``ase.io.read`` understands (last frame).
DIR receives ``thermo.csv`` (drawn in ``thermo.png``: temperature and energies against time),
``trajectory.extxyz``, ``checkpoint.pt`` and ``final.extxyz``; a
fresh run refuses a DIR that holds an earlier run's files (``--resume`` continues that run,
``--overwrite`` deletes its files and starts again).
Ctrl-C (or SIGTERM) finishes the current step and writes a final checkpoint;
``--resume`` continues from ``DIR/checkpoint.pt`` up to ``--steps`` in total, bit for bit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlpot.dynamics.health import MIN_DISTANCE_FRACTION
from mlpot.files import refuse_to_replace_run
from mlpot.interrupts import RunInterrupted

__all__ = ["register_cli", "run_md"]

_ASE_CALCULATORS = {
    "emt": ("ase.calculators.emt", "EMT"),
    "lennardjones": ("ase.calculators.lj", "LennardJones"),
    "lj": ("ase.calculators.lj", "LennardJones"),
}


def register_cli(subparsers) -> None:
    """Add the ``md`` sub-command."""
    parser = subparsers.add_parser(
        "md",
        help="run molecular dynamics with a trained model",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL", help="saved mlpot model, or ase:EMT / ase:LennardJones")
    parser.add_argument("structure", metavar="STRUCTURE", help="initial structure (any ase.io format)")
    parser.add_argument("--steps", type=int, required=True, help="total number of steps of the run")
    parser.add_argument("--timestep-fs", type=float, default=0.5, help="time step in fs (default 0.5)")
    parser.add_argument("--temperature-K", type=float, default=None, help="thermostat / initial temperature in K")
    parser.add_argument("--ensemble", choices=("nve", "langevin", "bussi", "npt"), default="nve")
    parser.add_argument("--pressure-GPa", type=float, default=None, help="NPT: target pressure in GPa (0)")
    parser.add_argument("--barostat-time-fs", type=float, default=None, help="NPT: barostat relaxation time, fs (500)")
    parser.add_argument(
        "--friction-per-fs", type=float, default=None, help="Langevin friction, or 1/tau for Bussi, in 1/fs (0.01)"
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (momenta and thermostat noise)")
    parser.add_argument("--skin", type=float, default=1.0, help="neighbour-list skin in Å (default 1.0)")
    add_min_distance_argument(parser)
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    parser.add_argument("--thermo-every", type=int, default=10, help="steps between thermo rows (10)")
    parser.add_argument("--traj-every", type=int, default=100, help="steps between trajectory frames (100)")
    parser.add_argument("--checkpoint-every", type=int, default=1000, help="steps between checkpoints (1000)")
    parser.add_argument("--device", default=None, help="torch device for an mlpot model (default: the model's)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (1 is often fastest for small systems)"
    )
    parser.add_argument(
        "--compile", action="store_true",
        help="compile the model's evaluation with torch.compile (tens of seconds at the start, then faster steps)",
    )
    parser.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.pt")
    parser.add_argument("--overwrite", action="store_true", help="replace the files of an earlier run in DIR")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_md)


def add_min_distance_argument(parser: argparse.ArgumentParser) -> None:
    """``--min-distance-fraction F``, for every verb that runs MD (read with :func:`min_distance_argument`)."""
    parser.add_argument(
        "--min-distance-fraction", type=float, default=MIN_DISTANCE_FRACTION, metavar="F",
        help="stop when two atoms come closer than F × their element pair's shortest distance in the model's "
             f"training data (default {MIN_DISTANCE_FRACTION}; 0 turns the check off; not stored in a "
             "checkpoint: give it again with --resume)",
    )


def min_distance_argument(args: argparse.Namespace) -> float | None:
    """The engine's ``min_distance_fraction`` from ``--min-distance-fraction`` (0: None, no check)."""
    if not 0 <= args.min_distance_fraction <= 1:
        raise ValueError(f"--min-distance-fraction must be in [0, 1] (0: no check), got {args.min_distance_fraction}")
    return args.min_distance_fraction or None


#: What a run writes in DIR: a fresh run refuses to start over them without --overwrite.
RUN_FILES = ("thermo.csv", "thermo.png", "trajectory.extxyz", "checkpoint.pt", "final.extxyz")

#: Flags of a fresh run that a resumed run must not change: flag → argument name (= checkpoint key).
_RESUME_CHECKED_FLAGS = {
    "--ensemble": "ensemble", "--timestep-fs": "timestep_fs", "--temperature-K": "temperature_K",
    "--friction-per-fs": "friction_per_fs", "--skin": "skin", "--seed": "seed",
    "--pressure-GPa": "pressure_GPa", "--barostat-time-fs": "barostat_time_fs",
}


def _given(args: argparse.Namespace, flag: str) -> bool:
    """Whether ``flag`` was on the command line (``args.argv`` is set by the ``mlpot`` command)."""
    return any(word == flag or word.startswith(flag + "=") for word in getattr(args, "argv", sys.argv[1:]))


def _load_potential(spec: str, device: str | None, compile: bool = False):
    if spec.lower().startswith("ase:"):
        import importlib

        name = spec[4:].lower()
        if name not in _ASE_CALCULATORS:
            raise ValueError(f"unknown ASE potential {spec!r}; known: ase:EMT, ase:LennardJones")
        module, cls = _ASE_CALCULATORS[name]
        return getattr(importlib.import_module(module), cls)()
    if not Path(spec).exists():
        raise FileNotFoundError(f"model file {spec!r} not found")
    from mlpot import load_model

    model = load_model(spec)
    if device is not None:
        model = model.to(device)
    if compile:
        from mlpot.models import compile_potential

        compile_potential(model)  # a ValueError is reported by the mlpot command as one line
    return model


def run_md(args: argparse.Namespace) -> int:
    """Run ``mlpot md``; returns the exit code (130 after an interrupt)."""
    import ase.io

    from mlpot.data.datasets import read_structure
    from mlpot.dynamics.engine import CloseContactError, MDInstabilityError, Simulation
    from mlpot.dynamics.reporters import CheckpointWriter, ProgressBar, ThermoLog, TrajectoryWriter

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    min_distance_fraction = min_distance_argument(args)
    out: Path = args.out
    checkpoint_path = out / "checkpoint.pt"
    if args.resume and not checkpoint_path.exists():
        raise FileNotFoundError(f"--resume given but {checkpoint_path} does not exist")
    earlier = [out / name for name in RUN_FILES if (out / name).exists()]
    refuse_to_replace_run(out, earlier, args.resume, args.overwrite, "the files of an earlier MD run",
                          resumable=checkpoint_path.exists())
    atoms = read_structure(args.structure)  # empty or truncated file: a ValueError, one line from `mlpot`
    potential = _load_potential(args.model, args.device, args.compile)
    reporters = [
        ThermoLog(out / "thermo.csv", args.thermo_every),
        TrajectoryWriter(out / "trajectory.extxyz", args.traj_every),
        CheckpointWriter(checkpoint_path, args.checkpoint_every),
    ]
    if not args.no_progress:
        reporters.append(ProgressBar(args.steps, interval=max(1, min(10, args.thermo_every)), desc="mlpot md"))
    if args.resume:
        # Flags given again must be those of the run that wrote the checkpoint (and the model the
        # same); flags left out continue with the checkpoint's values.
        expected = {"integrator": {}}
        for flag, name in _RESUME_CHECKED_FLAGS.items():
            if _given(args, flag):
                target = expected["integrator"] if name not in ("skin", "seed") else expected
                target[name] = getattr(args, name)
        sim = Simulation.from_checkpoint(checkpoint_path, atoms, potential, reporters=reporters, expected=expected,
                                         min_distance_fraction=min_distance_fraction)
    else:
        sim = Simulation(
            atoms,
            potential,
            args.timestep_fs,
            ensemble=args.ensemble,
            temperature_K=args.temperature_K,
            friction_per_fs=args.friction_per_fs,
            seed=args.seed,
            reporters=reporters,
            skin=args.skin,
            pressure_GPa=args.pressure_GPa,
            barostat_time_fs=args.barostat_time_fs,
            min_distance_fraction=min_distance_fraction,
        )
    if args.overwrite:  # the settings are checked: a stale checkpoint must not outlive the run replacing it
        for path in earlier:
            path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    remaining = max(args.steps - sim.state.step, 0)
    dof = sim.state.n_dof.tolist()
    print(
        f"mlpot md: {sim.integrator.ensemble}, dt = {sim.integrator.timestep_fs} fs, "
        f"steps {sim.state.step}→{args.steps}, "
        f"seed {sim.seed}, {'fast (torch)' if sim.fast_path else 'ASE calculator'} path, "
        f"temperature from N_dof = {int(dof[0])}",
        file=sys.stderr,
    )
    try:
        sim.run(remaining, handle_signals=True)
    except (MDInstabilityError, CloseContactError):
        _draw_log(out)  # up to the last good step: where it went wrong (one line and exit code 1 from `mlpot`)
        raise
    ase.io.write(out / "final.extxyz", sim.atoms()[0], format="extxyz")
    _draw_log(out)
    if sim.interrupted:  # `mlpot` prints the command that resumes the run
        raise RunInterrupted(f"MD at step {sim.state.step}", sim.interrupt_signal, checkpoint_path)
    print(f"mlpot md: done, {sim.state.step} steps; output in {out}", file=sys.stderr)
    return 0


def _draw_log(out: Path) -> None:
    """``thermo.png`` from ``thermo.csv``, when the run logged any step. A figure is not worth a
    run: should drawing fail, a warning says why and the run's files stand."""
    import warnings

    from mlpot.analysis.plots import plot_thermo_log

    log = out / "thermo.csv"
    if log.exists() and len(log.read_text().splitlines()) > 1:
        try:
            plot_thermo_log(log, out / "thermo.png")
        except (OSError, ValueError) as error:
            warnings.warn(f"thermo.png not drawn: {error}", RuntimeWarning, stacklevel=2)
