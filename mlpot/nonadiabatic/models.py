"""A learned diabatic Hamiltonian matrix H_d(x) for systems described by a few coordinates.

Why diabatic: adiabatic surfaces have cusps (conical intersections) and very sharp avoided
crossings that smooth networks fit badly, and one network per adiabatic surface gives no
derivative couplings at all. A symmetric matrix of smooth functions has neither problem: its
eigenvalues are the adiabatic energies, and its eigenvectors give per-state forces and the
couplings d_ij = ⟨i|∇H_d|j⟩/(E_j − E_i), all mutually consistent (see
:mod:`mlpot.nonadiabatic.adiabatic`).

:class:`CoordinateDiabaticModel` maps coordinates ``[..., n_coordinates]`` (or ``[...]`` when there is
one) through one smooth multilayer perceptron (SiLU) to the n(n+1)/2 independent elements of a
symmetric n×n matrix. Inputs are standardised with a stored shift/scale and outputs scaled by
a stored energy scale, so the network works on numbers of order one whatever the units; set
them from the training data (:meth:`CoordinateDiabaticModel.standardise`).

**Sign convention.** The sign of each diabatic state is a free choice, and flipping state j
flips the off-diagonal elements of row and column j. The model's off-diagonal signs are
therefore whatever training lands on; only adiabatic energies, forces and |d_ij| (up to the
sign of each eigenvector) are physical, and every loss in :mod:`mlpot.nonadiabatic.training`
is invariant under these flips.

**Molecules.** For atoms the same construction applies with the diagonal elements being
size-extensive atomistic energies (mlpot's descriptor models) and the off-diagonal couplings
invariant networks of the same descriptors: :class:`mlpot.nonadiabatic.atomistic.DiabaticModel`
(``mlpot train`` with ``model: {type: diabatic}``; docs/nonadiabatic.md, "Atomistic data").

Save/load: one file holding the JSON configuration and the state dict, read back with
``torch.load(weights_only=True)`` (no pickled code).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from mlpot.files import atomic_torch_save, safe_torch_load

__all__ = ["CoordinateDiabaticModel"]


class CoordinateDiabaticModel(nn.Module):
    """H_d(x): coordinates → symmetric ``[..., n_states, n_states]`` matrix (energy units of the data).

    Args:
        n_states: number of electronic states n.
        n_coordinates: number of nuclear coordinates (1 for Tully's models: then positions are
            ``[...]``, one coordinate per point, as for :mod:`mlpot.nonadiabatic.systems`).
        hidden: widths of the hidden layers.
    """

    def __init__(self, n_states: int = 2, n_coordinates: int = 1, hidden: tuple[int, ...] = (64, 64)):
        super().__init__()
        if int(n_states) < 1 or int(n_coordinates) < 1:
            raise ValueError(f"n_states and n_coordinates must be positive; got {n_states}, {n_coordinates}")
        if not hidden or any(int(h) < 1 for h in hidden):
            raise ValueError(f"hidden must be a non-empty sequence of positive widths; got {hidden!r}")
        self.n_states, self.n_coordinates = int(n_states), int(n_coordinates)
        self.hidden = tuple(int(h) for h in hidden)
        widths = [self.n_coordinates, *self.hidden]
        layers: list[nn.Module] = []
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(w_in, w_out, dtype=torch.float64), nn.SiLU()]
        n_elements = self.n_states * (self.n_states + 1) // 2
        layers.append(nn.Linear(widths[-1], n_elements, dtype=torch.float64))
        self.network = nn.Sequential(*layers)
        rows, cols = torch.triu_indices(self.n_states, self.n_states)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        self.register_buffer("coordinate_shift", torch.zeros(self.n_coordinates, dtype=torch.float64))
        self.register_buffer("coordinate_scale", torch.ones(self.n_coordinates, dtype=torch.float64))
        self.register_buffer("energy_shift", torch.zeros((), dtype=torch.float64))
        self.register_buffer("energy_scale", torch.ones((), dtype=torch.float64))

    def config(self) -> dict:
        """The constructor arguments (JSON-serialisable)."""
        return {"n_states": self.n_states, "n_coordinates": self.n_coordinates, "hidden": list(self.hidden)}

    @torch.no_grad()
    def standardise(self, positions: torch.Tensor, energies: torch.Tensor) -> None:
        """Set the input standardisation and output scale from training data.

        Args:
            positions: ``[n_samples]`` (one coordinate) or ``[n_samples, n_coordinates]``.
            energies: ``[n_samples, n_states]`` adiabatic energies.
        """
        x = self._coordinates(positions)
        self.coordinate_shift.copy_(x.mean(0))
        self.coordinate_scale.copy_(x.std(0).clamp(min=1e-12))
        self.energy_shift.copy_(energies.mean())
        self.energy_scale.copy_(energies.std().clamp(min=1e-12))

    def _coordinates(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_tensor(x):
            x = torch.as_tensor(x, dtype=torch.float64)
        if self.n_coordinates == 1:  # one coordinate: positions are [...] like Tully's systems, never [..., 1]
            x = x.unsqueeze(-1)
        elif x.ndim == 0 or x.shape[-1] != self.n_coordinates:
            raise ValueError(f"expected positions [..., {self.n_coordinates}]; got {tuple(x.shape)}")
        if not bool(torch.isfinite(x).all()):
            raise ValueError("positions contain NaN or inf")
        return x.to(torch.float64)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        """H_d ``[..., n, n]`` for positions ``[..., n_coordinates]``, or ``[...]`` when n_coordinates = 1."""
        x = self._coordinates(positions)
        elements = self.network((x - self.coordinate_shift) / self.coordinate_scale) * self.energy_scale
        n = self.n_states
        h = _fill_symmetric(elements.new_zeros(*elements.shape[:-1], n, n), elements, self.rows, self.cols)
        return h + self.energy_shift * torch.eye(n, dtype=h.dtype)

    def save(self, path: str | Path) -> None:
        """Write the configuration (JSON text) and the state dict to one file."""
        atomic_torch_save({"config_json": json.dumps(self.config()), "state_dict": self.state_dict()}, Path(path))

    @classmethod
    def load(cls, path: str | Path) -> "CoordinateDiabaticModel":
        """Read a model written by :meth:`save` (``weights_only=True``: tensors and plain data only)."""
        stored = safe_torch_load(Path(path), "diabatic model file")
        model = cls(**json.loads(stored["config_json"]))
        model.load_state_dict(stored["state_dict"])
        return model


def _fill_symmetric(h: torch.Tensor, elements: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Place the upper-triangle ``elements`` [..., m] into ``h`` [..., n, n] and mirror them."""
    n = h.shape[-1]
    flat = h.reshape(*h.shape[:-2], n * n)
    flat = flat.index_add(-1, rows * n + cols, elements)
    off = rows != cols
    flat = flat.index_add(-1, cols[off] * n + rows[off], elements[..., off])
    return flat.reshape(h.shape)
