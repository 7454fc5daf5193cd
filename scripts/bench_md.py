"""Benchmark: mlpot's MD engine against ASE's VelocityVerlet driving MLPotCalculator, and against
the prepared force call of the same model, on ethanol and on a ~10⁴-atom periodic copper crystal.

For each system it times, in steps (or force calls) per second:

* (a) ``engine``: ``mlpot.dynamics.Simulation`` (NVE velocity Verlet, no reporters): the
  integrator, the neighbour-list check and rebuilds (skin ``--skin``), the health check and one
  force call (with a compiled model: all of it one compiled graph per step, see
  ``mlpot.dynamics.compiled_step``; ethanol's list at cutoff + skin holds every pair, so the
  engine never rebuilds it: ``neighbour_rebuilds_per_step`` reports it);
* (b) ``ase``: ``ase.md.verlet.VelocityVerlet`` with ``mlpot.MLPotCalculator`` on the same model
  and skin;
* (c) ``prepared force``: the call the engine makes every step, ``model.fixed_topology(data)``
  prepared once on a list at cutoff + skin and then called with positions. The engine's
  overhead is measured against it, ``t_engine / t_prepared − 1`` (target ≤ 15%): what the engine
  adds to the force call it cannot avoid (integrator, skin check, rebuilds, health checks);
* (d) ``model call``: ``model(data)`` with energy and forces on a list at exactly the cutoff,
  unprepared (the calculator's path), for reference only.

Each timing is the median over blocks of steps (the minimum is recorded beside it), after two
warm-up steps (which compile a compiled model). The model is an untrained DescriptorModel with
default hyper-parameters in float64 (timings do not depend on the weights), or ``--model``.

    python scripts/bench_md.py                 # full run, ~4 minutes on 2 quiet cores
    python scripts/bench_md.py --quick         # fewer, shorter blocks (a smoke test)
    python scripts/bench_md.py --threads 1     # torch's intra-op threads (default 2)
    python scripts/bench_md.py --no-compile    # the uncompiled model (default: compiled, for all drivers)

Prints a table and writes benchmarks/results/md.json (or ``--output``).
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
from ase import units
from ase.build import bulk, molecule
from ase.md.velocitydistribution import Stationary, ZeroRotation
from ase.md.verlet import VelocityVerlet

from mlpot.dynamics import Simulation
from mlpot.neighbors import neighbor_list
from mlpot.progress import progress

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "md.json"
TIMESTEP_FS = 0.5
TIMED = {
    "engine": "Simulation.run(k): NVE velocity Verlet steps, neighbour-list checks and rebuilds, health checks",
    "ase": "VelocityVerlet.run(k) with MLPotCalculator (same model, same skin)",
    "prepared_force": "model.fixed_topology(data) prepared once (list at cutoff + skin), then k calls of "
                      "evaluate(positions): the force call of each engine step; the overhead's denominator",
    "model_call": "k calls of model(data), energy and forces, list at the cutoff prebuilt (reference only)",
}


def median_per_call(function, calls_per_block: int, blocks: int) -> tuple[float, float]:
    """Median and minimum over ``blocks`` of the wall time per call of ``function(calls_per_block)``, s."""
    times = []
    for _ in range(blocks):
        start = time.perf_counter()
        function(calls_per_block)
        times.append((time.perf_counter() - start) / calls_per_block)
    return median(times), min(times)


def make_model(elements, path: str | None):
    if path is not None:
        from mlpot import load_model

        return load_model(path)
    from mlpot.models import DescriptorModel

    return DescriptorModel(elements, seed=0)


def thermalise(atoms, temperature_K: float, seed: int):
    """Maxwell–Boltzmann momenta at ``temperature_K`` without centre-of-mass motion, and for an
    isolated molecule without rotation (both conserved; the engine would remove them with a warning)."""
    masses = atoms.get_masses()[:, None]
    atoms.set_momenta(np.random.default_rng(seed).normal(size=(len(atoms), 3))
                      * np.sqrt(masses * units.kB * temperature_K))
    Stationary(atoms)
    if not atoms.pbc.any():
        ZeroRotation(atoms)
    return atoms


def atomic_data(atoms, model, cutoff: float) -> dict:
    """AtomicData of ``atoms`` in the model's dtype, with the neighbour list at ``cutoff`` (Å)."""
    dtype = next(model.parameters()).dtype
    positions = torch.as_tensor(atoms.positions, dtype=dtype)
    cell = torch.as_tensor(atoms.cell.array, dtype=dtype)[None]
    pbc = torch.as_tensor(atoms.pbc)[None]
    edge_index, edge_shift = neighbor_list(positions, cutoff, cell=cell, pbc=pbc)
    n = len(atoms)
    return {
        "positions": positions, "numbers": torch.as_tensor(atoms.numbers, dtype=torch.int64),
        "batch": torch.zeros(n, dtype=torch.int64), "cell": cell, "pbc": pbc, "n_atoms": torch.tensor([n]),
        "edge_index": edge_index, "edge_shift": edge_shift,
    }


