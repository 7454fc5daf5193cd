"""Fitting Hamiltonian models to (z, ż) data with the package's one training loop.

There is no trainer here: :func:`train_vector_field` hands :func:`vector_field_loss` and
:class:`DerivativeBatches` to :func:`mlpot.training.loop.fit`, which supplies the optimiser,
schedule, EMA, early stopping, logging and checkpoints shared with the interatomic potentials.

The loss is the paper's: the mean squared error between the model's vector field and the target
ż over all components, ``mean((f_θ(z[, u]) − ż)²)``. Targets come from exact derivatives or from
finite differences of trajectories (:func:`mlpot.hamiltonian.systems.finite_difference`).
"""

from __future__ import annotations

import math
import os

import torch

from mlpot.hamiltonian.state import check_state
from mlpot.hamiltonian.systems import TrajectoryData

__all__ = ["DerivativeBatches", "vector_field_loss", "train_vector_field", "evaluate_vector_field"]


class DerivativeBatches:
    """Re-iterable mini-batches ``{"z", "dz"[, "u"]}`` for :func:`mlpot.training.loop.fit`.

    Each pass reshuffles with torch's global RNG (which ``fit`` seeds and checkpoints, so a
    resumed run sees the same batches). ``batch_size=None`` gives one full batch per pass, as in
    the paper.

    Args:
        z: [N, 2*dim] states.
        dz: [N, 2*dim] targets ż.
        u: [N, input_dim] controls, or None.
        batch_size: samples per batch (None: all).
        shuffle: reshuffle every pass (ignored for a full batch).
        dtype: cast to this dtype (e.g. the model's); default keeps the data's.

    Raises:
        ValueError: mismatched shapes, odd state size, or NaN/inf anywhere in the data.
    """

    def __init__(self, z: torch.Tensor, dz: torch.Tensor, u: torch.Tensor | None = None,
                 batch_size: int | None = None, shuffle: bool = True, dtype: torch.dtype | None = None):
        check_state(z, name="training states z", finite=True)
        check_state(dz, z.shape[-1] // 2, name="training targets dz", finite=True)
        if z.ndim != 2 or dz.shape != z.shape:
            raise ValueError(f"z and dz must both be [N, 2*dim]; got {tuple(z.shape)} and {tuple(dz.shape)}")
        if u is not None:
            if u.ndim != 2 or u.shape[0] != z.shape[0]:
                raise ValueError(f"u must be [N, input_dim] with N = {z.shape[0]}, got {tuple(u.shape)}")
            if not bool(torch.isfinite(u).all()):
                raise ValueError("training controls u contain NaN or inf")
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
        if dtype is not None:
            z, dz = z.to(dtype), dz.to(dtype)
            u = None if u is None else u.to(dtype)
        self.z, self.dz, self.u = z, dz, u
        self.batch_size = batch_size
        self.shuffle = shuffle

    @classmethod
    def from_data(cls, data: TrajectoryData, **kwargs) -> "DerivativeBatches":
        """Batches of every point of every trajectory in ``data``."""
        flat = data.flat()
        return cls(flat["z"], flat["dz"], flat.get("u"), **kwargs)

    def __len__(self) -> int:
        n = self.z.shape[0]
        return 1 if self.batch_size is None else math.ceil(n / self.batch_size)

    def __iter__(self):
        n = self.z.shape[0]
        if self.batch_size is None or self.batch_size >= n:
            yield self._batch(slice(None))
            return
        order = torch.randperm(n) if self.shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            yield self._batch(order[start:start + self.batch_size])

    def _batch(self, index) -> dict[str, torch.Tensor]:
        out = {"z": self.z[index], "dz": self.dz[index]}
        if self.u is not None:
            out["u"] = self.u[index]
        return out


def vector_field_loss(model: torch.nn.Module, batch: dict, training: bool):
    """The ``loss_fn`` for :func:`mlpot.training.loop.fit`: MSE of the vector field.

    Args:
        model: anything with ``vector_field(z, u=None, create_graph=...)``.
        batch: ``{"z": [B, 2d], "dz": [B, 2d]}`` and optionally ``"u": [B, m]``.
        training: True keeps the graph of ∇H so that the loss can be backpropagated.

    Returns:
        (loss, {"mse": loss, "rmse": sqrt(loss)}).
    """
    z, dz = batch["z"], batch["dz"]
    kwargs = {"u": batch["u"]} if "u" in batch and getattr(model, "input_dim", 0) else {}
    pred = model.vector_field(z, create_graph=training, **kwargs)
    loss = ((pred - dz) ** 2).mean()
    value = float(loss.detach())
    return loss, {"mse": value, "rmse": math.sqrt(value)}


def evaluate_vector_field(model: torch.nn.Module, z: torch.Tensor, dz: torch.Tensor,
                          u: torch.Tensor | None = None) -> float:
    """Mean squared error of ``model.vector_field`` against ``dz`` (eval mode, no graph)."""
    was_training = model.training
    model.eval()
    try:
        batch = {"z": z, "dz": dz} if u is None else {"z": z, "dz": dz, "u": u}
        with torch.no_grad():
            loss, _ = vector_field_loss(model, batch, False)
    finally:
        model.train(was_training)
    return float(loss)


def train_vector_field(model: torch.nn.Module, train: TrajectoryData | DerivativeBatches,
                       val: TrajectoryData | DerivativeBatches | None = None, *, config=None,
                       batch_size: int | None = None, output_dir: str | os.PathLike | None = None,
                       resume: bool = False):
    """Fit ``model.vector_field`` to ż targets with :func:`mlpot.training.loop.fit`.

    Args:
        model: an :class:`~mlpot.hamiltonian.HNN`, :class:`~mlpot.hamiltonian.PortHamiltonianNN`,
            :class:`~mlpot.hamiltonian.NeuralODEBaseline` or any module with ``vector_field``.
        train: training data (trajectories or ready-made batches).
        val: optional validation data (then the best epoch's weights are kept).
        config: :class:`mlpot.training.loop.LoopConfig`; default: 2000 full-batch Adam steps at
            lr 1e-3 with a constant schedule, no EMA or clipping, no progress bar (the paper's recipe).
        batch_size: mini-batch size when ``train``/``val`` are trajectories (None: full batch).
        output_dir, resume: passed to ``fit`` (metrics CSV and checkpoints).

    Returns:
        The :class:`mlpot.training.loop.FitResult`; the model holds the final weights.
    """
    from mlpot.training.loop import LoopConfig, fit

    if config is None:
        config = LoopConfig(max_epochs=2000, lr=1e-3, schedule="constant", ema_decay=None, grad_clip=None,
                            progress=False)
    dtype = next(model.parameters()).dtype

    def as_batches(data, shuffle):
        if data is None or isinstance(data, DerivativeBatches):
            return data
        if isinstance(data, TrajectoryData):
            return DerivativeBatches.from_data(data, batch_size=batch_size, shuffle=shuffle, dtype=dtype)
        raise ValueError(f"expected TrajectoryData or DerivativeBatches, got {type(data).__name__}")

    train_batches, val_batches = as_batches(train, True), as_batches(val, False)
    for batches in (train_batches, val_batches):
        if batches is not None and batches.z.shape[-1] != 2 * model.dim:
            raise ValueError(
                f"data states have size {batches.z.shape[-1]} but the model expects 2*dim = {2 * model.dim}"
            )
    return fit(model, vector_field_loss, train_batches, val_batches, config=config, output_dir=output_dir,
               resume=resume)
