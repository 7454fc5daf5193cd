"""Energy, force and stress losses of interatomic potentials.

The loss of a batch is

    L = w_E · mean_s ρ(ΔE_s / (N_s σ)) + w_F · mean_(i,α) ρ(ΔF_iα / σ) + w_S · mean_(s,αβ) ρ(Δσ_sαβ V_s / (N_s σ))

with ρ the Huber function (or a square), σ the force scale fitted on the training set (eV/Å,
read as eV per atom for the energy terms), the energy per atom and the stress times volume per
atom, so every term is an energy per atom in units of σ. Means run only over structures/atoms
that carry the label (masks from :mod:`mlpot.training.batching`).

Stress exists only for fully periodic systems. A batch that mixes periodic structures carrying
stress with clusters or slabs (which never carry it: the reader drops such labels) is evaluated
twice: energy and forces on the whole batch, stress on the periodic structures that carry it.

Under DDP the means are over the *global* batch: the counts are summed over ranks, so the
averaged gradient equals that of a single process on the whole batch, whatever the shard sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mlpot.data import keys as K
from mlpot.training.batching import INPUT_KEYS, mask_key, select_systems
from mlpot.training.metrics import ErrorSums

__all__ = ["PotentialLoss"]


def check_penalty_kind(kind: str) -> None:
    """Raise for a penalty other than "huber" or "mse"."""
    if kind not in ("huber", "mse"):
        raise ValueError(f"loss: expected 'huber' or 'mse', got {kind!r}")


def penalty(x: Tensor, kind: str, huber_delta: float) -> Tensor:
    """ρ(x) elementwise: x² ("mse"), or Huber with transition ``huber_delta`` ("huber"), same units as x."""
    if kind == "mse":
        return x.square()
    return torch.nn.functional.huber_loss(x, torch.zeros_like(x), reduction="none", delta=huber_delta)


@dataclass
class PotentialLoss:
    """``loss_fn`` for :func:`mlpot.training.loop.fit` on potentials.

    Attributes:
        energy_weight, forces_weight, stress_weight: w_E, w_F, w_S.
        kind: "huber" or "mse".
        huber_delta: Huber transition in units of ``scale``.
        scale: σ, eV/Å (the trainer sets it to the RMS training force).
    """

    energy_weight: float = 1.0
    forces_weight: float = 10.0
    stress_weight: float = 1.0
    kind: str = "huber"
    huber_delta: float = 0.01
    scale: float = 1.0

    def __post_init__(self) -> None:
        check_penalty_kind(self.kind)

    def _rho(self, x: Tensor) -> Tensor:
        return penalty(x, self.kind, self.huber_delta)

    def __call__(
        self, model: torch.nn.Module, batch: dict[str, Tensor], training: bool
    ) -> tuple[Tensor, dict[str, float]]:
        """Loss and error sums of ``model`` on ``batch`` (see :class:`mlpot.training.metrics.ErrorSums`)."""
        inputs = {k: batch[k] for k in INPUT_KEYS if k in batch}
        has = {label: label in batch and bool(batch[mask_key(label)].any()) for label in (K.ENERGY, K.FORCES, K.STRESS)}
        stress_of = None  # the model's stress of the structures with a stress label
        if has[K.STRESS] and not bool(batch[K.PBC].all()):
            # Mixed batch: the model computes stress only for a batch of fully periodic systems.
            out = model(inputs, compute_forces=has[K.FORCES], compute_stress=False, training=training)
            labelled = torch.nonzero(batch[mask_key(K.STRESS)]).flatten()
            if not bool(batch[K.PBC][labelled].all()):
                raise ValueError("stress labels on structures that are not periodic along all three axes")
            stress_of = model(select_systems(inputs, labelled), compute_forces=False, compute_stress=True,
                              training=training)[K.STRESS]
        else:
            out = model(inputs, compute_forces=has[K.FORCES], compute_stress=has[K.STRESS], training=training)
            if has[K.STRESS]:
                stress_of = out[K.STRESS][batch[mask_key(K.STRESS)]]
        n_atoms = batch[K.N_ATOMS]
        sums = ErrorSums()
        zero = out[K.ENERGY].sum() * 0.0
        terms, counts = [], []

        if has[K.ENERGY]:
            m = batch[mask_key(K.ENERGY)]
            err = (out[K.ENERGY] - batch[K.ENERGY].to(out[K.ENERGY]))[m]
            sums.add(energy_error=err, n_atoms=n_atoms[m])
            terms.append(self.energy_weight * self._rho(err / n_atoms[m].to(err) / self.scale).sum())
            counts.append(float(m.sum()))
        else:
            terms.append(zero)
            counts.append(0.0)
        if has[K.FORCES]:
            m = batch[mask_key(K.FORCES)]
            err = (out[K.FORCES] - batch[K.FORCES].to(out[K.FORCES]))[m]
            sums.add(forces_error=err)
            terms.append(self.forces_weight * self._rho(err / self.scale).sum())
            counts.append(float(err.numel()))
        else:
            terms.append(zero)
            counts.append(0.0)
        if has[K.STRESS]:
            m = batch[mask_key(K.STRESS)]
            err = stress_of - batch[K.STRESS][m].to(stress_of)
            sums.add(stress_error=err)
            volume = torch.linalg.det(batch[K.CELL][m].to(err)).abs()
            per_atom = err * (volume / n_atoms[m].to(err))[:, None, None]
            terms.append(self.stress_weight * self._rho(per_atom / self.scale).sum())
            counts.append(float(err.numel()))
        else:
            terms.append(zero)
            counts.append(0.0)

        counts_t = torch.tensor(counts, dtype=torch.float64)
        if training and torch.distributed.is_available() and torch.distributed.is_initialized():
            device = out[K.ENERGY].device if torch.distributed.get_backend() == "nccl" else "cpu"
            counts_t = counts_t.to(device)
            torch.distributed.all_reduce(counts_t)
            counts_t = counts_t.cpu() / torch.distributed.get_world_size()
        loss = zero
        for term, count in zip(terms, counts_t.tolist()):
            if count > 0:
                loss = loss + term / count
        if training:
            # Every parameter gets a gradient (zero for, e.g., the network of an element absent
            # from the batch), so DDP never waits for a missing one and AdamW treats single- and
            # multi-process runs alike.
            loss = loss + sum(p.sum() for p in model.parameters() if p.requires_grad) * 0.0
        return loss, dict(sums.sums)

    def reduce_metrics(self, per_batch: list[dict[str, float]]) -> dict[str, float]:
        """Exact epoch MAE/RMSE from the per-batch error sums."""
        return ErrorSums.combine(per_batch).metrics()
