#!/usr/bin/env python
"""Benchmarks of mlpot.quantum: exact spin references, NQS ground states, plane-wave Schrödinger nets.

Sections (``--sections``, default all; results are merged into the JSON by name, so sections can
be run one at a time):
    exact     Lanczos vs the Jordan–Wigner closed form (periodic TFIM, h = 1, N = 8, 12, 16) and the
              Heisenberg chain's E/N vs the finite-N Bethe ansatz and its N → ∞ limit 1/4 − ln 2.
    tfim20    NQS, 1D TFIM h = 1, N = 20, periodic     (target: relative error ≤ 1e-4)
    heis16    NQS, 1D Heisenberg N = 16, periodic      (target ≤ 1e-3)
    heis4x4   NQS, 2D Heisenberg 4×4, periodic         (target ≤ 2e-3)
    heis40    NQS, 1D Heisenberg N = 40, periodic      (target: E/N within 1e-2 of the Bethe ansatz)
    waves     free Gaussian packet (1D, 2D) width and residual; harmonic-oscillator levels; square
              barrier transmission at three energies.

Outputs (relative to the working directory; run from the repository root):
    benchmarks/results/quantum.json                 every number, setting and timing (or --json)
    benchmarks/results/quantum/nqs_convergence.png  energy vs iteration against the exact value
    benchmarks/results/quantum/packet_width.png     σ(t) of the plane-wave network vs the analytic curve

Usage:
    python scripts/quantum_benchmarks.py --sections exact waves        # ~1 min
    python scripts/quantum_benchmarks.py --sections tfim20             # ~10-20 min on 2 shared cores
    python scripts/quantum_benchmarks.py --quick                       # smoke test: tiny NQS runs
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from mlpot.quantum import pinn, spins, waves
from mlpot.quantum.nqs import ground_state

# name → (model, lattice, field, ground_state keyword arguments, target)
NQS_RUNS = {
    "tfim20": ("tfim", 20, 1.0, {"n_iterations": 300}, {"relative_error": 1e-4}),
    "heis16": ("heisenberg", 16, None, {"n_iterations": 300}, {"relative_error": 1e-3}),
    "heis4x4": ("heisenberg", (4, 4), None, {"n_iterations": 300}, {"relative_error": 2e-3}),
    "heis40": ("heisenberg", 40, None, {"n_iterations": 300}, {"energy_per_site_error": 1e-2}),
}
SECTIONS = ["exact", *NQS_RUNS, "waves"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", nargs="+", default=SECTIONS, choices=SECTIONS)
    parser.add_argument("--quick", action="store_true", help="tiny NQS runs (smoke test, not to be quoted)")
    parser.add_argument("--iterations", type=int, default=None, help="override every NQS run's n_iterations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=Path("benchmarks") / "results" / "quantum.json")
    parser.add_argument("--plots", type=Path, default=Path("benchmarks") / "results" / "quantum")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    return parser.parse_args(argv)


def run_exact() -> dict:
    jordan_wigner = []
    for n in (8, 12, 16):
        lanczos = spins.exact_ground_energy("tfim", n, field=1.0)
        closed = -2.0 / math.sin(math.pi / (2 * n))
        jordan_wigner.append({"n_sites": n, "lanczos": lanczos, "closed_form": closed, "difference": lanczos - closed})
    chain = []
    for n in (4, 8, 12, 16, 20):
        start = time.perf_counter()
        lanczos = spins.exact_ground_energy("heisenberg", n)
        chain.append({"n_sites": n, "lanczos_per_site": lanczos / n, "bethe_per_site": spins.bethe_ansatz_energy(n) / n,
                      "lanczos_time_s": time.perf_counter() - start})
    bethe = [{"n_sites": n, "bethe_per_site": spins.bethe_ansatz_energy(n) / n} for n in (40, 100, 1000)]
    for row in jordan_wigner:
        print(f"TFIM h=1 N={row['n_sites']}: Lanczos {row['lanczos']:.12f}  JW {row['closed_form']:.12f}  "
              f"diff {row['difference']:.1e}")
    for row in chain + bethe:
        lanczos = f"Lanczos {row['lanczos_per_site']:.10f}  " if "lanczos_per_site" in row else ""
        print(f"Heisenberg N={row['n_sites']}: E/N {lanczos}Bethe {row['bethe_per_site']:.10f}")
    return {"tfim_jordan_wigner": jordan_wigner, "heisenberg_chain": chain, "heisenberg_bethe_large_n": bethe,
            "heisenberg_infinite_chain_per_site": spins.HEISENBERG_INFINITE_CHAIN}


def run_nqs(name: str, args) -> dict:
    model, lattice, field, options, target = NQS_RUNS[name]
    options = dict(options)
    if args.iterations is not None:
        options["n_iterations"] = args.iterations
    if args.quick:
        options.update(n_iterations=20, n_samples=512)
    n_sites = math.prod(lattice) if isinstance(lattice, tuple) else lattice
    if n_sites <= 24:
        start = time.perf_counter()
        exact = spins.exact_ground_energy(model, lattice, field=field)
        exact_time = time.perf_counter() - start
        reference = "Lanczos (mlpot.quantum.spins.exact_ground_energy)"
    else:
        exact, exact_time = spins.bethe_ansatz_energy(n_sites), 0.0
        reference = f"finite-N Bethe ansatz, N = {n_sites} (mlpot.quantum.spins.bethe_ansatz_energy)"
    result = ground_state(model, lattice, field=field, seed=args.seed, **options)
    row = {
        "model": model, "lattice": list(lattice) if isinstance(lattice, tuple) else [lattice], "field": field,
        "n_sites": n_sites, "ansatz": result.settings["ansatz"], "alpha": result.settings["alpha"],
        "n_parameters": result.n_parameters, "n_samples": result.settings["n_samples"],
        "n_iterations": result.settings["n_iterations"], "optimizer": result.settings["optimizer"],
        "learning_rate": result.settings["learning_rate"], "diag_shift": result.settings["diag_shift"],
        "energy": result.energy, "error": result.error, "variance": result.variance, "exact": exact,
        "reference": reference, "relative_error": (result.energy - exact) / abs(exact),
        "sigma_from_exact": (result.energy - exact) / result.error if result.error > 0 else None,
        "energy_per_site": result.energy / n_sites, "exact_per_site": exact / n_sites,
        "infinite_chain_per_site": spins.HEISENBERG_INFINITE_CHAIN if model == "heisenberg" and len(
            lattice if isinstance(lattice, tuple) else [lattice]) == 1 else None,
        "acceptance": result.acceptance, "wall_time_s": result.wall_time_s, "exact_time_s": exact_time,
        "target": target, "history": result.history["energy"],
    }
    if "relative_error" in target:
        row["meets_target"] = abs(row["relative_error"]) <= target["relative_error"]
    else:
        row["meets_target"] = abs(row["energy_per_site"] - row["exact_per_site"]) <= target["energy_per_site_error"]
    print(f"{name}: E = {result.energy:.6f} ± {result.error:.6f}  exact {exact:.6f}  rel. error "
          f"{row['relative_error']:.2e}  var {result.variance:.2e}  {result.wall_time_s:.0f} s  "
          f"target {'met' if row['meets_target'] else 'MISSED'}")
    return row


def run_waves() -> dict:
    out = {}
    x0, k0, sigma0 = 0.0, 2.0, 1.0
    network = waves.free_packet(x0, k0, sigma0)
    times = [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
    widths = []
    for t in times:
        exact = sigma0 * math.sqrt(1.0 + (t / (2.0 * sigma0**2)) ** 2)
        measured = float(waves.packet_width(network, t, x0 + k0 * t, 10.0 * exact)[0])
        widths.append({"t": t, "sigma": measured, "analytic": exact, "relative_error": measured / exact - 1.0})
    generator = torch.Generator().manual_seed(0)
    x = 20.0 * torch.rand(200, generator=generator, dtype=torch.float64) - 5.0
    t = 8.0 * torch.rand(200, generator=generator, dtype=torch.float64)
    out["free_packet_1d"] = {"x0": x0, "k0": k0, "sigma0": sigma0, "n_waves": network.wave_vectors.shape[0],
                             "widths": widths,
                             "max_residual": float(waves.schrodinger_residual(network, x, t).abs().max())}
    network2 = waves.free_packet((0.0, 0.0), (1.0, -0.5), (1.0, 1.0))
    t2 = 2.0
    exact2 = math.sqrt(1.0 + (t2 / 2.0) ** 2)
    measured2 = waves.packet_width(network2, t2, (t2, -0.5 * t2), 10.0, n_points=200**2).tolist()
    points = 6.0 * torch.rand(100, 2, generator=generator, dtype=torch.float64) - 3.0
    out["free_packet_2d"] = {"n_waves": network2.wave_vectors.shape[0], "t": t2, "sigma": measured2, "analytic": exact2,
                             "max_relative_error": max(abs(s / exact2 - 1.0) for s in measured2),
                             "max_residual": float(waves.schrodinger_residual(
                                 network2, points,
                                 2.0 * torch.rand(100, generator=generator, dtype=torch.float64)).abs().max())}
    start = time.perf_counter()
    energies, _ = pinn.bound_states(lambda x: 0.5 * x**2, n_states=4)
    out["harmonic_oscillator"] = {"omega": 1.0, "energies": energies, "exact": [n + 0.5 for n in range(4)],
                                  "max_error": max(abs(e - (n + 0.5)) for n, e in enumerate(energies)),
                                  "wall_time_s": time.perf_counter() - start}
    barrier = []
    for energy in (0.5, 1.0, 1.5):
        fit = pinn.scattering_transmission(lambda x: ((x >= 0) & (x <= 1.0)).to(torch.float64), energy, [0.0, 1.0])
        exact = pinn.square_barrier_transmission(energy, 1.0, 1.0)
        barrier.append({"energy": energy, "transmission": fit["transmission"], "analytic": exact,
                        "relative_error": fit["transmission"] / exact - 1.0,
                        "flux_defect": fit["transmission"] + fit["reflection"] - 1.0})
    out["square_barrier"] = {"height": 1.0, "width": 1.0, "rows": barrier}
    x_disp = 1.5  # coherent state in V = x²/2: centre x0 cos t, width 1/√2 at all times
    evolution = pinn.evolve(lambda x: 0.5 * x**2, lambda x: math.pi**-0.25 * torch.exp(-0.5 * (x - x_disp) ** 2))
    grid = torch.linspace(-10, 10, 4001, dtype=torch.float64)
    coherent = []
    for t in (0.0, 1.0, math.pi, 10.0):
        density = evolution(grid, t).abs() ** 2
        mean = float((density * grid).sum() / density.sum())
        width = math.sqrt(float((density * (grid - mean) ** 2).sum() / density.sum()))
        coherent.append({"t": t, "centre": mean, "analytic_centre": x_disp * math.cos(t), "width": width,
                         "analytic_width": math.sqrt(0.5)})
    out["coherent_state"] = {"x0": x_disp, "rows": coherent,
                             "max_error": max(max(abs(r["centre"] - r["analytic_centre"]),
                                                  abs(r["width"] - r["analytic_width"])) for r in coherent)}
    for row in widths:
        print(f"packet t={row['t']:5.1f}: σ {row['sigma']:.12f}  analytic {row['analytic']:.12f}  "
              f"rel {row['relative_error']:.1e}")
    print(f"1D residual max {out['free_packet_1d']['max_residual']:.1e}; 2D width rel. error "
          f"{out['free_packet_2d']['max_relative_error']:.1e}, residual {out['free_packet_2d']['max_residual']:.1e}")
    print("harmonic oscillator:", ", ".join(f"{e:.8f}" for e in energies))
    print(f"coherent state in x²/2: largest error of centre and width {out['coherent_state']['max_error']:.1e}")
    for row in barrier:
        print(f"barrier E={row['energy']}: T {row['transmission']:.8f}  analytic {row['analytic']:.8f}  "
              f"rel {row['relative_error']:.1e}")
    return out


def write_plots(data: dict, folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    runs = [(name, data["nqs"][name]) for name in NQS_RUNS if name in data.get("nqs", {})]
    if runs:
        figure, axes = plt.subplots(1, len(runs), figsize=(4 * len(runs), 3.4), squeeze=False)
        for axis, (name, row) in zip(axes[0], runs):
            history = [e / row["n_sites"] for e in row["history"]]
            axis.plot(range(1, len(history) + 1), history, lw=0.8, label="NQS (training estimate)")
            axis.axhline(row["exact_per_site"], color="k", ls="--", lw=1, label="exact")
            axis.set_ylim(row["exact_per_site"] - 0.01, row["exact_per_site"] + 0.03)
            axis.set_title(name)
            axis.set_xlabel("iteration")
        axes[0][0].set_ylabel("E / N (J)")
        axes[0][0].legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(folder / "nqs_convergence.png", dpi=120)
        plt.close(figure)
    if "waves" in data:
        rows = data["waves"]["free_packet_1d"]["widths"]
        sigma0 = data["waves"]["free_packet_1d"]["sigma0"]
        t = torch.linspace(0, max(r["t"] for r in rows), 200, dtype=torch.float64)
        figure, axis = plt.subplots(figsize=(4.5, 3.4))
        axis.plot(t, sigma0 * torch.sqrt(1 + (t / (2 * sigma0**2)) ** 2), "k-", lw=1, label="σ₀√(1+(ħt/2mσ₀²)²)")
        axis.plot([r["t"] for r in rows], [r["sigma"] for r in rows], "o", label="plane-wave network")
        axis.set_xlabel("t (ħ = m = 1)")
        axis.set_ylabel("σ(t)")
        axis.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(folder / "packet_width.png", dpi=120)
        plt.close(figure)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    data = json.loads(args.json.read_text()) if args.json.exists() else {}
    data.setdefault("nqs", {})
    for section in args.sections:
        start = time.perf_counter()
        if section == "exact":
            data["exact"] = run_exact()
        elif section == "waves":
            data["waves"] = run_waves()
        else:
            data["nqs"][section] = run_nqs(section, args)
            data["nqs"][section]["command"] = shlex.join(["python", *sys.argv])
            data["nqs"][section]["quick"] = args.quick
        print(f"[{section}: {time.perf_counter() - start:.0f} s]")
        data.update(
            command=shlex.join(["python", *sys.argv]), torch_threads=args.threads, torch_version=torch.__version__,
            machine=f"{platform.machine()}, {platform.processor() or 'cpu'}",
            note="CPU timings on 2 cores shared with about 7 other jobs: upper bounds, expect noise of ±50%.",
        )
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=1) + "\n")  # after every section: long runs keep partial results
    if not args.no_plots:
        write_plots(data, args.plots)
    return 0


if __name__ == "__main__":
    sys.exit(main())
