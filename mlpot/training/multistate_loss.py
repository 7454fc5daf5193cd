"""The loss of models of several electronic states, trained on adiabatic data.

A multistate model (one whose class sets ``training_labels = "multistate"``, such as
:class:`mlpot.nonadiabatic.atomistic.DiabaticModel`) returns per-state energies and forces and
non-adiabatic couplings (keys of :mod:`mlpot.data.multistate`). The loss of a batch is

    L = w_E · mean_(s,k) ρ(ΔE_sk / (N_s σ)) + w_F · mean_(i,k,α) ρ(ΔF_ikα / σ)
        + w_d · mean_(s,kl) min_± Σ_(i∈s,α) (d_iklα ∓ d^ref_iklα)² / (3 N_s)

with ρ the Huber function (or a square) and σ the force scale fitted on the training set, as in
:mod:`mlpot.training.losses`. The coupling term is **phase-free**: the sign of a coupling vector
is that of two eigenvectors, arbitrary in the data and in the model, so each structure's coupling
vector of each pair is compared with the reference or with its negative, whichever is closer.
Couplings are in 1/Å and enter unscaled.

Every structure of a data set carries the same labels (:func:`mlpot.data.multistate.read_multistate_structures`
enforces it), so no masks are needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from mlpot.data import collate
from mlpot.data import keys as K
from mlpot.data.multistate import NONADIABATIC_COUPLINGS, STATE_ENERGIES, STATE_FORCES, sign_free_squared_errors
from mlpot.training.batching import INPUT_KEYS
from mlpot.training.losses import check_penalty_kind, penalty
from mlpot.training.metrics import ErrorSums

__all__ = ["MultistateLoss", "evaluate_multistate", "is_multistate"]

_COUPLING_SUMS = ("d_abs", "d_sq", "n_d")


def is_multistate(model_or_class: object) -> bool:
    """True for models trained on per-state labels (their class sets ``training_labels = "multistate"``)."""
    return getattr(model_or_class, "training_labels", "potential") == "multistate"


@dataclass
class MultistateLoss:
    """``loss_fn`` for :func:`mlpot.training.loop.fit` on multistate models.

    Attributes:
        energy_weight, forces_weight, couplings_weight: w_E, w_F, w_d.
        kind: "huber" or "mse" (energies and forces; the coupling term is a square).
        huber_delta: Huber transition in units of ``scale``.
        scale: σ, eV/Å (the trainer sets it to the RMS training force of all states).
        coupling_regularization: ε, eV, of the model's regularised couplings during training, so
            that a model whose states cross where the data's do not gets a finite gradient.
    """

    energy_weight: float = 1.0
    forces_weight: float = 10.0
    couplings_weight: float = 1.0
    kind: str = "huber"
    huber_delta: float = 0.01
    scale: float = 1.0
    coupling_regularization: float = 1e-4

    def __post_init__(self) -> None:
        check_penalty_kind(self.kind)

    def _rho(self, x: Tensor) -> Tensor:
        return penalty(x, self.kind, self.huber_delta)

    def __call__(
        self, model: torch.nn.Module, batch: dict[str, Tensor], training: bool
    ) -> tuple[Tensor, dict[str, float]]:
        """Loss and error sums of ``model`` on ``batch``."""
        inputs = {k: batch[k] for k in INPUT_KEYS if k in batch}
        has_forces, has_couplings = STATE_FORCES in batch, NONADIABATIC_COUPLINGS in batch
        out = model(inputs, compute_forces=has_forces, training=training, compute_couplings=has_couplings,
                    regularization=self.coupling_regularization)
        n_atoms = batch[K.N_ATOMS]
        sums = ErrorSums()
        energy_error = out[STATE_ENERGIES] - batch[STATE_ENERGIES].to(out[STATE_ENERGIES])  # [S, n]
        per_atom = energy_error / n_atoms.to(energy_error)[:, None]
        sums.add(energy_error=energy_error.flatten(), n_atoms=n_atoms.repeat_interleave(energy_error.shape[1]))
        loss = self.energy_weight * self._rho(per_atom / self.scale).mean()
        if has_forces:
            forces_error = out[STATE_FORCES] - batch[STATE_FORCES].to(out[STATE_FORCES])
            sums.add(forces_error=forces_error.reshape(-1, 3))
            loss = loss + self.forces_weight * self._rho(forces_error / self.scale).mean()
        metrics = dict(sums.sums)
        if has_couplings:
            coupling_loss, coupling_sums = _phase_free_coupling_error(
                out[NONADIABATIC_COUPLINGS], batch[NONADIABATIC_COUPLINGS].to(out[NONADIABATIC_COUPLINGS]),
                batch[K.BATCH], n_atoms,
            )
            loss = loss + self.couplings_weight * coupling_loss
            metrics.update(coupling_sums)
        if training:
            # every parameter gets a gradient (zero for an element absent from the batch), as in PotentialLoss
            loss = loss + sum(p.sum() for p in model.parameters() if p.requires_grad) * 0.0
        return loss, metrics

    def reduce_metrics(self, per_batch: list[dict[str, float]]) -> dict[str, float]:
        """Exact epoch MAE/RMSE (all states together) from the per-batch error sums."""
        metrics = ErrorSums.combine(per_batch).metrics()
        totals = {k: sum(m.get(k, 0.0) for m in per_batch) for k in _COUPLING_SUMS}
        if totals["n_d"]:
            metrics["couplings_mae_per_A"] = totals["d_abs"] / totals["n_d"]
            metrics["couplings_rmse_per_A"] = math.sqrt(totals["d_sq"] / totals["n_d"])
        return metrics


def _phase_free_coupling_error(
    predicted: Tensor, reference: Tensor, batch: Tensor, n_atoms: Tensor
) -> tuple[Tensor, dict[str, float]]:
    """Mean squared coupling error with each (structure, pair) vector's sign chosen to fit best.

    Args:
        predicted, reference: [n_atoms, n_pairs, 3] couplings, 1/Å.
        batch: [n_atoms] structure of each atom.
        n_atoms: [n_systems] atoms per structure.

    Returns:
        (the loss term, a scalar tensor; error sums ``d_abs``, ``d_sq``, ``n_d`` for the metrics).
    """
    best, same_fits = sign_free_squared_errors(predicted, reference, batch, n_atoms.shape[0])  # [n_systems, n_pairs]
    components = 3 * n_atoms.to(best)[:, None]
    sign = torch.where(same_fits, 1.0, -1.0).to(predicted).index_select(0, batch)  # [n_atoms, n_pairs]
    error = (predicted - sign[..., None] * reference).detach().double()
    sums = {"d_abs": float(error.abs().sum()), "d_sq": float(error.square().sum()), "n_d": float(error.numel())}
    return (best / components).mean(), sums


def evaluate_multistate(
    model: torch.nn.Module, structures: Sequence[dict[str, Tensor]], batch_size: int = 64,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """Energy (all states), force and coupling MAE/RMSE of a multistate model (meV, meV/Å, 1/Å)."""
    loss = MultistateLoss()
    model = model.to(device)
    was_training = model.training
    model.eval()
    parts = []
    try:
        for start in range(0, len(structures), batch_size):
            batch = collate(list(structures[start : start + batch_size]))
            parts.append(loss(model, {k: v.to(device) for k, v in batch.items()}, False)[1])
    finally:
        model.train(was_training)
    return loss.reduce_metrics(parts)
