"""Render the README's benchmark tables from benchmarks/results/*.json.

    python scripts/update_readme_benchmarks.py          # rewrite the README section
    python scripts/update_readme_benchmarks.py --check  # exit 1 if the README is stale

The tables live between ``<!-- benchmarks:start -->`` and ``<!-- benchmarks:end -->``. Each
names the command that produced its JSON (taken from the JSON itself), so every figure in the
README can be traced to a script run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
START, END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"


def _load(name: str) -> dict | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def _ms(seconds: float) -> str:
    return f"{1e3 * seconds:.1f}"


def neighbours() -> list[str]:
    data = _load("neighbors.json")
    if not data:
        return []
    head = ["### Neighbour list (random periodic systems, 0.1 atoms/Å³, cutoff 5 Å)", ""]
    if "timed" not in data:  # written before the scripts recorded what they time
        lines = head + [
            f"`{data['command']}`. Timed: one neighbour-list build, no model. Best of repeats (the minimum), ms. "
            f"mlpot ran at {data['torch_threads']} torch threads against single-threaded ASE and vesin, so the "
            "thread counts differ; a rerun of the script gives the median at 1 and 2 threads.", "",
            "| atoms | pairs | mlpot float64 | mlpot float32 | ASE | vesin (C++) |", "|---|---|---|---|---|---|",
        ]
        for r in data["rows"]:
            vesin = _ms(r["vesin_s"]) if "vesin_s" in r else "n/a"
            lines.append(f"| {r['n_atoms']:,} | {r['n_pairs']:,} | {_ms(r['mlpot_float64_s'])} | "
                         f"{_ms(r['mlpot_float32_s'])} | {_ms(r['ase_s'])} | {vesin} |")
    else:
        threads = data["torch_threads"]
        mlpot = [(f"mlpot_{d}_{t}t_s", f"mlpot {d}, {t} thread{'s' if t > 1 else ''}")
                 for t in threads for d in data["dtypes"]["mlpot"]]
        columns = (mlpot + [("ase_s", "ASE (1 thread)")]
                   + ([("vesin_s", "vesin (C++, 1 thread)")] if data["vesin_ran"] else []))
        vesin = (f"vesin {data['vesin']} ran" if data["vesin_ran"]
                 else "vesin was not installed and did not run (`pip install 'mlpot[bench]'`)")
        lines = head + [
            f"`{data['command']}`. Timed: one call building the full list (i, j, cell shift) from positions and cell, "
            f"no model. Median of repeated calls, ms. mlpot at {' and '.join(map(str, threads))} torch thread(s), "
            f"in float64 and float32; ASE and vesin are single-threaded, float64; {vesin}. torch {data['torch']}.", "",
            "| atoms | pairs | " + " | ".join(label for _, label in columns) + " |",
            "|---|---|" + "---|" * len(columns),
        ]
        for r in data["rows"]:
            lines.append(f"| {r['n_atoms']:,} | {r['n_pairs']:,} | "
                         + " | ".join(_ms(r[key]) for key, _ in columns) + " |")
    if not data["scaling_exponents"]:
        return lines + [""]
    exponents = ", ".join(f"{k.removesuffix('_s')} {v:.2f}" for k, v in data["scaling_exponents"].items())
    return lines + ["", f"Fitted scaling exponents (time ∝ N^k): {exponents}.", ""]


def inference() -> list[str]:
    data = _load("inference.json")
    if not data:
        return []
    head = ["### Model evaluation (energy + forces, default DescriptorModel)", ""]
    if "timed" not in data:  # written before the scripts recorded what they time
        lines = head + [
            f"`{data['command']}`, {data['torch_threads']} torch threads, dtype per row. Timed: `model(data)` with the "
            "neighbour list built *outside* the timing; the fastest single call of the repeats, not a median. "
            "The prepared column is MD's path between list rebuilds (`model.fixed_topology`). A rerun of the "
            "script adds the median of calls that include the neighbour list of a fresh structure.", "",
            "| system | atoms | dtype | compiled | evaluations/s | atom-evaluations/s | prepared (MD) evaluations/s |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in data["rows"]:
            lines.append(f"| {r['system']} | {r['n_atoms']:,} | {r['dtype']} | {'yes' if r['compiled'] else 'no'} | "
                         f"{r['evaluations_per_s']:,.1f} | {r['atom_evaluations_per_s']:,.0f} | "
                         f"{r['prepared_evaluations_per_s']:,.1f} |")
        return lines + [""]
    lines = head + [
        f"`{data['command']}`, {data['torch_threads']} torch thread(s), dtype per row, torch {data['torch']}. "
        "Median evaluations per second over repeated calls. Timed: *fresh structure*: a new structure each call, "
        "from `ase.Atoms` through the neighbour list to energy and forces; *prebuilt list*: `model(data)` alone; "
        "*prepared (MD)*: the path MD takes between list rebuilds (`model.fixed_topology`, prepared outside "
        "the timing).", "",
        "| system | atoms | dtype | compiled | fresh structure (with neighbour list) | prebuilt list | prepared (MD) "
        "| atom-evaluations/s, fresh structure |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        lines.append(f"| {r['system']} | {r['n_atoms']:,} | {r['dtype']} | {'yes' if r['compiled'] else 'no'} | "
                     f"{r['full_evaluations_per_s']:,.1f} | {r['model_evaluations_per_s']:,.1f} | "
                     f"{r['prepared_evaluations_per_s']:,.1f} | {r['full_atom_evaluations_per_s']:,.0f} |")
    return lines + [""]


def molecular_dynamics() -> list[str]:
    data = _load("md.json")
    if not data:
        return []
    compiled = "compiled" if data.get("compiled") else "uncompiled"
    head = [f"### MD (NVE velocity Verlet, untrained default model, {compiled})", ""]
    if "timed" not in data:  # written before the scripts recorded what they time
        lines = head + [
            f"`{data['command']}`, {data['threads']} torch threads, float64, torch {data['torch']}. Best of blocks of "
            "steps. Timed: engine steps (integrator, neighbour-list checks and rebuilds, health checks, force call); "
            "ASE's `VelocityVerlet` with `MLPotCalculator`; `model(data)` on a prebuilt list. The overhead column "
            "compares the engine with that *unprepared* call, not with the prepared force call the engine makes, "
            "so it can come out negative (a rerun of the script measures it against the prepared call).", "",
            "| system | atoms | mlpot engine steps/s | ASE VelocityVerlet steps/s | unprepared model calls/s | "
            "engine time over unprepared call | speed-up over ASE |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, r in data["results"].items():
            lines.append(f"| {name} | {r['n_atoms']:,} | {r['engine_steps_per_s']:.2f} | {r['ase_steps_per_s']:.2f} | "
                         f"{r['force_calls_per_s']:.2f} | {100 * r['engine_overhead_over_force']:+.0f}% | "
                         f"{r['engine_speedup_over_ase']:.2f}× |")
        return lines + [""]
    dtypes = sorted({r["dtype"] for r in data["results"].values()})
    lines = head + [
        f"`{data['command']}`, {data['threads']} torch thread(s), {', '.join(dtypes)}, skin {data['skin']} Å, "
        f"torch {data['torch']}. Median over blocks of steps. Timed: engine steps (integrator, neighbour-list "
        "checks and rebuilds, health checks, force call); ASE's `VelocityVerlet` with `MLPotCalculator`; the "
        "prepared force call that the engine makes each step (`model.fixed_topology`, list at cutoff + skin). "
        "The overhead is the engine's time per step over that call's, minus one.", "",
        "| system | atoms | mlpot engine steps/s | ASE VelocityVerlet steps/s | prepared force calls/s | "
        "engine overhead over the prepared force call | speed-up over ASE |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in data["results"].items():
        lines.append(f"| {name} | {r['n_atoms']:,} | {r['engine_steps_per_s']:.2f} | {r['ase_steps_per_s']:.2f} | "
                     f"{r['prepared_force_calls_per_s']:.2f} | "
                     f"{100 * r['engine_overhead_over_prepared_force']:+.0f}% | "
                     f"{r['engine_speedup_over_ase']:.2f}× |")
    return lines + [""]


def _spread(metric: dict) -> str:
    return f"{metric['median']:.2f} ({metric['min']:.2f}–{metric['max']:.2f})"


#: The model families the accuracy benchmark reports: (file suffix, label in the tables).
FAMILIES = (("", "descriptor"), ("_equivariant", "equivariant"))


def _accuracy_caption(data: dict, family: str) -> str:
    n_seeds = len(data["seeds"])
    # a report that --resume added runs to was made by several commands, in this order
    commands = " then ".join(f"`{command}`" for command in data.get("commands", [data["command"]]))
    caption = (f"**{family}**: {commands}: median (min–max) over {n_seeds} seed{'s' if n_seeds > 1 else ''}"
               + ("" if n_seeds >= 3 else ", fewer than the protocol's three")
               + " of one fixed recipe (each seed draws the train/validation split and the initialisation). "
               "Each run keeps its best validation epoch and reads the test set once, at the end "
               f"([protocol](docs/benchmarks.md)). {data['threads']} torch thread(s) per run, "
               f"{data['jobs']} run(s) side by side; training time is wall time.")
    if data.get("complete") is False:
        caption += " **Incomplete: the benchmark was interrupted (`--resume` continues it).**"
    targets = data.get("targets") or {}
    if targets:
        caption += " Targets: " + "; ".join(
            f"{n} configurations ≤ " + ", ".join(
                ([f"{t['energy_mae_meV']} meV"] if t["energy_mae_meV"] is not None else [])
                + [f"{t['forces_mae_meV_per_A']} meV/Å"]) + f" ({'met' if t['met'] else 'missed'})"
            for n, t in sorted(targets.items(), key=lambda item: int(item[0]))) + "."
    return caption


def accuracy() -> list[str]:
    lines = []
    for molecule in ("ethanol", "aspirin"):
        reports = [(family, data) for suffix, family in FAMILIES
                   if (data := _load(f"accuracy_rmd17_{molecule}{suffix}.json")) and not data.get("validation_only")]
        if not reports:
            continue
        lines += [f"### Accuracy: rMD17 {molecule}, test_01 (1,000 configurations)", ""]
        rows = []
        for family, data in reports:
            label = f"**mlpot {family}**"
            if "summary" in data:
                lines += [_accuracy_caption(data, family), ""]
                rows += [f"| {label} | {row['n_train']} | {row['wall_s']['median'] / 60:.0f} min | "
                         f"{_spread(row['energy_mae_meV'])} | {_spread(row['forces_mae_meV_per_A'])} |"
                         for row in data["summary"]]
            else:  # written before the protocol of docs/benchmarks.md
                lines += [f"**{family}**: `{data['command']}` ({data['threads']} torch thread(s) per process; training "
                          "time is wall time). **Single run; recipe chosen before the protocol, partly by test-set MAE "
                          "over many runs ([all runs](benchmarks/accuracy_experiments.md)); not a median of three "
                          "seeds.**", ""]
                rows += [f"| {label} | {row['n_train']} | {row['wall_s'] / 60:.0f} min | {row['energy_mae_meV']:.2f} | "
                         f"{row['forces_mae_meV_per_A']:.2f} |" for row in data["learning_curve"]]
        lines += ["| model | training configurations | training time | energy MAE (meV) | force MAE (meV/Å) |",
                  "|---|---|---|---|---|", *rows]
        data = reports[0][1]
        for n_train, models in sorted(data["published"].items(), key=lambda item: -int(item[0])):
            for name, published in models.items():
                lines.append(f"| {name} (published) | {n_train} | | {published['energy_mae_meV']} | "
                             f"{published['forces_mae_meV_per_A']} |")
        lines += ["", f"Published figures: {data['published_source']}.", ""]
        figure = RESULTS / f"accuracy_rmd17_{molecule}_families.png"
        if len(reports) > 1 and figure.exists():
            lines += [f"![rMD17 {molecule}: learning curves of both model families]"
                      f"(benchmarks/results/{figure.name})", ""]
    return lines


def hamiltonian() -> list[str]:
    data = _load("hnn.json")
    if not data:
        return []
    lines = [
        "### Hamiltonian neural networks (Greydanus et al. 2019 benchmark)", "",
        f"`{data['command']}`: one run, seed {data['seed']}. Test loss: MSE of the predicted time derivative on "
        "test points. Energy MSE: squared error of the true energy along RK4 rollouts of the learned model to "
        "t = 20, from test initial states.", "",
        "| system | source | test loss, baseline | test loss, HNN | energy MSE, baseline | energy MSE, HNN |",
        "|---|---|---|---|---|---|",
    ]
    published = data.get("published", {}).get("systems", {})  # older files held numbers quoted from memory: not shown
    for name, r in data["systems"].items():
        b, h = r["baseline"], r["hnn"]
        if "energy_mse_rk4_paper_horizon" not in b:
            continue
        lines.append(f"| {name} | mlpot | {b['test_loss']:.2e} | {h['test_loss']:.2e} | "
                     f"{b['energy_mse_rk4_paper_horizon']:.2e} | {h['energy_mse_rk4_paper_horizon']:.2e} |")
        if name in published:
            p = published[name]
            cells = [f"{p[k][m][0]:.4e} ± {p[k][m][1]:.1e}"
                     for k in ("test_loss", "energy_mse") for m in ("baseline", "hnn")]
            lines.append(f"| {name} | published | " + " | ".join(cells) + " |")
    if published:
        lines += ["", f"Published: {data['published']['source']} (mean ± standard deviation)."]
    return lines + [""]


def heat_capacity() -> list[str]:
    """One row per temperature from every heat_capacity_emt_cu*.json (runs may be split by temperature)."""
    runs = [json.loads(path.read_text()) for path in sorted(RESULTS.glob("heat_capacity_emt_cu*.json"))]
    if not runs:
        return []
    lines = [
        "### Heat capacity of EMT copper (finite-size extrapolated, against Dulong–Petit 3 k_B)", "",
        "| T (K) | sizes (atoms) | c_∞ (k_B/atom) | deviation from 3 k_B | command |", "|---|---|---|---|---|",
    ]
    for data in runs:
        command = "python scripts/" + data["run"]["command"]
        for entry in data["temperatures"]:
            fit = entry.get("finite_size")
            if not fit:
                continue
            c, d = fit["c_inf_kB_per_atom"], fit["deviation_from_dulong_petit"]
            lines.append(f"| {entry['temperature_K']:.0f} | {', '.join(map(str, fit['n_atoms']))} | "
                         f"{c['value']:.3f} ± {c['error']:.3f} | {100 * d['value']:+.1f} ± {100 * d['error']:.1f}% | "
                         f"`{command}` |")
    return lines + [""]


def plugin_sections() -> list[list[str]]:
    """The sections of scripts/readme_sections/*.py, in file-name order."""
    sections = []
    for path in sorted((ROOT / "scripts" / "readme_sections").glob("*.py")):
        if path.name.startswith("_"):
            continue
        spec = importlib.util.spec_from_file_location(f"readme_sections.{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sections.append(module.render())
    return sections


def render() -> str:
    sections = [neighbours(), inference(), molecular_dynamics(), accuracy(), hamiltonian(), heat_capacity(),
                *plugin_sections()]
    body = [line for section in sections for line in section]
    return "\n".join([START, "", *body, END])


def updated_readme() -> str:
    text = README.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"README.md lacks the {START} / {END} markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return head + render() + tail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the README is up to date")
    args = parser.parse_args()
    new = updated_readme()
    if args.check:
        if new != README.read_text():
            print("README benchmark tables are stale: run python scripts/update_readme_benchmarks.py")
            sys.exit(1)
        print("README benchmark tables match benchmarks/results/")
        return
    README.write_text(new)
    print(f"updated {README}")


if __name__ == "__main__":
    main()
