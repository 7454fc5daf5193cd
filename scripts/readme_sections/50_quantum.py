"""README section: mlpot.quantum (NQS ground states, exact references, plane-wave Schrödinger nets).

Rendered from benchmarks/results/quantum.json (written by scripts/quantum_benchmarks.py).
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "quantum.json"
TITLES = {"tfim20": "1D TFIM h = 1, N = 20", "heis16": "1D Heisenberg, N = 16",
          "heis4x4": "2D Heisenberg 4×4", "heis40": "1D Heisenberg, N = 40"}


def _target(row: dict) -> str:
    target = row["target"]
    if "relative_error" in target:
        text = f"rel. ≤ {target['relative_error']:.0e}"
    else:
        text = f"E/N within {target['energy_per_site_error']:.0e}"
    return f"{text}: {'met' if row['meets_target'] else 'missed'}"


def render() -> list[str]:
    if not RESULTS.exists():
        return []
    data = json.loads(RESULTS.read_text())
    lines = ["### Quantum: neural quantum states and plane-wave Schrödinger networks", ""]
    runs = [(name, row) for name, row in data.get("nqs", {}).items() if not row.get("quick")]
    if runs:
        lines += [
            "Variational Monte Carlo, periodic lattices, translation-symmetric RBM (α = 2), SR; "
            "energies in units of J. Reference: Lanczos for N ≤ 20, the finite-N Bethe ansatz for N = 40.",
            "",
            "| system | parameters | samples × iterations | energy ± 1σ | exact | relative error | (E − exact)/σ "
            "| time (s) | target |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, row in runs:
            sigmas = "—" if row["sigma_from_exact"] is None else f"{row['sigma_from_exact']:+.1f}"
            lines.append(
                f"| {TITLES.get(name, name)} | {row['n_parameters']} | {row['n_samples']} × {row['n_iterations']} | "
                f"{row['energy']:.5f} ± {row['error']:.5f} | {row['exact']:.5f} | {row['relative_error']:.1e} | "
                f"{sigmas} | {row['wall_time_s']:.0f} | {_target(row)} |")
        commands = sorted({row["command"] for _, row in runs})
        if (RESULTS.parent / "quantum" / "nqs_convergence.png").exists():
            lines += ["", "![NQS energy vs iteration](benchmarks/results/quantum/nqs_convergence.png)"]
        lines += ["", "Commands: " + "; ".join(f"`{c}`" for c in commands) + ".",
                  f"{data.get('note', '')} NetKet's example scripts for these systems (1D TFIM and Heisenberg, "
                  "N = 20, 1000 samples × 300 SR steps) publish no runtimes, so no timing comparison is quoted.", ""]
    exact = data.get("exact")
    if exact:
        worst = max(abs(r["difference"]) for r in exact["tfim_jordan_wigner"])
        sizes = ", ".join(str(r["n_sites"]) for r in exact["tfim_jordan_wigner"])
        lines += [f"Exact references: Lanczos vs the Jordan–Wigner closed form (TFIM h = 1, N = {sizes}): "
                  f"largest difference {worst:.1e}. Heisenberg chain E/N: "
                  + ", ".join(f"N={r['n_sites']} {r['lanczos_per_site']:.5f}" for r in exact["heisenberg_chain"])
                  + ", " + ", ".join(f"N={r['n_sites']} {r['bethe_per_site']:.5f} (Bethe)"
                                     for r in exact["heisenberg_bethe_large_n"])
                  + f" → 1/4 − ln 2 = {exact['heisenberg_infinite_chain_per_site']:.5f}.", ""]
    waves = data.get("waves")
    if waves:
        packet = waves["free_packet_1d"]
        worst = max(abs(r["relative_error"]) for r in packet["widths"])
        oscillator = waves["harmonic_oscillator"]
        barrier = waves["square_barrier"]["rows"]
        lines += [
            f"Plane-wave networks: free Gaussian packet ({packet['n_waves']} waves) σ(t) within {worst:.0e} relative "
            f"of σ₀√(1 + (ħt/2mσ₀²)²) up to t = {max(r['t'] for r in packet['widths']):g}, Schrödinger residual "
            f"{packet['max_residual']:.0e} (2D: {waves['free_packet_2d']['max_relative_error']:.0e}, "
            f"{waves['free_packet_2d']['max_residual']:.0e}). Physics-informed bound states of ½x²: "
            + ", ".join(f"{e:.6f}" for e in oscillator["energies"])
            + f" (largest error {oscillator['max_error']:.0e}). Square-barrier transmission (V₀ = 1, a = 1): "
            + ", ".join(f"E = {r['energy']:g}: {r['transmission']:.6f} vs {r['analytic']:.6f}" for r in barrier) + "."
            + (f" Time-dependent solver, coherent state in ½x²: centre and width within "
               f"{waves['coherent_state']['max_error']:.0e} of x₀cos t and 1/√2." if "coherent_state" in waves else ""),
            "",
            f"`{data['command']}` (the last run; each row above records its own command in the JSON).",
            "",
        ]
    return lines
