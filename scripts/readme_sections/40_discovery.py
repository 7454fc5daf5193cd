"""README section: discovering Hamiltonians (symbolic H, Koopman spectra, AFM cantilever)."""

from __future__ import annotations

import json
from pathlib import Path

RESULT = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "discovery.json"


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.3g} %"


def render() -> list[str]:
    if not RESULT.exists():
        return []
    data = json.loads(RESULT.read_text())
    lines = ["### Discovering Hamiltonians (symbolic H, Koopman, AFM cantilever)", "",
             f"`{data['command']}`; {data.get('note', '')}. Symbolic discovery regresses the flow J∇H on the "
             "gradients of a term library (STLSQ, cross-validated threshold); \"1 % noise\" is Gaussian noise of 1 % "
             "of each coordinate's spread on q and p, with derivatives by Savitzky–Golay. Errors are the largest "
             "relative coefficient error over the true terms.", "",
             "| system | true law | library | recovered from 1 % noise | exact terms (clean / noisy) | "
             "coef. error clean | coef. error noisy |", "|---|---|---|---|---|---|---|"]
    for name, r in data["discovery"].items():
        clean, noisy = r["clean"], r["noise_1pct"]
        ok = f"{'yes' if clean['correct_terms'] else 'no'} / {'yes' if noisy['correct_terms'] else 'no'}"
        lines.append(f"| {name} | `{r['law']}` | {r['library']} | `{noisy['formula']}` | {ok} | "
                     f"{clean['max_relative_error']:.1e} | {_pct(noisy['max_relative_error'])} |")
    k = data["koopman"]
    lines += ["", "| Koopman (EDMD) | dictionary | exact | EDMD | error |", "|---|---|---|---|---|",
              f"| harmonic oscillator, eigenvalues exp(±iωΔt) | linear | ω = {k['harmonic']['omega']} | | "
              f"max abs {k['harmonic']['max_eigenvalue_error']:.1e} |",
              f"| pendulum, amplitude {k['pendulum']['amplitude_rad']} rad, frequency 2π/(4K(k)) | "
              f"{k['pendulum']['dictionary']} | {k['pendulum']['exact']:.8f} | {k['pendulum']['edmd']:.8f} | "
              f"{k['pendulum']['relative_error']:.1e} |",
              f"| damped oscillator, decay rate | linear | {k['damped']['decay_rate']} | {k['damped']['edmd']:.10f} | "
              f"{k['damped']['relative_error']:.1e} |", "",
              "| AFM cantilever | learned Q | Q error | max Δf/f₀ error vs −F′/(2k) (1.3–3 nm) "
              "| far-field Δf/f₀, the larger of 100 nm and 300 nm | resonance amplitude error "
              "| max dH/dt, no drive |", "|---|---|---|---|---|---|---|"]
    for r in data["afm"].values():
        worst = max(abs(row["relative_error"]) for row in r["frequency_shift"])
        # The larger of the two far-field shifts, with its sign (an attractive tail lowers f).
        far = max(r["far_shift"], key=abs)
        far_truth = max(r.get("far_shift_truth", [float("nan")]), key=abs)
        lines.append(f"| Q = {r['quality_factor']:g} | {r['learned_quality_factor']:.2f} | "
                     f"{_pct(r['quality_factor_error'])} | {_pct(worst)} | {far:.1e} (truth {far_truth:.1e}) | "
                     f"{_pct(r['resonance_max_amplitude_error'])} | {r['max_energy_rate_without_drive']:.1e} |")
    return lines + [""]
