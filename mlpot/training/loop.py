"""The one generic training loop of mlpot.

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
* **Interruption.** SIGINT and SIGTERM set a flag; the loop finishes the optimiser step in flight,
  writes ``last.pt`` and raises :class:`TrainingInterrupted` (a ``KeyboardInterrupt``). A second
  signal aborts at once.
* **Schedules** are functions of the fractional epoch ``t = epoch + (batch + 1) / n_batches``, so
  the learning rate changes every step and does not depend on the history of the process.
* **Validation** runs with the EMA weights, the model in ``eval()`` mode and the parameters'
  ``requires_grad`` switched off (a force loss still differentiates with respect to positions).
  Under DDP it runs on the unwrapped module, on every rank, on the whole validation set.
"""

from __future__ import annotations

import csv
import io
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlpot.files import atomic_write_text
from mlpot.progress import progress as progress_reporter
from mlpot.training.checkpoints import (
    CHECKPOINT_FORMAT,
    check_fingerprint,
    fingerprint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
)
from mlpot.training.ema import EMA, Swapped

__all__ = ["LoopConfig", "FitResult", "TrainingInterrupted", "fit", "load_checkpoint", "CHECKPOINT_FORMAT"]

LossFn = Callable[[torch.nn.Module, Any, bool], "tuple[torch.Tensor, dict[str, float]]"]


SCHEDULES = ("cosine", "cosine_time", "plateau", "constant")


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


class TrainingInterrupted(KeyboardInterrupt):
    """Raised by :func:`fit` after SIGINT/SIGTERM, once the final checkpoint is on disk."""

    def __init__(self, signum: int, checkpoint: Path | None):
        self.signum = signum
        self.checkpoint = checkpoint
        where = f"; checkpoint written to {checkpoint}" if checkpoint else ""
        super().__init__(f"training interrupted by signal {signum}{where}")


# --------------------------------------------------------------------------------------- DDP
def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DistributedDataParallel (or DataParallel) wrapper."""
    return model.module if hasattr(model, "module") and isinstance(model.module, torch.nn.Module) else model


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _rank() -> int:
    return torch.distributed.get_rank() if _distributed() else 0


def _comm_device() -> torch.device:
    """Where collective tensors must live: the current GPU for nccl, else the CPU."""
    if _distributed() and torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _all_mean(values: dict[str, float]) -> dict[str, float]:
    """Average a dict of floats over ranks (identity without torch.distributed)."""
    if not _distributed() or not values:
        return values
    keys = list(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=_comm_device())
    torch.distributed.all_reduce(t)
    t /= torch.distributed.get_world_size()
    return dict(zip(keys, t.cpu().tolist()))


def _any_rank(flag: bool) -> bool:
    if not _distributed():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], dtype=torch.float64, device=_comm_device())
    torch.distributed.all_reduce(t)
    return bool(t.item() > 0)


# --------------------------------------------------------------------------------------- schedule
def _lr_factor(config: LoopConfig, t: float, plateau_scale: float, elapsed_s: float = 0.0) -> float:
    """Learning-rate multiplier at fractional epoch t (t = 1 at the end of the first epoch), after
    ``elapsed_s`` seconds of training (used by "cosine_time" only)."""
    warm = 1.0
    if config.warmup_epochs > 0 and t < config.warmup_epochs:
        warm = max(t, 0.0) / config.warmup_epochs
    if config.schedule in ("cosine", "cosine_time"):
        span = max(config.max_epochs - config.warmup_epochs, 1e-12)
        p = (t - config.warmup_epochs) / span
        if config.schedule == "cosine_time":
            # An epoch count fixed up front ends the cosine too early or too late when the epoch
            # time is misjudged; the clock makes it end with the budget either way.
            p = max(p, elapsed_s / (60.0 * config.max_minutes))
        p = min(max(p, 0.0), 1.0)
        f = config.min_lr_factor + (1.0 - config.min_lr_factor) * 0.5 * (1.0 + math.cos(math.pi * p))
    elif config.schedule == "plateau":
        f = plateau_scale
    else:
        f = 1.0
    return warm * f


# --------------------------------------------------------------------------------------- metrics CSV
class _CsvLog:
    """The metrics CSV: rewritten from the history when opened (so it matches a resumed run),
    then one appended row per epoch (rewritten only if a new column appears)."""

    def __init__(self, path: Path, history: list[dict[str, float]]):
        self.path, self.columns = path, []
        self._rewrite(history)

    def _rewrite(self, history: list[dict[str, float]]) -> None:
        self.columns = []
        for row in history:
            self.columns.extend(k for k in row if k not in self.columns)
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=self.columns)
        if self.columns:
            writer.writeheader()
        for row in history:
            writer.writerow({k: _fmt(row.get(k)) for k in self.columns})
        atomic_write_text(self.path, text.getvalue())

    def append(self, row: dict[str, float], history: list[dict[str, float]]) -> None:
        if not self.columns or any(k not in self.columns for k in row):
            self._rewrite(history)
            return
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.columns).writerow({k: _fmt(row.get(k)) for k in self.columns})


def _fmt(v: Any) -> Any:
    return f"{v:.10g}" if isinstance(v, float) else ("" if v is None else v)


# --------------------------------------------------------------------------------------- signals
class _SignalGuard:
    """Turn SIGINT/SIGTERM into a flag while active (main thread only); a second signal aborts."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "_SignalGuard":
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._previous[s] = signal.getsignal(s)
                signal.signal(s, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        if self.signum is not None:  # second signal: stop now, without a checkpoint
            self.__exit__()
            raise KeyboardInterrupt(f"second signal {signum}: aborted without checkpoint")
        self.signum = signum

    def __exit__(self, *exc: object) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)
        self._previous = {}


