"""The one generic training loop of mlpot: :func:`fit` → :func:`train_one_epoch` → :func:`take_step`.

``fit`` trains any ``torch.nn.Module`` against any ``loss_fn(model, batch, training)``; it knows
nothing about atoms. The interatomic-potential trainer (:mod:`mlpot.training.trainer`) and the
Hamiltonian-network layer both sit on top of it, so every model in the package gets the same
optimiser, schedule, EMA, early stopping, checkpoints and resume semantics.

Design notes:

* **Exact resume.** A checkpoint holds the weights, the AdamW state, the schedule state, the EMA,
  every random-number generator (torch, CUDA, numpy, python) and the position inside the epoch.
  ``resume=True`` therefore continues bit-for-bit, also after an interruption in the middle of an
  epoch: the epoch's batch iterator is re-created from the RNG state saved at the start of the
  epoch, the batches already seen are skipped, and the RNG state at the interruption is restored.
  This requires ``train_batches`` to be a deterministic function of the global RNG state, as a
  ``torch.utils.data.DataLoader`` (with or without ``shuffle``) or a plain list is.
* **Plain checkpoints** (:mod:`mlpot.training.checkpoints`). Checkpoints contain only tensors,
  numbers, strings, lists and dicts, are written atomically (:mod:`mlpot.files`: temporary file,
  fsync, rename, fsync of the folder) and are loaded with ``torch.load(weights_only=True)``:
  loading one never executes pickled code. With ``settings``, a resumed run must have the model
  (config and initial weights) and the settings of the run that wrote the checkpoint.
* **Interruption.** SIGINT and SIGTERM set a flag (:class:`mlpot.interrupts.SignalGuard`); the loop
  finishes the optimiser step in flight, writes ``last.pt`` and raises :class:`TrainingInterrupted`
  (a ``KeyboardInterrupt``). A second signal aborts at once.
* **Schedules** are functions of the fractional epoch ``t = epoch + (batch + 1) / n_batches``, so
  the learning rate changes every step and does not depend on the history of the process.
* **Validation** runs with the EMA weights, the model in ``eval()`` mode and the parameters'
  ``requires_grad`` switched off (a force loss still differentiates with respect to positions).
  Under DDP it runs on the unwrapped module, on every rank, on the whole validation set.
"""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlpot.interrupts import RunInterrupted, SignalGuard
from mlpot.progress import progress as progress_reporter
from mlpot.training.checkpoints import (
    CHECKPOINT_FORMAT,
    fingerprint,
    load_checkpoint,
    rng_state,
    seed_everything,
    set_rng_state,
)
from mlpot.training.distributed import any_rank, mean_over_ranks, process_rank, unwrap
from mlpot.training.ema import EMA, Swapped
from mlpot.training.metrics_log import MetricsCsv
from mlpot.training.run_state import EpochPosition, RunState
from mlpot.training.schedules import SCHEDULES, learning_rate_factor
from mlpot.training.validation import as_floats, epoch_summary, validate

__all__ = [
    "LoopConfig", "FitResult", "TrainingInterrupted", "fit", "train_one_epoch", "take_step", "load_checkpoint",
    "CHECKPOINT_FORMAT",
]

LossFn = Callable[[torch.nn.Module, Any, bool], "tuple[torch.Tensor, dict[str, float]]"]


