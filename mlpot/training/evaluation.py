"""Predictions of a potential on a list of structures, and their error metrics.

:func:`predict` batches structures through the model in evaluation mode (no graph kept);
:func:`evaluate` turns the predictions into MAE and RMSE of energy, forces and stress
(:mod:`mlpot.training.metrics`). Used after training (``OUTPUT/metrics.json``) and by ``mlpot eval``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from mlpot.data import keys as K
from mlpot.training.batching import INPUT_KEYS, select_systems
from mlpot.training.metrics import ErrorSums

__all__ = ["predict", "evaluate"]


def predict(model: torch.nn.Module, structures: Sequence[dict[str, Tensor]], batch_size: int = 64,
            device: torch.device | str = "cpu") -> list[dict[str, Tensor]]:
    """Predictions of ``model`` for each structure (energy [1], forces [n,3], stress [1,3,3] where labelled)."""
    from mlpot.data import collate

    model = model.to(device)
    was_training = model.training
    model.eval()
    out: list[dict[str, Tensor]] = []
    try:
        for start in range(0, len(structures), batch_size):
            chunk = structures[start : start + batch_size]
            batch = collate([{k: s[k] for k in INPUT_KEYS if k in s} for s in chunk])
            batch = {k: v.to(device) for k, v in batch.items()}
            periodic = batch[K.PBC].all(dim=1)
            want_stress = any(K.STRESS in s for s in chunk) and bool(periodic.any())
            all_periodic = want_stress and bool(periodic.all())
            result = model(batch, compute_forces=True, compute_stress=all_periodic, training=False)
            stress = {}  # system index -> [1, 3, 3]; a mixed chunk gets the stress of its periodic part
            if want_stress:
                index = torch.nonzero(periodic).flatten()
                values = result[K.STRESS] if bool(periodic.all()) else model(
                    select_systems(batch, index), compute_forces=False, compute_stress=True, training=False)[K.STRESS]
                stress = {int(i): values[k : k + 1].detach().cpu() for k, i in enumerate(index.tolist())}
            counts = batch[K.N_ATOMS].tolist()
            forces = torch.split(result[K.FORCES].detach().cpu(), counts)
            for i in range(len(chunk)):
                p = {K.ENERGY: result[K.ENERGY][i : i + 1].detach().cpu(), K.FORCES: forces[i]}
                if i in stress:
                    p[K.STRESS] = stress[i]
                out.append(p)
    finally:
        model.train(was_training)
    return out


def evaluate(model: torch.nn.Module, structures: Sequence[dict[str, Tensor]], batch_size: int = 64,
             device: torch.device | str = "cpu", return_predictions: bool = False):
    """Energy/force/stress MAE and RMSE (meV units, :mod:`mlpot.training.metrics`) of ``model``.

    Returns:
        The metrics dict, or ``(metrics, predictions)`` with ``return_predictions``.
    """
    predictions = predict(model, structures, batch_size, device)
    sums = ErrorSums()
    for s, p in zip(structures, predictions):
        if K.ENERGY in s:
            sums.add(energy_error=p[K.ENERGY] - s[K.ENERGY].to(p[K.ENERGY]), n_atoms=s[K.N_ATOMS])
        if K.FORCES in s:
            sums.add(forces_error=p[K.FORCES] - s[K.FORCES].to(p[K.FORCES]))
        if K.STRESS in s and K.STRESS in p:
            sums.add(stress_error=p[K.STRESS] - s[K.STRESS].to(p[K.STRESS]))
    metrics = sums.metrics()
    return (metrics, predictions) if return_predictions else metrics
