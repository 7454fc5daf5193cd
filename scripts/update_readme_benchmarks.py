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


def neighbours() -> list[str]:
    data = _load("neighbors.json")
    if not data:
        return []
    lines = [
        "### Neighbour list (random periodic systems, 0.1 atoms/Å³, cutoff 5 Å)", "",
        f"`{data['command']}` ({data['torch_threads']} torch thread(s)); best of repeats, ms.", "",
        "| atoms | pairs | mlpot float64 | mlpot float32 | ASE | vesin (C++) |", "|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        vesin = f"{1e3 * r['vesin_s']:.1f}" if "vesin_s" in r else "n/a"
        lines.append(f"| {r['n_atoms']:,} | {r['n_pairs']:,} | {1e3 * r['mlpot_float64_s']:.1f} | "
                     f"{1e3 * r['mlpot_float32_s']:.1f} | {1e3 * r['ase_s']:.1f} | {vesin} |")
    exponents = ", ".join(f"{k.removesuffix('_s')} {v:.2f}" for k, v in data["scaling_exponents"].items())
    return lines + ["", f"Fitted scaling exponents (time ∝ N^k): {exponents}.", ""]


def inference() -> list[str]:
    data = _load("inference.json")
    if not data:
        return []
    lines = [
        "### Model evaluation (energy + forces, default DescriptorModel)", "",
        f"`{data['command']}` ({data['torch_threads']} torch thread(s)).", "",
        "| system | atoms | dtype | compiled | evaluations/s | atom-evaluations/s | prepared (MD) evaluations/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        prepared = r.get("prepared_evaluations_per_s")  # absent from results older than the MD evaluator
        lines.append(f"| {r['system']} | {r['n_atoms']:,} | {r['dtype']} | {'yes' if r.get('compiled') else 'no'} | "
                     f"{r['evaluations_per_s']:,.1f} | {r['atom_evaluations_per_s']:,.0f} | "
                     f"{'—' if prepared is None else f'{prepared:,.1f}'} |")
    return lines + [""]


def molecular_dynamics() -> list[str]:
    data = _load("md.json")
    if not data:
        return []
    lines = [
        "### MD (velocity Verlet, untrained default model" + (", compiled" if data.get("compiled") else "") + ")", "",
        f"`{data['command']}`.", "",
        "| system | atoms | mlpot engine steps/s | ASE VelocityVerlet steps/s | force calls/s | engine overhead | speed-up over ASE |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in data["results"].items():
        lines.append(f"| {name} | {r['n_atoms']:,} | {r['engine_steps_per_s']:.2f} | {r['ase_steps_per_s']:.2f} | "
                     f"{r['force_calls_per_s']:.2f} | {100 * r['engine_overhead_over_force']:+.0f}% | "
                     f"{r['engine_speedup_over_ase']:.2f}× |")
    return lines + [""]


def accuracy() -> list[str]:
    lines = []
    for molecule in ("ethanol", "aspirin"):
        data = _load(f"accuracy_rmd17_{molecule}.json")
        if not data:
            continue
        lines += [f"### Accuracy: rMD17 {molecule}, test_01 (1,000 configurations)", "",
                  f"`{data['command']}` ({data['threads']} torch thread(s) per process"
                  + (", the learning curve in a second process beside the main run" if len(data["learning_curve"]) > 1 else "")
                  + ", 2-core CPU; training time is wall time).", "",
                  "| model | training configurations | training time | energy MAE (meV) | force MAE (meV/Å) |",
                  "|---|---|---|---|---|"]
        for row in data["learning_curve"]:
            lines.append(f"| **mlpot** | {row['n_train']} | {row['wall_s'] / 60:.0f} min | {row['energy_mae_meV']:.2f} | "
                         f"{row['forces_mae_meV_per_A']:.2f} |")
        for n_train, models in sorted(data["published"].items(), key=lambda item: -int(item[0])):
            for name, published in models.items():
                lines.append(f"| {name} (published) | {n_train} | | {published['energy_mae_meV']} | "
                             f"{published['forces_mae_meV_per_A']} |")
        lines += ["", f"Published figures: {data.get('published_source', 'Batatia et al. 2022, Table 1')}.", ""]
    return lines


def hamiltonian() -> list[str]:
    data = _load("hnn.json")
    if not data:
        return []
    lines = [
        "### Hamiltonian neural networks (Greydanus et al. 2019 benchmark)", "",
        f"`{data['command']}`. Energy MSE along rollouts of the learned models (RK4), true energy.", "",
        "| system | test loss, baseline | test loss, HNN | energy MSE, baseline | energy MSE, HNN |", "|---|---|---|---|---|",
    ]
    for name, r in data["systems"].items():
        b, h = r["baseline"], r["hnn"]
        if "energy_mse_rk4_paper_horizon" not in b:
            continue
        lines.append(f"| {name} | {b['test_loss']:.3g} | {h['test_loss']:.3g} | {b['energy_mse_rk4_paper_horizon']:.3g} | "
                     f"{h['energy_mse_rk4_paper_horizon']:.3g} |")
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
