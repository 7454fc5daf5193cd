"""Training interatomic potentials: data → statistics → :func:`mlpot.training.loop.fit` → saved model.

:func:`train` runs a whole ``mlpot train`` configuration:

0. refuse to start over the checkpoints of an earlier run in ``OUTPUT`` unless told to resume
   or to overwrite them;
1. read the training file (units converted to eV/Å), split it into train/validation by seed or
   index file, and write the split to ``OUTPUT/split.json``; check the training set
   (:mod:`mlpot.training.data_checks`: labels, cutoff, units) and record the shortest distance
   per element pair (``model.training_min_distances``);
2. fit per-element reference energies (least squares on composition) and the force scale (RMS
   training force) on the training set, and fix them in the model before training;
3. in ``chirality: augment`` mode add the mirror image of every training structure (same energy,
   mirrored forces and stress);
4. train with the generic loop (DDP when launched by ``torchrun``), ``ensemble`` times with seeds
   seed, seed+1, …;
5. save ``OUTPUT/model.pt`` (a Committee for an ensemble) and evaluate it on the validation and
   test sets (``OUTPUT/metrics.json``).

A model whose class sets ``training_labels = "multistate"`` (the diabatic model of
:mod:`mlpot.nonadiabatic.atomistic`) trains the same way on per-state labels
(:mod:`mlpot.data.multistate`) with :class:`~mlpot.training.multistate_loss.MultistateLoss`; the
decision is read from the registered class, so models/ knows nothing about training.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mlpot.data import keys as K
from mlpot.data.datasets import ReadReport, load_split, read_structures, save_split, split_indices
from mlpot.data.multistate import read_multistate_structures
from mlpot.files import atomic_write_text
from mlpot.training.augmentation import mirror_structure
from mlpot.training.batching import INPUT_KEYS, StructureBatches, add_label_masks
from mlpot.training.checkpoints import check_output_folder, without_keys
from mlpot.training.config import TrainConfig, config_to_dict
from mlpot.training.data_checks import check_cutoff, check_labels, check_units, training_min_distances
from mlpot.training.distributed import DistInfo, barrier, init_distributed, resolve_device, wrap_model
from mlpot.training.evaluation import evaluate, predict
from mlpot.training.loop import FitResult, LoopConfig, fit
from mlpot.training.losses import PotentialLoss
from mlpot.training.metrics import format_table
from mlpot.training.multistate_loss import MultistateLoss, evaluate_multistate, is_multistate
from mlpot.training.plots import plot_training_history
from mlpot.training.statistics import fit_energy_statistics, fit_multistate_statistics

#: Settings a resumed run may change (dotted config keys): budgets, device, output and reporting.
RESUMABLE_SETTINGS = (
    "data.test", "data.allow_unusual_units", "trainer.max_epochs", "trainer.max_minutes", "trainer.progress",
    "trainer.resume", "trainer.device", "trainer.checkpoint_every", "trainer.val_batch_size", "output",
)

__all__ = [
    "TrainResult",
    "train",
    "prepare_data",
    "fit_energy_statistics",
    "mirror_structure",
    "build_model",
    "train_model",
    "predict",
    "evaluate",
]

_DTYPES = {"float64": torch.float64, "float32": torch.float32}


@dataclass
class TrainResult:
    """What :func:`train` returns (on every rank).

    Attributes:
        model: the trained potential (a Committee for an ensemble), on CPU, in eval mode.
        fits: one :class:`~mlpot.training.loop.FitResult` per ensemble member.
        metrics: ``{"val": {...}, "test": {...}}`` error metrics of the final model.
        output_dir: the output directory.
        wall_s: seconds spent.
    """

    model: torch.nn.Module
    fits: list[FitResult] = field(default_factory=list)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    output_dir: Path | None = None
    wall_s: float = 0.0


# --------------------------------------------------------------------------------------- data
def _read_options(data_cfg: Any) -> dict[str, Any]:
    return {
        "format": data_cfg.format,
        "energy_unit": data_cfg.energy_unit,
        "length_unit": data_cfg.length_unit,
        "energy_key": data_cfg.energy_key,
        "forces_key": data_cfg.forces_key,
        "stress_key": data_cfg.stress_key,
        "npz_keys": data_cfg.npz_keys,
    }


def _model_class(config: TrainConfig) -> type:
    from mlpot.models import registry

    return registry.get(config.model.name)


def _n_states(config: TrainConfig) -> int:
    """The ``n_states`` of a multistate model's config (its constructor's default when not set)."""
    import inspect

    default = inspect.signature(_model_class(config)).parameters["n_states"].default
    return int(config.model.hyperparameters.get("n_states", default))


def _read(path: str, config: TrainConfig, dtype: torch.dtype, verbose: bool, cutoff: float | None = None) -> list:
    """The structures of ``path``: per-state labels for a multistate model, else energy/forces/stress."""
    d = config.data
    if is_multistate(_model_class(config)):
        structures = read_multistate_structures(
            path, _n_states(config), cutoff=cutoff, dtype=dtype, energy_unit=d.energy_unit,
            length_unit=d.length_unit, format=d.format,
        )
        if verbose:
            print(f"{path}: {len(structures)} structures with {_n_states(config)} states")
        return structures
    report = ReadReport(path)
    structures = read_structures(path, cutoff=cutoff, dtype=dtype, report=report, **_read_options(d))
    if verbose:
        print(report.summary())
    return structures


def prepare_data(config: TrainConfig, cutoff: float, dtype: torch.dtype = torch.float64, verbose: bool = True):
    """Read and split the data of a config (per-state labels when the model is a multistate one).

    Returns:
        ``(train, val, test, split)``: lists of AtomicData (with neighbour lists for ``cutoff``;
        ``test`` is None without a test file) and the split dict (indices into the training file).
    """
    from mlpot.data import with_neighbors

    d = config.data
    structures = _read(d.train, config, dtype, verbose)
    if d.split_file is not None:
        split = load_split(d.split_file, n=len(structures))
        split["seed"] = None
    else:
        split = split_indices(len(structures), d.n_train, d.n_val, seed=d.seed)
    selected = [structures[i] for i in split["train"]]
    if not selected:
        raise ValueError("data: the split leaves no training structures")
    # the checks that need no neighbour list first: a wrong unit fails in seconds, not minutes
    if not is_multistate(_model_class(config)):
        check_labels(selected)
        refs = fit_energy_statistics(selected)[0]
        check_units(selected, refs, d.energy_unit, d.length_unit, d.allow_unusual_units)
    # neighbour lists only for the structures used
    train = [with_neighbors(s, cutoff) for s in selected]
    val = [with_neighbors(structures[i], cutoff) for i in split["val"]]
    check_cutoff(train, cutoff)
    test = None
    if d.test is not None:
        test = _read(d.test, config, dtype, verbose, cutoff=cutoff)
    return train, val, test, split


# --------------------------------------------------------------------------------------- model
def build_model(
    config: TrainConfig, elements: Sequence[int | str], dtype: torch.dtype = torch.float64
) -> torch.nn.Module:
    """Construct the registered potential named by ``config.model`` (initialised from torch's global RNG)."""
    from mlpot.models import registry

    m = config.model
    model_class = registry.get(m.name)
    return model_class(list(elements), cutoff=m.cutoff, chirality=m.chirality, dtype=dtype, **m.hyperparameters)


def _elements(config: TrainConfig, structures: Sequence[dict[str, Tensor]]) -> list[int]:
    if config.model.elements:
        from ase.data import atomic_numbers

        return sorted(atomic_numbers[s] if isinstance(s, str) else int(s) for s in config.model.elements)
    return sorted({int(z) for s in structures for z in s[K.NUMBERS].tolist()})


# --------------------------------------------------------------------------------------- training
def _loop_config(trainer_cfg: Any, seed: int, progress: bool) -> LoopConfig:
    values = {f.name: getattr(trainer_cfg, f.name) for f in fields(LoopConfig)}
    values.update(seed=seed, progress=progress)
    return LoopConfig(**values)


def train_model(
    model: torch.nn.Module,
    train: Sequence[dict[str, Tensor]],
    val: Sequence[dict[str, Tensor]] | None,
    config: TrainConfig,
    *,
    seed: int | None = None,
    output_dir: str | Path | None = None,
    resume: bool = False,
    info: DistInfo | None = None,
    statistics: tuple[dict[int, float], float] | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    settings: dict[str, Any] | None = None,
) -> FitResult:
    """Fix the energy statistics of ``model`` and train it on ``train`` with the generic loop.

    Args:
        model: a potential with ``set_energy_statistics`` (optional) in the dtype of the data.
        train, val: AtomicData lists (val may be empty or None).
        config: the whole config (trainer and model sections are used).
        seed: the loop's seed (default ``config.trainer.seed``).
        output_dir: checkpoints and metrics.csv (None: nothing written).
        resume: continue from ``output_dir/last.pt``.
        info: the DDP context (default: single process on ``config.trainer.device``).
        statistics: ``(reference_energies, scale)``; default fitted on ``train``.
        on_epoch: called with each epoch's metrics row (see :func:`mlpot.training.loop.fit`).
        settings: what a resumed run must share with the checkpoint (see :func:`mlpot.training.loop.fit`).

    Returns:
        The loop's FitResult; ``model`` holds the best (EMA) weights.
    """
    t = config.trainer
    info = info or DistInfo(device=resolve_device(t.device))
    seed = t.seed if seed is None else seed
    multistate = is_multistate(model)
    if statistics is None:
        statistics = fit_multistate_statistics(train) if multistate else fit_energy_statistics(train)
    refs, scale = statistics
    train = list(train)
    if config.model.chirality == "augment":
        train = train + [mirror_structure(s) for s in train]
    if t.fit_statistics:
        if hasattr(model, "set_energy_statistics"):
            model.set_energy_statistics(refs, scale)
        if hasattr(model, "fit_descriptor_statistics"):
            from mlpot.data import collate

            model.fit_descriptor_statistics(collate([{k: s[k] for k in INPUT_KEYS if k in s} for s in train]))
    if multistate:  # every structure carries the same per-state labels: no masks
        loss = MultistateLoss(
            energy_weight=t.energy_weight, forces_weight=t.forces_weight, couplings_weight=t.couplings_weight,
            kind=t.loss, huber_delta=t.huber_delta, scale=scale,
        )
        val = list(val or [])
    else:
        labels = [k for k in (K.ENERGY, K.FORCES, K.STRESS) if any(k in s for s in train)]
        train, val = add_label_masks(train, labels), add_label_masks(val, labels) if val else []
        loss = PotentialLoss(
            energy_weight=t.energy_weight, forces_weight=t.forces_weight, stress_weight=t.stress_weight,
            kind=t.loss, huber_delta=t.huber_delta, scale=scale,
        )
    train_batches = StructureBatches(
        train, t.batch_size, shuffle=True, rank=info.rank, world_size=info.world_size, device=info.device
    )
    val_batches = StructureBatches(val, t.val_batch_size, shuffle=False, device=info.device) if val else None
    model.to(info.device)
    wrapped = wrap_model(model, info)
    try:
        return fit(
            wrapped,
            loss,
            train_batches,
            val_batches,
            _loop_config(t, seed, t.progress and info.is_main),
            output_dir=output_dir,
            resume=resume,
            on_epoch=on_epoch,
            settings=settings,
        )
    finally:
        model.to("cpu")


# --------------------------------------------------------------------------------------- whole run
def resume_settings(config: TrainConfig) -> dict[str, Any]:
    """The config as plain data without :data:`RESUMABLE_SETTINGS`: what a resumed run must keep."""
    return without_keys(config_to_dict(config), RESUMABLE_SETTINGS)


def train(config: TrainConfig, resume: bool | None = None, overwrite: bool = False) -> TrainResult:
    """Run a whole ``mlpot train`` configuration (see the module docstring).

    Args:
        config: validated configuration.
        resume: continue from the checkpoints in ``config.output`` (default ``config.trainer.resume``).
            The model and the settings (all but :data:`RESUMABLE_SETTINGS`) must be those of the
            run that wrote them.
        overwrite: delete the checkpoints of an earlier run in ``config.output`` and start again.
            Without ``resume`` or ``overwrite``, existing checkpoints are an error.

    Returns:
        :class:`TrainResult`. Files in ``config.output``: ``config.yaml``, ``split.json``,
        ``model.pt``, ``metrics.json``, ``training.png`` (errors per epoch), and per member
        (``member_K/`` for an ensemble, the output directory itself otherwise) ``metrics.csv``,
        ``last.pt``, ``best.pt``.
    """
    import yaml

    from mlpot.models.serialization import save_model, set_training_min_distances

    t0 = time.monotonic()
    t = config.trainer
    resume = t.resume if resume is None else resume
    dtype = _DTYPES.get(t.dtype)
    if dtype is None:
        raise ValueError(f"trainer.dtype: expected float64 or float32, got {t.dtype!r}")
    if t.ensemble < 1:
        raise ValueError(f"trainer.ensemble: must be >= 1, got {t.ensemble}")
    multistate = is_multistate(_model_class(config))
    if multistate and t.ensemble > 1:
        raise ValueError(f"trainer.ensemble: {config.model.name} models cannot form a committee; set ensemble: 1")
    out = Path(config.output)
    stale = check_output_folder(out, bool(resume), overwrite)
    info = init_distributed(t.device)
    try:
        train_set, val_set, test_set, split = prepare_data(config, config.model.cutoff, dtype, verbose=info.is_main)
        if info.is_main:
            if overwrite:
                for path in stale:
                    path.unlink(missing_ok=True)
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out / "config.yaml", yaml.safe_dump(config_to_dict(config), sort_keys=False))
            save_split(split, out / "split.json", train_file=str(config.data.train))
        statistics = fit_multistate_statistics(train_set) if multistate else fit_energy_statistics(train_set)
        min_distances = training_min_distances(train_set)
        settings = resume_settings(config)
        if info.is_main:
            refs, scale = statistics
            shown = ", ".join(f"{z}: {e:.4f}" for z, e in refs.items())
            print(f"{len(train_set)} train / {len(val_set)} val structures; reference energies (eV) {{{shown}}}; "
                  f"force scale {scale:.4g} eV/Å")
        elements = _elements(config, train_set)
        members, fits = [], []
        for k in range(t.ensemble):
            seed = t.seed + k
            torch.manual_seed(seed)
            model = build_model(config, elements, dtype)
            member_dir = out / f"member_{k}" if t.ensemble > 1 else out
            if info.is_main and t.ensemble > 1:
                print(f"ensemble member {k + 1}/{t.ensemble} (seed {seed})")
            fits.append(train_model(model, train_set, val_set, config, seed=seed, output_dir=member_dir,
                                    resume=resume, info=info, statistics=statistics, settings=settings))
            model.eval()
            members.append(model)
        if t.ensemble > 1:
            from mlpot.models import Committee

            final: torch.nn.Module = Committee(members)
        else:
            final = members[0]
        set_training_min_distances(final, min_distances)
        final.eval()
        metrics: dict[str, dict[str, float]] = {}
        if info.is_main:
            metadata = {
                "split": {k: split[k] for k in ("train", "val", "seed")},
                "train_file": str(config.data.train),
                "units": {"energy": "eV", "length": "Angstrom", "source_energy_unit": config.data.energy_unit or "eV",
                          "source_length_unit": config.data.length_unit},
                "reference_energies": {str(z): e for z, e in statistics[0].items()},
                "force_scale": statistics[1],
                "config": config_to_dict(config),
                "epochs": [len(f.history) for f in fits],
            }
            save_model(final, out / "model.pt", metadata=metadata)
            errors = evaluate_multistate if multistate else evaluate
            if val_set:
                metrics["val"] = errors(final, val_set, t.val_batch_size, info.device)
            if test_set:
                metrics["test"] = errors(final, test_set, t.val_batch_size, info.device)
            final.to("cpu")
            wall = time.monotonic() - t0
            summary = {**metrics, "wall_s": wall, "epochs": [len(f.history) for f in fits]}
            atomic_write_text(out / "metrics.json", json.dumps(summary, indent=1))
            labels = [f"member {k}" for k in range(len(fits))] if len(fits) > 1 else ["model"]
            histories = {label: fit.history for label, fit in zip(labels, fits) if fit.history}
            if histories:  # a resumed run that had finished trains no epoch
                plot_training_history(histories, out / "training.png", title=f"training history ({out.name})",
                                      best_epochs={label: fit.best_epoch for label, fit in zip(labels, fits)})
            for name, values in metrics.items():
                print(f"\n{name} set ({len(val_set) if name == 'val' else len(test_set)} structures)")
                print(format_table(values))
            print(f"\nmodel written to {out / 'model.pt'} ({wall:.0f} s)")
        barrier()
        return TrainResult(model=final, fits=fits, metrics=metrics, output_dir=out, wall_s=time.monotonic() - t0)
    finally:
        if info.initialized_here:
            torch.distributed.destroy_process_group()
