"""``mlpot hnn SYSTEM``: train baseline and HNN (or the port-Hamiltonian models), roll out, plot.

    mlpot hnn mass-spring --quick --out runs/hnn
    mlpot hnn duffing --epochs 1000

SYSTEM is ``mass-spring``, ``pendulum``, ``two-body`` (baseline vs HNN, as in the benchmark) or
``duffing`` / ``driven-duffing`` (port-HNN, damped HNN, HNN and baseline). It writes
``OUT/SYSTEM.png`` and ``OUT/SYSTEM.json`` and prints the metrics. The whole table is
``scripts/hnn_benchmarks.py``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register_cli", "run_hnn"]

SYSTEM_CHOICES = ("mass-spring", "pendulum", "two-body", "duffing", "driven-duffing")


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``hnn`` sub-command."""
    p = subparsers.add_parser(
        "hnn",
        help="train, roll out and plot a Hamiltonian neural network on a toy system",
        description="Train the baseline and the HNN (port-Hamiltonian models for duffing) on SYSTEM, "
        "roll them out with RK4 and the implicit midpoint rule, and plot phase portraits and energy "
        "against time (docs/hamiltonian.md).",
    )
    p.add_argument("system", choices=SYSTEM_CHOICES, help="toy system")
    p.add_argument("--quick", action="store_true", help="small networks, few epochs (seconds)")
    p.add_argument("--out", default="runs/hnn", help="output directory for SYSTEM.png and SYSTEM.json (default runs/hnn)")
    p.add_argument("--epochs", type=int, default=None, help="override the number of training epochs")
    p.add_argument("--horizon", type=float, default=None, help="length of the long rollouts (time units)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.set_defaults(func=run_hnn)


def run_hnn(args: argparse.Namespace) -> int:
    """Entry point of ``mlpot hnn``."""
    import torch

    from mlpot.hamiltonian.experiments import CONSERVATIVE_SYSTEMS, run_conservative, run_duffing, settings_for, write_json

    if args.epochs is not None and args.epochs < 1:
        raise SystemExit("mlpot hnn: --epochs must be >= 1")
    if args.horizon is not None and not args.horizon > 0:
        raise SystemExit("mlpot hnn: --horizon must be positive")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    settings = settings_for(args.system, args.quick, args.seed, args.epochs, args.horizon)
    print(f"mlpot hnn {args.system}: {settings.epochs} epochs, hidden {settings.hidden}, "
          f"{settings.n_trajectories} trajectories")
    if args.system in CONSERVATIVE_SYSTEMS:
        result = run_conservative(args.system, settings, out_dir=out)
    else:
        result = run_duffing(args.system == "driven-duffing", settings, out_dir=out)
    path = write_json(result, out / f"{args.system}.json")
    print(f"wrote {path} and {result.get('figure')}")
    return 0
