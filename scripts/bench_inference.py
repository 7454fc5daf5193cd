"""Benchmark: energy + force evaluations per second of the default DescriptorModel.

Systems: ethanol (9 atoms), Cu fcc (864 atoms, periodic), and random periodic systems at
water density (0.1 atoms/Å³) of 10³ and 10⁴ atoms, all of one element for the random ones.
Each system is timed in float64 and float32, uncompiled and compiled (``DescriptorModel.compile()``;
the first call, which compiles, is timed apart as ``first_call_s``), in three timed regions:

* ``full``: a *fresh structure* each call (one of eight copies, rattled by 0.01 Å, taken in
  turn), from ``ase.Atoms`` to energy and forces: ``atomic_data_from_atoms`` with the neighbour
  list, then ``model(data)``. What one calculator call on a new structure costs.
* ``model``: ``model(data)`` alone on a prebuilt neighbour list.
* ``prepared``: the MD path between neighbour-list rebuilds, ``model.fixed_topology(data)``
  prepared once (outside the timing) and then called with positions.

Each figure is the median rate over repeated calls (at least ``--min-calls`` and ``--seconds``
seconds of calls per figure, after one warm-up call); the best single call is recorded beside it.

    python scripts/bench_inference.py             # ~5 minutes on 2 quiet cores
    python scripts/bench_inference.py --quick     # without the 10⁴-atom system
    python scripts/bench_inference.py --threads 1 --profile

Prints a table and writes benchmarks/results/inference.json (or ``--output``). ``--profile``
prints where the time goes (torch profiler) for ethanol and the 10⁴-atom system.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path
from statistics import median

import numpy as np
import torch
from ase import Atoms
from ase.build import bulk, molecule

from mlpot.data import atomic_data_from_atoms
from mlpot.models import DescriptorModel
from mlpot.progress import progress

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "inference.json"
N_FRESH = 8  # rattled copies cycled through by the "full" region, so that no call reuses a list
TIMED = {
    "full": "atomic_data_from_atoms (neighbour list of a fresh structure) + model(data), energy and forces",
    "model": "model(data) on a prebuilt neighbour list, energy and forces",
    "prepared": "model.fixed_topology(data) prepared once outside the timing, then evaluate(positions): the MD path",
}


def systems(quick: bool, sizes: list[int] | None = None) -> dict[str, Atoms]:
    """The benchmark structures by name; ``sizes`` replaces the random systems' atom counts."""
    out = {"ethanol": molecule("CH3CH2OH"), "Cu fcc 864": bulk("Cu", "fcc", a=3.61, cubic=True).repeat(6)}
    if sizes is not None:
        out.pop("Cu fcc 864")
    for n in sizes if sizes is not None else ((1_000,) if quick else (1_000, 10_000)):
        box = (n / 0.1) ** (1 / 3)
        rng = np.random.default_rng(0)
        out[f"random {n}"] = Atoms(f"O{n}", positions=rng.random((n, 3)) * box, cell=[box] * 3, pbc=True)
    return out


def median_rate(evaluate, min_seconds: float, min_calls: int) -> tuple[float, float]:
    """Median and best calls per second of ``evaluate()``, over at least ``min_calls`` calls and
    ``min_seconds`` seconds of calls, after one warm-up call."""
    evaluate()
    times, start = [], time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        evaluate()
        times.append(time.perf_counter() - t0)
    return 1.0 / median(times), 1.0 / min(times)


def fresh_copies(atoms: Atoms, n: int = N_FRESH) -> list[Atoms]:
    """``n`` copies of ``atoms`` rattled by 0.01 Å (different seeds): each is a new structure."""
    copies = [atoms.copy() for _ in range(n)]
    for seed, copy in enumerate(copies):
        copy.rattle(0.01, seed=seed)
    return copies


