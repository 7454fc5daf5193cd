"""The state of one training run: what :func:`mlpot.training.loop.fit` carries from epoch to epoch.

:class:`RunState` holds the model, optimiser, EMA and the bookkeeping (history, best weights,
patience, schedule state) and is the one place that turns them into a checkpoint and back
(:meth:`RunState.save`, :meth:`RunState.restore`); the file format itself is in
:mod:`mlpot.training.checkpoints`. :class:`EpochPosition` is where an interrupted epoch stands.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from mlpot.training.checkpoints import CHECKPOINT_FORMAT, check_fingerprint, rng_state, save_checkpoint
from mlpot.training.ema import EMA
from mlpot.training.schedules import update_plateau

__all__ = ["RunState", "EpochPosition"]


@dataclass
class RunState:
    """What one call of :func:`fit` carries from step to step and writes into its checkpoints."""

    model: torch.nn.Module  # possibly DDP-wrapped: the one the loss sees
    module: torch.nn.Module  # the unwrapped module: weights, EMA and checkpoints
    loss_fn: Any
    config: Any  # LoopConfig
    optimizer: torch.optim.Optimizer
    params: list[torch.nn.Parameter]
    ema: EMA | None
    rank: int
    last_path: Path | None
    best_path: Path | None
    run_fingerprint: dict[str, Any] | None
    # elapsed_s: training time so far, kept across resumes (the "cosine_time" clock)
    schedule: dict[str, Any] = field(default_factory=lambda: {
        "plateau_scale": 1.0, "plateau_best": math.inf, "plateau_bad": 0, "step": 0, "elapsed_s": 0.0})
    history: list[dict[str, float]] = field(default_factory=list)
    best_val: float = math.inf
    best_epoch: int | None = None
    best_weights: dict[str, torch.Tensor] | None = None
    bad_epochs: int = 0
    stopped: str | None = None
    best_dirty: bool = False  # best weights changed since best.pt was written

    def eval_weights(self) -> dict[str, torch.Tensor] | None:
        """The weights validation and the returned model use: the EMA's, or None (the live ones)."""
        return self.ema.shadow if self.ema is not None else None

    def save(self, path: Path, epoch: int, batch_in_epoch: int, epoch_metrics: list, rng_start: Any) -> None:
        """Write a checkpoint (rank 0 only); see :func:`mlpot.training.checkpoints.load_checkpoint` for the keys."""
        if self.rank != 0:
            return
        state = {
            "format": CHECKPOINT_FORMAT,
            "epoch": epoch,
            "batch_in_epoch": batch_in_epoch,
            "epoch_metrics": epoch_metrics,
            "model": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": dict(self.schedule),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "rng": rng_state(),
            "rng_epoch_start": rng_start,
            "best_weights": self.best_weights,
            "best_val_loss": None if math.isinf(self.best_val) else self.best_val,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "history": self.history,
            "config": asdict(self.config),
            "finished": self.stopped,
            "fingerprint": self.run_fingerprint,
        }
        save_checkpoint(state, path)

    def save_last_and_best(self, epoch: int, batch_in_epoch: int, epoch_metrics: list, rng_start: Any) -> None:
        """Write last.pt, and best.pt too when the best weights changed since it was written."""
        self.save(self.last_path, epoch, batch_in_epoch, epoch_metrics, rng_start)
        if self.best_dirty:
            self.save(self.best_path, epoch, batch_in_epoch, epoch_metrics, rng_start)
            self.best_dirty = False

    def restore(self, ckpt: dict[str, Any]) -> None:
        """Load weights, optimiser, EMA and bookkeeping from a checkpoint of this run."""
        check_fingerprint(ckpt.get("fingerprint"), self.run_fingerprint, self.last_path)
        self.module.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.ema is not None and ckpt["ema"] is not None:
            self.ema.load_state_dict(ckpt["ema"])
        self.schedule.update(ckpt["scheduler"])
        self.history = list(ckpt["history"])
        self.best_val = ckpt["best_val_loss"] if ckpt["best_val_loss"] is not None else math.inf
        self.best_epoch, self.best_weights = ckpt["best_epoch"], ckpt["best_weights"]
        self.bad_epochs = ckpt["bad_epochs"]
        # a larger max_epochs or a fresh time budget continues a finished run; early stopping is final
        self.stopped = ckpt["finished"] if ckpt["finished"] == "early_stopping" else None

    def record(self, epoch: int, monitored: float) -> bool:
        """Book-keep the end of an epoch: best weights, patience, plateau; True if ``monitored`` improved."""
        improved = monitored < self.best_val
        if improved:
            self.best_val, self.best_epoch, self.bad_epochs = monitored, epoch + 1, 0
            w = self.eval_weights() if self.eval_weights() is not None else self.module.state_dict()
            self.best_weights = {k: v.detach().clone() for k, v in w.items()}
            self.best_dirty = True
        else:
            self.bad_epochs += 1
        if self.config.schedule == "plateau":
            update_plateau(self.config, self.schedule, monitored)
        return improved


@dataclass
class EpochPosition:
    """Where an interrupted epoch stands: batches done, their metrics, and the RNG states to replay it."""

    batches_done: int = 0
    epoch_metrics: list[dict[str, float]] = field(default_factory=list)
    rng_epoch_start: Any = None
    rng_now: Any = None
