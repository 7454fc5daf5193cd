"""Benchmark: mlpot's cell-list neighbour list against ASE's, and vesin's when installed.

Random periodic systems at liquid-water density (0.1 atoms/Å³), cutoff 5 Å, with 10³, 10⁴ and
10⁵ atoms. The timed region is one call that builds the full list (i, j, cell shift) from
positions and cell: ``mlpot.neighbors.neighbor_list`` on torch tensors, ``ase.neighborlist.
neighbor_list("ijS", ...)`` and ``vesin.NeighborList.compute(..., "ijS")``. Each figure is the
median of repeated calls after one warm-up call (the minimum is recorded beside it).

mlpot runs at each torch thread count of ``--threads`` (default 1 and 2). ASE's list is
single-threaded numpy and vesin's CPU list single-threaded C++, so their fair comparison is
mlpot at 1 thread. vesin is the optional extra ``pip install mlpot[bench]``: without it the
vesin column is left out, with a line saying so, and the JSON records ``"vesin_ran": false``.
The scaling exponent is the slope of log(time) against log(N) over the sizes measured.

    python scripts/bench_neighbors.py            # full run, ~3 minutes (ASE at 10⁵ atoms: ~20 s a call)
    python scripts/bench_neighbors.py --quick    # 10³ and 10⁴ atoms only

Prints a table and writes benchmarks/results/neighbors.json (or ``--output``).
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
from ase.neighborlist import neighbor_list as ase_neighbor_list

from mlpot.neighbors import neighbor_list
from mlpot.progress import progress

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "neighbors.json"
DENSITY = 0.1  # atoms/Å³
CUTOFF = 5.0  # Å
DTYPES = (torch.float64, torch.float32)


def median_time(function, repeats: int) -> tuple[float, float]:
    """Median and minimum wall time of ``repeats`` calls after one warm-up call, in seconds."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return median(times), min(times)


