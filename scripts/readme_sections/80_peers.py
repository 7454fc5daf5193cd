"""README section: MD speed of mlpot's two model families against MACE
(scripts/bench_peers.py → benchmarks/results/peers.json)."""

from __future__ import annotations

import json
from pathlib import Path

RESULT = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "peers.json"


def caption(data: dict) -> str:
    """What the table times, under which conditions, from the JSON's own record."""
    mace = data["mace"]
    if isinstance(mace, dict):
        versions = mace.get("versions") or {}
        mace_text = (f"MACE {versions.get('mace', '?')} (torch {versions.get('torch', '?')}, e3nn "
                     f"{versions.get('e3nn', '?')}, its own environment) with "
                     f"{mace['architecture']['num_interactions']} interactions, correlation "
                     f"{mace['architecture']['correlation']}, l_max {mace['architecture']['max_ell']}, "
                     f"r_max {mace['architecture']['r_max']} Å, through `MACECalculator`")
    else:
        mace_text = f"MACE {mace}"
    ours = data["mlpot"]
    versions = ours["versions"]
    if ours["hyperparameters"] == "defaults":
        hyperparameters = "package defaults"
    else:
        hyperparameters = "hyper-parameters of " + ", ".join(f"`{path}`" for path in ours["hyperparameters"].values())
    compiled = [family for family, model in ours["models"].items() if model["compiled"]]
    statistic = data["statistic"]
    # The JSON's statistic names its own keys; the reader wants the numbers of each system.
    blocks = {row["system"]: f"{row['blocks']} × {row['steps_per_block']} steps" for row in data["results"]
              if "blocks" in row and "steps_per_block" in row}
    if blocks:
        statistic = statistic.replace(
            "blocks of steps_per_block MD steps",
            "blocks of MD steps (" + ", ".join(f"{system} {text}" for system, text in blocks.items()) + ")")
    statistic = statistic.replace(" (fastest block in best_steps_per_s)", "")
    statistic = statistic[:1].upper() + statistic[1:]  # str.capitalize would lower "MD"
    return (
        " then ".join(f"`{command}`" for command in data.get("commands", [data["command"]]))
        + f": NVE velocity Verlet at {data['timestep_fs']} fs from {data['temperature_K']:.0f} K, "
        f"{data['threads']} torch thread(s) in every process, untrained models ({hyperparameters}"
        + (f"; compiled: {', '.join(compiled)}" if compiled else "")
        + f"; mlpot {versions['mlpot']}, torch {versions['torch']}, e3nn {versions['e3nn']}) against {mace_text}. "
        f"ASE = `ase.md.verlet.VelocityVerlet` with each code's ASE calculator; engine = `mlpot.dynamics.Simulation` "
        f"(skin {ours['skin_A']} Å; MACE has no engine). {statistic}. "
        f"× MACE-64 = steps/s over MACE `64x0e + 64x1o` through ASE, same system and dtype "
        f"(target ≥ {data['speedup_target']['min']:g}×)."
        + (" Quick run: not for quoting." if data.get("quick") else "")
        + ("" if data.get("complete", True) else " Incomplete: the run was interrupted (`--resume` adds the rest).")
        + ("" if "block_start" in data.get("settings", {}) else
           " **Measured with the protocol before 2026-12-03**: one long MD per timing, in which an untrained "
           "model's ethanol flies apart at its own pace (mlpot's faster than MACE's), so the ethanol ratios "
           "favour mlpot; the copper rows are not affected that way. The equivariant engine rows also predate "
           "a fix of its prepared evaluator. Re-measured ethanol and the status: "
           "[docs/benchmarks.md](docs/benchmarks.md#speed-benchmarks).")
    )


def render() -> list[str]:
    """The section's Markdown lines, or [] when the benchmark has not been run (no JSON)."""
    if not RESULT.exists():
        return []
    return render_data(json.loads(RESULT.read_text()))


def render_data(data: dict) -> list[str]:
    """The section's Markdown lines for the contents of a peers.json."""
    systems = data["systems"]
    lines = [
        "### MD speed against MACE",
        "",
        caption(data),
        "",
        "| code | model | dtype | driver | "
        + " | ".join(f"{name} ({info['n_atoms']} atoms) steps/s | atom-steps/s | × MACE-64"
                     for name, info in systems.items())
        + " |",
        "|---|---|---|---|" + "---:|---:|---:|" * len(systems),
    ]
    rows: dict[tuple, dict] = {}
    for row in data["results"]:
        rows.setdefault((row["code"], row["model"], row["dtype"], row["driver"]), {})[row["system"]] = row
    for (code, model, dtype, driver), by_system in rows.items():
        cells = [code, f"`{model}`" if code == "mace" else model, dtype, driver]
        for name in systems:
            row = by_system.get(name)
            if row is None:
                cells += ["", "", ""]
                continue
            speedup = row.get("speedup_over_mace_64")
            cells += [f"{row['steps_per_s']:.3g}", f"{row['atom_steps_per_s']:.3g}",
                      f"{speedup:.2f}" if speedup is not None else ""]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]
