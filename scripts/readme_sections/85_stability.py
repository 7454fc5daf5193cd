"""README section: MD stability of trained models on rMD17 ethanol
(scripts/bench_stability.py → benchmarks/results/stability_ethanol.json)."""

from __future__ import annotations

import json
from pathlib import Path

RESULT = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "stability_ethanol.json"


def caption(data: dict) -> str:
    """What was run, how a failure is defined and what the histogram error is, from the JSON's own record."""
    settings = data["settings"]
    versions = data["versions"]
    models = ", ".join(f"{label} = `{record['path']}` ({record['family']}, sha256 {record['sha256'][:12]})"
                       for label, record in data["models"].items())
    seeds = data["seeds"]
    return (
        f"`{data['command']}`: per model, temperature and seed ({len(seeds)} seed{'s' if len(seeds) != 1 else ''}: "
        f"{', '.join(str(s) for s in seeds)}) one Langevin run (BAOAB, {settings['timestep_fs']:g} fs, "
        f"γ = {settings['friction_per_fs']:g}/fs, {settings['ps']:g} ps, {settings['dtype']}) from "
        f"{settings['starting_structure']}, momenta drawn at T from the seed; {data['threads']} torch thread(s), "
        f"mlpot {versions['mlpot']}, torch {versions['torch']}. Models: {models}. "
        f"A run fails at {data['failure']}. Median time to failure: over all runs, a survivor counted at the "
        f"full length (\"≥\" when the median is a survivor). Histogram error: {data['histogram_error']}. "
        "The DFT data are a 500 K sampling, so at 1,000 K even an exact model differs from them."
        + (" Quick run: not for quoting." if data.get("quick") else "")
        + ("" if data.get("complete", True) else " Incomplete: not every planned run has finished.")
    )


def render() -> list[str]:
    """The section's Markdown lines, or [] when the benchmark has not been run (no JSON)."""
    if not RESULT.exists():
        return []
    return render_data(json.loads(RESULT.read_text()))


def render_data(data: dict) -> list[str]:
    """The section's Markdown lines for the contents of a stability_ethanol.json."""
    ps = data["settings"]["ps"]
    lines = [
        "### MD stability on rMD17 ethanol",
        "",
        caption(data),
        "",
        "| model | T (K) | survived | median time to failure (ps) | failures | distance-histogram error |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for row in data["summary"]:
        middle = f"≥ {ps:g}" if row["median_is_lower_bound"] else f"{row['median_time_to_failure_ps']:.2f}"
        failures = ", ".join(f"{reason.replace('_', ' ')} {count}" for reason, count in
                             sorted(row["failure_reasons"].items())) or "none"
        error = "" if row["histogram_error"] is None else f"{row['histogram_error']:.3f}"
        lines.append(f"| {row['model']} | {row['temperature_K']:g} | {row['survived']}/{row['runs']} | {middle} | "
                     f"{failures} | {error} |")
    return lines + [""]
