"""Benchmark: mlpot models in LAMMPS at 1 and 2 MPI ranks against mlpot's own MD engine.

Copper fcc crystals (a = 3.61 Å, 4 n³ atoms for each ``--sizes`` entry, n rounded), 300 K
Maxwell–Boltzmann velocities, NVE velocity Verlet at 0.5 fs, neighbour skin 1 Å in both codes,
the default ``DescriptorModel(["Cu"])`` untrained (timings do not depend on the weights) in
``--dtype``. For each size it times, in steps per second and atom-steps per second:

* ``mlpot``: ``mlpot.dynamics.Simulation.run(k)`` (the engine's step: integrator, skin check and
  neighbour-list rebuilds, one force call) with ``--threads`` torch threads;
* ``lammps_<r>``: ``mpirun -np r mlpot lammps`` on the same system: LAMMPS' ``Loop time`` of
  ``run k`` (integration, communication of ghosts, LAMMPS' own neighbour lists, and the mlpot
  callback on every rank: mlpot's neighbour list over local + ghost atoms and the model), with
  ``--threads`` torch threads per rank (so r × threads cores).

Each figure is the median over ``--blocks`` blocks of ``--steps`` steps, after ``--warmup`` steps.
The JSON also records where LAMMPS' time goes on rank 0 (callback, model, all-reduce, from
``mlpot lammps``' summary line) and the mean local and ghost atoms per rank, the strong-scaling
efficiency t₁ / (r · t_r), and LAMMPS at one rank against mlpot's engine (targets at 10⁵ atoms:
2 ranks ≥ 1.6× one rank; one rank within 1.5× of the engine's time per step).

    python scripts/bench_lammps.py                          # 10⁴ and 10⁵ atoms (run on a quiet machine)
    python scripts/bench_lammps.py --sizes 500 --steps 5    # a smoke test

Prints a table and writes benchmarks/results/lammps.json (or ``--output``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import torch
from ase.build import bulk

import mlpot
from mlpot.dynamics import Simulation
from mlpot.files import atomic_write_text
from mlpot.integrations.lammps import command_line
from mlpot.models import DescriptorModel
from mlpot.progress import progress

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "lammps.json"
LATTICE = 3.61  # Å, copper
TIMESTEP_FS = 0.5
SKIN = 1.0  # Å, both codes
TIMED = {
    "mlpot": "mlpot.dynamics.Simulation.run(k): NVE velocity Verlet, skin checks and neighbour-list rebuilds, "
             "one force call per step",
    "lammps": "LAMMPS 'Loop time' of run k under mpirun -np r mlpot lammps: integration, ghost communication, "
              "LAMMPS' lists, and on every rank the mlpot callback (mlpot's neighbour list over local + ghost atoms "
              "and the model); start-up and model loading excluded",
}

INPUT = """\
units metal
atom_style atomic
boundary p p p
lattice fcc {lattice!r}
region box block 0 ${{cells}} 0 ${{cells}} 0 ${{cells}}
create_box 1 box
create_atoms 1 box
mass 1 63.546
pair_style zero {cutoff!r}
pair_coeff * *
neighbor {skin!r} bin
fix mlpot all external pf/callback 1 1
velocity all create 300.0 4928459 mom yes rot no dist gaussian
fix integrate all nve
timestep {timestep_ps!r}
thermo 100000000
run ${{warmup}}
variable block loop ${{blocks}}
label repeat
run ${{steps}}
next block
jump SELF repeat
"""

LOOP_TIME = re.compile(r"^Loop time of ([0-9.eE+-]+) on (\d+) procs for (\d+) steps with (\d+) atoms", re.M)
SUMMARY = re.compile(
    r"(\d+) callbacks, ([0-9.]+) s in them \(model ([0-9.]+) s, allreduce ([0-9.]+) s\), "
    r"([0-9.]+) local and ([0-9.]+) ghost atoms per call"
)


def copper(cells: int):
    return bulk("Cu", "fcc", a=LATTICE, cubic=True).repeat(cells)


def cells_for(size: int) -> int:
    """Cubic cells per side whose 4 n³ atoms are nearest ``size``."""
    return max(1, round((size / 4) ** (1 / 3)))


def time_engine(model, cells: int, steps: int, blocks: int, warmup: int) -> list[float]:
    """Seconds per step of mlpot's engine, one entry per block."""
    sim = Simulation(copper(cells), model, TIMESTEP_FS, temperature_K=300.0, seed=0, skin=SKIN)
    sim.run(warmup)
    per_step = []
    for _ in range(blocks):
        start = time.perf_counter()
        sim.run(steps)
        per_step.append((time.perf_counter() - start) / steps)
    return per_step


