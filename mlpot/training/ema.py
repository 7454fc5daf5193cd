"""The exponential moving average of the weights, and a context that swaps weights in and out.

Evaluation in :func:`mlpot.training.loop.fit` (validation, the best checkpoint, the returned model)
uses the EMA weights: they average the noise of the last ~1/(1 − decay) optimiser steps away.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["EMA", "Swapped"]


class EMA:
    """Exponential moving average of the parameters; buffers are copied, not averaged.

    The decay ramps up as min(decay, (1 + n) / (10 + n)) over the first updates, so that the
    average is not dominated by the random initial weights in short runs.
    """

    def __init__(self, module: torch.nn.Module, decay: float):
        self.decay = decay
        self.num_updates = 0
        self.shadow = {k: v.detach().clone() for k, v in module.state_dict().items()}
        self._params = dict(module.named_parameters())

    @torch.no_grad()
    def update(self, module: torch.nn.Module) -> None:
        self.num_updates += 1
        d = min(self.decay, (1.0 + self.num_updates) / (10.0 + self.num_updates))
        for k, v in module.state_dict().items():
            s = self.shadow[k]
            if k in self._params and torch.is_floating_point(v):
                s.mul_(d).add_(v.detach(), alpha=1.0 - d)
            else:
                s.copy_(v)

    def state_dict(self) -> dict[str, Any]:
        return {"num_updates": self.num_updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.num_updates = int(state["num_updates"])
        for k, v in state["shadow"].items():
            self.shadow[k].copy_(v)


class Swapped:
    """Context manager: load ``weights`` into ``module``, restore the originals on exit, exactly."""

    def __init__(self, module: torch.nn.Module, weights: dict[str, torch.Tensor] | None):
        self.module, self.weights, self.saved = module, weights, None

    def __enter__(self) -> torch.nn.Module:
        if self.weights is not None:
            self.saved = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
            self.module.load_state_dict(self.weights)
        return self.module

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            self.module.load_state_dict(self.saved)
