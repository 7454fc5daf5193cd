"""``mlpot train`` and ``mlpot eval``.

``mlpot train CONFIG.yaml [--set section.key=value ...] [--resume | --overwrite] [--ensemble K]``
validates the YAML into :class:`~mlpot.training.config.TrainConfig` and runs
:func:`mlpot.training.trainer.train`. Under ``torchrun --nproc_per_node=N -m mlpot.cli train ...``
it trains with DDP. An output folder that holds checkpoints needs ``--resume`` (continue; the
model and settings must be those of the checkpoint) or ``--overwrite`` (start again). Ctrl-C or
SIGTERM writes a checkpoint and prints the command that resumes the run.

``mlpot eval MODEL DATA [--energy-unit U] [--json OUT.json] [--plot OUT.png]`` prints the MAE/RMSE
table of a saved model on a dataset, and writes it as JSON and a parity plot. It evaluates in
float64 unless told otherwise (``--dtype``), also for a model trained in float32.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["register_cli", "run_train", "run_eval", "parity_plot"]


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` and ``eval`` sub-commands."""
    p = subparsers.add_parser(
        "train",
        help="train a potential from a YAML config",
        description="Train a potential. The YAML has sections data, model, trainer and output "
        "(reference: docs/training.md; example: scripts/configs/rmd17_ethanol.yaml).",
    )
    p.add_argument("config", help="YAML configuration file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config key (repeatable), e.g. --set trainer.max_epochs=10")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoints in the output directory (same model and settings)")
    p.add_argument("--overwrite", action="store_true",
                   help="delete the checkpoints of an earlier run in the output directory and start again")
    p.add_argument("--allow-unusual-units", action="store_true",
                   help="train although forces or energies look implausible for the units "
                        "(same as --set data.allow_unusual_units=true)")
    p.add_argument("--ensemble", type=int, default=None, metavar="K",
                   help="train K models with seeds seed..seed+K-1 (same as --set trainer.ensemble=K)")
    p.add_argument("--output", default=None, help="output directory (same as --set output=DIR)")
    p.set_defaults(func=run_train)

    e = subparsers.add_parser(
        "eval",
        help="evaluate a saved model on a dataset",
        description="Print energy/force/stress MAE and RMSE of MODEL on DATA; optionally write JSON and a parity plot.",
    )
    e.add_argument("model", help="saved model (mlpot.save_model), e.g. OUTPUT/model.pt")
    e.add_argument("data", help="dataset file: extxyz, ASE db, any ase.io format, or MD17-style npz")
    e.add_argument(
        "--energy-unit", default=None, help="energy unit of DATA (default eV; required for npz, e.g. kcal/mol)"
    )
    e.add_argument("--length-unit", default="Angstrom", help="length unit of DATA (default Angstrom)")
    e.add_argument("--format", default=None, help="ase.io format of DATA (default: from the file name)")
    e.add_argument("--index", default=":", help="structures to use, as for ase.io.read (default all)")
    e.add_argument("--energy-key", default=None, help="explicit energy key in atoms.info (e.g. REF_energy)")
    e.add_argument("--forces-key", default=None, help="explicit forces key in atoms.arrays")
    e.add_argument("--stress-key", default=None, help="explicit stress key in atoms.info")
    e.add_argument("--json", default=None, metavar="OUT.json", help="write the metrics as JSON")
    e.add_argument("--plot", default=None, metavar="OUT.png", help="write an energy/force parity plot")
    e.add_argument("--batch-size", type=int, default=64)
    e.add_argument("--device", default="cpu")
    e.add_argument("--dtype", default="float64", choices=["float64", "float32", "model"],
                   help="evaluate in this precision (default float64: a float32 model's weights are exact in "
                        "float64, while a float32 total energy of a few thousand eV keeps only ~0.2 meV); "
                        "'model' keeps the model's own dtype")
    e.set_defaults(func=run_eval)


def run_train(args: argparse.Namespace) -> int:
    """Entry point of ``mlpot train``."""
    from mlpot.training.config import load_config
    from mlpot.training.trainer import train

    overrides = list(args.overrides)
    if args.ensemble is not None:
        overrides.append(f"trainer.ensemble={args.ensemble}")
    if args.output is not None:
        overrides.append(f"output={args.output}")
    if args.allow_unusual_units:
        overrides.append("data.allow_unusual_units=true")
    try:
        config = load_config(args.config, overrides)
    except (ValueError, FileNotFoundError) as exc:
        print(f"mlpot train: {exc}", file=sys.stderr)
        return 2
    # Ctrl-C or SIGTERM: TrainingInterrupted after the checkpoint, which `mlpot` reports with the
    # command that resumes the run.
    train(config, resume=True if args.resume else None, overwrite=args.overwrite)
    return 0


