"""Benchmark: mlpot's MD engine against ASE's VelocityVerlet driving MLPotCalculator, and against
pure force evaluation, on ethanol and on a ~10⁴-atom periodic copper crystal.

For each system it times, in steps (or force calls) per second:

* (a) ``engine`` — ``mlpot.dynamics.Simulation`` (NVE velocity Verlet, no reporters): the
  integrator, the neighbour-list check/rebuild with skin, the health check, one force call
  (with a compiled model: all of it one compiled graph per step, see
  ``mlpot.dynamics.compiled_step``; ethanol's list at cutoff + skin holds every pair, so the
  engine never rebuilds it: ``neighbour_rebuilds_per_step`` reports it);
* (b) ``ase`` — ``ase.md.verlet.VelocityVerlet`` with ``mlpot.MLPotCalculator`` on the same model;
* (c) ``force`` — the model alone, ``model(data)`` with energy and forces, on a prebuilt
  neighbour list at exactly the cutoff (the irreducible cost of a step).

and reports the engine's overhead over (c), ``t_engine/t_force − 1`` (target ≤ 15%), and its
speed-up over (b) (target ≥ 3× on ethanol). Each timing is the best of several blocks of steps
(the minimum is least disturbed by other work on the machine); the model is an untrained
DescriptorModel with default hyperparameters (timings do not depend on the weights), or the one
given with ``--model``.

    python scripts/bench_md.py                 # full run
    python scripts/bench_md.py --quick         # fewer, shorter blocks (a smoke test)
    python scripts/bench_md.py --threads 1     # set torch's intra-op threads
    python scripts/bench_md.py --no-compile    # the uncompiled model (default: compiled, for both drivers)

Prints a table and writes benchmarks/results/md.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from ase import units
from ase.build import bulk, molecule
from ase.md.verlet import VelocityVerlet

from mlpot.dynamics import Simulation
from mlpot.neighbors import neighbor_list

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "md.json"
TIMESTEP_FS = 0.5


def best_per_call(function, calls_per_block: int, blocks: int) -> float:
    """Minimum over ``blocks`` of the wall time per call of ``function(calls_per_block)``, seconds."""
    times = []
    for _ in range(blocks):
        start = time.perf_counter()
        function(calls_per_block)
        times.append((time.perf_counter() - start) / calls_per_block)
    return min(times)


def make_model(elements, path: str | None):
    if path is not None:
        from mlpot import load_model

        return load_model(path)
    from mlpot.models import DescriptorModel

    return DescriptorModel(elements, seed=0)


def thermalise(atoms, temperature_K: float, seed: int):
    masses = atoms.get_masses()[:, None]
    momenta = np.random.default_rng(seed).normal(size=(len(atoms), 3)) * np.sqrt(masses * units.kB * temperature_K)
    atoms.set_momenta(momenta - masses * momenta.sum(axis=0) / masses.sum())
    return atoms


def bench_system(name: str, atoms, model, steps: int, blocks: int, skin: float) -> dict:
    from mlpot import MLPotCalculator

    atoms = thermalise(atoms, 300.0, seed=0)
    n = len(atoms)
    print(f"[{name}] {n} atoms", flush=True)

    # (c) pure force evaluation on a list at exactly the cutoff.
    dtype = next(model.parameters()).dtype
    positions = torch.as_tensor(atoms.positions, dtype=dtype)
    cell = torch.as_tensor(atoms.cell.array, dtype=dtype)[None]
    pbc = torch.as_tensor(atoms.pbc)[None]
    edge_index, edge_shift = neighbor_list(positions, model.cutoff, cell=cell, pbc=pbc)
    data = {
        "positions": positions,
        "numbers": torch.as_tensor(atoms.numbers, dtype=torch.int64),
        "batch": torch.zeros(n, dtype=torch.int64),
        "cell": cell,
        "pbc": pbc,
        "n_atoms": torch.tensor([n]),
        "edge_index": edge_index,
        "edge_shift": edge_shift,
    }

    def force_calls(k):
        for _ in range(k):
            model(data, compute_forces=True)

    force_calls(1)
    t_force = best_per_call(force_calls, steps, blocks)

    # (a) the engine.
    sim = Simulation(atoms, model, TIMESTEP_FS, skin=skin)
    sim.run(2)
    t_engine = best_per_call(sim.run, steps, blocks)
    rebuilds_per_step = sim.forces.n_rebuilds / max(sim.state.step, 1)

    # (b) ASE's VelocityVerlet with MLPotCalculator (same skin).
    ase_atoms = atoms.copy()
    ase_atoms.calc = MLPotCalculator(model, skin=skin)
    dyn = VelocityVerlet(ase_atoms, timestep=TIMESTEP_FS * units.fs)
    dyn.run(2)
    ase_steps = max(1, steps // 2) if n > 1000 else steps
    t_ase = best_per_call(dyn.run, ase_steps, blocks)

    result = {
        "n_atoms": n,
        "periodic": bool(atoms.pbc.any()),
        "n_edges_at_cutoff": int(edge_index.shape[1]),
        "engine_steps_per_s": 1.0 / t_engine,
        "ase_steps_per_s": 1.0 / t_ase,
        "force_calls_per_s": 1.0 / t_force,
        "engine_overhead_over_force": t_engine / t_force - 1.0,
        "engine_speedup_over_ase": t_ase / t_engine,
        "neighbour_rebuilds_per_step": rebuilds_per_step,
        "steps_per_block": steps,
        "blocks": blocks,
    }
    print(
        f"    engine {result['engine_steps_per_s']:.2f} steps/s, ase {result['ase_steps_per_s']:.2f} steps/s, "
        f"force {result['force_calls_per_s']:.2f} calls/s",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short blocks (smoke test), results not for quoting")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--model", default=None, help="a saved mlpot model (default: untrained DescriptorModel)")
    parser.add_argument("--skin", type=float, default=1.0, help="neighbour-list skin, Å")
    parser.add_argument("--no-compile", action="store_true", help="time the uncompiled model (both drivers)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    ethanol = molecule("CH3CH2OH")
    copper = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((14, 14, 13))  # 10 192 atoms
    plan = {
        "ethanol": (ethanol, ["H", "C", "O"], (50, 3) if args.quick else (200, 5)),
        # Blocks of 20 steps: each holds about one neighbour-list rebuild (one per ~17 steps), so
        # that the engine's time includes rebuilds at their real rate, whichever block is fastest.
        "cu_fcc_10k": (copper, ["Cu"], (2, 2) if args.quick else (20, 3)),
    }
    results = {}
    for name, (atoms, elements, (steps, blocks)) in plan.items():
        model = make_model(elements, args.model if name == "ethanol" else None)
        if not args.no_compile:
            model.compile()
            print(f"[{name}] compiling the model (first calls) …", flush=True)
        results[name] = bench_system(name, atoms, model, steps, blocks, args.skin)

    header = f"{'system':<12} {'atoms':>6} {'engine/s':>9} {'ASE/s':>8} {'force/s':>8} {'overhead':>9} {'vs ASE':>7}"
    print("\n" + header + "\n" + "-" * len(header))
    for name, r in results.items():
        print(
            f"{name:<12} {r['n_atoms']:>6} {r['engine_steps_per_s']:>9.2f} {r['ase_steps_per_s']:>8.2f} "
            f"{r['force_calls_per_s']:>8.2f} {100 * r['engine_overhead_over_force']:>8.1f}% "
            f"{r['engine_speedup_over_ase']:>6.2f}x"
        )
    print("targets: overhead ≤ 15%; engine ≥ 3x ASE on ethanol")

    payload = {
        "command": "python scripts/bench_md.py" + (" --quick" if args.quick else "")
        + (f" --threads {args.threads}" if args.threads else "") + (" --no-compile" if args.no_compile else ""),
        "compiled": not args.no_compile,
        "quick": args.quick,
        "timestep_fs": TIMESTEP_FS,
        "skin": args.skin,
        "model": args.model or "untrained DescriptorModel (defaults, seed 0, float64)",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "results": results,
        "targets": {
            "engine_overhead_over_force_max": 0.15,
            "engine_speedup_over_ase_ethanol_min": 3.0,
            "overhead_met": all(r["engine_overhead_over_force"] <= 0.15 for r in results.values()),
            "speedup_met": results["ethanol"]["engine_speedup_over_ase"] >= 3.0,
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
