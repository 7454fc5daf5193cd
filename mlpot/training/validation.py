"""Epoch metrics and validation of the training loop.

Per-batch metric dicts become epoch metrics through the loss's own ``reduce_metrics`` when it has
one (an exact RMSE from error sums), else by averaging. Validation runs with the parameters'
``requires_grad`` off and the module in ``eval()`` mode; a force loss still differentiates with
respect to positions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

__all__ = ["reduce_metrics", "as_floats", "epoch_summary", "validate"]


def reduce_metrics(loss_fn: Any, per_batch: list[dict[str, float]]) -> dict[str, float]:
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


def as_floats(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v) for k, v in metrics.items()}


def epoch_summary(loss_fn: Any, per_batch: list[dict[str, float]]) -> dict[str, float]:
    """``loss`` (mean over batches) and the reduced metrics; removes ``loss`` from the per-batch dicts."""
    losses = [m.pop("loss") for m in per_batch]
    return {"loss": float(np.mean(losses)) if losses else math.nan, **reduce_metrics(loss_fn, per_batch)}


def validate(module: torch.nn.Module, loss_fn: Any, batches: Iterable) -> dict[str, float]:
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
            per_batch.append({"loss": float(loss.detach()), **as_floats(metrics)})
    finally:
        for p, r in requires:
            p.requires_grad_(r)
        module.train(was_training)
    losses = [m.pop("loss") for m in per_batch]
    out = {"loss": float(np.mean(losses))} if losses else {}
    out.update(reduce_metrics(loss_fn, per_batch))
    return out