def bench_system(name: str, atoms, model, steps: int, blocks: int, skin: float, bar) -> dict:
    """The four timings of one system (see the module docstring), as a dict of rates and ratios."""
    from mlpot import MLPotCalculator

    atoms = thermalise(atoms, 300.0, seed=0)
    n = len(atoms)

    # (c) the prepared force call, on the list the engine uses (cutoff + skin)
    data_skin = atomic_data(atoms, model, model.cutoff + skin)
    evaluate = model.fixed_topology(data_skin)
    positions = data_skin["positions"]

    def prepared_calls(k):
        for _ in range(k):
            evaluate(positions)

    prepared_calls(2)
    t_prepared, t_prepared_min = median_per_call(prepared_calls, steps, blocks)
    bar.update(1)

    # (d) the unprepared model call, list at exactly the cutoff
    data = atomic_data(atoms, model, model.cutoff)

    def model_calls(k):
        for _ in range(k):
            model(data, compute_forces=True)

    model_calls(2)
    t_model, _ = median_per_call(model_calls, steps, blocks)
    bar.update(1)

    # (a) the engine
    sim = Simulation(atoms, model, TIMESTEP_FS, skin=skin)
    sim.run(2)
    t_engine, t_engine_min = median_per_call(sim.run, steps, blocks)
    rebuilds_per_step = sim.forces.n_rebuilds / max(sim.state.step, 1)
    bar.update(1)

    # (b) ASE's VelocityVerlet with MLPotCalculator (same skin)
    ase_atoms = atoms.copy()
    ase_atoms.calc = MLPotCalculator(model, skin=skin)
    dyn = VelocityVerlet(ase_atoms, timestep=TIMESTEP_FS * units.fs)
    dyn.run(2)
    t_ase, _ = median_per_call(dyn.run, max(1, steps // 2) if n > 1000 else steps, blocks)
    bar.update(1)

    return {
        "n_atoms": n,
        "dtype": str(positions.dtype).removeprefix("torch."),
        "periodic": bool(atoms.pbc.any()),
        "n_edges_at_cutoff": int(data["edge_index"].shape[1]),
        "n_edges_at_cutoff_plus_skin": int(data_skin["edge_index"].shape[1]),
        "engine_steps_per_s": 1.0 / t_engine,
        "engine_best_steps_per_s": 1.0 / t_engine_min,
        "ase_steps_per_s": 1.0 / t_ase,
        "prepared_force_calls_per_s": 1.0 / t_prepared,
        "prepared_force_best_calls_per_s": 1.0 / t_prepared_min,
        "model_calls_per_s": 1.0 / t_model,
        "engine_overhead_over_prepared_force": t_engine / t_prepared - 1.0,
        "engine_speedup_over_ase": t_ase / t_engine,
        "neighbour_rebuilds_per_step": rebuilds_per_step,
        "steps_per_block": steps,
        "blocks": blocks,
    }


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short blocks (smoke test), results not for quoting")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument("--model", default=None,
                        help="a saved mlpot model for ethanol (default: untrained DescriptorModel)")
    parser.add_argument("--skin", type=float, default=1.0, help="neighbour-list skin, Å")
    parser.add_argument("--no-compile", action="store_true", help="time the uncompiled model (all drivers)")
    parser.add_argument("--copper-repeat", type=int, nargs=3, default=(14, 14, 13),
                        help="copies of the 4-atom fcc cell per axis (default 14 14 13: 10,192 atoms)")
    parser.add_argument("--steps", type=int, default=None,
                        help="steps per block for every system (default: per system)")
    parser.add_argument("--blocks", type=int, default=None, help="timed blocks for every system (default: per system)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.threads < 1 or args.skin < 0 or min(args.copper_repeat) < 1 or min(args.steps or 1, args.blocks or 1) < 1:
        parser.error("--threads, --copper-repeat, --steps and --blocks must be at least 1, --skin at least 0")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    ethanol = molecule("CH3CH2OH")
    copper = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(tuple(args.copper_repeat))
    plan = {
        "ethanol": (ethanol, ["H", "C", "O"], (50, 3) if args.quick else (200, 7)),
        # Blocks of 20 steps: each holds about one neighbour-list rebuild (one per ~17 steps), so
        # that every block's time includes rebuilds at their real rate.
        "cu_fcc": (copper, ["Cu"], (2, 3) if args.quick else (20, 5)),
    }
    results = {}
    with progress(total=4 * len(plan), desc="MD benchmark", unit="timing") as bar:
        for name, (atoms, elements, (steps, blocks)) in plan.items():
            steps, blocks = args.steps or steps, args.blocks or blocks
            model = make_model(elements, args.model if name == "ethanol" else None)
            if not args.no_compile:
                model.compile()
            results[name] = bench_system(name, atoms, model, steps, blocks, args.skin, bar)

    header = (f"{'system':<10} {'atoms':>6} {'engine/s':>9} {'ASE/s':>8} {'prepared/s':>10} {'model/s':>8} "
              f"{'overhead':>9} {'vs ASE':>7}")
    print("\n" + header + "\n" + "-" * len(header))
    for name, r in results.items():
        print(f"{name:<10} {r['n_atoms']:>6} {r['engine_steps_per_s']:>9.2f} {r['ase_steps_per_s']:>8.2f} "
              f"{r['prepared_force_calls_per_s']:>10.2f} {r['model_calls_per_s']:>8.2f} "
              f"{100 * r['engine_overhead_over_prepared_force']:>8.1f}% {r['engine_speedup_over_ase']:>6.2f}x")
    print("medians over blocks; overhead = engine time / prepared force call time - 1 (target <= 15%); "
          "engine >= 3x ASE on ethanol")

    payload = {
        "command": shlex.join(["python", "scripts/bench_md.py", *(sys.argv[1:] if argv is None else argv)]),
        "timed": TIMED,
        "statistic": "median over blocks of steps_per_block steps (engine and prepared minimum in *_best_*)",
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
            "engine_overhead_over_prepared_force_max": 0.15,
            "engine_speedup_over_ase_ethanol_min": 3.0,
            "overhead_met": all(r["engine_overhead_over_prepared_force"] <= 0.15 for r in results.values()),
            "speedup_met": results["ethanol"]["engine_speedup_over_ase"] >= 3.0,
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
