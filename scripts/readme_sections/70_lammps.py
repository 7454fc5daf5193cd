"""README section: mlpot models in LAMMPS at 1 and 2 MPI ranks against mlpot's own engine
(scripts/bench_lammps.py → benchmarks/results/lammps.json)."""

from __future__ import annotations

import json
from pathlib import Path

RESULT = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "lammps.json"


def render() -> list[str]:
    """The section's Markdown lines, or [] when the benchmark has not been run (no JSON)."""
    if not RESULT.exists():
        return []
    data = json.loads(RESULT.read_text())
    ranks = sorted(int(key.split("_")[1]) for key in data["results"][0]
                   if key.count("_") == 1 and key.startswith("lammps_") and key.split("_")[1].isdigit())
    top = max(ranks)
    lines = [
        "### mlpot in LAMMPS across MPI ranks",
        "",
        f"`{data['command']}`: copper fcc, {data['model']}, {data['dtype']}, {data['threads_per_rank']} torch "
        f"thread(s) per rank, NVE at {data['timestep_fs']} fs, skin {data['skin_A']} Å; {data['statistic']}. "
        "LAMMPS' time is its loop time (ghost communication, its lists, and mlpot's callback on every rank); "
        "mlpot's is `Simulation.run` on the same system. Efficiency = t₁ / (r · t_r). See docs/lammps.md.",
        "",
        "| atoms | mlpot engine steps/s | "
        + " | ".join(f"LAMMPS ×{r} steps/s | LAMMPS ×{r} atom-steps/s" for r in ranks)
        + " | LAMMPS ×1 / engine time | "
        + " | ".join(f"×{r} speed-up (efficiency)" for r in ranks if r > 1)
        + f" | rank 0's model time per call at ×{top} (mean of all calls) | local / ghost atoms per rank at ×{top} |",
        "|---|---|" + "---|---|" * len(ranks) + "---|" + "---|" * sum(r > 1 for r in ranks) + "---|---|",
    ]
    for e in data["results"]:
        cells = [f"{e['atoms']:,}", f"{e['mlpot']['steps_per_second']:.3g}"]
        for r in ranks:
            run = e[f"lammps_{r}"]
            cells += [f"{run['steps_per_second']:.3g}", f"{run['atom_steps_per_second']:,.0f}"]
        cells.append(f"{e['lammps_1_over_mlpot']:.2f}" if "lammps_1_over_mlpot" in e else "")
        cells += [f"{e[f'speedup_{r}']:.2f} ({e[f'efficiency_{r}']:.0%})" for r in ranks if r > 1]
        run = e[f"lammps_{top}"]
        # A mean over every call, warm-up included, so it may exceed the median step time beside it.
        cells.append(f"{run['rank0_seconds_per_call']['model']:.3g} s")
        cells.append(f"{run['mean_atoms_per_rank']['local']:,.0f} / {run['mean_atoms_per_rank']['ghost']:,.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    largest = max(data["results"], key=lambda e: e["atoms"])
    if "lammps_1" in largest and "lammps_1_over_mlpot" in largest:
        one = largest["lammps_1"]["mean_atoms_per_rank"]
        lines += ["", f"At {largest['atoms']:,} atoms one rank takes {largest['lammps_1_over_mlpot']:.2f}× the "
                  f"engine's time per step. Besides its {one['local']:,.0f} local atoms it holds "
                  f"{one['ghost']:,.0f} ghosts (a shell 2 r_c + skin deep) and evaluates the model on the local "
                  "atoms and the ghosts within r_c of them, where the engine uses periodic images; "
                  "[docs/lammps.md](docs/lammps.md#where-the-time-goes) says where the time goes."]
    return lines + [""]