@dataclass
class LoopConfig:
    """Settings of :func:`fit`. Every field has a default; see ``docs/training.md``."""

    #: Number of passes over ``train_batches``.
    max_epochs: int = 100
    #: Wall-clock budget of this call in minutes; checked at the end of each epoch. None: no limit.
    max_minutes: float | None = None
    #: Peak learning rate of AdamW.
    lr: float = 1e-3
    #: Decoupled weight decay of AdamW.
    weight_decay: float = 0.0
    #: Linear learning-rate warm-up from 0 over this many epochs (fractional epochs per step).
    warmup_epochs: int = 0
    #: Learning-rate schedule after warm-up: "cosine" (to min_lr_factor·lr at max_epochs), "cosine_time"
    #: (the same cosine, ending at max_epochs or at max_minutes of training, whichever comes first),
    #: "plateau" or "constant".
    schedule: str = "cosine"
    #: Decay of the exponential moving average of the weights used for evaluation; None: no EMA.
    ema_decay: float | None = 0.99
    #: Clip the global gradient norm to this value; None: no clipping.
    grad_clip: float | None = 10.0
    #: Stop after this many epochs without improvement of the monitored loss; None: never.
    patience: int | None = None
    #: Seed of torch, numpy and python RNGs at the start of a fresh run.
    seed: int = 0
    #: Show progress (mlpot.progress: a bar on a terminal, plain lines in a log) and one line per epoch.
    progress: bool = True
    #: Write last.pt (and best.pt, if the monitored loss improved since) every this many epochs.
    checkpoint_every: int = 1
    #: Final learning rate of the cosine schedule, as a fraction of lr.
    min_lr_factor: float = 0.01
    #: "plateau" schedule: multiply the learning rate by this factor ...
    plateau_factor: float = 0.5
    #: ... after this many epochs without improvement of the monitored loss.
    plateau_patience: int = 10

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule: expected one of {', '.join(map(repr, SCHEDULES))}, got {self.schedule!r}")
        if self.schedule == "cosine_time" and self.max_minutes is None:
            raise ValueError("schedule: 'cosine_time' ends with the time budget and needs max_minutes")
        if self.max_epochs < 0:
            raise ValueError(f"max_epochs: must be >= 0, got {self.max_epochs}")
        if self.ema_decay is not None and not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay: must be in [0, 1) or None, got {self.ema_decay}")
        if self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every: must be >= 1, got {self.checkpoint_every}")
        if self.lr <= 0:
            raise ValueError(f"lr: must be > 0, got {self.lr}")


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        history: one dict per completed epoch: ``epoch`` (1-based), ``lr``, ``time_s``,
            ``train_loss``, ``train_<metric>``, and with validation ``val_loss``, ``val_<metric>``.
        best_val_loss: lowest monitored loss (validation loss, or training loss without
            validation data); None if no epoch ran.
        best_epoch: the 1-based epoch that reached it.
        stopped: why training ended: "max_epochs", "early_stopping" or "max_minutes".
        output_dir: where checkpoints and the metrics CSV went (None without output_dir).
    """

    history: list[dict[str, float]] = field(default_factory=list)
    best_val_loss: float | None = None
    best_epoch: int | None = None
    stopped: str = "max_epochs"
    output_dir: Path | None = None


class TrainingInterrupted(RunInterrupted):
    """Raised by :func:`fit` after SIGINT/SIGTERM, once the final checkpoint is on disk."""

    def __init__(self, signum: int, checkpoint: Path | None):
        super().__init__("training", signum, checkpoint)


# --------------------------------------------------------------------------------------- one step
def take_step(run: RunState, batch: Any, lr: float, where: str) -> dict[str, float]:
    """One optimiser step on ``batch`` at learning rate ``lr``; returns the batch's loss and metrics.

    Raises:
        FloatingPointError: the loss is NaN or infinite (``where`` names the epoch and batch).
    """
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    run.optimizer.zero_grad(set_to_none=True)
    loss, metrics = run.loss_fn(run.model, batch, True)
    if not torch.isfinite(loss.detach()).all():
        raise FloatingPointError(f"training loss is {float(loss.detach())} at {where}")
    loss.backward()
    if run.config.grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(run.params, run.config.grad_clip)
    run.optimizer.step()
    if run.ema is not None:
        run.ema.update(run.module)
    run.schedule["step"] += 1
    return {"loss": float(loss.detach()), **as_floats(metrics)}


# --------------------------------------------------------------------------------------- one epoch
def train_one_epoch(
    run: RunState, train_batches: Iterable, epoch: int, n_batches: int | None, resume: EpochPosition,
    guard: SignalGuard, bar: Any,
) -> list[dict[str, float]]:
    """One pass over ``train_batches`` (the rest of it, after an interruption); per-batch metrics.

    The iterator of an interrupted epoch is re-created from the RNG state saved at the start of the
    epoch and advanced past the batches already done, then the RNG state at the interruption is
    restored: the epoch continues bit for bit.

    Raises:
        TrainingInterrupted: a signal arrived (on any rank); last.pt holds the position in the epoch.
    """
    config = run.config
    if resume.batches_done and resume.rng_epoch_start is not None:
        set_rng_state(resume.rng_epoch_start)
    rng_start = rng_state()
    iterator = iter(train_batches)
    per_batch = resume.epoch_metrics if resume.batches_done else []
    for _ in range(resume.batches_done):
        next(iterator)
    if resume.batches_done and resume.rng_now is not None:
        set_rng_state(resume.rng_now)
    run.model.train()
    for i, batch in enumerate(iterator, start=resume.batches_done):
        t = epoch + ((i + 1) / n_batches if n_batches else 0.0)
        lr = config.lr * learning_rate_factor(config, t, run.schedule["plateau_scale"], run.schedule["elapsed_s"])
        per_batch.append(take_step(run, batch, lr, f"epoch {epoch + 1}, batch {i + 1}"))
        bar.update(1, epoch=epoch + 1, loss=f"{np.mean([m['loss'] for m in per_batch]):.4g}", lr=f"{lr:.2e}")
        if any_rank(guard.requested):
            if run.last_path is not None:
                run.save_last_and_best(epoch, i + 1, per_batch, rng_start)
            raise TrainingInterrupted(guard.signum or signal.SIGTERM, run.last_path if run.rank == 0 else None)
    return per_batch


def _print_epoch(bar: Any, row: dict[str, float], improved: bool) -> None:
    shown = {k: v for k, v in row.items() if k != "epoch"}
    if len(shown) > 8:  # many metrics: the console shows losses and MAEs, the CSV has everything
        shown = {k: v for k, v in shown.items() if k in ("lr", "time_s") or k.endswith("loss") or "_mae_" in k}
        shown = {k: v for k, v in shown.items() if not k.endswith("per_atom")}
    text = "  ".join(f"{k}={v:.4g}" for k, v in shown.items())
    bar.write(f"epoch {row['epoch']:4d}  {text}{'  *' if improved else ''}")


# --------------------------------------------------------------------------------------- fit
def fit(
    model: torch.nn.Module,
    loss_fn: LossFn,
    train_batches: Iterable,
    val_batches: Iterable | None = None,
    config: LoopConfig | None = None,
    output_dir: str | os.PathLike | None = None,
    resume: bool = False,
    log_name: str = "metrics.csv",
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    settings: dict[str, Any] | None = None,
) -> FitResult:
    """Train ``model`` with AdamW on ``loss_fn`` over ``train_batches``.

    Args:
        model: any module; may be wrapped in ``DistributedDataParallel`` (then every rank calls
            ``fit`` with its own shard of ``train_batches`` and rank 0 writes the files).
        loss_fn: ``loss_fn(model, batch, training) -> (loss, metrics)``: a scalar tensor to
            minimise and a dict of floats (or 0-d tensors) to log. ``training`` is False during
            validation. If ``loss_fn`` has a method ``reduce_metrics(list_of_metric_dicts) -> dict``
            it turns the per-batch dicts of an epoch into epoch metrics (e.g. an exact RMSE);
            otherwise they are averaged.
        train_batches: re-iterable (list or DataLoader), iterated once per epoch.
        val_batches: re-iterable validation batches, or None (then the training loss is monitored).
        config: :class:`LoopConfig` (default ``LoopConfig()``).
        output_dir: directory for ``log_name`` (metrics CSV), ``last.pt`` and ``best.pt``.
            None: nothing is written and SIGINT/SIGTERM are not intercepted.
        resume: continue from ``output_dir/last.pt`` if it exists (starts fresh otherwise).
        log_name: file name of the metrics CSV inside ``output_dir``.
        on_epoch: called on rank 0 with each epoch's metrics row (the CSV's columns, plus
            ``max_epochs``) once the epoch has ended, e.g. to report progress now and then.
        settings: the run's settings that a resumed run must share (plain data). When given, the
            checkpoints store them with a hash of the model's config and initial weights, and
            ``resume`` raises ``ValueError`` naming every difference. None: nothing is checked.

    Returns:
        :class:`FitResult`. On return ``model`` holds the evaluation weights (EMA if enabled) of the
        best epoch when validation data are given, else those of the last epoch.

    Raises:
        TrainingInterrupted: after SIGINT/SIGTERM, once ``last.pt`` has been written.
        FloatingPointError: if the training loss becomes NaN or infinite.
        ValueError: ``resume`` from a checkpoint of another model or other ``settings``.
    """
    config = LoopConfig() if config is None else config
    module = unwrap(model)
    rank = process_rank()
    out = Path(output_dir) if output_dir is not None else None
    if out is not None and rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    params = [p for p in model.parameters() if p.requires_grad]
    run = RunState(
        model=model, module=module, loss_fn=loss_fn, config=config, params=params,
        optimizer=torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay),
        ema=EMA(module, config.ema_decay) if config.ema_decay is not None else None, rank=rank,
        last_path=out / "last.pt" if out is not None else None, best_path=out / "best.pt" if out is not None else None,
        # The hash of the initial weights: a rebuilt run (same config, seed and data) has the same.
        run_fingerprint=fingerprint(module, settings) if settings is not None else None,
    )
    start_epoch, where = 0, EpochPosition()
    if resume and run.last_path is not None and run.last_path.exists():
        ckpt = load_checkpoint(run.last_path)
        run.restore(ckpt)
        start_epoch = ckpt["epoch"]
        where = EpochPosition(ckpt["batch_in_epoch"], list(ckpt["epoch_metrics"]), ckpt["rng_epoch_start"], ckpt["rng"])
        if where.batches_done == 0:
            set_rng_state(where.rng_now)
        if rank == 0 and config.progress:
            print(f"resuming from {run.last_path}: epoch {start_epoch}, batch {where.batches_done}")
    else:
        seed_everything(config.seed)
        if out is not None and rank == 0:
            for stale in (run.last_path, run.best_path, out / log_name):
                if stale.exists():
                    stale.unlink()

    if run.stopped is None:
        _run_epochs(run, train_batches, val_batches, start_epoch, where, out, log_name, on_epoch)
    final = run.best_weights if (val_batches is not None and run.best_weights is not None) else run.eval_weights()
    if final is not None:
        module.load_state_dict(final)
    return FitResult(
        history=run.history,
        best_val_loss=None if math.isinf(run.best_val) else run.best_val,
        best_epoch=run.best_epoch,
        stopped=run.stopped or "max_epochs",
        output_dir=out,
    )


def _run_epochs(
    run: RunState, train_batches: Iterable, val_batches: Iterable | None, start_epoch: int, where: EpochPosition,
    out: Path | None, log_name: str, on_epoch: Callable[[dict[str, float]], None] | None,
) -> None:
    """The epochs of :func:`fit` from ``start_epoch``: train, validate, book-keep, log, checkpoint."""
    config, rank = run.config, run.rank
    n_batches = len(train_batches) if hasattr(train_batches, "__len__") else None
    t_start = clock = time.monotonic()
    csv_log = MetricsCsv(out / log_name, run.history) if out is not None and rank == 0 else None
    # One reporter for the whole run (mlpot.progress): a bar on a terminal, a plain line every 5%
    # of the batches in a log, so a piped run never fills its log with bar redraws.
    bar = progress_reporter(
        total=n_batches * config.max_epochs if n_batches else None, desc="training", unit="batch",
        enabled=config.progress and rank == 0, initial=start_epoch * (n_batches or 0) + where.batches_done,
    )
    try:
        with SignalGuard(enabled=out is not None) as guard:
            for epoch in range(start_epoch, config.max_epochs):
                t_epoch = time.monotonic()
                if config.schedule == "cosine_time":
                    # the clock advances once per epoch, averaged over ranks: every rank must use the same rate
                    run.schedule["elapsed_s"] = mean_over_ranks({"s": run.schedule["elapsed_s"] + t_epoch - clock})["s"]
                    clock = t_epoch
                per_batch = train_one_epoch(run, train_batches, epoch, n_batches, where, guard, bar)
                where = EpochPosition()
                train = mean_over_ranks(epoch_summary(run.loss_fn, per_batch))
                row: dict[str, float] = {"epoch": epoch + 1, "lr": float(run.optimizer.param_groups[0]["lr"])}
                row.update({f"train_{k}": v for k, v in train.items()})
                monitored = train["loss"]
                if val_batches is not None:
                    with Swapped(run.module, run.eval_weights()) as m:
                        val = validate(m, run.loss_fn, val_batches)
                    row.update({f"val_{k}": v for k, v in val.items()})
                    monitored = val.get("loss", train["loss"])  # an empty validation set monitors training
                row["time_s"] = time.monotonic() - t_epoch
                run.history.append(row)
                improved = run.record(epoch, monitored)

                if config.patience is not None and run.bad_epochs >= config.patience:
                    run.stopped = "early_stopping"
                elif config.max_minutes is not None and time.monotonic() - t_start > 60.0 * config.max_minutes:
                    run.stopped = "max_minutes"
                elif epoch + 1 == config.max_epochs:
                    run.stopped = "max_epochs"

                if rank == 0 and config.progress:
                    _print_epoch(bar, row, improved)
                if rank == 0 and on_epoch is not None:
                    on_epoch({**row, "max_epochs": config.max_epochs})
                signalled = any_rank(guard.requested)
                if out is not None:
                    if csv_log is not None:
                        csv_log.append(row, run.history)
                    if run.stopped or signalled or (epoch + 1) % config.checkpoint_every == 0:
                        run.save_last_and_best(epoch + 1, 0, [], None)
                if signalled:
                    raise TrainingInterrupted(guard.signum or signal.SIGTERM, run.last_path if rank == 0 else None)
                if run.stopped:
                    break
    finally:
        bar.close()
    if run.stopped is None:  # max_epochs == start_epoch: nothing left to run
        run.stopped = "max_epochs"
