"""Health checks of an MD run: bounds on forces and temperature, and close contacts.

A learned potential is trustworthy only where it was trained. Two failures need catching
before they write garbage:

* the dynamics blow up (non-finite or huge forces, a temperature running away):
  :class:`HealthCheck` bounds, checked after every step by the engine;
* two atoms come much closer than any pair in the training data did. The model's energy there
  is an extrapolation, often *lower* than it should be, so atoms can fall into each other while
  every force and the temperature stay moderate. :class:`CloseContactGuard` compares every
  pair within the neighbour list with the shortest distance of its element pair seen in
  training (``Potential.training_min_distances``) and flags pairs closer than a fraction of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from ase.data import atomic_numbers, chemical_symbols
from torch import Tensor

__all__ = ["HealthCheck", "MDInstabilityError", "CloseContactError", "CloseContactGuard", "pair_key"]

#: Default fraction of the training minimum distance below which a pair is a close contact.
MIN_DISTANCE_FRACTION = 0.75


class MDInstabilityError(RuntimeError):
    """The dynamics left the physical range (non-finite or exploding forces or temperature)."""


class CloseContactError(RuntimeError):
    """Two atoms came closer than the model's training data supports (see :class:`CloseContactGuard`)."""


@dataclass
class HealthCheck:
    """Bounds checked after every force evaluation.

    Attributes:
        max_force: largest allowed |F| on any atom, eV/Å.
        max_temperature_K: largest allowed kinetic temperature of any system, K.
    """

    max_force: float = 1.0e3
    max_temperature_K: float = 1.0e5


def pair_key(z_a: int, z_b: int) -> str:
    """The element-pair key of ``training_min_distances``: symbols in alphabetical order, joined by ``-``."""
    return "-".join(sorted((chemical_symbols[int(z_a)], chemical_symbols[int(z_b)])))


class CloseContactGuard:
    """Finds pairs closer than ``fraction`` × the shortest distance of their element pair in training.

    Args:
        training_min_distances: ``{"H-O": 0.93, ...}`` in Å, as models record it.
        fraction: a pair closer than ``fraction`` × its training minimum is a close contact (0 < fraction ≤ 1).
        device, dtype: where the checks run.

    Element pairs absent from the record are not checked (the model never saw them; the
    engine's start-up overlap check still applies).
    """

    def __init__(self, training_min_distances: dict[str, float], fraction: float, device=None, dtype=torch.float64):
        if not 0.0 < float(fraction) <= 1.0:
            raise ValueError(f"min_distance_fraction must be in (0, 1], got {fraction}")
        self.fraction = float(fraction)
        minimum = torch.zeros(119, 119, dtype=torch.float64)
        for key, distance in training_min_distances.items():
            try:
                a, b = (atomic_numbers[symbol] for symbol in key.split("-"))
            except (KeyError, ValueError):
                raise ValueError(f"training_min_distances key {key!r} is not 'Symbol-Symbol'") from None
            minimum[a, b] = minimum[b, a] = float(distance)
        self.minimum = minimum.to(device=device, dtype=dtype)
        self.threshold2 = (self.fraction * self.minimum).square()
        self._edges: Tensor | None = None  # the edge list the cached per-edge thresholds belong to
        self._edge_threshold2: Tensor | None = None

    @classmethod
    def for_potential(cls, potential, fraction: float | None, device=None, dtype=torch.float64) -> "CloseContactGuard | None":
        """The guard of a potential's training record, or None when ``fraction`` is None or the potential has no record."""
        record = getattr(potential, "training_min_distances", None)
        if fraction is None or not record:
            return None
        return cls(record, fraction, device=device, dtype=dtype)

    def find(self, vectors: Tensor, edge_index: Tensor, numbers: Tensor) -> tuple[int, int, float, float] | None:
        """The closest offending pair, or None.

        Args:
            vectors: [E, 3] r_ij, Å.
            edge_index: [2, E] int64; the per-edge thresholds are cached for the same tensor object.
            numbers: [n_atoms] int64 atomic numbers.

        Returns:
            ``(i, j, distance Å, training minimum Å)`` of the pair that is furthest inside its
            threshold (relative to it), or None when no pair is a close contact. One host sync.
        """
        if self._edges is not edge_index:
            z_i, z_j = numbers.index_select(0, edge_index[0]), numbers.index_select(0, edge_index[1])
            self._edge_threshold2 = self.threshold2[z_i, z_j].to(vectors.dtype)
            self._edges = edge_index
        # Relative depth: (threshold² − d²)/threshold², positive for an offending pair.
        depth = (self._edge_threshold2 - vectors.square().sum(dim=1)) / self._edge_threshold2.clamp(min=1e-30)
        if depth.numel() == 0:
            return None
        k = int(torch.argmax(depth))
        if not float(depth[k]) > 0.0:
            return None
        i, j = int(edge_index[0, k]), int(edge_index[1, k])
        distance = float(vectors[k].norm())
        return i, j, distance, float(self.minimum[int(numbers[i]), int(numbers[j])])

    def describe(self, found: tuple[int, int, float, float], numbers: Tensor) -> str:
        """One sentence naming the pair, its distance and the training minimum."""
        i, j, distance, minimum = found
        key = pair_key(int(numbers[i]), int(numbers[j]))
        return (
            f"atoms {i} and {j} ({key}) are {distance:.3f} Å apart, closer than {self.fraction:g} × "
            f"the shortest {key} distance in the model's training data ({minimum:.3f} Å)"
        )
