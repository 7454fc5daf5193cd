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

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from ase.data import atomic_numbers, chemical_symbols
from torch import Tensor

from mlpot.dynamics.state import MDState, per_system
from mlpot.models.potential import edge_vectors
from mlpot.units import KB_EV_PER_K

__all__ = [
    "HealthCheck",
    "MDInstabilityError",
    "CloseContactError",
    "CloseContactGuard",
    "pair_key",
    "health_measures",
    "check_health",
    "check_contacts",
    "inverse_dof_kB",
]

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


def health_measures(
    positions: Tensor,
    momenta: Tensor,
    forces: Tensor,
    energy: Tensor,
    inverse_masses: Tensor,
    inverse_dof_kB: Tensor,
    batch: Tensor,
) -> Tensor:
    """What the engine checks after every step, in one tensor (so that one host sync reads it).

    Args:
        positions: [n, 3] Å (checked for being finite: a model evaluated on a reused neighbour
            list can return a finite energy for a NaN atom, whose edges all fail the cutoff test).
        momenta: [n, 3] amu·Å/(ASE time).
        forces: [n, 3] eV/Å.
        energy: [n_systems] eV.
        inverse_masses: [n] 1/amu.
        inverse_dof_kB: [n_systems] 1/(N_dof k_B), 1/eV·K (0 for a system with no degrees of freedom).
        batch: [n] int64 system index.

    Returns:
        [4]: max_i |F_i|² (eV²/Å²), max over systems of the kinetic temperature (K), Σ energy (eV),
        max |R| (Å; NaN or infinite when any position is).
    """
    twice_kinetic = per_system(momenta.square().sum(dim=1) * inverse_masses, batch, inverse_dof_kB.shape[0])
    return torch.stack(
        (
            forces.square().sum(dim=1).max(),
            (twice_kinetic * inverse_dof_kB).max(),
            energy.sum(),
            positions.abs().max(),
        )
    )


def inverse_dof_kB(n_dof: Tensor) -> Tensor:
    """1/(N_dof k_B) per system, 1/eV·K, from ``n_dof`` [n_systems]; 0 for a system without degrees of freedom."""
    return torch.where(n_dof > 0, 1.0 / (n_dof.clamp(min=1.0) * KB_EV_PER_K), torch.zeros_like(n_dof))


def check_health(state: MDState, measures: Sequence[float], bounds: HealthCheck, time_fs: float) -> None:
    """Raise :class:`MDInstabilityError` unless the ``measures`` of :func:`health_measures` (max |F|²,
    max T over systems, the energy sum, the largest coordinate) are finite and within ``bounds``;
    the message names the step, the time (fs) and the atoms concerned."""
    fmax2, tmax, energy, largest_coordinate = measures
    problems = []
    if not math.isfinite(largest_coordinate):
        bad = torch.nonzero(~torch.isfinite(state.positions).all(dim=1)).flatten()[:10].tolist()
        problems.append(f"non-finite positions (atoms {bad})")
    if not math.isfinite(fmax2) or not math.isfinite(energy):
        bad = torch.nonzero(~torch.isfinite(state.forces).all(dim=1)).flatten()[:10].tolist()
        problems.append(f"non-finite forces or energy (atoms {bad})")
    elif fmax2 > bounds.max_force**2:
        problems.append(f"force {math.sqrt(fmax2):.4g} eV/Å exceeds max_force {bounds.max_force:g} eV/Å")
    if not math.isfinite(tmax):
        problems.append("non-finite temperature")
    elif tmax > bounds.max_temperature_K:
        problems.append(f"temperature {tmax:.4g} K exceeds max_temperature_K {bounds.max_temperature_K:g} K")
    if problems:
        raise MDInstabilityError(
            f"MD stopped at step {state.step} (t = {time_fs:g} fs): {'; '.join(problems)}. "
            f"Reporter output holds everything up to the last good step, {max(state.step - 1, 0)}."
        )


def check_contacts(guard: "CloseContactGuard", provider, state: MDState, time_fs: float) -> None:
    """Raise :class:`CloseContactError` when a pair of ``provider``'s neighbour list is a close contact
    (one host sync)."""
    cell = state.cell if provider.periodic else None
    vectors = edge_vectors(state.positions, provider.edge_index, provider.edge_shift, cell, state.batch)
    found = guard.find(vectors, provider.edge_index, state.numbers)
    if found is not None:
        raise CloseContactError(
            f"MD stopped at step {state.step} (t = {time_fs:g} fs): {guard.describe(found, state.numbers)}. "
            f"The model's energy there is an extrapolation (train on such geometries, add the ZBL repulsion "
            f"prior, or pass min_distance_fraction=None, `--min-distance-fraction 0` on the command line, to go on). "
            f"Reporter output holds everything up to the last good step, {max(state.step - 1, 0)}."
        )


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
    def for_potential(
        cls, potential, fraction: float | None, device=None, dtype=torch.float64
    ) -> "CloseContactGuard | None":
        """The guard of a potential's training record, or None when ``fraction`` is None or the
        potential has no record."""
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
