#!/usr/bin/env python
"""Discovering Hamiltonians: symbolic H, Koopman spectra and the AFM cantilever (issue #24).

1. Symbolic discovery on the pendulum, Duffing, Hénon–Heiles and Kepler problems, from the exact
   flow (clean) and from trajectories with 1 % Gaussian noise on q and p (derivatives by
   Savitzky–Golay): the recovered law, whether exactly the true terms were found, the largest
   relative coefficient error.
2. Koopman (EDMD): harmonic oscillator eigenvalues against exp(±iωΔt), the pendulum's frequency
   at amplitude 2.0 rad against 2π/(4K(k)) and a damped oscillator's decay rate.
3. AFM cantilever (Q = 100 and 500): a port-Hamiltonian network trained on ringdowns, the learned
   Q, Δf/f₀ against −F_ts'/(2k) of the ground truth, the far-field shift, the small-amplitude
   resonance curve against the truth, and the largest dH/dt without drive over random states.

Outputs (relative to the working directory; run from the repository root):
    benchmarks/results/discovery.json      every number and setting (or --json PATH)
    benchmarks/results/discovery/*.png     phase portrait, spectrum, AFM curves (or --plots DIR)

Usage:
    python scripts/discovery_benchmarks.py            # ~3 min on 2 busy CPU cores
    python scripts/discovery_benchmarks.py --quick    # fewer training epochs (~1 min)
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

import numpy as np
import torch
from scipy.special import ellipk

from mlpot.hamiltonian import afm
from mlpot.hamiltonian.cli import plot_level_sets, plot_spectrum
from mlpot.hamiltonian.discovery import discover
from mlpot.hamiltonian.integrators import leapfrog
from mlpot.hamiltonian.koopman import edmd
from mlpot.hamiltonian.reference_problems import REFERENCE_PROBLEMS, add_noise
from mlpot.progress import progress

AFM_BASES_TRAIN = [1.3, 1.5, 1.8, 2.2, 3.0, 5.0, 10.0, 30.0]
AFM_BASES_EVAL = [1.3, 1.5, 1.8, 2.2, 3.0]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer AFM training epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=Path("benchmarks") / "results" / "discovery.json")
    parser.add_argument("--plots", type=Path, default=Path("benchmarks") / "results" / "discovery")
    parser.add_argument("--threads", type=int, default=1)
    return parser.parse_args(argv)


def score(result, truth: dict) -> dict:
    errors = {name: abs(result.terms[name] / value - 1) for name, value in truth.items() if name in result.terms}
    return {"formula": result.formula(), "terms": result.terms, "errors": result.errors,
            "correct_terms": set(result.terms) == set(truth),
            "max_relative_error": max(errors.values()) if len(errors) == len(truth) else None}


def run_discovery(seed: int, plots: Path) -> dict:
    out = {}
    for name, problem in REFERENCE_PROBLEMS.items():
        q, p, dq, dp = problem.simulate()
        clean = discover(q, p, dq, dp, library=problem.library, seed=seed)
        rng = np.random.default_rng(seed)
        noisy = discover(add_noise(q, 0.01, rng), add_noise(p, 0.01, rng), dt=problem.dt, library=problem.library,
                         seed=seed)
        library = problem.library if isinstance(problem.library, str) else "poly2 + user term 1/r"
        out[name] = {"law": problem.law, "library": library, "true_terms": problem.true_terms,
                     "data": {"trajectories": q.shape[0], "steps": q.shape[1], "dt": problem.dt},
                     "clean": score(clean, problem.true_terms), "noise_1pct": score(noisy, problem.true_terms)}
        print(f"{name:13s} clean: {clean.formula()}\n{'':13s} 1% noise: {noisy.formula()}")
        if name == "pendulum":
            plot_level_sets(noisy, q, p, plots / "pendulum_level_sets.png")
    return out


def run_koopman(plots: Path) -> dict:
    omega, dt = 1.7, 0.1
    t = np.arange(200) * dt
    x = np.stack([np.cos(omega * t + 0.3), -omega * np.sin(omega * t + 0.3)], -1)
    ho = edmd(x, dt, dictionary="linear")
    expected = np.exp(1j * omega * dt * np.sign(ho.eigenvalues.imag))
    sigma, wd = 0.05, 1.3
    xd = np.exp(-sigma * t)[:, None] * np.stack([np.cos(wd * t), -sigma * np.cos(wd * t) - wd * np.sin(wd * t)], -1)
    damped = edmd(xd, dt, dictionary="linear")
    theta0, dtp, sub, n = 2.0, 0.05, 20, 800
    path = leapfrog((lambda q, p: torch.sin(q), lambda q, p: p), torch.tensor([[theta0, 0.0]], dtype=torch.float64),
                    dtp / sub, (n - 1) * sub)[::sub, 0].numpy()
    k = math.sin(theta0 / 2)
    exact = 2 * math.pi / (4 * ellipk(k * k))
    pend = edmd(path, dtp, dictionary="poly3")
    plot_spectrum(pend, plots / "pendulum_koopman_spectrum.png")
    out = {
        "harmonic": {"dictionary": "linear", "omega": omega, "dt": dt,
                     "max_eigenvalue_error": float(np.abs(ho.eigenvalues - expected).max())},
        "pendulum": {"dictionary": "poly3", "amplitude_rad": theta0, "dt": dtp, "steps": n, "exact": exact,
                     "edmd": pend.dominant_frequency(), "relative_error": pend.dominant_frequency() / exact - 1},
        "damped": {"dictionary": "linear", "decay_rate": sigma, "edmd": damped.dominant_decay_rate(),
                   "relative_error": damped.dominant_decay_rate() / sigma - 1},
    }
    print(f"koopman: harmonic |Δλ| = {out['harmonic']['max_eigenvalue_error']:.1e}, "
          f"pendulum ω = {pend.dominant_frequency():.8f}"
          f" (exact {exact:.8f}), damped σ = {damped.dominant_decay_rate():.10f}")
    return out


def run_afm(q_factor: float, epochs: int, seed: int, plots: Path) -> dict:
    truth = afm.Cantilever(q_factor)
    start = time.perf_counter()
    data = afm.cantilever_data(AFM_BASES_TRAIN, quality_factor=q_factor, n_per_base=4, seed=seed)
    model = afm.fit_cantilever(data, epochs=epochs, seed=seed)
    train_s = time.perf_counter() - start
    rows = []
    shifts = afm.frequency_shift(model, AFM_BASES_EVAL)
    for base, shift in zip(AFM_BASES_EVAL, shifts):
        z_eq = float(afm.equilibrium(truth, base)[0][0, 0])
        gradient = float(truth.force_gradient(torch.tensor(z_eq)))
        rows.append({"base_nm": base, "distance_nm": z_eq, "force_gradient_over_k": gradient,
                     "learned_shift": float(shift), "formula_shift": -gradient / 2,
                     "exact_shift": math.sqrt(1 - gradient) - 1, "relative_error": float(shift) / (-gradient / 2) - 1})
    far = afm.frequency_shift(model, [100.0, 300.0]).tolist()  # the reference is at 1 µm
    omegas = 1 + np.linspace(-5, 5, 201) / q_factor
    amp_m, ph_m = afm.resonance_curve(model, omegas)
    amp_t, ph_t = afm.resonance_curve(truth, omegas)
    gen = torch.Generator().manual_seed(seed)
    states = torch.cat([0.5 + 30 * torch.rand(10000, 1, generator=gen, dtype=torch.float64),
                        2 * torch.randn(10000, 1, generator=gen, dtype=torch.float64)], -1)
    rate = model.energy_rate(states).detach()
    learned_q = afm.quality_factor(model)
    _plot_afm(q_factor, rows, omegas, (amp_m, ph_m), (amp_t, ph_t), plots / f"afm_Q{int(q_factor)}.png")
    print(f"AFM Q={q_factor:g}: learned Q {learned_q:.2f}, max |Δf error| "
          f"{max(abs(r['relative_error']) for r in rows):.2%}, far shift {max(map(abs, far)):.1e}, {train_s:.0f} s")
    return {"quality_factor": q_factor, "learned_quality_factor": learned_q,
            "quality_factor_error": learned_q / q_factor - 1, "frequency_shift": rows, "far_shift": far,
            "far_shift_truth": afm.frequency_shift(truth, [100.0, 300.0]).tolist(), "far_distances_nm": [100.0, 300.0],
            "resonance_max_amplitude_error": float(np.abs(amp_m / amp_t - 1).max()),
            "resonance_max_phase_error_rad": float(np.abs(ph_m - ph_t).max()),
            "max_energy_rate_without_drive": float(rate.max()), "epochs": epochs, "train_seconds": train_s,
            "training_data": {"base_positions_nm": AFM_BASES_TRAIN, "trajectories": len(data),
                              "points": int(data.z.shape[0] * data.z.shape[1])},
            "learned": {"mass": float(model.energy.mass.detach()), "stiffness": float(model.energy.stiffness.detach()),
                        "damping": float(model.damping.detach()), "G": model.input_matrix().detach().ravel().tolist()},
            "parameters": truth.parameters()}


def _plot_afm(q_factor, rows, omegas, learned, truth, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    d = [r["distance_nm"] for r in rows]
    axes[0].plot(d, [r["formula_shift"] for r in rows], "k-", label="−F′/(2k), ground truth")
    axes[0].plot(d, [r["learned_shift"] for r in rows], "o", label="learned model")
    axes[0].set(xlabel="tip–sample distance (nm)", ylabel="Δf / f₀", title=f"frequency shift, Q = {q_factor:g}")
    axes[0].legend()
    for ax, i, label in ((axes[1], 0, "amplitude (nm per nm of base)"), (axes[2], 1, "phase (rad)")):
        ax.plot(omegas, truth[i], "k-", label="ground truth")
        ax.plot(omegas, learned[i], "--", label="learned")
        ax.set(xlabel="Ω / ω₀", ylabel=label)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    args.plots.mkdir(parents=True, exist_ok=True)
    command = "python scripts/discovery_benchmarks.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    epochs = 500 if args.quick else 2000
    results = {"command": command.strip(), "quick": args.quick, "seed": args.seed,
               "environment": {"python": platform.python_version(), "torch": torch.__version__,
                               "machine": platform.machine(), "threads": args.threads},
               "note": "timings measured on 2 CPU cores shared with other jobs (under load)"}
    start = time.perf_counter()
    with progress(total=4, desc="discovery benchmarks", unit="part") as bar:
        results["discovery"] = run_discovery(args.seed, args.plots)
        bar.update(1)
        results["koopman"] = run_koopman(args.plots)
        bar.update(1)
        results["afm"] = {}
        for q_factor in (100.0, 500.0):
            results["afm"][f"Q{int(q_factor)}"] = run_afm(q_factor, epochs, args.seed, args.plots)
            bar.update(1)
    results["seconds"] = time.perf_counter() - start
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.json} and plots in {args.plots}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
