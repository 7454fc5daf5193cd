"""Benchmark: mlpot's two model families against MACE, MD speed side by side in one run.

Two systems, each thermalised at 300 K (Maxwell–Boltzmann, no centre-of-mass motion, and for the
molecule no rotation; the same initial momenta for every code):

* ``ethanol``: 9 atoms, isolated; figure of merit MD steps per second;
* ``cu_fcc``: fcc copper, a = 3.61 Å, 6×6×6 conventional cells = 864 atoms, periodic; figure
  of merit atom-steps per second (steps/s × atoms).

For each system, float64 and float32, NVE velocity Verlet at 0.5 fs, it times:

* mlpot ``DescriptorModel`` and ``EquivariantModel``, each through (a) ASE's ``VelocityVerlet``
  with ``mlpot.MLPotCalculator`` and (b) mlpot's own engine, ``mlpot.dynamics.Simulation``
  (integrator, skin check and neighbour-list rebuilds, health check, one force call), both with
  a 1 Å neighbour-list skin, as scripts/bench_md.py times them;
* MACE, sizes ``64x0e + 64x1o`` and ``128x0e + 128x1o`` (two interactions, correlation 3,
  max_ell 3, r_max 5 Å), through ASE's ``VelocityVerlet`` with ``mace.calculators.MACECalculator``
  (MACE has no engine of its own). mace-torch pins an older e3nn than mlpot's, so MACE runs in a
  subprocess (scripts/bench_peers_mace.py) under a virtual environment of its own,
  ``.bench-venv/``, which ``--setup`` builds: ``pip install torch==2.13.0`` first (a CPU wheel:
  any other torch specification would download gigabytes of CUDA libraries), then
  ``pip install mace-torch``. Without that environment the script times mlpot alone and says so.

All models are untrained: a step costs the same whatever the weights. mlpot's hyper-parameters
are those of scripts/configs/rmd17_ethanol.yaml and rmd17_equivariant.yaml (``--hyperparameters
rmd17``, the default: the models of the accuracy table) or the package defaults
(``--hyperparameters defaults``). By default both mlpot models are compiled (their ``compile()``,
for both drivers; ``--no-compile`` turns it off), and MACE runs as its calculator does by default
(``compile_mode=None``).

Both processes use the same torch intra-op threads (``--threads``, default 1), the same dtype,
steps, time step and initial state. Each figure is the median over blocks of steps after a
warm-up; the fastest block is recorded beside it. Every block is a new MD from the thermalised
state (its first forces evaluated before the clock starts): the models are untrained, and an
untrained model's ethanol flies apart, each code's at its own pace (measured over 600 steps from
this state: 72 pairs within 5 Å fall to 10 with mlpot's equivariant model, to 56 with MACE's),
so one long run would time a thinning gas, and ever fewer edges per step, instead of a molecule
(reports before 2026-12-03 did that; their ethanol ratios favour mlpot). The warm-up of a compiled mlpot model runs two
steps on the system less one atom and then two on the system: a compiled model compiles for its
first shapes and once more, for any shapes, at the first change of the edge count (4–5 s on CPU,
once per run, within tens of steps in ethanol), and this puts both compiles before the timing
(reports before 2026-12-03 warmed up two steps only, so that second compile fell in a timed
block of whichever mlpot driver ran first). Blocks:
10 × 50 steps on ethanol, 3 × 20 on copper (one neighbour-list rebuild per ~17 steps there, so
each block pays for rebuilds at their real rate); ``--quick``: 2 × 10 and 2 × 2.

    python scripts/bench_peers.py --setup                  # once: build .bench-venv/ (needs PyPI)
    python scripts/bench_peers.py --overwrite              # full run: about two hours on 2 quiet cores
                                                           # (1 h 54 min measured; most of it MACE on copper)
    python scripts/bench_peers.py --quick --output /tmp/peers.json     # smoke test, not for quoting
    python scripts/bench_peers.py --threads 2 --hyperparameters defaults --output /tmp/peers_2t.json
    python scripts/bench_peers.py --systems ethanol --families equivariant --dtypes float32 --output ...

Prints a table and writes benchmarks/results/peers.json (or ``--output``). Like ``mlpot train``,
it refuses to replace an existing output file unless ``--overwrite``: a full run is long, and a
smoke run must not replace it by accident. The report is written after every timing
(``"complete": false`` until the last), so an interrupted run keeps what it measured, and
``--resume`` times only what a report lacks (the same settings required; other systems, dtypes or
families may be added).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import warnings
from pathlib import Path

import ase
import e3nn
import torch
import yaml
from ase import units
from ase.build import bulk, molecule
from ase.md.verlet import VelocityVerlet
from bench_md import TIMESTEP_FS, median_per_call, thermalise

import mlpot
from mlpot import MLPotCalculator
from mlpot.dynamics import Simulation
from mlpot.files import atomic_write_text
from mlpot.models import DescriptorModel, EquivariantModel
from mlpot.models.compile import supports_compile
from mlpot.progress import progress

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "peers.json"
BENCH_VENV = ROOT / ".bench-venv"
MACE_WORKER = ROOT / "scripts" / "bench_peers_mace.py"
MACE_NOT_INSTALLED = "not installed (python scripts/bench_peers.py --setup)"
# The reference of the speed target is the smaller MACE (mlpot ≥ 3× its ASE steps/s).
MACE_SIZES = ("64x0e + 64x1o", "128x0e + 128x1o")
MACE_REFERENCE = MACE_SIZES[0]
MACE_ARCHITECTURE = {"num_interactions": 2, "correlation": 3, "max_ell": 3, "r_max": 5.0}
SPEEDUP_TARGET = 3.0
TEMPERATURE_K = 300.0
COPPER_LATTICE = 3.61  # Å
SKIN = 1.0  # Å, mlpot's neighbour-list skin (both drivers)
WARMUP_STEPS = 2
#: How mlpot models are warmed up before timing (recorded: --resume must not mix two ways).
WARMUP = f"{WARMUP_STEPS} steps on the system less one atom, then {WARMUP_STEPS} on the system"
#: Where each timed block starts (recorded: --resume must not mix two ways).
BLOCK_START = "every block a new MD from the thermalised state, its first forces evaluated before the clock"
FAMILIES = {"descriptor": DescriptorModel, "equivariant": EquivariantModel}
CONFIGS = {"descriptor": ROOT / "scripts" / "configs" / "rmd17_ethanol.yaml",
           "equivariant": ROOT / "scripts" / "configs" / "rmd17_equivariant.yaml"}
ELEMENTS = {"ethanol": ["H", "C", "O"], "cu_fcc": ["Cu"]}
TIMED = {
    "ase": "VelocityVerlet.run(k) (ase.md.verlet, NVE) with the code's own ASE calculator: mlpot.MLPotCalculator "
           "(skin 1 Å) or mace.calculators.MACECalculator (as shipped: a fresh neighbour list, energy, forces and "
           "stress on every call)",
    "engine": "mlpot.dynamics.Simulation.run(k), NVE velocity Verlet: integrator, skin check and neighbour-list "
              "rebuilds (skin 1 Å), health check, one force call per step (mlpot only: MACE has no engine)",
}


def mace_python(bench_venv: Path) -> Path:
    """The interpreter of the MACE environment (it may not exist)."""
    return bench_venv / "bin" / "python"


def set_up_bench_venv(bench_venv: Path) -> None:
    """Create ``bench_venv`` with torch 2.13.0 (CPU) and mace-torch, for the MACE worker.

    torch goes in first, pinned: mace-torch only asks for "torch", and pip would otherwise pick
    a CUDA build of several gigabytes; with a torch already present it keeps that one.
    """
    python = str(mace_python(bench_venv))
    steps = [
        [sys.executable, "-m", "venv", str(bench_venv)],
        [python, "-m", "pip", "install", "torch==2.13.0"],
        [python, "-m", "pip", "install", "mace-torch"],
    ]
    for command in steps:
        print("$", shlex.join(command), flush=True)
        subprocess.run(command, check=True)


def build_systems(copper_repeat: tuple[int, int, int]) -> dict[str, ase.Atoms]:
    """Ethanol and the copper cell, thermalised at 300 K with seed 0 (bench_md's recipe)."""
    copper = bulk("Cu", "fcc", a=COPPER_LATTICE, cubic=True).repeat(tuple(copper_repeat))
    return {name: thermalise(atoms, TEMPERATURE_K, seed=0)
            for name, atoms in (("ethanol", molecule("CH3CH2OH")), ("cu_fcc", copper))}


def model_options(family: str, hyperparameters: str) -> dict:
    """Constructor keyword arguments (elements and dtype aside) of one model family.

    Args:
        family: ``"descriptor"`` or ``"equivariant"``.
        hyperparameters: ``"rmd17"`` (the ``model`` section of the family's rMD17 config, the
            registry name dropped) or ``"defaults"`` (the package defaults: no arguments).
    """
    if hyperparameters == "defaults":
        return {}
    options = dict(yaml.safe_load(CONFIGS[family].read_text())["model"])
    options.pop("type", None)
    options.pop("name", None)
    return options


def make_model(family: str, elements: list[str], dtype: torch.dtype, options: dict, compiled: bool):
    """An untrained model of ``family`` (seed 0) in ``dtype``, compiled when asked and possible."""
    model = FAMILIES[family](elements, dtype=dtype, seed=0, **options)
    if compiled and supports_compile(model):
        model.compile()
    return model


def time_mlpot(atoms: ase.Atoms, model, driver: str, steps: int, blocks: int) -> tuple[float, float]:
    """Median and fastest block of one mlpot driver, steps/s.

    Args:
        atoms: the thermalised system (not modified).
        model: the mlpot potential, in the dtype to time.
        driver: ``"ase"`` (VelocityVerlet + MLPotCalculator) or ``"engine"`` (Simulation).
        steps: MD steps per timed block.
        blocks: timed blocks, each a new MD from ``atoms`` (an untrained model's molecule flies
            apart: one long run would time ever fewer edges), after the warm-up (:data:`WARMUP`).
    """

    def driven(system: ase.Atoms):
        """``run(n)`` of a new MD from ``system``, its first forces already evaluated."""
        if driver == "engine":
            simulation = Simulation(system, model, TIMESTEP_FS, skin=SKIN)
            simulation.run(0)
            return simulation.run
        system = system.copy()
        system.calc = MLPotCalculator(model, dtype=str(model.dtype).removeprefix("torch."), skin=SKIN)
        system.get_forces()  # cached: VelocityVerlet's first step takes them
        return VelocityVerlet(system, timestep=TIMESTEP_FS * units.fs).run

    # A compiled model is compiled for its first shapes, then once more, for any shapes, at the
    # first change of the edge count: within tens of steps in ethanol (72 → 70 edges), 4–5 s on
    # CPU, once per run. Warming up on the system less one atom makes that second compile happen
    # here, so no block times compiling and every block times the code a long run uses.
    with warnings.catch_warnings():
        # Dropping an atom leaves net momentum, which the engine removes with a warning: harmless
        # in a warm-up whose trajectory nobody reads.
        warnings.filterwarnings("ignore", message="the given momenta carry")
        driven(atoms[:-1])(WARMUP_STEPS)
    driven(atoms)(WARMUP_STEPS)
    runs = iter([driven(atoms) for _ in range(blocks)])
    seconds_per_step, fastest = median_per_call(lambda n: next(runs)(n), steps, blocks)
    return 1.0 / seconds_per_step, 1.0 / fastest


def atoms_to_json(atoms: ase.Atoms) -> dict:
    """The system as plain lists (Å, ASE momentum units), for the MACE worker's standard input."""
    return {"numbers": atoms.numbers.tolist(), "positions": atoms.positions.tolist(),
            "cell": atoms.cell.array.tolist(), "pbc": atoms.pbc.tolist(), "momenta": atoms.get_momenta().tolist()}


def time_mace(python: Path, atoms: ase.Atoms, elements: list[str], hidden_irreps: str, dtype: str,
              threads: int, steps: int, blocks: int) -> dict:
    """Run the MACE worker on one system, size and dtype; its JSON answer (rates in steps/s).

    Raises:
        RuntimeError: the worker failed (its standard error's tail in the message).
    """
    request = {"atoms": atoms_to_json(atoms), "elements": elements, "hidden_irreps": hidden_irreps,
               **MACE_ARCHITECTURE, "dtype": dtype, "threads": threads, "steps": steps, "blocks": blocks,
               "warmup_steps": WARMUP_STEPS, "timestep_fs": TIMESTEP_FS, "seed": 0}
    # OMP_NUM_THREADS too, so that no library in the worker starts a pool of its own beyond --threads.
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    finished = subprocess.run([str(python), str(MACE_WORKER)], input=json.dumps(request), capture_output=True,
                              text=True, env=environment)
    if finished.returncode != 0:
        raise RuntimeError(f"MACE worker failed ({finished.returncode}): {finished.stderr.strip()[-2000:]}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def timing_key(row: dict) -> tuple[str, str, str, str, str]:
    """What one timing measured: system, dtype, code, model, driver (a report holds each once)."""
    return row["system"], row["dtype"], row["code"], row["model"], row["driver"]


def result_row(system: str, n_atoms: int, code: str, model: str, dtype: str, driver: str,
               rates: tuple[float, float], steps: int, blocks: int) -> dict:
    """One timing as a flat record: median and fastest-block steps/s, and atom-steps/s."""
    steps_per_s, best_steps_per_s = rates
    return {"system": system, "n_atoms": n_atoms, "code": code, "model": model, "dtype": dtype, "driver": driver,
            "steps_per_s": steps_per_s, "best_steps_per_s": best_steps_per_s,
            "atom_steps_per_s": steps_per_s * n_atoms, "steps_per_block": steps, "blocks": blocks}


def add_speedups(rows: list[dict]) -> None:
    """Give every mlpot row the ratio of its steps/s to MACE 64x0e + 64x1o's (ASE driver, same
    system and dtype): the issue's target is ≥ 3 through the ASE driver."""
    reference = {(r["system"], r["dtype"]): r["steps_per_s"] for r in rows
                 if r["code"] == "mace" and r["model"] == MACE_REFERENCE}
    for row in rows:
        if row["code"] == "mlpot" and (row["system"], row["dtype"]) in reference:
            row["speedup_over_mace_64"] = row["steps_per_s"] / reference[row["system"], row["dtype"]]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setup", action="store_true",
                        help="build the MACE environment (--bench-venv) with pip, then stop")
    parser.add_argument("--quick", action="store_true", help="short blocks (smoke test), results not for quoting")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads, both processes (default 1)")
    parser.add_argument("--hyperparameters", choices=("rmd17", "defaults"), default="rmd17",
                        help="mlpot's: those of scripts/configs/rmd17_*.yaml (default) or the package defaults")
    parser.add_argument("--families", nargs="+", choices=tuple(FAMILIES), default=list(FAMILIES),
                        help="mlpot model families to time (default both)")
    parser.add_argument("--systems", nargs="+", choices=tuple(ELEMENTS), default=list(ELEMENTS),
                        help="systems to time (default both)")
    parser.add_argument("--dtypes", nargs="+", choices=("float64", "float32"), default=["float64", "float32"])
    parser.add_argument("--no-compile", action="store_true", help="time the mlpot models uncompiled")
    parser.add_argument("--copper-repeat", type=int, nargs=3, default=(6, 6, 6),
                        help="conventional fcc cells per axis (default 6 6 6: 864 atoms)")
    parser.add_argument("--steps", type=int, default=None,
                        help="steps per block for every system (default: per system)")
    parser.add_argument("--blocks", type=int, default=None, help="timed blocks for every system (default: per system)")
    parser.add_argument("--bench-venv", type=Path, default=BENCH_VENV,
                        help="the MACE environment (default .bench-venv/; absent: mlpot only)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    parser.add_argument("--resume", action="store_true",
                        help="add to an existing --output the timings it lacks (same settings)")
    args = parser.parse_args(argv)
    if args.overwrite and args.resume:
        parser.error("--overwrite starts afresh, --resume adds to a report: give one of them")
    if args.threads < 1 or min(args.copper_repeat) < 1 or min(args.steps or 1, args.blocks or 1) < 1:
        parser.error("--threads, --copper-repeat, --steps and --blocks must be at least 1")
    if not args.setup and args.output.exists() and not (args.overwrite or args.resume):
        parser.error(f"{args.output} exists: pass --resume to add the timings it lacks, --overwrite to replace "
                     "it, or choose another --output")
    return args


def print_table(rows: list[dict]) -> None:
    header = (f"{'system':<8} {'code':<6} {'model':<16} {'dtype':<8} {'driver':<7} {'steps/s':>9} "
              f"{'atom-steps/s':>13} {'vs MACE-64':>10}")
    print("\n" + header + "\n" + "-" * len(header))
    for r in rows:
        speedup = f"{r['speedup_over_mace_64']:.2f}x" if "speedup_over_mace_64" in r else ""
        print(f"{r['system']:<8} {r['code']:<6} {r['model']:<16} {r['dtype']:<8} {r['driver']:<7} "
              f"{r['steps_per_s']:>9.3g} {r['atom_steps_per_s']:>13.3g} {speedup:>10}")
    print("medians over blocks after warm-up; vs MACE-64: steps/s over MACE 64x0e + 64x1o through ASE "
          "(same system, dtype, threads)")


def time_everything(args, systems: dict[str, ase.Atoms], options: dict[str, dict], mace: Path | None, bar,
                    done: dict, save) -> None:
    """Every timing of the run (see the module docstring), mlpot first, then MACE, per system and dtype.

    Args:
        args: the parsed command line.
        systems: name → thermalised atoms.
        options: family → the model's constructor options.
        mace: the MACE environment's interpreter, or None when it is not installed.
        bar: the progress object (one update per timing).
        done: filled in place: ``rows`` (result_row records, those of a resumed report first),
            ``mace_runs`` (the worker's answers, with the system's name), ``compiled`` (family →
            whether it ran compiled), ``mace_failure`` (None, or why the worker failed: MACE's
            remaining timings are then skipped). A timing already in ``rows`` is not repeated.
        save: called after every new timing, so that an interruption loses at most one.
    """
    # Ethanol: blocks of 50 steps (25 fs), short enough that no code's untrained molecule changes
    # much within one (72 pairs within 5 Å at the start, 62 after 100 steps with mlpot's
    # equivariant model), many enough for a median.
    plan = {"ethanol": (10, 2) if args.quick else (50, 10),
            # Blocks of 20 steps on copper hold about one neighbour-list rebuild each (bench_md's
            # reasoning), so that mlpot's figure includes rebuilds at their real rate.
            "cu_fcc": (2, 2) if args.quick else (20, 3)}
    measured = {timing_key(row) for row in done["rows"]}
    for system, atoms in systems.items():
        steps, blocks = args.steps or plan[system][0], args.blocks or plan[system][1]
        record = {"system": system, "n_atoms": len(atoms), "steps": steps, "blocks": blocks}
        for dtype in args.dtypes:
            for family in args.families:
                drivers = [driver for driver in ("ase", "engine")
                           if (system, dtype, "mlpot", family, driver) not in measured]
                if not drivers:
                    continue
                model = make_model(family, ELEMENTS[system], getattr(torch, dtype), options[family],
                                   not args.no_compile)
                done["compiled"][family] = bool(getattr(model, "compiled", False))
                for driver in drivers:
                    rates = time_mlpot(atoms, model, driver, steps, blocks)
                    done["rows"].append(result_row(**record, code="mlpot", model=family, dtype=dtype,
                                                   driver=driver, rates=rates))
                    save()
                    bar.update(1)
            for size in MACE_SIZES if mace is not None and done["mace_failure"] is None else ():
                if (system, dtype, "mace", size, "ase") in measured:
                    continue
                try:
                    answer = time_mace(mace, atoms, ELEMENTS[system], size, dtype, args.threads, steps, blocks)
                except RuntimeError as error:
                    done["mace_failure"] = str(error)
                    bar.write(str(error))
                    break
                done["mace_runs"].append({**answer, "system": system})
                done["rows"].append(result_row(**record, code="mace", model=size, dtype=dtype, driver="ase",
                                               rates=(answer["steps_per_s"], answer["best_steps_per_s"])))
                save()
                bar.update(1)


def describe_mace(python: Path, installed: bool, runs: list[dict], failure: str | None, previous=None):
    """The JSON's ``mace`` entry: what ran (versions, threads, architecture, each model), or why not.

    ``previous`` is the entry of a resumed report: its models are kept beside the new ones.
    """
    if not installed:
        return MACE_NOT_INSTALLED
    if failure is not None:
        return f"failed: {failure}"
    kept = previous if isinstance(previous, dict) else {}
    first = runs[0] if runs else kept
    return {"python": str(python), "versions": first.get("versions"), "threads": first.get("threads"),
            "architecture": {**MACE_ARCHITECTURE, "hidden_irreps": list(MACE_SIZES)},
            "calculator": first.get("calculator"),
            "models": {**kept.get("models", {}),
                       **{f"{run['system']} {run['hidden_irreps']} {run['dtype']}": run["model"] for run in runs}}}


def settings(args: argparse.Namespace) -> dict:
    """What makes two runs' timings comparable: ``--resume`` requires it unchanged."""
    return {"quick": args.quick, "threads": args.threads, "hyperparameters": args.hyperparameters,
            "compile": not args.no_compile, "copper_repeat": list(args.copper_repeat), "steps": args.steps,
            "blocks": args.blocks, "warmup": WARMUP, "block_start": BLOCK_START}


def resumable_report(args: argparse.Namespace) -> dict | None:
    """The report ``--resume`` adds to (None when there is none yet).

    Raises:
        SystemExit: the report is not this script's, was written before ``--resume`` existed, or
            was measured under other settings (named).
    """
    if not args.output.exists():
        return None
    try:
        previous = json.loads(args.output.read_text())
    except ValueError as error:
        raise SystemExit(f"{args.output} is not JSON ({error}); use another --output or --overwrite") from None
    if not (isinstance(previous, dict) and isinstance(previous.get("settings"), dict)
            and isinstance(previous.get("results"), list) and "commands" in previous):
        raise SystemExit(f"{args.output} cannot be resumed: not a bench_peers report, or one written before "
                         "--resume existed (it records no settings); use another --output or --overwrite")
    differ = sorted(key for key, value in settings(args).items() if previous["settings"].get(key) != value)
    if differ:
        raise SystemExit(f"{args.output} was measured with other settings ({', '.join(differ)}): timings under "
                         "different settings are not one table; use another --output or --overwrite")
    return previous


def report(args, commands: list[str], systems: dict[str, ase.Atoms], options: dict[str, dict], done: dict,
           python: Path, mace_installed: bool, previous: dict, complete: bool) -> dict:
    """The JSON report of the timings in ``done`` (a resumed report's systems and models kept;
    ``previous`` is that report, or {})."""
    rows = [dict(row) for row in done["rows"]]
    add_speedups(rows)
    kept_mlpot = previous.get("mlpot", {})
    hyperparameters = args.hyperparameters if args.hyperparameters == "defaults" else {
        **kept_mlpot.get("hyperparameters", {}),
        **{family: str(CONFIGS[family].relative_to(ROOT)) for family in args.families}}
    return {
        "command": commands[0],
        "commands": commands,  # more than one when --resume added timings
        "complete": complete,
        "settings": settings(args),
        "timed": TIMED,
        "statistic": f"median over blocks of steps_per_block MD steps, {BLOCK_START}, after a warm-up "
                     f"(mlpot: {WARMUP}; MACE: {WARMUP_STEPS} steps) (fastest block in best_steps_per_s)",
        "quick": args.quick,
        "timestep_fs": TIMESTEP_FS,
        "temperature_K": TEMPERATURE_K,
        "threads": torch.get_num_threads(),
        "dtypes": list(dict.fromkeys([*previous.get("dtypes", []), *args.dtypes])),
        "weights": "untrained, seed 0 (a step costs the same whatever the weights)",
        "systems": {**previous.get("systems", {}),
                    **{name: {"n_atoms": len(atoms), "periodic": bool(atoms.pbc.any()),
                              "formula": atoms.get_chemical_formula()} for name, atoms in systems.items()}},
        "mlpot": {
            "hyperparameters": hyperparameters,
            "models": {**kept_mlpot.get("models", {}),
                       **{family: {"class": FAMILIES[family].__name__, "options": options[family],
                                   "compiled": done["compiled"][family]} for family in args.families}},
            "skin_A": SKIN,
            "versions": {"mlpot": mlpot.__version__, "torch": torch.__version__, "e3nn": e3nn.__version__,
                         "ase": ase.__version__, "python": platform.python_version()},
        },
        "mace": describe_mace(python, mace_installed, done["mace_runs"], done["mace_failure"],
                              previous.get("mace")),
        "host": {"machine": platform.platform(), "processor": platform.processor() or platform.machine(),
                 "cpu_count": os.cpu_count()},
        "speedup_target": {"reference": f"MACE {MACE_REFERENCE}, ASE driver", "min": SPEEDUP_TARGET},
        "results": rows,
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.setup:
        set_up_bench_venv(args.bench_venv)
        return 0
    previous = (resumable_report(args) if args.resume else None) or {}  # checked before an hour of timing
    torch.set_num_threads(args.threads)
    systems = {name: atoms for name, atoms in build_systems(tuple(args.copper_repeat)).items() if name in args.systems}
    python = mace_python(args.bench_venv)
    mace_installed = python.exists()
    options = {family: model_options(family, args.hyperparameters) for family in args.families}
    command = shlex.join(["python", "scripts/bench_peers.py", *(sys.argv[1:] if argv is None else argv)])
    commands = [*previous.get("commands", []), command]
    kept = [{key: value for key, value in row.items() if key != "speedup_over_mace_64"}
            for row in previous.get("results", [])]
    kept_models = previous.get("mlpot", {}).get("models", {})
    done = {"rows": kept, "mace_runs": [], "mace_failure": None,
            "compiled": {family: kept_models.get(family, {}).get("compiled", False) for family in args.families}}

    def save(complete: bool = False) -> None:
        payload = report(args, commands, systems, options, done, python, mace_installed, previous, complete)
        atomic_write_text(args.output, json.dumps(payload, indent=2) + "\n")

    measured = {timing_key(row) for row in kept}
    planned = [(system, dtype, "mlpot", family, driver) for system in systems for dtype in args.dtypes
               for family in args.families for driver in ("ase", "engine")]
    planned += [(system, dtype, "mace", size, "ase") for system in systems for dtype in args.dtypes
                for size in (MACE_SIZES if mace_installed else ())]
    with progress(total=sum(key not in measured for key in planned), desc="peer benchmark", unit="timing") as bar:
        time_everything(args, systems, options, python if mace_installed else None, bar, done, save)
    save(complete=True)
    payload = json.loads(args.output.read_text())
    print_table(payload["results"])
    print(f"wrote {args.output}")
    return 0 if done["mace_failure"] is None else 1


if __name__ == "__main__":
    sys.exit(main())
