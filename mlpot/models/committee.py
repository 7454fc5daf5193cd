"""A committee (ensemble) of potentials: the mean predicts, the spread estimates uncertainty."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mlpot.data import keys as K


class Committee(nn.Module):
    """Members evaluated on the same data; outputs are their mean, plus ``energy_std`` [n_systems], eV.

    The spread is the standard deviation across members (population form, 1/K), the usual
    estimate of the model noise that the heat-capacity correction subtracts.

    Args:
        members: potentials with the same elements; the largest cutoff is the committee's.
    """

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"a committee needs at least 2 members, got {len(members)}")
        self.members = nn.ModuleList(members)
        self.cutoff = max(float(m.cutoff) for m in members)

    def config(self) -> dict:
        """JSON-serialisable description: each member's class and config."""
        return {"members": [{"class": type(m).__name__, "config": m.config()} for m in self.members]}

    @property
    def dtype(self) -> torch.dtype:
        return self.members[0].dtype

    def forward(
        self, data: dict[str, Tensor], compute_forces: bool = True, compute_stress: bool = False, training: bool = False
    ) -> dict[str, Tensor]:
        """Mean of the members' outputs (same keys), plus ``energy_std`` and ``forces_std`` (when forces)."""
        outputs = [m(data, compute_forces=compute_forces, compute_stress=compute_stress, training=training) for m in self.members]
        result = {key: torch.stack([o[key] for o in outputs]).mean(dim=0) for key in outputs[0]}
        result["energy_std"] = torch.stack([o[K.ENERGY] for o in outputs]).std(dim=0, unbiased=False)
        if compute_forces:
            result["forces_std"] = torch.stack([o[K.FORCES] for o in outputs]).std(dim=0, unbiased=False)
        return result