def time_lammps(model_path: Path, folder: Path, cells: int, ranks: int, args) -> dict:
    """Seconds per step of LAMMPS' timed blocks and rank 0's callback summary."""
    variables = {"cells": str(cells), "steps": str(args.steps), "blocks": str(args.blocks), "warmup": str(args.warmup)}
    run_folder = folder / f"cells{cells}_ranks{ranks}"
    run_folder.mkdir(parents=True, exist_ok=True)
    command = command_line(model_path, folder / "bench.lammps", ["Cu"], ranks=ranks, variables=variables)
    command += ["--threads", str(args.threads), "--log", "log.lammps"]
    if args.dtype:
        command += ["--dtype", args.dtype]
    process = subprocess.run(command, cwd=run_folder, capture_output=True, text=True)
    if process.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)} failed:\n{process.stderr[-3000:]}")
    loops = LOOP_TIME.findall((run_folder / "log.lammps").read_text())[1:]  # the first is the warm-up
    summary = SUMMARY.search(process.stdout)
    callbacks, callback_s, model_s, allreduce_s, local, ghost = (float(g) for g in summary.groups())
    return {
        "seconds_per_step": [float(loop[0]) / int(loop[2]) for loop in loops],
        # per callback (one per step; warm-up and set-up calls included), rank 0
        "rank0_seconds_per_call": {"callback": callback_s / callbacks, "model": model_s / callbacks,
                                   "allreduce": allreduce_s / callbacks},
        "mean_atoms_per_rank": {"local": local, "ghost": ghost},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="approximate atom counts")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2], help="MPI ranks of the LAMMPS runs")
    parser.add_argument("--steps", type=int, default=20, help="steps per timed block")
    parser.add_argument("--blocks", type=int, default=3, help="timed blocks (the median is reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the engine and of each rank")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = DescriptorModel(["Cu"], seed=0, dtype=getattr(torch, args.dtype))
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-lammps-") as tmp:
        folder = Path(tmp)
        model_path = mlpot.save_model(model, folder / "model.pt")
        (folder / "bench.lammps").write_text(
            INPUT.format(lattice=LATTICE, cutoff=float(model.cutoff), skin=SKIN, timestep_ps=TIMESTEP_FS / 1000)
        )
        bar = progress(total=len(args.sizes) * (1 + len(args.ranks)), desc="LAMMPS benchmark", unit="timing")
        for size in args.sizes:
            cells = cells_for(size)
            n_atoms = 4 * cells**3
            engine = median(time_engine(model, cells, args.steps, args.blocks, args.warmup))
            bar.update(atoms=n_atoms, run="mlpot")
            entry = {"atoms": n_atoms, "cells": cells, "mlpot": {"seconds_per_step": engine,
                                                                 "steps_per_second": 1 / engine,
                                                                 "atom_steps_per_second": n_atoms / engine}}
            for ranks in args.ranks:
                run = time_lammps(model_path, folder, cells, ranks, args)
                bar.update(atoms=n_atoms, run=f"lammps x{ranks}")
                seconds = median(run["seconds_per_step"])
                entry[f"lammps_{ranks}"] = {**run, "seconds_per_step": seconds, "steps_per_second": 1 / seconds,
                                            "atom_steps_per_second": n_atoms / seconds,
                                            "blocks_seconds_per_step": run["seconds_per_step"]}
            if "lammps_1" in entry:
                one = entry["lammps_1"]["seconds_per_step"]
                entry["lammps_1_over_mlpot"] = one / engine
                for ranks in args.ranks:
                    if ranks > 1:
                        t = entry[f"lammps_{ranks}"]["seconds_per_step"]
                        entry[f"speedup_{ranks}"] = one / t
                        entry[f"efficiency_{ranks}"] = one / (ranks * t)
            results.append(entry)
        bar.close()
    payload = {
        "command": shlex.join(["python", "scripts/bench_lammps.py", *(sys.argv[1:] if argv is None else argv)]),
        "timed": TIMED,
        "statistic": f"median over {args.blocks} blocks of {args.steps} steps after {args.warmup} warm-up steps",
        "threads_per_rank": args.threads,
        "dtype": args.dtype,
        "model": "DescriptorModel(['Cu']) defaults (cutoff 5 Å), untrained",
        "skin_A": SKIN,
        "timestep_fs": TIMESTEP_FS,
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "results": results,
    }
    atomic_write_text(args.output, json.dumps(payload, indent=2) + "\n")
    print(f"{'atoms':>8} {'mlpot steps/s':>14} " + " ".join(f"{f'lammps x{r} steps/s':>18}" for r in args.ranks)
          + f" {'LAMMPS1/mlpot':>14}")
    for e in results:
        print(f"{e['atoms']:>8} {e['mlpot']['steps_per_second']:>14.3f} "
              + " ".join(f"{e[f'lammps_{r}']['steps_per_second']:>18.3f}" for r in args.ranks)
              + f" {e.get('lammps_1_over_mlpot', float('nan')):>14.2f}")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
