"""Figures: the heat-capacity analysis (C_V(T) with error bars, the finite-size extrapolation,
block averaging) and an MD run's log (temperature and energies against time).

The heat-capacity functions take the JSON-ready dictionary of :meth:`mlpot.analysis.workflow.HeatCapacityStudy.as_dict`
(so a figure can be redrawn from a saved JSON file) and write a PNG. matplotlib runs on the Agg backend.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["plot_heat_capacity", "plot_blocking", "plot_thermo_log"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_heat_capacity(study: dict | str | Path, path: str | Path, title: str | None = None) -> Path:
    """Draw C_V per atom vs T (every size, and c_∞) and C_V/N vs 1/N with the fits; write a PNG.

    Args:
        study: ``HeatCapacityStudy.as_dict()``, or the path of its JSON file.
        path: the PNG to write.
        title: figure title (default: the structure's formula).

    Returns:
        The path written.
    """
    if not isinstance(study, dict):
        study = json.loads(Path(study).read_text())
    plt = _pyplot()
    temperatures = study["temperatures"]
    fig, (ax_t, ax_n) = plt.subplots(1, 2, figsize=(11, 4.3), constrained_layout=True)

    sizes = sorted({s["n_atoms"] for entry in temperatures for s in entry["sizes"]})
    colours = plt.cm.viridis(np.linspace(0.1, 0.8, max(len(sizes), 1)))
    t_all = [entry["temperature_K"] for entry in temperatures]
    span = (max(t_all) - min(t_all)) or max(t_all)
    for k, n_atoms in enumerate(sizes):
        ts, cs, es = [], [], []
        for entry in temperatures:
            for s in entry["sizes"]:
                if s["n_atoms"] == n_atoms:
                    ts.append(entry["temperature_K"] + (k - (len(sizes) - 1) / 2) * 0.015 * span)
                    cs.append(s["kB_per_atom"]["value"])
                    es.append(s["kB_per_atom"]["error"])
        ax_t.errorbar(ts, cs, yerr=es, fmt="o", ms=4, capsize=3, color=colours[k], label=f"N = {n_atoms}")
    fitted = [(e["temperature_K"], e["finite_size"]) for e in temperatures if "finite_size" in e]
    if fitted:
        ax_t.errorbar(
            [t for t, _ in fitted],
            [f["c_inf_kB_per_atom"]["value"] for _, f in fitted],
            yerr=[f["c_inf_kB_per_atom"]["error"] for _, f in fitted],
            fmt="s",
            ms=6,
            capsize=4,
            color="crimson",
            label="N → ∞ (fit)",
        )
    ax_t.axhline(3.0, color="grey", ls="--", lw=1, label="Dulong–Petit, 3 k_B")
    ax_t.set_xlabel("T (K)")
    ax_t.set_ylabel("C_V per atom (k_B)")
    ax_t.set_title("heat capacity vs temperature (1σ error bars)")
    ax_t.legend(fontsize=8)

    t_colours = plt.cm.plasma(np.linspace(0.1, 0.8, max(len(temperatures), 1)))
    for k, entry in enumerate(temperatures):
        inv_n = [1.0 / s["n_atoms"] for s in entry["sizes"]]
        c = [s["kB_per_atom"]["value"] for s in entry["sizes"]]
        e = [s["kB_per_atom"]["error"] for s in entry["sizes"]]
        label = f"{entry['temperature_K']:g} K"
        ax_n.errorbar(inv_n, c, yerr=e, fmt="o", ms=4, capsize=3, color=t_colours[k])
        if "finite_size" in entry:
            fit = entry["finite_size"]
            c_inf, b = fit["c_inf_kB_per_atom"]["value"], fit["slope_kB"]["value"]
            x = np.linspace(0.0, max(inv_n) * 1.05, 50)
            ax_n.plot(x, c_inf + b * x, color=t_colours[k], lw=1)
            ax_n.errorbar([0.0], [c_inf], yerr=[fit["c_inf_kB_per_atom"]["error"]], fmt="s", ms=6, capsize=4,
                          color=t_colours[k])
            label += f": c_∞ = {c_inf:.3f} ± {fit['c_inf_kB_per_atom']['error']:.3f} k_B"
        ax_n.plot([], [], "o", color=t_colours[k], label=label)
    ax_n.axhline(3.0, color="grey", ls="--", lw=1)
    ax_n.set_xlabel("1/N")
    ax_n.set_ylabel("C_V per atom (k_B)")
    ax_n.set_title("finite-size extrapolation C_V/N = c_∞ + b/N")
    ax_n.legend(fontsize=8)
    settings = study.get("settings", {})
    fig.suptitle(title or f"{settings.get('structure_formula', '')} — {settings.get('potential', '')}".strip(" —"))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_blocking(levels, path: str | Path, title: str = "block averaging") -> Path:
    """The Flyvbjerg–Petersen plot: standard error of the mean vs block size, plateau marked.

    Args:
        levels: :func:`mlpot.analysis.blocking_levels` output.
        path: the PNG to write.
    """
    plt = _pyplot()
    sizes = np.array([level.block_size for level in levels])
    errors = np.sqrt([level.variance_of_mean for level in levels])
    spread = 0.5 * np.array([level.variance_of_mean_error for level in levels]) / np.maximum(errors, 1e-300)
    fig, ax = plt.subplots(figsize=(5, 3.5), constrained_layout=True)
    ax.errorbar(sizes, errors, yerr=spread, fmt="o-", ms=4, capsize=3)
    plateau = next((level for level in levels if level.accepted), None)
    if plateau is not None:
        ax.axvline(plateau.block_size, color="crimson", ls="--", lw=1, label="first uncorrelated level (Jonsson)")
        ax.legend(fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("block size (samples)")
    ax.set_ylabel("standard error of the mean")
    ax.set_title(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_thermo_log(log: str | Path, path: str | Path, max_systems: int = 8) -> Path:
    """Temperature, and the potential and conserved energies, against time from a ``thermo.csv``
    (:class:`mlpot.dynamics.ThermoLog`); write a PNG.

    The energies are drawn in eV relative to their first value, so that a drift
    of the conserved quantity (NVE: the total energy) stands out beside the potential energy's
    fluctuation.

    Args:
        log: the CSV (columns ``step, time_fs, [system,] T_K, E_pot, E_kin, conserved, n_dof``).
        path: the PNG to write.
        max_systems: draw at most this many systems of a batched run (the first ones).

    Returns:
        The path written.

    Raises:
        ValueError: the log has no rows.
    """
    import csv

    with open(log, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{log} holds no MD rows to plot")
    systems = sorted({int(r.get("system") or 0) for r in rows})[:max_systems]
    plt = _pyplot()
    fig, (ax_t, ax_e) = plt.subplots(2, 1, figsize=(6, 5), sharex=True, constrained_layout=True)
    for system in systems:
        mine = [r for r in rows if int(r.get("system") or 0) == system]
        time_ps = np.array([float(r["time_fs"]) for r in mine]) / 1000.0
        label = f"system {system}" if len(systems) > 1 else None
        ax_t.plot(time_ps, [float(r["T_K"]) for r in mine], lw=1, label=label)
        for column, style in (("E_pot", "-"), ("conserved", "--")):
            values = np.array([float(r[column]) for r in mine])
            ax_e.plot(time_ps, values - values[0], style, lw=1,
                      label=(f"{column}" + (f", system {system}" if len(systems) > 1 else "")))
    ax_t.set_ylabel("T (K)")
    if len(systems) > 1:
        ax_t.legend(fontsize=7)
    ax_e.set_ylabel("E − E(0) (eV)")
    ax_e.set_xlabel("time (ps)")
    ax_e.legend(fontsize=7)
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
