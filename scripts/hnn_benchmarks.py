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

The ``--quick`` numbers are a smoke test of the qualitative result; quote the full run. Beside
ours, the JSON and the printed table carry the numbers published in the README of the paper's own
code (``PUBLISHED``; mean ± standard deviation over their runs).
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from mlpot.hamiltonian.experiments import CONSERVATIVE_SYSTEMS, run_conservative, run_duffing, settings_for, write_json

#: The numbers published in the README ("Numbers" section) of the paper's code,
#: https://github.com/greydanus/hamiltonian-nn, as (mean, standard deviation):
#: test loss, the MSE of the predicted time derivative on test data, and energy MSE, the squared
#: error of the true energy along RK4 rollouts of the learned model from test initial states.
PUBLISHED = {
    "source": "Greydanus, Dzamba & Yosinski, Hamiltonian Neural Networks (NeurIPS 2019), "
              "README of https://github.com/greydanus/hamiltonian-nn, section Numbers",
    "systems": {
        "mass-spring": {"test_loss": {"baseline": (3.6656e-2, 1.8652e-3), "hnn": (3.5928e-2, 1.8328e-3)},
                        "energy_mse": {"baseline": (1.7077e-1, 2.06e-2), "hnn": (3.8416e-4, 6.53e-5)}},
        "pendulum": {"test_loss": {"baseline": (3.5273e-2, 1.7970e-3), "hnn": (3.5586e-2, 1.8178e-3)},
                     "energy_mse": {"baseline": (4.1519e-2, 9.62e-3), "hnn": (2.4852e-2, 5.42e-3)}},
        "two-body": {"test_loss": {"baseline": (2.9575e-5, 8.8900e-7), "hnn": (2.8218e-6, 4.2020e-8)},
                     "energy_mse": {"baseline": (6.3276e-2, 3.36e-2), "hnn": (3.8751e-5, 5.04e-6)}},
    },
}


def comparison_table(systems: dict) -> str:
    """Our test loss and energy MSE (RK4 to the paper's horizon) beside the published ones."""
    lines = [f"{'system':<12} {'model':<9} {'test loss':>10} {'published':>10}   {'energy MSE':>10} {'published':>10}"
             f"   {'RK4 long':>10} {'midpoint long':>13}"]
    for name in CONSERVATIVE_SYSTEMS:
        if name not in systems:
            continue
        published = PUBLISHED["systems"][name]
        for model in ("baseline", "hnn"):
            ours = systems[name][model]
            lines.append(
                f"{name:<12} {model:<9} {ours['test_loss']:>10.3e} {published['test_loss'][model][0]:>10.3e}   "
                f"{ours['energy_mse_rk4_paper_horizon']:>10.3e} {published['energy_mse'][model][0]:>10.3e}   "
                f"{ours['energy_mse_rk4_long']:>10.3e} {ours['energy_mse_midpoint_long']:>13.3e}")
    return "\n".join(lines)


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
    results = {
        "command": shlex.join(["python", "scripts/hnn_benchmarks.py", *(sys.argv[1:] if argv is None else argv)]),
        "quick": args.quick,
        "seed": args.seed,
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "machine": platform.machine(), "threads": args.threads},
        "published": PUBLISHED,
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
    print(comparison_table(results["systems"]))
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
