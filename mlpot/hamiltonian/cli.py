"""``mlpot hnn SYSTEM``: train baseline and HNN (or the port-Hamiltonian models), roll out, plot.

    mlpot hnn mass-spring --quick --out runs/hnn
    mlpot hnn duffing --epochs 1000
    mlpot hnn discover DATA.npz --library poly4+trig     # symbolic H from trajectories
    mlpot hnn koopman DATA.npz --dictionary poly3        # Koopman spectrum by EDMD

SYSTEM is ``mass-spring``, ``pendulum``, ``two-body`` (baseline vs HNN, as in the benchmark) or
``duffing`` / ``driven-duffing`` (port-HNN, damped HNN, HNN and baseline). It writes
``OUT/SYSTEM.png`` and ``OUT/SYSTEM.json`` and prints the metrics. The whole table is
``scripts/hnn_benchmarks.py``.

``discover`` and ``koopman`` read an ``.npz`` with arrays ``q`` and ``p`` ([n_steps, d] or
[n_traj, n_steps, d]) and the sampling interval ``dt`` (a scalar array; or ``--dt``);
``discover`` also takes ``dq_dt`` and ``dp_dt`` if present, and ``koopman`` a ``snapshots``
array instead of q and p. They print the law or the spectrum and write ``OUT/discover.json`` +
``OUT/discover.png`` (phase portrait with the recovered level sets) or ``OUT/koopman.json`` +
``OUT/koopman.png`` (eigenvalues on the unit circle).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlpot.files import atomic_write_text, refuse_to_replace_run

__all__ = ["register_cli", "run_hnn", "run_analysis", "plot_level_sets", "plot_spectrum"]

SYSTEM_CHOICES = ("mass-spring", "pendulum", "two-body", "duffing", "driven-duffing")
ANALYSIS_CHOICES = ("discover", "koopman")


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``hnn`` sub-command."""
    p = subparsers.add_parser(
        "hnn",
        help="train, roll out and plot a Hamiltonian neural network on a toy system",
        description="Train the baseline and the HNN (port-Hamiltonian models for duffing) on SYSTEM, "
        "roll them out with RK4 and the implicit midpoint rule, and plot phase portraits and energy "
        "against time (docs/hamiltonian.md).",
    )
    p.add_argument("system", choices=SYSTEM_CHOICES + ANALYSIS_CHOICES,
                   help="toy system, or 'discover' / 'koopman' followed by DATA.npz")
    p.add_argument("data", nargs="?", default=None, help="DATA.npz for discover / koopman")
    p.add_argument("--library", default="poly4+trig", help="discover: library, e.g. poly4+trig, poly2+1/r")
    p.add_argument("--dictionary", default="poly3", help="koopman: EDMD dictionary (linear, polyN, rbfM)")
    p.add_argument("--dt", type=float, default=None, help="sampling interval if DATA.npz has no 'dt'")
    p.add_argument("--quick", action="store_true", help="small networks, few epochs (seconds)")
    p.add_argument(
        "--out", default="runs/hnn", help="output directory for SYSTEM.png and SYSTEM.json (default runs/hnn)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace the results of an earlier run in --out")
    p.add_argument("--epochs", type=int, default=None, help="override the number of training epochs")
    p.add_argument("--horizon", type=float, default=None, help="length of the long rollouts (time units)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.set_defaults(func=run_hnn)


def run_hnn(args: argparse.Namespace) -> int:
    """Entry point of ``mlpot hnn``."""
    import torch

    from mlpot.hamiltonian.experiments import (
        CONSERVATIVE_SYSTEMS,
        run_conservative,
        run_duffing,
        settings_for,
        write_json,
    )

    # Nothing replaces an earlier run's results unless asked (checked before any training).
    earlier = Path(args.out) / f"{args.system}.json"
    refuse_to_replace_run(args.out, [earlier] if earlier.exists() else [], False, args.overwrite,
                          "an earlier run's results", resumable=False)
    if args.system in ANALYSIS_CHOICES:
        return run_analysis(args)
    if args.data is not None:
        raise ValueError(f"unexpected argument {args.data!r}")
    if args.epochs is not None and args.epochs < 1:
        raise ValueError("--epochs must be >= 1")
    if args.horizon is not None and not args.horizon > 0:
        raise ValueError("--horizon must be positive")
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


def _load(path: str, dt_override: float | None):
    """Arrays of DATA.npz (no pickles) and the sampling interval."""
    import numpy as np

    if path is None:
        raise ValueError("give the data file: mlpot hnn discover|koopman DATA.npz")
    with np.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    dt = dt_override if dt_override is not None else (float(arrays["dt"]) if "dt" in arrays else None)
    return arrays, dt


def run_analysis(args: argparse.Namespace) -> int:
    """``mlpot hnn discover DATA.npz`` and ``mlpot hnn koopman DATA.npz``."""
    import json
    import shlex

    import numpy as np

    arrays, dt = _load(args.data, args.dt)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    option = ["--library", args.library] if args.system == "discover" else ["--dictionary", args.dictionary]
    command = ["mlpot", "hnn", args.system, str(args.data), *option, "--out", str(args.out)]
    record = {"command": shlex.join(command + ([] if args.dt is None else ["--dt", str(args.dt)])),
              "data": str(args.data), "dt": dt}
    if args.system == "discover":
        from mlpot.hamiltonian.discovery import discover

        if "q" not in arrays or "p" not in arrays:
            raise ValueError(f"{args.data} must hold arrays 'q' and 'p' (found {sorted(arrays)})")
        result = discover(arrays["q"], arrays["p"], arrays.get("dq_dt"), arrays.get("dp_dt"), dt=dt,
                          library=args.library)
        print(result.formula())
        record.update(result.to_dict(), library_spec=args.library)
        record["figure"] = str(plot_level_sets(result, arrays["q"], arrays["p"], out / "discover.png"))
    else:
        from mlpot.hamiltonian.koopman import edmd

        if dt is None:
            raise ValueError("koopman needs the sampling interval: a 'dt' array in DATA.npz or --dt")
        if "snapshots" in arrays:
            snapshots = arrays["snapshots"]
        elif "q" in arrays and "p" in arrays:
            snapshots = np.concatenate([np.atleast_2d(arrays["q"].T).T, np.atleast_2d(arrays["p"].T).T], axis=-1)
        else:
            raise ValueError(f"{args.data} must hold 'snapshots' or 'q' and 'p' (found {sorted(arrays)})")
        result = edmd(snapshots, dt, dictionary=args.dictionary)
        try:
            frequency = result.dominant_frequency()
        except ValueError:  # no oscillating eigenvalue
            frequency = 0.0
        record.update(result.to_dict(), dictionary=args.dictionary, dominant_frequency=frequency,
                      dominant_decay_rate=result.dominant_decay_rate())
        print(f"dominant frequency {frequency:.8g} rad per time unit, "
              f"decay rate {record['dominant_decay_rate']:.3g} per time unit")
        for (re, im), w, a in list(zip(record["eigenvalues"], record["frequencies"], record["amplitudes"]))[:6]:
            print(f"  lambda = {re:+.8f} {im:+.8f}i   omega = {w:+.6g}   amplitude {a:.3g}")
        record["figure"] = str(plot_spectrum(result, out / "koopman.png"))
    path = atomic_write_text(out / f"{args.system}.json", json.dumps(record, indent=2) + "\n")
    print(f"wrote {path} and {record['figure']}")
    return 0


def plot_level_sets(result, q, p, path: Path) -> Path:
    """Phase portrait (q1, p1) of the data over level sets of the recovered H (other coordinates at their median)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    d = result.dim
    qf, pf = np.asarray(q, float).reshape(-1, d), np.asarray(p, float).reshape(-1, d)
    grid_q = np.linspace(qf[:, 0].min(), qf[:, 0].max(), 120)
    grid_p = np.linspace(pf[:, 0].min(), pf[:, 0].max(), 120)
    Q, P = np.meshgrid(grid_q, grid_p)
    qs = np.tile(np.median(qf, 0), (Q.size, 1))
    ps = np.tile(np.median(pf, 0), (Q.size, 1))
    qs[:, 0], ps[:, 0] = Q.ravel(), P.ravel()
    with np.errstate(all="ignore"):
        H = np.ma.masked_invalid(result.hamiltonian(qs, ps).reshape(Q.shape))
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.contour(Q, P, H, levels=20, cmap="viridis", linewidths=0.8)
    ax.plot(qf[:, 0], pf[:, 0], ".", ms=1.5, color="k", alpha=0.4)
    names = ("q", "p") if d == 1 else ("q1", "p1")
    ax.set(xlabel=names[0], ylabel=names[1], title=result.formula(3)[:80])
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_spectrum(result, path: Path) -> Path:
    """Koopman eigenvalues in the complex plane with the unit circle (marker area ∝ amplitude)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(5, 5))
    angle = np.linspace(0, 2 * np.pi, 400)
    ax.plot(np.cos(angle), np.sin(angle), "k-", lw=0.8)
    size = 20 + 200 * result.amplitudes / max(result.amplitudes.max(), 1e-300)
    ax.scatter(result.eigenvalues.real, result.eigenvalues.imag, s=size, alpha=0.7)
    ax.set(xlabel="Re λ", ylabel="Im λ", aspect="equal",
           title=f"EDMD spectrum, dt = {result.dt:g}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
