"""README section: heat capacity of a learned potential, reweighted to its reference (EMT copper)."""

from __future__ import annotations

import json
from pathlib import Path

RESULT = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "heat_capacity_learned.json"


def _value(entry) -> str:
    return f"{entry['value']:.1f} ± {entry['error']:.1f}"


def _relative_errors(rows) -> str:
    errors = [e["error"] / e["value"] for r in rows for k, e in r.items() if k.endswith("kB_per_cell")]
    return f"{100 * min(errors):.0f}–{100 * max(errors):.0f}%"


def render() -> list[str]:
    if not RESULT.exists():
        return []
    data = json.loads(RESULT.read_text())
    settings = data["settings"]
    lines = [
        "### Heat capacity of a learned potential, reweighted to its reference (EMT copper)",
        "",
        f"`{data['command']}` ({data.get('note', '')}). mlpot trained on EMT copper frames for "
        f"{settings['train_minutes']:g} min and, deliberately under-trained, for "
        f"{settings['undertrained_epochs']} epochs "
        "(a near-harmonic crystal's classical C_V is ≈ 3N k_B whatever its stiffness: only a model whose "
        "anharmonicity is wrong gives a C_V visibly off); "
        f"{settings['cell']}, {settings['production_steps']} steps of {settings['timestep_fs']:g} fs, "
        f"{settings['reference_frames']} frames reweighted with exp(−β(U_EMT − U_model)). C_V in k_B per cell; "
        "z is the difference from EMT's own C_V (same workflow, EMT driving the MD) over the combined 1σ error.",
        "",
        "| T (K) | model | C_V EMT | C_V[model] | z | C_V[model], reweighted frames | C_V[model→EMT] | z "
        "| ESS |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in data["rows"]:
        line = (f"| {row['temperature_K']:.0f} | {row['model']} ({row['training']}) | "
                f"{_value(row['emt_kB_per_cell'])} | {_value(row['model_kB_per_cell'])} | "
                f"{row['z_model_vs_emt']:+.1f} | ")
        if "reweighted_kB_per_cell" in row:
            line += (f"{_value(row['model_on_frames_kB_per_cell'])} | {_value(row['reweighted_kB_per_cell'])} | "
                     f"{row['z_reweighted_vs_emt']:+.1f} | {row['effective_sample_size']:.0f}/{row['n_frames']} |")
        else:
            line += "| refused (ESS < 50) | | |"
        lines.append(line)
    raw = max(abs(r["z_model_vs_emt"]) for r in data["rows"])
    reweighted = [abs(r["z_reweighted_vs_emt"]) for r in data["rows"] if "z_reweighted_vs_emt" in r]
    largest = f"Largest |z|: raw C_V[model] {raw:.1f}" + (f", reweighted {max(reweighted):.1f}" if reweighted else "")
    lines += ["", largest + f"; relative errors of these runs {_relative_errors(data['rows'])}.", "",
              "![C_V of a learned potential](benchmarks/results/heat_capacity_learned.png)", ""]
    return lines
