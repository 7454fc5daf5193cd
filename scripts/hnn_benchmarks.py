#!/usr/bin/env python
"""The classic Hamiltonian-Neural-Network benchmark (Greydanus, Dzamba & Yosinski 2019, Table 1).

For the ideal mass-spring, the ideal pendulum and the two-body problem it trains the baseline
(an MLP predicting ż) and the HNN the same way, and reports the test loss on ż and the energy MSE
along rollouts (RK4 to the paper's horizon t = 20, and long rollouts with RK4 and with the
symplectic implicit midpoint rule). It then trains port-Hamiltonian models on the damped and the
driven Duffing oscillator and checks that the learned dynamics dissipate like the data.

Outputs (relative to the working directory; run from the repository root):
    benchmarks/results/hnn.json            every number and setting (or --json PATH)
    benchmarks/results/hnn/<system>.png    phase portraits and energy-vs-time plots (or --plots DIR)

Usage:
    python scripts/hnn_benchmarks.py --quick     # ~1-2 minutes on 2 CPU cores: small nets, short runs
    python scripts/hnn_benchmarks.py             # the paper's recipe (200×200, 2000 steps); ~15 min on 2 cores

The ``--quick`` numbers are a smoke test of the qualitative result; quote the full run.
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from mlpot.hamiltonian.experiments import (
    CONSERVATIVE_SYSTEMS,
    PAPER_TABLE1,
    format_table,
    run_conservative,
    run_duffing,
    settings_for,
    write_json,
)

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small networks and short runs (~2 min)")
    parser.add_argument("--systems", nargs="+", default=list(CONSERVATIVE_SYSTEMS) + ["duffing", "driven-duffing"],
                        choices=list(CONSERVATIVE_SYSTEMS) + ["duffing", "driven-duffing"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="override the number of training epochs")
    # relative to the working directory (run from the repository root), so that a run elsewhere
    # (e.g. the documentation tests, in a temporary directory) never overwrites the stored results
    parser.add_argument("--json", type=Path, default=Path("benchmarks") / "results" / "hnn.json")
    parser.add_argument("--plots", type=Path, default=Path("benchmarks") / "results" / "hnn")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1: the networks are tiny and extra threads only contend)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    command = "python scripts/hnn_benchmarks.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    results = {
        "command": command.strip(),
        "quick": args.quick,
        "seed": args.seed,
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "machine": platform.machine(), "threads": args.threads},
        "paper_table1": PAPER_TABLE1,
        "systems": {},
    }
    plots = None if args.no_plots else args.plots
    start = time.perf_counter()
    for name in args.systems:
        settings = settings_for(name, args.quick, args.seed, args.epochs)
        print(f"{name}: {settings.epochs} epochs, hidden {settings.hidden}, {settings.n_trajectories} trajectories")
        if name in CONSERVATIVE_SYSTEMS:
            results["systems"][name] = run_conservative(name, settings, out_dir=plots, plot=plots is not None)
        else:
            results["systems"][name] = run_duffing(name == "driven-duffing", settings, out_dir=plots,
                                                   plot=plots is not None)
    results["wall_time_s"] = time.perf_counter() - start
    print()
    print(format_table(results["systems"]))
    for name in ("duffing", "driven-duffing"):
        if name in results["systems"]:
            r = results["systems"][name]
            print(f"\n{name}: true damping {r['true']['damping']}, learned R_pp (port-HNN, full R) "
                  f"{r['port_hnn']['R_pp']:.4f}, learned damping (damped HNN) {r['damped_hnn']['damping']:.4f}; "
                  f"final-energy ratio model/true: port-HNN {r['port_hnn']['final_energy_ratio']:.3f}, "
                  f"HNN {r['hnn']['final_energy_ratio']:.3f}, baseline {r['baseline']['final_energy_ratio']:.3f}")
            if r["true"]["input_matrix"] is not None:
                print(f"  input matrix G: true {r['true']['input_matrix']}, port-HNN {r['port_hnn']['input_matrix']}")
    path = write_json(results, args.json)
    print(f"\nwrote {path} ({results['wall_time_s']:.0f} s)" + (f"; plots in {plots}" if plots else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
