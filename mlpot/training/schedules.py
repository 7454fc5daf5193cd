"""Learning-rate schedules of the training loop, as pure functions of the training progress.

A schedule is a function of the fractional epoch ``t = epoch + (batch + 1) / n_batches`` (and, for
``cosine_time``, of the training time so far), never of the history of the process, so a resumed
run sets exactly the learning rates the uninterrupted run would have set. The one piece of state,
the ``plateau`` scale, is stored in the checkpoint with the rest of the schedule state.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["SCHEDULES", "learning_rate_factor", "update_plateau"]

#: Names accepted by ``LoopConfig.schedule``.
SCHEDULES = ("cosine", "cosine_time", "plateau", "constant")


def learning_rate_factor(config: Any, t: float, plateau_scale: float, elapsed_s: float = 0.0) -> float:
    """Learning-rate multiplier (of ``config.lr``) at fractional epoch ``t``.

    Args:
        config: a :class:`~mlpot.training.loop.LoopConfig` (schedule, warm-up, epochs, budget).
        t: fractional epoch; t = 1 at the end of the first epoch.
        plateau_scale: the current factor of the ``plateau`` schedule.
        elapsed_s: seconds of training so far (read by ``cosine_time`` only).

    Returns:
        The multiplier: a linear warm-up from 0 over ``warmup_epochs`` times the schedule's factor.
    """
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


def update_plateau(config: Any, schedule_state: dict[str, Any], monitored: float) -> None:
    """After an epoch, shrink the ``plateau`` factor when ``monitored`` has not improved for long enough.

    Args:
        config: the loop's settings (``plateau_factor``, ``plateau_patience``).
        schedule_state: the loop's schedule state, updated in place (``plateau_scale``,
            ``plateau_best``, ``plateau_bad``: it lives in the checkpoint).
        monitored: this epoch's monitored loss.
    """
    if monitored < schedule_state["plateau_best"]:
        schedule_state["plateau_best"], schedule_state["plateau_bad"] = monitored, 0
        return
    schedule_state["plateau_bad"] += 1
    if schedule_state["plateau_bad"] > config.plateau_patience:
        schedule_state["plateau_scale"] *= config.plateau_factor
        schedule_state["plateau_bad"] = 0