# --------------------------------------------------------------------------------------- metrics
def _reduce(loss_fn: Any, per_batch: list[dict[str, float]]) -> dict[str, float]:
    """Epoch metrics from per-batch metric dicts: ``loss_fn.reduce_metrics`` if it has one, else the mean."""
    if not per_batch:
        return {}
    reducer = getattr(loss_fn, "reduce_metrics", None)
    if reducer is not None:
        return {k: float(v) for k, v in reducer(per_batch).items()}
    keys: list[str] = []
    for m in per_batch:
        keys.extend(k for k in m if k not in keys)
    return {k: float(np.mean([m[k] for m in per_batch if k in m])) for k in keys}


def _as_floats(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v) for k, v in metrics.items()}


def _evaluate(module: torch.nn.Module, loss_fn: Any, batches: Iterable) -> dict[str, float]:
    """Validation loss and metrics of ``module`` (already holding the evaluation weights)."""
    was_training = module.training
    requires = [(p, p.requires_grad) for p in module.parameters()]
    module.eval()
    for p, _ in requires:
        p.requires_grad_(False)
    try:
        per_batch = []
        for batch in batches:
            loss, metrics = loss_fn(module, batch, False)
            per_batch.append({"loss": float(loss.detach()), **_as_floats(metrics)})
    finally:
        for p, r in requires:
            p.requires_grad_(r)
        module.train(was_training)
    losses = [m.pop("loss") for m in per_batch]
    out = {"loss": float(np.mean(losses))} if losses else {}
    out.update(_reduce(loss_fn, per_batch))
    return out


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
    module = _unwrap(model)
    rank = _rank()
    out = Path(output_dir) if output_dir is not None else None
    if out is not None and rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    last_path = out / "last.pt" if out is not None else None
    best_path = out / "best.pt" if out is not None else None

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    ema = EMA(module, config.ema_decay) if config.ema_decay is not None else None

    # elapsed_s: training time so far, kept across resumes (the "cosine_time" clock)
    sched = {"plateau_scale": 1.0, "plateau_best": math.inf, "plateau_bad": 0, "step": 0, "elapsed_s": 0.0}
    history: list[dict[str, float]] = []
    best_val, best_epoch, best_weights, bad_epochs = math.inf, None, None, 0
    start_epoch, skip_batches, carried_metrics = 0, 0, []
    rng_epoch_start = rng_now = None
    stopped = None

    # The hash of the initial weights: a rebuilt run (same config, seed and data) has the same.
    run_fingerprint = fingerprint(module, settings) if settings is not None else None
    if resume and last_path is not None and last_path.exists():
        ckpt = load_checkpoint(last_path)
        check_fingerprint(ckpt.get("fingerprint"), run_fingerprint, last_path)
        module.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if ema is not None and ckpt["ema"] is not None:
            ema.load_state_dict(ckpt["ema"])
        sched.update(ckpt["scheduler"])
        history = list(ckpt["history"])
        best_val = ckpt["best_val_loss"] if ckpt["best_val_loss"] is not None else math.inf
        best_epoch, best_weights, bad_epochs = ckpt["best_epoch"], ckpt["best_weights"], ckpt["bad_epochs"]
        start_epoch, skip_batches = ckpt["epoch"], ckpt["batch_in_epoch"]
        carried_metrics = list(ckpt["epoch_metrics"])
        rng_epoch_start, rng_now = ckpt["rng_epoch_start"], ckpt["rng"]
        stopped = ckpt["finished"]
        if stopped != "early_stopping":  # a larger max_epochs or a fresh time budget continues the run
            stopped = None
        if skip_batches == 0:
            set_rng_state(rng_now)
        if rank == 0 and config.progress:
            print(f"resuming from {last_path}: epoch {start_epoch}, batch {skip_batches}")
    else:
        seed_everything(config.seed)
        if out is not None and rank == 0:
            for stale in (last_path, best_path, out / log_name):
                if stale.exists():
                    stale.unlink()

    def eval_weights() -> dict[str, torch.Tensor] | None:
        return ema.shadow if ema is not None else None

    def checkpoint(path: Path, epoch: int, batch_in_epoch: int, epoch_metrics: list, rng_start: Any) -> None:
        if rank != 0:
            return
        state = {
            "format": CHECKPOINT_FORMAT,
            "epoch": epoch,
            "batch_in_epoch": batch_in_epoch,
            "epoch_metrics": epoch_metrics,
            "model": module.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": dict(sched),
            "ema": ema.state_dict() if ema is not None else None,
            "rng": rng_state(),
            "rng_epoch_start": rng_start,
            "best_weights": best_weights,
            "best_val_loss": None if math.isinf(best_val) else best_val,
            "best_epoch": best_epoch,
            "bad_epochs": bad_epochs,
            "history": history,
            "config": asdict(config),
            "finished": stopped,
            "fingerprint": run_fingerprint,
        }
        save_checkpoint(state, path)

    def finish() -> FitResult:
        final = best_weights if (val_batches is not None and best_weights is not None) else eval_weights()
        if final is not None:
            module.load_state_dict(final)
        return FitResult(
            history=history,
            best_val_loss=None if math.isinf(best_val) else best_val,
            best_epoch=best_epoch,
            stopped=stopped or "max_epochs",
            output_dir=out,
        )

    if stopped is not None:
        return finish()

    n_batches = len(train_batches) if hasattr(train_batches, "__len__") else None
    t_start = clock = time.monotonic()

    guard = _SignalGuard() if out is not None else None
    csv_log = _CsvLog(out / log_name, history) if out is not None and rank == 0 else None
    best_dirty = False  # best weights changed since best.pt was written
    # One reporter for the whole run (mlpot.progress): a bar on a terminal, a plain line every 5%
    # of the batches in a log, so a piped run never fills its log with bar redraws.
    bar = progress_reporter(
        total=n_batches * config.max_epochs if n_batches else None, desc="training", unit="batch",
        enabled=config.progress and rank == 0, initial=start_epoch * (n_batches or 0) + skip_batches,
    )
    try:
        if guard is not None:
            guard.__enter__()
        for epoch in range(start_epoch, config.max_epochs):
            t_epoch = time.monotonic()
            if config.schedule == "cosine_time":
                # the clock advances once per epoch, averaged over ranks: every rank must use the same learning rate
                sched["elapsed_s"] = _all_mean({"s": sched["elapsed_s"] + t_epoch - clock})["s"]
                clock = t_epoch
            if skip_batches and rng_epoch_start is not None:
                set_rng_state(rng_epoch_start)
            rng_start = rng_state()
            iterator = iter(train_batches)
            per_batch: list[dict[str, float]] = carried_metrics if skip_batches else []
            for _ in range(skip_batches):
                next(iterator)
            if skip_batches and rng_now is not None:
                set_rng_state(rng_now)
            first = skip_batches
            skip_batches, carried_metrics = 0, []
            model.train()
            i = first - 1
            for i, batch in enumerate(iterator, start=first):
                t = epoch + ((i + 1) / n_batches if n_batches else 0.0)
                lr = config.lr * _lr_factor(config, t, sched["plateau_scale"], sched["elapsed_s"])
                for g in optimizer.param_groups:
                    g["lr"] = lr
                optimizer.zero_grad(set_to_none=True)
                loss, metrics = loss_fn(model, batch, True)
                if not torch.isfinite(loss.detach()).all():
                    raise FloatingPointError(f"training loss is {float(loss.detach())} at epoch {epoch + 1}, batch {i + 1}")
                loss.backward()
                if config.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
                optimizer.step()
                if ema is not None:
                    ema.update(module)
                sched["step"] += 1
                per_batch.append({"loss": float(loss.detach()), **_as_floats(metrics)})
                bar.update(1, epoch=epoch + 1, loss=f"{np.mean([m['loss'] for m in per_batch]):.4g}", lr=f"{lr:.2e}")
                signalled = guard is not None and guard.signum is not None
                if _any_rank(signalled):
                    checkpoint(last_path, epoch, i + 1, per_batch, rng_start)
                    if best_dirty:
                        checkpoint(best_path, epoch, i + 1, per_batch, rng_start)
                    raise TrainingInterrupted(guard.signum or signal.SIGTERM, last_path if rank == 0 else None)

            losses = [m.pop("loss") for m in per_batch]
            train = {"loss": float(np.mean(losses)) if losses else math.nan, **_reduce(loss_fn, per_batch)}
            train = _all_mean(train)
            row: dict[str, float] = {"epoch": epoch + 1, "lr": float(optimizer.param_groups[0]["lr"])}
            row.update({f"train_{k}": v for k, v in train.items()})
            if val_batches is not None:
                with Swapped(module, eval_weights()) as m:
                    val = _evaluate(m, loss_fn, val_batches)
                row.update({f"val_{k}": v for k, v in val.items()})
                monitored = val.get("loss", train["loss"])  # an empty validation set monitors training
            else:
                monitored = train["loss"]
            row["time_s"] = time.monotonic() - t_epoch
            history.append(row)

            improved = monitored < best_val
            if improved:
                best_val, best_epoch, bad_epochs = monitored, epoch + 1, 0
                w = eval_weights() if eval_weights() is not None else module.state_dict()
                best_weights = {k: v.detach().clone() for k, v in w.items()}
            else:
                bad_epochs += 1
            if config.schedule == "plateau":
                if monitored < sched["plateau_best"]:
                    sched["plateau_best"], sched["plateau_bad"] = monitored, 0
                else:
                    sched["plateau_bad"] += 1
                    if sched["plateau_bad"] > config.plateau_patience:
                        sched["plateau_scale"] *= config.plateau_factor
                        sched["plateau_bad"] = 0

            if config.patience is not None and bad_epochs >= config.patience:
                stopped = "early_stopping"
            elif config.max_minutes is not None and time.monotonic() - t_start > 60.0 * config.max_minutes:
                stopped = "max_minutes"
            elif epoch + 1 == config.max_epochs:
                stopped = "max_epochs"

            if rank == 0 and config.progress:
                shown = {k: v for k, v in row.items() if k != "epoch"}
                if len(shown) > 8:  # many metrics: the console shows losses and MAEs, the CSV has everything
                    shown = {k: v for k, v in shown.items() if k in ("lr", "time_s") or k.endswith("loss") or "_mae_" in k}
                    shown = {k: v for k, v in shown.items() if not k.endswith("per_atom")}
                text = "  ".join(f"{k}={v:.4g}" for k, v in shown.items())
                bar.write(f"epoch {epoch + 1:4d}  {text}{'  *' if improved else ''}")
            if rank == 0 and on_epoch is not None:
                on_epoch({**row, "max_epochs": config.max_epochs})
            signalled = _any_rank(guard is not None and guard.signum is not None)
            best_dirty = best_dirty or improved
            if out is not None:
                if rank == 0:
                    csv_log.append(row, history)
                if stopped or signalled or (epoch + 1) % config.checkpoint_every == 0:
                    checkpoint(last_path, epoch + 1, 0, [], None)
                    if best_dirty:
                        checkpoint(best_path, epoch + 1, 0, [], None)
                        best_dirty = False
            if signalled:
                raise TrainingInterrupted(guard.signum or signal.SIGTERM, last_path if rank == 0 else None)
            if stopped:
                break
    finally:
        bar.close()
        if guard is not None:
            guard.__exit__()
    if stopped is None:  # max_epochs == start_epoch: nothing left to run
        stopped = "max_epochs"
    return finish()