def random_system(n_atoms: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Uniform random positions (Å) in a cubic box holding ``n_atoms`` at DENSITY, and its cell."""
    box = (n_atoms / DENSITY) ** (1.0 / 3.0)
    positions = np.random.default_rng(seed).random((n_atoms, 3)) * box
    return positions, np.eye(3) * box


def import_vesin():
    """The vesin module, or None with a line saying how to get it (it is the optional extra)."""
    try:
        import vesin
    except ImportError:
        print("vesin is not installed: its column is left out (pip install 'mlpot[bench]' to compare)")
        return None
    return vesin


def mlpot_key(dtype: torch.dtype, threads: int) -> str:
    return f"mlpot_{str(dtype).removeprefix('torch.')}_{threads}t_s"


def measure(sizes: list[int], thread_counts: list[int], repeats: int, vesin) -> list[dict]:
    """One row per size: the median time (s) of each implementation, and the pair count."""
    rows = []
    steps = len(sizes) * (len(thread_counts) * len(DTYPES) + 1 + (vesin is not None))
    with progress(total=steps, desc="neighbour lists", unit="timing") as bar:
        for n_atoms in sizes:
            positions, cell = random_system(n_atoms)
            n_repeats = repeats if n_atoms <= 10_000 else max(repeats // 4, 3)
            pbc = torch.ones(3, dtype=torch.bool)
            row = {"n_atoms": n_atoms}
            for threads in thread_counts:
                torch.set_num_threads(threads)
                for dtype in DTYPES:
                    pos_t, cell_t = torch.tensor(positions, dtype=dtype), torch.tensor(cell, dtype=dtype)
                    key = mlpot_key(dtype, threads)
                    # timed at once, in this iteration: the defaults only make the binding explicit
                    row[key], row[key.removesuffix("_s") + "_min_s"] = median_time(
                        lambda pos_t=pos_t, cell_t=cell_t, pbc=pbc: neighbor_list(pos_t, CUTOFF, cell_t, pbc),
                        n_repeats)
                    bar.update(1)
            row["n_pairs"] = int(neighbor_list(torch.tensor(positions), CUTOFF, torch.tensor(cell), pbc)[0].shape[1])
            atoms = Atoms(f"Ar{n_atoms}", positions=positions, cell=cell, pbc=True)
            n_ase = 3 if n_atoms <= 10_000 else 1  # ~20 s a call at 10⁵ atoms
            row["ase_s"], row["ase_min_s"] = median_time(
                lambda atoms=atoms: ase_neighbor_list("ijS", atoms, CUTOFF), n_ase)
            row["ase_n_pairs"] = int(len(ase_neighbor_list("i", atoms, CUTOFF)))
            bar.update(1)
            if vesin is not None:
                calculator = vesin.NeighborList(cutoff=CUTOFF, full_list=True)
                row["vesin_s"], row["vesin_min_s"] = median_time(
                    lambda calculator=calculator, positions=positions, cell=cell: calculator.compute(
                        positions, cell, True, "ijS"), n_repeats)
                bar.update(1)
            rows.append(row)
    return rows


def scaling_exponents(rows: list[dict]) -> dict[str, float]:
    """Slope of log(median time) against log(N) per implementation (needs two sizes or more)."""
    if len(rows) < 2:
        return {}
    n = np.log([r["n_atoms"] for r in rows])
    keys = [k for k in rows[0] if k.endswith("_s") and not k.endswith("_min_s")]
    return {k: float(np.polyfit(n, np.log([r[k] for r in rows]), 1)[0]) for k in keys}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only 10³ and 10⁴ atoms")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="atom counts (overrides --quick)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="torch thread counts for mlpot (default 1 2)")
    parser.add_argument("--repeats", type=int, default=20,
                        help="timed calls per figure up to 10⁴ atoms (a quarter above)")
    parser.add_argument("--output", type=Path, default=RESULTS,
                        help="JSON path (default benchmarks/results/neighbors.json)")
    args = parser.parse_args(argv)
    if any(t < 1 for t in args.threads) or args.repeats < 1 or (args.sizes and min(args.sizes) < 2):
        parser.error("--threads and --repeats must be at least 1, --sizes at least 2")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    sizes = args.sizes or ([1_000, 10_000] if args.quick else [1_000, 10_000, 100_000])
    vesin = import_vesin()
    rows = measure(sizes, args.threads, args.repeats, vesin)
    exponents = scaling_exponents(rows)

    columns = [mlpot_key(d, t) for t in args.threads for d in DTYPES] + ["ase_s"] + (["vesin_s"] if vesin else [])
    print(f"{'N atoms':>8} {'pairs':>10} " + " ".join(f"{c.removesuffix('_s'):>16}" for c in columns)
          + "  (ms, median of repeats)")
    for r in rows:
        print(f"{r['n_atoms']:>8} {r['n_pairs']:>10} " + " ".join(f"{1e3 * r[c]:16.1f}" for c in columns))
    print("fitted scaling exponents (time ~ N^k): "
          + ", ".join(f"{k.removesuffix('_s')}={v:.2f}" for k, v in exponents.items()))

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "benchmark": "neighbour list, random periodic system, 0.1 atoms/Å³, cutoff 5 Å",
        "timed": "one call building the full list (i, j, shift) from positions and cell; no model",
        "statistic": "median of repeated calls after one warm-up call (minimum in the *_min_s fields)",
        "command": shlex.join(["python", "scripts/bench_neighbors.py", *(sys.argv[1:] if argv is None else argv)]),
        "torch_threads": args.threads,
        "ase_threads": 1,
        "vesin_ran": vesin is not None,
        "vesin": getattr(vesin, "__version__", None),
        "dtypes": {"mlpot": [str(d).removeprefix("torch.") for d in DTYPES], "ase": "float64", "vesin": "float64"},
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "rows": rows,
        "scaling_exponents": exponents,
    }, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
