"""Benchmark: MD stability of trained models on rMD17 ethanol (issue 21, "stable MD, not only low MAE").

A low force error does not make a model stable in MD (Fu et al. 2022 measured this on MD17). For
each saved model (``--model LABEL=PATH``, any registered model family, loaded with
``mlpot.load_model``), each temperature (``--temperatures``, K) and each seed (``--seeds``), one
independent Langevin run:

* ``mlpot.dynamics.Simulation``, ``ensemble="langevin"`` (BAOAB), time step 0.5 fs, friction
  ``--friction-per-fs`` (default: the engine's, 0.01 /fs), ``--ps`` ps (default 50), from the
  first configuration of ``datasets/rmd17/rmd17_ethanol_train_01.npz`` (read with
  ``mlpot.data.datasets.read_atoms``, which converts kcal/mol to eV at the boundary), with
  Maxwell–Boltzmann momenta at T drawn by the engine from the seed; the model in float64
  (``--dtype``), compiled where the model supports it (``--no-compile`` turns it off);
* it fails at the first of: the engine's health stop (``MDInstabilityError``: non-finite or
  > 10³ eV/Å forces, T > 10⁵ K), a close contact (``CloseContactError``: a pair nearer than 0.75 ×
  the shortest distance of its element pair in the model's training data, for models that record
  it), or a bond-length excursion: the bonds are the covalent pairs of the starting structure
  (ASE's ``natural_cutoffs`` × 1.2 and ``NeighborList``), each bond's window is [min − 0.5 Å,
  max + 0.5 Å] of its length over the 1,000 DFT training configurations, and the run fails when a
  bond leaves its window. Bonds are checked every ``--check-fs`` fs (default 10), so a bond
  excursion's time to failure is resolved to that interval; the health stop is checked every step.
  Runs are separate simulations: one run's failure ends only that run.

Structure against DFT: every check (until failure) also adds the run's 36 interatomic distances to a
histogram over 0–5 Å (bins of 0.05 Å). Per model and temperature, the runs' counts are summed and
normalised to a density p(r) (∫ p dr = 1 over 0–5 Å) and compared with the same density over the
1,000 training configurations (rMD17 is sampled from MD at 500 K, so at 1,000 K a difference is
expected even from an exact model). The number reported is the integrated absolute difference
∫ |p_MD(r) − p_DFT(r)| dr: 0 for identical distributions, 2 for ones that do not overlap.

Writes ``benchmarks/results/stability_ethanol.json`` (or ``--output``) after every run, atomically,
and at the end a figure beside it (``.png``: the densities per model at each T against DFT, and the
times to failure). ``--resume`` continues a stopped run: runs already in the file with the same
settings and the same model files are skipped. Like ``mlpot train``, it refuses to replace an
existing output unless ``--overwrite`` (or ``--resume``).

    python scripts/bench_stability.py --model descriptor=runs/acc/ethanol_950_seed0/model.pt \\
        --model equivariant=runs/acc_eq/ethanol_950_seed0/model.pt            # 2 × 2 × 5 runs of 50 ps
    python scripts/bench_stability.py --model descriptor=... --resume         # continue after a stop
    python scripts/bench_stability.py --model descriptor=... --jobs 2         # two runs side by side, one core each
    python scripts/bench_stability.py --model demo=model.pt --quick --output /tmp/stability.json
                                      # smoke run: 0.5 ps, 500 K, seed 0; not for quoting
    python scripts/bench_stability.py --model ... --temperatures 500 1000 --seeds 0 1 2 3 4 --ps 50 --threads 1

Prints a line per finished run and a summary table (model, T, survived, median time to failure,
histogram error).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import platform
import shlex
import sys
import threading
import time
from pathlib import Path
from statistics import median

import ase
import numpy as np
import torch
from ase.neighborlist import NeighborList, natural_cutoffs

import mlpot
from mlpot.data.datasets import read_atoms
from mlpot.dynamics import CloseContactError, HealthCheck, MDInstabilityError, Simulation
from mlpot.dynamics.health import MIN_DISTANCE_FRACTION
from mlpot.dynamics.integrators import DEFAULT_FRICTION_PER_FS
from mlpot.dynamics.reporters import Reporter
from mlpot.files import atomic_write_text
from mlpot.models import registry
from mlpot.models.compile import supports_compile
from mlpot.models.serialization import load_model
from mlpot.progress import progress

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "stability_ethanol.json"
TRAINING_FILE = ROOT / "datasets" / "rmd17" / "rmd17_ethanol_train_01.npz"
#: rMD17 (and MD17) store energies in kcal/mol; read_atoms converts them to eV.
TRAINING_ENERGY_UNIT = "kcal/mol"
TIMESTEP_FS = 0.5
#: A bond fails when it leaves [DFT min − margin, DFT max + margin] (issue 21).
BOND_MARGIN_A = 0.5
#: Bond criterion: d < 1.2 (r_i + r_j), covalent radii. The bare sum underestimates C–H (1.07 Å for a
#: 1.09 Å bond); 1.2 takes every covalent bond of an organic molecule and no second neighbour.
BOND_RADIUS_FACTOR = 1.2
HISTOGRAM_RANGE_A = (0.0, 5.0)
HISTOGRAM_BINS = 100
#: The time span of one ``Simulation.run`` call: progress is reported between calls.
CHUNK_FS = 1000.0
#: Why a run stopped early: the reason recorded, and what it means.
REASONS = {"health": "the engine's health stop (MDInstabilityError)",
           "close_contact": "a close contact (CloseContactError)",
           "bond_excursion": "a bond outside its window",
           "error": "an unexpected error (a bug or an unsupported model, not a physical instability)"}


# --- bonds and distances ---------------------------------------------------------------------


def read_training_set(path: Path = TRAINING_FILE) -> tuple[ase.Atoms, np.ndarray]:
    """The DFT training configurations, read by mlpot's reader (kcal/mol → eV at the boundary).

    Returns:
        ``(start, positions)``: the first configuration as bare ``ase.Atoms`` (no momenta, no
        labels: the MD start), and every configuration's positions, [n_frames, n_atoms, 3] Å.
    """
    frames = read_atoms(path, energy_unit=TRAINING_ENERGY_UNIT)
    start = ase.Atoms(numbers=frames[0].numbers, positions=frames[0].get_positions())
    return start, np.stack([atoms.get_positions() for atoms in frames])


def covalent_bonds(atoms: ase.Atoms) -> np.ndarray:
    """The covalent bonds of ``atoms``: pairs closer than BOND_RADIUS_FACTOR × the sum of their
    covalent radii (ASE's ``natural_cutoffs``).

    Returns:
        [n_bonds, 2] int64 atom indices, i < j, sorted.
    """
    # skin=0: ASE's NeighborList would otherwise also return pairs up to the cutoffs plus twice the skin.
    neighbours = NeighborList(natural_cutoffs(atoms, mult=BOND_RADIUS_FACTOR), skin=0.0,
                              self_interaction=False, bothways=True)
    neighbours.update(atoms)
    pairs = {(min(i, int(j)), max(i, int(j))) for i in range(len(atoms)) for j in neighbours.get_neighbors(i)[0]}
    return np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)


def bond_lengths(positions: np.ndarray, bonds: np.ndarray) -> np.ndarray:
    """Lengths of ``bonds``, Å: [..., n_bonds] from positions [..., n_atoms, 3] (Å)."""
    return np.linalg.norm(positions[..., bonds[:, 1], :] - positions[..., bonds[:, 0], :], axis=-1)


class BondWindow:
    """Each bond's allowed range of lengths: its range over reference frames, widened by a margin.

    Args:
        bonds: [n_bonds, 2] atom indices.
        reference_positions: [n_frames, n_atoms, 3] Å, the frames that set the range (the DFT data).
        margin: Å added below the shortest and above the longest reference length.
    """

    def __init__(self, bonds: np.ndarray, reference_positions: np.ndarray, margin: float = BOND_MARGIN_A):
        lengths = bond_lengths(np.asarray(reference_positions, dtype=np.float64), bonds)
        self.bonds = bonds
        self.reference_min, self.reference_max = lengths.min(axis=0), lengths.max(axis=0)
        self.lower, self.upper = self.reference_min - margin, self.reference_max + margin

    def find_excursion(self, positions: np.ndarray) -> tuple[int, float] | None:
        """The bond furthest outside its window at ``positions`` ([n_atoms, 3], Å), or None.

        Returns:
            ``(bond index, its length in Å)``, or None when every bond is inside its window.
        """
        lengths = bond_lengths(positions, self.bonds)
        outside = np.maximum(self.lower - lengths, lengths - self.upper)
        worst = int(np.argmax(outside))
        return (worst, float(lengths[worst])) if outside[worst] > 0 else None

    def describe(self, atoms: ase.Atoms) -> list[dict]:
        """One JSON record per bond: atoms, elements, DFT range and window, Å."""
        symbols = atoms.get_chemical_symbols()
        return [{"atoms": [int(i), int(j)], "elements": f"{symbols[i]}-{symbols[j]}",
                 "dft_min_A": round(float(lo), 4), "dft_max_A": round(float(hi), 4),
                 "window_A": [round(float(a), 4), round(float(b), 4)]}
                for (i, j), lo, hi, a, b in zip(self.bonds, self.reference_min, self.reference_max,
                                                self.lower, self.upper)]


def pair_distance_counts(positions: np.ndarray, bins: int = HISTOGRAM_BINS,
                         distance_range: tuple[float, float] = HISTOGRAM_RANGE_A) -> np.ndarray:
    """Histogram counts of all interatomic distances (each pair once) of one or more frames.

    Args:
        positions: [n_atoms, 3] or [n_frames, n_atoms, 3], Å.
        bins, distance_range: the histogram's bins over ``distance_range`` (Å); distances outside it
            are not counted.

    Returns:
        [bins] int64 counts.
    """
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, *np.shape(positions)[-2:])
    i, j = np.triu_indices(positions.shape[1], k=1)
    distances = np.linalg.norm(positions[:, j] - positions[:, i], axis=-1)
    return np.histogram(distances, bins=bins, range=distance_range)[0].astype(np.int64)


def density(counts, distance_range: tuple[float, float] = HISTOGRAM_RANGE_A) -> np.ndarray:
    """Counts normalised to a probability density over ``distance_range``, 1/Å (∫ p dr = 1)."""
    counts = np.asarray(counts, dtype=np.float64)
    width = (distance_range[1] - distance_range[0]) / counts.size
    total = counts.sum()
    return counts / (total * width) if total > 0 else np.zeros_like(counts)


def histogram_error(counts, reference_counts, distance_range: tuple[float, float] = HISTOGRAM_RANGE_A) -> float:
    """∫ |p(r) − p_ref(r)| dr of the two normalised densities: 0 (identical) to 2 (no overlap)."""
    width = (distance_range[1] - distance_range[0]) / len(counts)
    return float(np.abs(density(counts, distance_range) - density(reference_counts, distance_range)).sum() * width)


# --- one run ---------------------------------------------------------------------------------


class BondExcursion(RuntimeError):
    """A bond left its window (see :class:`BondWindow`); raised by :class:`StabilityMonitor`."""


class StabilityMonitor(Reporter):
    """Every ``interval`` steps: checks the bonds, then adds the frame's distances to a histogram.

    Raising :class:`BondExcursion` from ``report`` stops ``Simulation.run`` (the engine closes its
    reporters and lets the exception through). A failing frame is not counted in the histogram:
    it samples the run up to its last good check.

    Attributes:
        counts: [bins] int64 distance counts of the good frames.
        frames: number of good frames checked (step 0 included).
        temperature_sum: Σ of the kinetic temperature (K) over the good frames.
    """

    def __init__(self, interval: int, window: BondWindow, symbols: list[str]):
        super().__init__(interval)
        self.window, self.symbols = window, symbols
        self.counts = np.zeros(HISTOGRAM_BINS, dtype=np.int64)
        self.frames = 0
        self.temperature_sum = 0.0

    def report(self, sim) -> None:
        positions = sim.state.positions.detach().cpu().double().numpy()
        excursion = self.window.find_excursion(positions)
        if excursion is not None:
            bond, length = excursion
            i, j = (int(k) for k in self.window.bonds[bond])
            raise BondExcursion(
                f"bond {i}-{j} ({self.symbols[i]}-{self.symbols[j]}) is {length:.3f} Å at t = {sim.time_fs:g} fs, "
                f"outside its window [{self.window.lower[bond]:.3f}, {self.window.upper[bond]:.3f}] Å")
        self.counts += pair_distance_counts(positions)
        self.frames += 1
        self.temperature_sum += float(sim.observables()["T_K"][0])


def run_one(model, start: ase.Atoms, temperature_K: float, seed: int, settings: dict, window: BondWindow,
            on_chunk=None) -> dict:
    """One Langevin run of ``model`` from ``start`` until failure or ``settings["ps"]`` ps.

    Args:
        model: the potential (float64 unless asked otherwise).
        start: the starting structure (no momenta: the engine draws them at ``temperature_K``).
        temperature_K: thermostat temperature, K.
        seed: seeds the initial momenta and the thermostat noise.
        settings: the run-defining settings (:func:`run_settings`).
        window: the bond windows.
        on_chunk: called with the steps done after every chunk of CHUNK_FS fs and, after a
            failure, with the planned steps left, so that its calls add up to the run's planned steps
            (for progress).

    Returns:
        The run's record: ``ps_done``, ``failed``, ``reason`` (a key of REASONS, or None),
        ``message``, ``time_to_failure_ps`` (None when it survived), the histogram counts, the
        mean temperature over the checked frames (K), steps/s and wall time (s).
    """
    timestep_fs = settings["timestep_fs"]
    check_steps = round(settings["check_interval_fs"] / timestep_fs)
    total_steps = round(1000.0 * settings["ps"] / timestep_fs)
    chunk_steps = max(check_steps, round(CHUNK_FS / timestep_fs))
    monitor = StabilityMonitor(check_steps, window, start.get_chemical_symbols())
    started = time.perf_counter()
    sim = Simulation(start, model, timestep_fs, ensemble="langevin", temperature_K=temperature_K,
                     friction_per_fs=settings["friction_per_fs"], seed=seed, reporters=[monitor],
                     skin=settings["skin_A"], health=HealthCheck(**settings["health"]),
                     min_distance_fraction=settings["min_distance_fraction"])
    reason, message, failed_step = None, None, None
    done = 0
    try:
        while done < total_steps:
            steps = min(chunk_steps, total_steps - done)
            sim.run(steps)
            done += steps
            if on_chunk is not None:
                on_chunk(steps)
    except (MDInstabilityError, CloseContactError, BondExcursion) as stop:
        # The engine has set the state to the step that failed its check.
        reason = ("health" if isinstance(stop, MDInstabilityError)
                  else "close_contact" if isinstance(stop, CloseContactError) else "bond_excursion")
        message, failed_step = str(stop), sim.state.step
    except Exception as error:  # noqa: BLE001 - one run's error must not end the others
        # The state's step is the last completed one: the error came during the next.
        reason, message, failed_step = "error", f"{type(error).__name__}: {error}", sim.state.step + 1
    if on_chunk is not None and done < total_steps:
        on_chunk(total_steps - done)  # a failed run: the planned steps it will not take count as done
    wall_s = time.perf_counter() - started
    steps_run = sim.state.step
    ps_done = (failed_step if failed_step is not None else steps_run) * timestep_fs / 1000.0
    return {
        "ps_done": round(ps_done, 6),
        "failed": reason is not None,
        "reason": reason,
        "message": message,
        "time_to_failure_ps": round(ps_done, 6) if reason is not None else None,
        "frames": monitor.frames,
        "mean_temperature_K": round(monitor.temperature_sum / monitor.frames, 2) if monitor.frames else None,
        "distance_histogram_counts": monitor.counts.tolist(),
        "steps": steps_run,
        "steps_per_s": round(steps_run / wall_s, 2) if wall_s > 0 else None,
        "wall_s": round(wall_s, 2),
    }


# --- runs side by side (--jobs) ---------------------------------------------------------------

#: What a worker process holds for its runs: the models, the starting structure and the bond windows.
_WORKER: dict = {}


def _exit_with(parent_pid: int) -> None:
    """Poll every few seconds; end this process once its parent has gone (killed, not just interrupted)."""
    while os.getppid() == parent_pid:
        time.sleep(5.0)
    os._exit(1)


def _worker_init(parent_pid: int, threads: int, model_specs: list, dtype: str, compile_models: bool) -> None:
    # A killed main process cannot shut its pool down, and a worker would go on with a run of up to
    # an hour: follow the parent out instead.
    threading.Thread(target=_exit_with, args=(parent_pid,), daemon=True).start()
    torch.set_num_threads(threads)
    start, reference_positions = read_training_set()
    _WORKER["models"] = load_models(model_specs, getattr(torch, dtype), compile_models)[0]
    _WORKER["start"] = start
    _WORKER["window"] = BondWindow(covalent_bonds(start), reference_positions)


def _run_in_worker(label: str, temperature_K: float, seed: int, settings: dict) -> dict:
    """:func:`run_one` in a worker process set up by :func:`_worker_init`."""
    return run_one(_WORKER["models"][label], _WORKER["start"], temperature_K, seed, settings, _WORKER["window"])


# --- settings, models, summaries -------------------------------------------------------------


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_model_spec(spec: str) -> tuple[str, Path]:
    """``"LABEL=PATH"`` → (label, path); a bare path is labelled by its file name's stem."""
    label, separator, path = spec.partition("=")
    if not separator:
        return Path(spec).stem, Path(spec)
    if not label or not path:
        raise ValueError(f"--model expects LABEL=PATH, got {spec!r}")
    return label, Path(path)


def run_settings(args: argparse.Namespace, training_sha256: str) -> dict:
    """The settings that define a run (a resumed file must have been written with the same)."""
    check_steps = max(1, round(args.check_fs / TIMESTEP_FS))
    return {
        "ensemble": "langevin",
        "integrator": "BAOAB (mlpot.dynamics.LangevinBAOAB)",
        "timestep_fs": TIMESTEP_FS,
        "ps": args.ps,
        "friction_per_fs": args.friction_per_fs if args.friction_per_fs is not None else DEFAULT_FRICTION_PER_FS,
        "check_interval_fs": check_steps * TIMESTEP_FS,
        "bond_margin_A": BOND_MARGIN_A,
        "bond_criterion": f"d < {BOND_RADIUS_FACTOR} × (sum of covalent radii) in the starting structure "
                          "(ase.neighborlist.natural_cutoffs, NeighborList)",
        "skin_A": args.skin,
        "min_distance_fraction": MIN_DISTANCE_FRACTION,
        "health": {"max_force": HealthCheck().max_force, "max_temperature_K": HealthCheck().max_temperature_K},
        "histogram": {"range_A": list(HISTOGRAM_RANGE_A), "bins": HISTOGRAM_BINS},
        "dtype": args.dtype,
        "compile": not args.no_compile,
        "starting_structure": f"frame 0 of {TRAINING_FILE.relative_to(ROOT)}",
        "initial_momenta": "Maxwell–Boltzmann at the run's temperature, drawn by the engine from the run's seed",
        "training_file": str(TRAINING_FILE.relative_to(ROOT)),
        "training_file_sha256": training_sha256,
    }


def load_models(specs: list[tuple[str, Path]], dtype: torch.dtype, compile_models: bool) -> tuple[dict, dict]:
    """Load every model (in ``dtype``; compiled when asked and supported).

    Returns:
        ``(models, records)``: label → potential, and label → JSON record (path, sha256, family,
        class, compiled, whether it records training distances).
    """
    models, records = {}, {}
    for label, path in specs:
        model = load_model(path).to(dtype)
        compiled = compile_models and supports_compile(model)
        if compiled:
            model.compile()
        models[label] = model
        records[label] = {"path": str(path), "sha256": file_sha256(path),
                          "family": registry.name_of(model) or type(model).__name__,
                          "class": type(model).__name__, "compiled": compiled,
                          "training_min_distances": getattr(model, "training_min_distances", None)}
    return models, records


def median_time_to_failure(runs: list[dict]) -> tuple[float, bool]:
    """The median over runs of the time simulated (ps): a survivor counts at the full length.

    Returns:
        ``(median, is_lower_bound)``: a lower bound when the median rests on a survivor (then the
        median time to failure is at least the full length, and not known).
    """
    ordered = sorted(runs, key=lambda r: (r["ps_done"], not r["failed"]))
    middle = ordered[(len(ordered) - 1) // 2: len(ordered) // 2 + 1]
    return median(r["ps_done"] for r in ordered), any(not r["failed"] for r in middle)


def summarise(runs: list[dict], labels: list[str], temperatures: list[float],
              dft_counts: np.ndarray) -> list[dict]:
    """Per model and temperature: survived k/n, median time to failure, reasons, histogram error."""
    summary = []
    for label in labels:
        for temperature_K in temperatures:
            group = [r for r in runs if r["model"] == label and r["temperature_K"] == temperature_K]
            if not group:
                continue
            counts = np.sum([r["distance_histogram_counts"] for r in group], axis=0)
            middle, lower_bound = median_time_to_failure(group)
            reasons = {}
            for r in group:
                if r["failed"]:
                    reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
            summary.append({
                "model": label, "temperature_K": temperature_K, "runs": len(group),
                "seeds": sorted(r["seed"] for r in group),
                "survived": sum(not r["failed"] for r in group),
                "median_time_to_failure_ps": round(middle, 6), "median_is_lower_bound": lower_bound,
                "failure_reasons": reasons,
                "frames": int(sum(r["frames"] for r in group)),
                "histogram_error": round(histogram_error(counts, dft_counts), 4) if counts.sum() else None,
                "distance_density_per_A": [round(float(v), 5) for v in density(counts)],
            })
    return summary


# --- output ----------------------------------------------------------------------------------


def print_summary(summary: list[dict], ps: float) -> None:
    header = f"{'model':<16} {'T (K)':>6} {'survived':>9} {'median t_fail (ps)':>19} {'hist. error':>12}"
    print("\n" + header + "\n" + "-" * len(header))
    for row in summary:
        middle = f"≥ {ps:g}" if row["median_is_lower_bound"] else f"{row['median_time_to_failure_ps']:.2f}"
        error = f"{row['histogram_error']:.3f}" if row["histogram_error"] is not None else "n/a"
        print(f"{row['model']:<16} {row['temperature_K']:>6g} {row['survived']:>5}/{row['runs']:<3} "
              f"{middle:>19} {error:>12}")
    print("histogram error: ∫|p_MD(r) − p_DFT(r)| dr of the normalised pair-distance densities over 0–5 Å "
          "(0 identical, 2 disjoint); DFT = rMD17 training file, sampled at 500 K")


def plot(payload: dict, path: Path) -> Path:
    """The pair-distance densities per model at each temperature against DFT, and the times to failure."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    summary, runs = payload["summary"], payload["runs"]
    temperatures = sorted({row["temperature_K"] for row in summary})
    labels = list(dict.fromkeys(row["model"] for row in summary))
    edges = np.asarray(payload["dft_histogram"]["bin_edges_A"])
    centres = 0.5 * (edges[1:] + edges[:-1])
    colours = {label: plt.cm.tab10(k % 10) for k, label in enumerate(labels)}
    fig, axes = plt.subplots(1, len(temperatures) + 1, figsize=(4.2 * (len(temperatures) + 1), 3.8),
                             constrained_layout=True, squeeze=False)
    axes = axes[0]
    for ax, temperature_K in zip(axes, temperatures):
        ax.fill_between(centres, payload["dft_histogram"]["density_per_A"], step="mid", color="0.8",
                        label="DFT (rMD17 train, 500 K MD)")
        for row in summary:
            if row["temperature_K"] == temperature_K:
                error = "" if row["histogram_error"] is None else f", error {row['histogram_error']:.3f}"
                ax.step(centres, row["distance_density_per_A"], where="mid", color=colours[row["model"]], lw=1.2,
                        label=f"{row['model']}{error}")
        ax.set_xlabel("interatomic distance r (Å)")
        ax.set_ylabel("p(r) (1/Å)")
        ax.set_title(f"{temperature_K:g} K: pair distances vs DFT (500 K data)", fontsize=9)
        ax.legend(fontsize=7)
    ax = axes[-1]
    ps = payload["settings"]["ps"]
    positions = {(label, t): k for k, (label, t) in enumerate((label, t) for label in labels for t in temperatures)}
    rng = np.random.default_rng(0)  # horizontal jitter only, so that equal times stay visible
    for run in runs:
        key = (run["model"], run["temperature_K"])
        if key not in positions:
            continue
        x = positions[key] + rng.uniform(-0.15, 0.15)
        if run["failed"]:
            ax.scatter(x, run["time_to_failure_ps"], color=colours[run["model"]], s=22)
        else:
            ax.scatter(x, run["ps_done"], facecolors="none", edgecolors=colours[run["model"]], s=22)
    ax.axhline(ps, color="grey", ls="--", lw=0.8)
    ax.set_xticks(range(len(positions)), [f"{label}\n{t:g} K" for label, t in positions], fontsize=7)
    ax.set_ylim(0, 1.08 * ps)
    ax.set_ylabel("time to failure (ps)")
    ax.set_title(f"time to failure (open: survived {ps:g} ps)", fontsize=9)
    fig.suptitle("MD stability on rMD17 ethanol (Langevin, 0.5 fs); DFT reference sampled at 500 K", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- command line ----------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, metavar="LABEL=PATH",
                        help="a saved mlpot model and its label (repeat for several)")
    parser.add_argument("--temperatures", type=float, nargs="+", default=None,
                        help="thermostat temperatures, K (default 500 1000; --quick: 500)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 2 3 4 (--quick: 0)")
    parser.add_argument("--ps", type=float, default=None, help="length of each run, ps (default 50; --quick: 0.5)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 0.5 ps, 500 K, seed 0; not for quoting")
    parser.add_argument("--friction-per-fs", type=float, default=None,
                        help=f"Langevin friction γ, 1/fs (default: the engine's, {DEFAULT_FRICTION_PER_FS})")
    parser.add_argument("--check-fs", type=float, default=10.0,
                        help="interval of the bond check and of the distance sampling, fs (default 10)")
    parser.add_argument("--skin", type=float, default=1.0, help="neighbour-list skin, Å (default 1)")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                        help="the models' dtype in MD (default float64)")
    parser.add_argument("--no-compile", action="store_true", help="run the models uncompiled")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads per process (default 1)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs side by side, one process each (default 1; a run's result does not depend on it)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    parser.add_argument("--resume", action="store_true",
                        help="continue --output: skip the runs it holds (same settings and model files)")
    args = parser.parse_args(argv)
    args.temperatures = args.temperatures or ([500.0] if args.quick else [500.0, 1000.0])
    args.seeds = args.seeds if args.seeds is not None else ([0] if args.quick else [0, 1, 2, 3, 4])
    args.ps = args.ps if args.ps is not None else (0.5 if args.quick else 50.0)
    if args.threads < 1 or args.jobs < 1 or not args.ps > 0 or not args.check_fs > 0 or args.skin < 0:
        parser.error("--threads and --jobs must be at least 1, --ps and --check-fs positive, --skin non-negative")
    if min(args.temperatures) <= 0 or (args.friction_per_fs is not None and not args.friction_per_fs > 0):
        parser.error("--temperatures and --friction-per-fs must be positive")
    if args.overwrite and args.resume:
        parser.error("--overwrite starts afresh, --resume continues: give one of them")
    if args.output.exists() and not (args.overwrite or args.resume):
        parser.error(f"{args.output} exists: pass --resume to continue it, --overwrite to replace it, "
                     "or choose another --output")
    try:
        args.models = [parse_model_spec(spec) for spec in args.model]
    except ValueError as error:
        parser.error(str(error))
    labels = [label for label, _ in args.models]
    if len(set(labels)) != len(labels):
        parser.error(f"model labels must differ, got {labels}")
    for label, path in args.models:
        if not path.is_file():
            parser.error(f"model {label}: no file at {path}")
    return args


def resumable_runs(path: Path, settings: dict, models: dict) -> tuple[list[dict], dict]:
    """The runs and model records of an earlier output to continue.

    Raises:
        ValueError: the file was written with other settings, or a label now names another model file.
    """
    previous = json.loads(path.read_text())
    if previous.get("settings") != settings:
        differ = sorted(key for key in set(settings) | set(previous.get("settings", {}))
                        if settings.get(key) != previous.get("settings", {}).get(key))
        raise ValueError(f"{path} was written with other settings ({', '.join(differ)}): use --overwrite or "
                         "another --output")
    for label, record in models.items():
        old = previous["models"].get(label)
        if old is not None and old["sha256"] != record["sha256"]:
            raise ValueError(f"{path}: model {label!r} was {old['path']} (sha256 {old['sha256'][:12]}…), now "
                             f"{record['path']} (sha256 {record['sha256'][:12]}…): use another label or --overwrite")
    return previous["runs"], previous["models"]


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    command = shlex.join(["python", "scripts/bench_stability.py", *(sys.argv[1:] if argv is None else argv)])

    start, reference_positions = read_training_set()
    bonds = covalent_bonds(start)
    window = BondWindow(bonds, reference_positions)
    dft_counts = pair_distance_counts(reference_positions)
    settings = run_settings(args, file_sha256(TRAINING_FILE))
    models, model_records = load_models(args.models, getattr(torch, args.dtype), not args.no_compile)

    runs, previous_models = [], {}
    if args.resume and args.output.exists():
        try:
            runs, previous_models = resumable_runs(args.output, settings, model_records)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    done = {(r["model"], r["temperature_K"], r["seed"]) for r in runs}
    plan = [(label, float(t), seed) for label, _ in args.models for t in args.temperatures for seed in args.seeds
            if (label, float(t), seed) not in done]
    jobs = max(1, min(args.jobs, len(plan)))
    if done:
        print(f"resuming {args.output}: {len(done)} run(s) kept, {len(plan)} to do", flush=True)
    all_models = {**previous_models, **model_records}
    labels = list(all_models)
    temperatures = sorted({float(t) for t in args.temperatures} | {r["temperature_K"] for r in runs})
    edges = np.linspace(*HISTOGRAM_RANGE_A, HISTOGRAM_BINS + 1)

    def payload(complete: bool) -> dict:
        summary = summarise(runs, labels, temperatures, dft_counts)
        return {
            "benchmark": "MD stability on rMD17 ethanol (issue 21)",
            "command": command,
            "failure": "the first of: the engine's health stop (MDInstabilityError), a close contact "
                       "(CloseContactError), a bond outside [DFT min − 0.5 Å, DFT max + 0.5 Å] (checked every "
                       f"{settings['check_interval_fs']:g} fs; the time to failure is the check that found it)",
            "reasons": REASONS,
            "histogram_error": "∫|p_MD(r) − p_DFT(r)| dr, p the pair-distance density over 0–5 Å normalised to 1 "
                               "(all 36 pairs; MD: every check until failure, all seeds of a model and T pooled; "
                               "DFT: the 1,000 training configurations, sampled from MD at 500 K); 0 identical, "
                               "2 disjoint",
            "quick": args.quick,
            "complete": complete,
            "settings": settings,
            "temperatures_K": temperatures,
            "seeds": sorted({int(s) for s in args.seeds} | {r["seed"] for r in runs}),
            "models": all_models,
            "bonds": window.describe(start),
            "dft_histogram": {"bin_edges_A": [round(float(e), 4) for e in edges],
                              "density_per_A": [round(float(v), 5) for v in density(dft_counts)],
                              "frames": len(reference_positions), "sampling": "rMD17 (revised MD17): DFT MD at 500 K"},
            "summary": summary,
            "runs": runs,
            "threads": torch.get_num_threads(),
            "jobs": jobs,
            "versions": {"mlpot": mlpot.__version__, "torch": torch.__version__, "ase": ase.__version__,
                         "numpy": np.__version__, "python": platform.python_version()},
            "host": {"machine": platform.platform(), "processor": platform.processor() or platform.machine(),
                     "cpu_count": os.cpu_count()},
            "wall_s": round(time.perf_counter() - started, 1),  # this invocation's
            "runs_wall_s": round(sum(r["wall_s"] for r in runs), 1),  # all runs', resumed ones included
        }

    steps_per_run = round(1000.0 * args.ps / TIMESTEP_FS)
    with progress(total=len(plan) * steps_per_run, desc="stability", unit="step") as bar:

        def finish(key: tuple[str, float, int], record: dict) -> None:
            label, temperature_K, seed = key
            runs.append({"model": label, "temperature_K": temperature_K, "seed": seed, **record})
            runs.sort(key=lambda r: (labels.index(r["model"]), r["temperature_K"], r["seed"]))
            outcome = (f"failed at {record['time_to_failure_ps']:g} ps ({record['reason']}: {record['message']})"
                       if record["failed"] else f"survived {record['ps_done']:g} ps")
            bar.write(f"{label}, {temperature_K:g} K, seed {seed}: {outcome}; "
                      f"{record['steps_per_s']} steps/s, mean T {record['mean_temperature_K']} K")
            # After every run: a stop (or a crash) loses at most the runs in progress.
            atomic_write_text(args.output, json.dumps(payload(complete=False), indent=1) + "\n")

        if jobs > 1:
            initargs = (os.getpid(), args.threads, args.models, args.dtype, not args.no_compile)
            with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                                        initializer=_worker_init, initargs=initargs) as pool:
                futures = {pool.submit(_run_in_worker, *key, settings): key for key in plan}
                for future in concurrent.futures.as_completed(futures):
                    finish(futures[future], future.result())
                    bar.update(steps_per_run)
        else:
            for key in plan:
                finish(key, run_one(models[key[0]], start, key[1], key[2], settings, window, on_chunk=bar.update))

    have = {(r["model"], r["temperature_K"], r["seed"]) for r in runs}
    final = payload(complete=all((label, float(t), seed) in have
                                 for label, _ in args.models for t in args.temperatures for seed in args.seeds))
    atomic_write_text(args.output, json.dumps(final, indent=1) + "\n")
    print_summary(final["summary"], args.ps)
    if final["summary"]:
        print(f"wrote {args.output} and {plot(final, args.output.with_suffix('.png'))}")
    else:
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
