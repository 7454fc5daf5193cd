"""Benchmark: energy + force evaluations per second of the default DescriptorModel.

Systems: ethanol (9 atoms), Cu fcc (864 atoms, periodic), and random periodic systems at
water density (0.1 atoms/Å³) of 10³ and 10⁴ atoms, all of one element for the random ones.
The neighbour list is built once, outside the timing (as in MD between rebuilds); each
figure is the best of several repeats. Run with 2 CPU threads by default.

Each system is timed in float64 and float32, uncompiled and compiled
(``DescriptorModel.compile()``; the compile time of the first call is reported apart), by two
calls: ``model(data)``, the full evaluation that the calculator makes, and the prepared
evaluator ``model.fixed_topology(data)`` that MD calls between neighbour-list rebuilds.

    python scripts/bench_inference.py [--quick] [--profile] [--threads N]

Prints a table and writes benchmarks/results/inference.json. ``--profile`` prints where the
time goes (torch profiler) for ethanol and the 10⁴-atom system.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.build import bulk, molecule

from mlpot.data import atomic_data_from_atoms
from mlpot.models import DescriptorModel

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "inference.json"


def systems(quick: bool) -> dict[str, Atoms]:
    out = {"ethanol": molecule("CH3CH2OH"), "Cu fcc 864": bulk("Cu", "fcc", a=3.61, cubic=True).repeat(6)}
    for n in (1_000,) if quick else (1_000, 10_000):
        box = (n / 0.1) ** (1 / 3)
        rng = np.random.default_rng(0)
        out[f"random {n}"] = Atoms(f"O{n}", positions=rng.random((n, 3)) * box, cell=[box] * 3, pbc=True)
    return out


def time_evaluations(evaluate, min_seconds: float) -> tuple[float, float]:
    """Best calls/second of ``evaluate()`` over calls lasting at least ``min_seconds`` in total: by
    wall-clock time, and by this process's CPU time (steadier on a shared machine; with one
    thread the two agree on an idle one)."""
    evaluate()
    calls, start = 0, time.perf_counter()
    best, best_cpu = 0.0, 0.0
    while time.perf_counter() - start < min_seconds or calls < 3:
        t0, c0 = time.perf_counter(), time.process_time()
        evaluate()
        best = max(best, 1.0 / (time.perf_counter() - t0))
        best_cpu = max(best_cpu, 1.0 / max(time.process_time() - c0, 1e-9))
        calls += 1
    return best, best_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 10⁴-atom system")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--profile", action="store_true", help="print a torch profile per system")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON path (default benchmarks/results/inference.json)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows = []
    for name, atoms in systems(args.quick).items():
        elements = sorted(set(atoms.get_chemical_symbols()))
        for dtype in (torch.float64, torch.float32):
            for compiled in (False, True):
                model = DescriptorModel(elements, dtype=dtype, seed=0).eval().compile(compiled)
                data = atomic_data_from_atoms(atoms, cutoff=model.cutoff, dtype=dtype)
                start = time.perf_counter()
                model(data)
                first_call_s = time.perf_counter() - start
                min_seconds = 3.0 if len(atoms) < 5000 else 6.0
                rate, cpu_rate = time_evaluations(lambda: model(data), min_seconds)
                evaluate = model.fixed_topology(data)
                prepared_rate, _ = time_evaluations(lambda: evaluate(data["positions"]), min_seconds)
                row = {
                    "system": name,
                    "n_atoms": len(atoms),
                    "n_edges": int(data["edge_index"].shape[1]),
                    "dtype": str(dtype).removeprefix("torch."),
                    "compiled": compiled,
                    "first_call_s": first_call_s,
                    "evaluations_per_s": rate,
                    "atom_evaluations_per_s": rate * len(atoms),
                    "evaluations_per_cpu_s": cpu_rate,
                    "prepared_evaluations_per_s": prepared_rate,
                }
                rows.append(row)
                print(
                    f"  {name:>12} {row['dtype']} {'compiled' if compiled else 'eager':>8}: {rate:9.1f} eval/s, "
                    f"{rate * len(atoms):12.0f} atom-eval/s; prepared (MD) {prepared_rate:9.1f} eval/s; "
                    f"first call {first_call_s:.1f} s",
                    flush=True,
                )
                if args.profile and dtype == torch.float64 and name in ("ethanol", "random 10000"):
                    from torch.profiler import profile

                    with profile() as prof:
                        for _ in range(20 if len(atoms) < 100 else 2):
                            model(data)
                    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))

    print(f"\n{'system':>14} {'atoms':>6} {'dtype':>8} {'compiled':>8} {'eval/s':>10} {'atom-eval/s':>13} {'MD eval/s':>10}")
    for r in rows:
        print(f"{r['system']:>14} {r['n_atoms']:>6} {r['dtype']:>8} {str(r['compiled']):>8} {r['evaluations_per_s']:10.1f} "
              f"{r['atom_evaluations_per_s']:13.0f} {r['prepared_evaluations_per_s']:10.1f}")
    model = DescriptorModel(["H"], seed=0)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "benchmark": "energy+forces of the default DescriptorModel, neighbour list prebuilt",
        "command": "python scripts/bench_inference.py" + (" --quick" if args.quick else "")
        + (f" --threads {args.threads}" if args.threads != 2 else ""),
        "targets": {"ethanol_evaluations_per_s": 2000, "random_10000_atom_evaluations_per_s": 50000},
        "model": model.config(),
        "torch_threads": args.threads,
        "machine": platform.processor() or platform.machine(),
        "rows": rows,
    }, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
