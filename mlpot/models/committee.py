"""A committee (ensemble) of potentials: the mean predicts, the spread estimates uncertainty."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mlpot.data import keys as K
from mlpot.models.potential import Potential


class Committee(Potential):
    """Members evaluated on the same data: a potential whose atomic energies (and so forces and
    stress) are the mean of its members'. Its outputs add the spread across members,
    ``energy_std`` [n_systems] (eV) and ``forces_std`` [n_atoms, 3] (eV/Å), the keys
    :data:`mlpot.data.keys.ENERGY_STD` and :data:`mlpot.data.keys.FORCES_STD`.

    The spread is the standard deviation across members (population form, 1/K), the usual
    estimate of the model noise that the heat-capacity correction subtracts.

    Args:
        members: at least two :class:`Potential` instances with the same elements; the largest
            cutoff is the committee's, and each member sees only the edges within its own. (Any
            module with ``cutoff`` and the forward contract is still accepted, with a
            DeprecationWarning; only :meth:`forward` then works.)
    """

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"a committee needs at least 2 members, got {len(members)}")
        for index, member in enumerate(members):
            if isinstance(member, Potential):
                continue
            what = f"committee member {index} is a {type(member).__name__}, not an mlpot.models.Potential"
            if not isinstance(member, nn.Module) or getattr(member, "cutoff", None) is None:
                raise TypeError(what)
            # A module that only follows the forward contract still works through its forward
            # (committees before the contract was a type took any); the per-atom API does not.
            warnings.warn(f"{what}: deprecated, subclass mlpot.models.Potential", DeprecationWarning, stacklevel=2)
        self.members = nn.ModuleList(members)
        self.cutoff = max(float(m.cutoff) for m in members)

    def config(self) -> dict:
        """JSON-serialisable description: each member's class and config."""
        return {"members": [{"class": type(m).__name__, "config": m.config()} for m in self.members]}

    def constituents(self) -> list[Potential]:
        """The members, which evaluate (and compile) each on its own."""
        return list(self.members)

    @property
    def dtype(self) -> torch.dtype:
        return self.members[0].dtype

    def _require_potentials(self) -> None:
        for index, member in enumerate(self.members):
            if not isinstance(member, Potential):
                raise TypeError(
                    f"committee member {index} is a {type(member).__name__}, not an mlpot.models.Potential: "
                    "it has no atomic_energies/edge_gradients (only the committee's forward works with it)"
                )

    def atomic_energies(
        self, data: dict[str, Tensor], edge_index: Tensor, vectors: Tensor, training: bool = True
    ) -> Tensor:
        """Mean of the members' atomic energies, eV, [n_atoms]; each member sees its own cutoff's edges."""
        self._require_potentials()
        energies = [m.atomic_energies(data, *m._within_cutoff(edge_index, vectors), training=training)
                    for m in self.members]
        return torch.stack(energies).mean(dim=0)

    def edge_gradients(
        self, data: dict[str, Tensor], edge_index: Tensor, vectors: Tensor, with_gradient: bool
    ) -> tuple[Tensor, Tensor | None]:
        """Mean of the members' atomic energies [n_atoms] (eV) and of their ∂E/∂r_ij [E, 3] (eV/Å),
        each member by its own (possibly hand-written) pass on the edges within its cutoff."""
        self._require_potentials()
        energies, gradients = [], []
        for member in self.members:
            inside = vectors.square().sum(dim=1) < member.cutoff**2
            kept = torch.nonzero(inside).flatten()
            energy, gradient = member.edge_gradients(
                data, edge_index.index_select(1, kept), vectors.index_select(0, kept), with_gradient
            )
            energies.append(energy)
            if with_gradient:
                gradients.append(torch.zeros_like(vectors).index_copy(0, kept, gradient))
        mean_gradient = torch.stack(gradients).mean(dim=0) if with_gradient else None
        return torch.stack(energies).mean(dim=0), mean_gradient

    def forward(
        self, data: dict[str, Tensor], compute_forces: bool = True, compute_stress: bool = False, training: bool = False
    ) -> dict[str, Tensor]:
        """Each member's outputs (its own fast path), their mean (same keys), plus the spread:
        ``energy_std`` and, with forces, ``forces_std``. The mean equals :class:`Potential`'s
        forward over :meth:`atomic_energies` (a test checks it); the members' outputs are needed
        anyway for the spread."""
        outputs = [
            m(data, compute_forces=compute_forces, compute_stress=compute_stress, training=training)
            for m in self.members
        ]
        result = {key: torch.stack([o[key] for o in outputs]).mean(dim=0) for key in outputs[0]}
        result[K.ENERGY_STD] = torch.stack([o[K.ENERGY] for o in outputs]).std(dim=0, unbiased=False)
        if compute_forces:
            result[K.FORCES_STD] = torch.stack([o[K.FORCES] for o in outputs]).std(dim=0, unbiased=False)
        return result