def time_system(name: str, atoms: Atoms, dtype: torch.dtype, compiled: bool, args) -> dict:
    """One row: the three timed regions of one system, dtype and compilation."""
    elements = sorted(set(atoms.get_chemical_symbols()))
    model = DescriptorModel(elements, dtype=dtype, seed=0).eval().compile(compiled)
    data = atomic_data_from_atoms(atoms, cutoff=model.cutoff, dtype=dtype)
    start = time.perf_counter()
    model(data)
    first_call_s = time.perf_counter() - start
    seconds = args.seconds * (2.0 if len(atoms) >= 5000 else 1.0)
    copies, turn = fresh_copies(atoms), iter(range(10**12))

    def full():
        fresh = copies[next(turn) % len(copies)]
        return model(atomic_data_from_atoms(fresh, cutoff=model.cutoff, dtype=dtype))

    for _ in copies:  # a compiled model recompiles once for a new edge count: not inside the timing
        full()
    full_rate, full_best = median_rate(full, seconds, args.min_calls)
    model_rate, model_best = median_rate(lambda: model(data), seconds, args.min_calls)
    evaluate = model.fixed_topology(data)
    prepared_rate, prepared_best = median_rate(lambda: evaluate(data["positions"]), seconds, args.min_calls)
    if args.profile and dtype == torch.float64 and name in ("ethanol", "random 10000"):
        from torch.profiler import profile

        with profile() as prof:
            for _ in range(20 if len(atoms) < 100 else 2):
                full()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
    return {
        "system": name, "n_atoms": len(atoms), "n_edges": int(data["edge_index"].shape[1]),
        "dtype": str(dtype).removeprefix("torch."), "compiled": compiled, "first_call_s": first_call_s,
        "full_evaluations_per_s": full_rate, "full_best_evaluations_per_s": full_best,
        "model_evaluations_per_s": model_rate, "model_best_evaluations_per_s": model_best,
        "prepared_evaluations_per_s": prepared_rate, "prepared_best_evaluations_per_s": prepared_best,
        "full_atom_evaluations_per_s": full_rate * len(atoms),
    }


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 10⁴-atom system")
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help="atom counts of the random systems, and no Cu crystal (a smoke test)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="seconds of calls per figure (twice that from 5,000 atoms)")
    parser.add_argument("--min-calls", type=int, default=10, help="at least this many timed calls per figure")
    parser.add_argument("--no-compile", action="store_true", help="only the uncompiled model")
    parser.add_argument("--profile", action="store_true", help="print a torch profile per system")
    parser.add_argument("--output", type=Path, default=RESULTS,
                        help="JSON path (default benchmarks/results/inference.json)")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.min_calls < 1 or args.seconds < 0:
        parser.error("--threads and --min-calls must be at least 1, --seconds at least 0")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    plan = [(name, atoms, dtype, compiled) for name, atoms in systems(args.quick, args.sizes).items()
            for dtype in (torch.float64, torch.float32)
            for compiled in ((False,) if args.no_compile else (False, True))]
    rows = []
    with progress(total=len(plan), desc="inference", unit="setting") as bar:
        for name, atoms, dtype, compiled in plan:
            rows.append(time_system(name, atoms, dtype, compiled, args))
            bar.update(1)

    print(f"\n{'system':>14} {'atoms':>6} {'dtype':>8} {'compiled':>8} "
          f"{'full/s':>10} {'model/s':>10} {'prepared/s':>10}"
          "   (evaluations per second, median)")
    for r in rows:
        print(f"{r['system']:>14} {r['n_atoms']:>6} {r['dtype']:>8} {str(r['compiled']):>8} "
              f"{r['full_evaluations_per_s']:10.1f} {r['model_evaluations_per_s']:10.1f} "
              f"{r['prepared_evaluations_per_s']:10.1f}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "benchmark": "energy+forces of the default DescriptorModel (untrained, seed 0)",
        "timed": TIMED,
        "statistic": "median rate over repeated calls after one warm-up call (best single call in *_best_*)",
        "command": shlex.join(["python", "scripts/bench_inference.py", *(sys.argv[1:] if argv is None else argv)]),
        "targets": {"ethanol_evaluations_per_s": 2000, "random_10000_atom_evaluations_per_s": 50000},
        "model": DescriptorModel(["H"], seed=0).config(),
        "torch_threads": args.threads,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "rows": rows,
    }, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