def run_eval(args: argparse.Namespace) -> int:
    """Entry point of ``mlpot eval``."""
    import torch

    import mlpot
    from mlpot.data.datasets import ReadReport, read_structures
    from mlpot.files import atomic_write_text
    from mlpot.training.metrics import format_table
    from mlpot.training.multistate_loss import is_multistate
    from mlpot.training.trainer import evaluate

    model = mlpot.load_model(args.model)  # a missing or unreadable file: one line from the mlpot command
    if args.dtype != "model":
        model = model.to(getattr(torch, args.dtype))
    if is_multistate(model):
        return _evaluate_multistate(model, args)
    report = ReadReport(args.data)
    structures = read_structures(
        args.data, cutoff=float(model.cutoff), dtype=_model_dtype(model), report=report, format=args.format,
        index=args.index, energy_unit=args.energy_unit, length_unit=args.length_unit,
        energy_key=args.energy_key, forces_key=args.forces_key, stress_key=args.stress_key,
    )
    print(report.summary())
    metrics, predictions = evaluate(model, structures, args.batch_size, args.device, return_predictions=True)
    print(format_table(metrics))
    if args.json:
        payload = {"model": str(args.model), "data": str(args.data), "n_structures": len(structures),
                   "dtype": str(_model_dtype(model)).removeprefix("torch."), **metrics}
        atomic_write_text(args.json, json.dumps(payload, indent=1))
    if args.plot:
        parity_plot(structures, predictions, args.plot, metrics)
    return 0


def _evaluate_multistate(model, args: argparse.Namespace) -> int:
    """``mlpot eval`` of a model of several electronic states on per-state labels (:mod:`mlpot.data.multistate`)."""
    from mlpot.data.multistate import read_multistate_structures
    from mlpot.data.readers import slice_from_string
    from mlpot.files import atomic_write_text
    from mlpot.training.metrics import format_table
    from mlpot.training.multistate_loss import evaluate_multistate

    if args.plot:
        print("mlpot eval: --plot draws energy/force parity plots of potentials, not of multistate models",
              file=sys.stderr)
        return 2
    structures = read_multistate_structures(
        args.data, model.n_states, cutoff=float(model.cutoff), dtype=_model_dtype(model),
        energy_unit=args.energy_unit, length_unit=args.length_unit, format=args.format,
    )
    structures = [structures[i] for i in slice_from_string(str(args.index), len(structures)).tolist()]
    print(f"{args.data}: {len(structures)} structures with {model.n_states} states")
    metrics = evaluate_multistate(model, structures, args.batch_size, args.device)
    print(format_table(metrics))
    if args.json:
        payload = {"model": str(args.model), "data": str(args.data), "n_structures": len(structures),
                   "dtype": str(_model_dtype(model)).removeprefix("torch."), **metrics}
        atomic_write_text(args.json, json.dumps(payload, indent=1))
    return 0


def _model_dtype(model):
    import torch

    for p in model.parameters():
        return p.dtype
    return torch.float64


def parity_plot(structures, predictions, path: str | Path, metrics: dict[str, float] | None = None) -> None:
    """Energy-per-atom and force-component parity plots (DFT vs model) in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from mlpot.data import keys as K

    pairs_e = [(float(s[K.ENERGY]) / len(s[K.NUMBERS]), float(p[K.ENERGY]) / len(s[K.NUMBERS]))
               for s, p in zip(structures, predictions) if K.ENERGY in s]
    f_ref = [s[K.FORCES].reshape(-1) for s in structures if K.FORCES in s]
    f_pred = [p[K.FORCES].reshape(-1) for s, p in zip(structures, predictions) if K.FORCES in s]
    metrics = metrics or {}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    panels = [
        (axes[0], pairs_e, "energy per atom (eV/atom)", "energy_mae_meV_per_atom", "meV/atom"),
        (axes[1], list(zip(torch.cat(f_ref).tolist(), torch.cat(f_pred).tolist())) if f_ref else [],
         "force component (eV/Å)", "forces_mae_meV_per_A", "meV/Å"),
    ]
    for ax, pairs, label, key, unit in panels:
        if not pairs:
            ax.set_axis_off()
            ax.text(0.5, 0.5, f"no {label.split(' ')[0]} labels", ha="center", va="center")
            continue
        ref, pred = zip(*pairs)
        lo, hi = min(min(ref), min(pred)), max(max(ref), max(pred))
        ax.plot([lo, hi], [lo, hi], color="0.6", lw=1)
        ax.scatter(ref, pred, s=4, alpha=0.5)
        ax.set_xlabel(f"DFT {label}")
        ax.tick_params(axis="x", labelrotation=30)  # long energy labels (−467.78…) would overlap
        ax.set_ylabel(f"model {label}")
        if key in metrics:
            ax.set_title(f"MAE {metrics[key]:.2f} {unit}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
