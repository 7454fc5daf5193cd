"""README section: non-adiabatic dynamics (benchmarks/results/nonadiabatic.json)."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "nonadiabatic.json"
TITLES = {"simple_avoided_crossing": "simple avoided crossing", "dual_avoided_crossing": "dual avoided crossing",
          "extended_coupling": "extended coupling", "lvc_2d": "2D conical intersection (LVC)"}


def _f(value) -> str:
    return "–" if value is None else f"{value:.2f}"


def _tully(data: dict) -> list[str]:
    lines = [
        "### Non-adiabatic dynamics: FSSH and Ehrenfest against exact wave packets (Tully's three models)", "",
        f"`{data['command']}`: mass 2000 a.u., Gaussian packets σ = 10/k starting on the lower state; exact = "
        f"split-operator wave packet; FSSH {data['n_trajectories']} trajectories (binomial standard error "
        f"≤ {0.5 / data['n_trajectories'] ** 0.5:.3f}), FSSH + EDC (energy-based decoherence, C = 0.1 Hartree) "
        f"{data.get('n_trajectories_edc', data['n_trajectories'])}, Ehrenfest {data['n_ehrenfest']}. "
        "T/R = transmission/reflection, ↓/↑ = lower/upper state. "
        "Plot: `benchmarks/results/nonadiabatic_tully.png`.", "",
        "| model | k (a.u.) | T↓ exact | T↓ FSSH | T↑ exact | T↑ FSSH | R↓ exact | R↓ FSSH | R↑ exact | R↑ FSSH "
        "| R↑ FSSH+EDC | R↑ Ehrenfest |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in data["models"].items():
        for index, k in enumerate(entry["k_trajectories"]):
            exact = {c: None for c in entry["exact"]}
            if k in entry["k_exact"]:
                exact = {c: values[entry["k_exact"].index(k)] for c, values in entry["exact"].items()}
            row = [TITLES.get(name, name), f"{k:g}"]
            for channel in ("transmission_lower", "transmission_upper", "reflection_lower", "reflection_upper"):
                row += [_f(exact[channel]), _f(entry["fssh"][channel][index])]
            row += [_f(entry["fssh_edc"]["reflection_upper"][index]), _f(entry["ehrenfest"]["reflection_upper"][index])]
            lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    worst = []
    for name, entry in data["models"].items():
        errors = entry["max_abs_error_k_ge_10"]["fssh"]
        worst.append(f"{TITLES.get(name, name)} {max(v for v in errors.values() if v is not None):.3f}")
    lines.append(f"Largest |FSSH − exact| over all four channels for k ≥ 10: {'; '.join(worst)}.")
    extended = data["models"].get("extended_coupling")
    if extended:
        errors = extended["max_abs_error_k_ge_10"]
        lines.append(
            "Where FSSH is known to err: the extended-coupling model, whose upper-state packet reflects while the "
            "lower one transmits; without decoherence the amplitudes stay coherent after the packets separate "
            f"(largest error of R↑ for k ≥ 10: FSSH {errors['fssh']['reflection_upper']:.3f}, FSSH + EDC "
            f"{errors['fssh_edc']['reflection_upper']:.3f}; of R↓: {errors['fssh']['reflection_lower']:.3f} and "
            f"{errors['fssh_edc']['reflection_lower']:.3f}). Classical nuclei also miss tunnelling and above-barrier "
            "reflection at low k; the energy-based decoherence washes out the Stückelberg interference of the dual "
            "crossing; Ehrenfest cannot branch, so it never reflects on the upper state.")
    lines.append("")
    return lines


def _learned(data: dict) -> list[str]:
    k_values = ", ".join(f"{k:g}" for k in data["k_values"])
    lines = [
        "### Learned diabatic Hamiltonian against two independent adiabatic networks", "",
        f"`{data['command']}`: {data['n_samples']} samples of adiabatic energies and per-state forces, "
        f"networks {data['hidden']}, {data['epochs']} full-batch epochs. Energy error: mean absolute, within 1 Bohr "
        "of the crossing (1D) or 0.5 Bohr of the intersection (2D). Coupling error: phase-free RMS relative to the "
        "exact coupling (1 = no coupling at all). FSSH: |difference| from FSSH on the exact model over the four "
        f"channels, same trajectories and random numbers, {data['n_trajectories']} trajectories, at k = {k_values} "
        "(1D: Tully's packet from −10 Bohr; 2D: the ground-state packet of the left well kicked by k along the "
        "tuning mode, one passage through the intersection). Anchors: the diabatic matrix is held diagonal, in the "
        "order of the states' character, where the states do not interact (1D asymptotes) or symmetry forbids "
        "their coupling (2D: y = 0); this fixes the diabatic gauge that energies and forces leave free "
        "(docs/nonadiabatic.md). Plot (1D energies and |d_01|): `benchmarks/results/nonadiabatic_learned.png`.", "",
        "| system | model | energy MAE (mHartree) | coupling rel. error | FSSH max abs diff. vs exact model, per k |",
        "|---|---|---|---|---|",
    ]
    labels = {"diabatic": "diabatic (E, F, anchors)", "diabatic_unanchored": "diabatic (E, F, no anchors)",
              "diabatic_with_couplings": "diabatic (E, F, couplings)",
              "two_networks": "two adiabatic networks (E, F)"}
    for system, entry in data["systems"].items():
        for name, label in labels.items():
            if name not in entry:
                continue
            row = entry[name]
            per_k = row.get("fssh_max_abs_difference_per_k")
            if per_k:
                fssh = " / ".join(f"{value:.3f}" for value in per_k.values())
            else:
                fssh = _f(row.get("fssh_max_abs_difference_vs_exact_model"))
            lines.append(f"| {TITLES.get(system, system)} | {label} | "
                         f"{1e3 * row['energy_mae_near_crossing_hartree']:.2f} | "
                         f"{row['coupling_relative_error']:.2f} | {fssh} |")
    return lines + [""]


def render() -> list[str]:
    if not RESULTS.exists():
        return []
    data = json.loads(RESULTS.read_text())
    lines = []
    if "tully" in data:
        lines += _tully(data["tully"])
    if "learned" in data:
        lines += _learned(data["learned"])
    return lines
