"""Benchmark: mlpot's cell-list neighbour list against ASE (and vesin, when installed).

Random periodic systems at liquid-water density (0.1 atoms/Å³), cutoff 5 Å, with 10³, 10⁴
and 10⁵ atoms. Each timing is the best of several repeats (the minimum is the least disturbed
by other work on the machine). The scaling exponent is the slope of log(time) against log(N)
over the sizes measured.

    python scripts/bench_neighbors.py            # full run (ASE at 10⁵ atoms takes ~30 s)
    python scripts/bench_neighbors.py --quick    # 10³ and 10⁴ only

Prints a table and writes benchmarks/results/neighbors.json.
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
from ase.neighborlist import neighbor_list as ase_neighbor_list

from mlpot.neighbors import neighbor_list

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "neighbors.json"
DENSITY = 0.1  # atoms/Å³
CUTOFF = 5.0  # Å


def best_time(function, repeats: int) -> float:
    """Minimum wall time of ``repeats`` calls after one warm-up call, in seconds."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def random_system(n_atoms: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    box = (n_atoms / DENSITY) ** (1.0 / 3.0)
    positions = np.random.default_rng(seed).random((n_atoms, 3)) * box
    return positions, np.eye(3) * box


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only 10³ and 10⁴ atoms")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    try:
        import vesin
    except ImportError:
        vesin = None

    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    rows = []
    for n_atoms in sizes:
        positions, cell = random_system(n_atoms)
        repeats = 20 if n_atoms <= 10_000 else 5
        row = {"n_atoms": n_atoms}
        for dtype in (torch.float64, torch.float32):
            pos_t = torch.tensor(positions, dtype=dtype)
            cell_t = torch.tensor(cell, dtype=dtype)
            pbc_t = torch.ones(3, dtype=torch.bool)
            row[f"mlpot_{str(dtype)[6:]}_s"] = best_time(lambda: neighbor_list(pos_t, CUTOFF, cell_t, pbc_t), repeats)
        row["n_pairs"] = int(neighbor_list(torch.tensor(positions), CUTOFF, torch.tensor(cell), torch.ones(3, dtype=torch.bool))[0].shape[1])
        atoms = Atoms(f"Ar{n_atoms}", positions=positions, cell=cell, pbc=True)
        row["ase_s"] = best_time(lambda: ase_neighbor_list("ijS", atoms, CUTOFF), 3 if n_atoms <= 10_000 else 1)
        if vesin is not None:
            calculator = vesin.NeighborList(cutoff=CUTOFF, full_list=True)
            row["vesin_s"] = best_time(lambda: calculator.compute(positions, cell, True, "ijS"), repeats)
        rows.append(row)
        print(f"  measured N={n_atoms}", flush=True)

    n = np.array([r["n_atoms"] for r in rows], dtype=float)
    exponents = {}
    for key in ("mlpot_float64_s", "mlpot_float32_s", "ase_s", "vesin_s"):
        if key in rows[0]:
            exponents[key] = float(np.polyfit(np.log(n), np.log([r[key] for r in rows]), 1)[0])

    header = f"{'N atoms':>8} {'pairs':>10} {'mlpot f64':>10} {'mlpot f32':>10} {'ASE':>10} {'vesin':>10}  (ms, best of repeats)"
    print(header)
    for r in rows:
        vesin_ms = f"{1e3 * r['vesin_s']:10.1f}" if "vesin_s" in r else f"{'n/a':>10}"
        print(
            f"{r['n_atoms']:>8} {r['n_pairs']:>10} {1e3 * r['mlpot_float64_s']:10.1f} {1e3 * r['mlpot_float32_s']:10.1f} "
            f"{1e3 * r['ase_s']:10.1f} {vesin_ms}"
        )
    print("fitted scaling exponents (time ~ N^k): " + ", ".join(f"{k[:-2]}={v:.2f}" for k, v in exponents.items()))

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "neighbour list, random periodic system, 0.1 atoms/Å³, cutoff 5 Å",
        "command": "python scripts/bench_neighbors.py" + (" --quick" if args.quick else ""),
        "torch_threads": args.threads,
        "machine": platform.processor() or platform.machine(),
        "rows": rows,
        "scaling_exponents": exponents,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
