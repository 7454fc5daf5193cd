"""Checks on a training set before any training: labels, cutoff, units, and the shortest distances.

A training run that starts on broken input still prints losses and writes a model, and the user
learns of the mistake only from a bad MD run, if at all. The trainer therefore stops first, with a
``ValueError`` naming the problem, when

* no structure has an energy or a force label (the loss would be identically zero);
* the cutoff is shorter than every interatomic distance of the data (the model would see no
  neighbours and learn a constant per element);
* the labels are implausible for the stated units (:func:`check_units`; ``allow_unusual_units``
  turns the error into a warning).

It also records :func:`training_min_distances`, the shortest distance per element pair that the
model saw, which MD and the calculator use to flag close contacts outside the training data.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from mlpot.data import keys as K
from mlpot.dynamics.health import pair_key  # the key MD's close-contact check looks up

__all__ = [
    "PLAUSIBLE_MEDIAN_FORCE_EV_PER_A",
    "PLAUSIBLE_ENERGY_SPREAD_EV_PER_ATOM",
    "QUIET_ENERGY_SPREAD_EV_PER_ATOM",
    "check_labels",
    "check_cutoff",
    "check_units",
    "training_min_distances",
]

#: Range of the median force magnitude per atom, eV/Å, expected of DFT training data. Thermally
#: sampled structures have |F| ~ sqrt(k k_B T) per atom with bond stiffnesses k ~ 5–50 eV/Å²: about
#: 0.2 eV/Å for soft bonds at 100 K up to ~10 eV/Å for stiff bonds at 10⁴ K (rMD17 ethanol and
#: aspirin: 1.5 and 1.7 eV/Å; mlearn Si: 1.0 eV/Å). A wrong unit moves it by a large factor:
#: kcal/mol read as eV multiplies forces by 23 (ethanol: 34 eV/Å), eV/Å read as Hartree/Bohr by 51,
#: and Hartree/Bohr read as eV/Å divides them by 51 (ethanol: 0.03 eV/Å). Relaxed structures have
#: small forces too (the relaxed surfaces of mlearn Si: 0.02 eV/Å), so the lower bound counts only
#: together with :data:`QUIET_ENERGY_SPREAD_EV_PER_ATOM`.
PLAUSIBLE_MEDIAN_FORCE_EV_PER_A = (0.1, 15.0)

#: Below this spread of the per-atom energies, eV/atom (~k_B T at room temperature), together with
#: a median force below the plausible range, the labels are too small to be DFT data in eV and Å:
#: read as eV, Hartree energies shrink 27-fold (rMD17 ethanol: 0.02 → 0.0007 eV/atom; mlearn Si:
#: 0.31 → 0.011 eV/atom), while relaxed but distinct structures still differ by more (the relaxed
#: mlearn Si surfaces: 0.05 eV/atom).
QUIET_ENERGY_SPREAD_EV_PER_ATOM = 0.02

#: Largest plausible standard deviation, eV/atom, of the per-atom energy once the per-element
#: reference energies are subtracted. No cohesive energy exceeds ~9 eV/atom (tungsten 8.9), so
#: structures of one composition cannot differ by more per atom than the whole binding energy
#: (rMD17: 0.01–0.02 eV/atom; mlearn Si, with surfaces and vacancies: 0.3 eV/atom); meV read as eV
#: or Hartree read as kcal/mol overshoot it by orders of magnitude.
PLAUSIBLE_ENERGY_SPREAD_EV_PER_ATOM = 10.0

#: Forces below this, eV/Å, are zero within DFT convergence (symmetric or relaxed structures) and
#: say nothing about the unit; they are left out of the median.
_ZERO_FORCE_EV_PER_A = 1e-3


def check_labels(structures: Sequence[dict[str, Tensor]]) -> None:
    """Raise ``ValueError`` if no structure has an energy or a force label."""
    if not any(K.ENERGY in s or K.FORCES in s for s in structures):
        stress = sum(K.STRESS in s for s in structures)
        raise ValueError(
            f"data: none of the {len(structures)} training structures has an energy or a force label"
            + (f" ({stress} have stress only)" if stress else "")
            + ": the loss would be zero. Check data.energy_key / data.forces_key (extxyz: REF_energy, REF_forces?)"
        )


def _edge_lengths(structure: dict[str, Tensor]) -> Tensor:
    """|r_ij|, Å, of the edges of a structure with a neighbour list."""
    i, j = structure[K.EDGE_INDEX]
    vectors = structure[K.POSITIONS][j] - structure[K.POSITIONS][i]
    shift = structure[K.EDGE_SHIFT]
    if shift.numel():
        vectors = vectors + shift.to(vectors.dtype) @ structure[K.CELL][0]
    return vectors.norm(dim=1)


def check_cutoff(structures: Sequence[dict[str, Tensor]], cutoff: float) -> None:
    """Raise ``ValueError`` if no pair of atoms in ``structures`` (with neighbour lists) lies within ``cutoff``, Å."""
    if any(s[K.EDGE_INDEX].shape[1] > 0 for s in structures):
        return
    many = [s for s in structures if s[K.POSITIONS].shape[0] > 1 or bool(s[K.PBC].any())]
    if not many:
        return  # isolated atoms only: there is no distance to see
    from mlpot.data import with_neighbors

    shortest = None
    for reach in (2 * cutoff, 4 * cutoff, 8 * cutoff, 12.0):
        lengths = [_edge_lengths(with_neighbors(s, reach)) for s in many[:20]]
        lengths = [x for x in lengths if x.numel()]
        if lengths:
            shortest = float(torch.cat(lengths).min())
            break
    found = f"{shortest:.3g} Å" if shortest is not None else "more than 12 Å"
    raise ValueError(
        f"model.cutoff {cutoff} Å is shorter than the shortest interatomic distance in the training data "
        f"({found}): no atom would see a neighbour. Check model.cutoff and data.length_unit"
    )


def check_units(
    structures: Sequence[dict[str, Tensor]],
    reference_energies: dict[int, float],
    energy_unit: str | None,
    length_unit: str,
    allow_unusual_units: bool = False,
) -> dict[str, float]:
    """Check that forces and energies have the magnitudes DFT data have in eV and Å.

    Args:
        structures: training AtomicData, labels already converted to eV and Å.
        reference_energies: per-element energies, eV, fitted on ``structures`` (atomic number → eV).
        energy_unit, length_unit: the units the file was read in (named in the message).
        allow_unusual_units: warn instead of raising.

    Returns:
        ``{"median_force_eV_per_A": ..., "energy_spread_eV_per_atom": ...}`` (NaN where unlabelled).

    Raises:
        ValueError: the median force magnitude per atom (zero forces left out) is above
            :data:`PLAUSIBLE_MEDIAN_FORCE_EV_PER_A`, or below it while the per-atom energies spread
            by less than :data:`QUIET_ENERGY_SPREAD_EV_PER_ATOM` (or are unlabelled); or the
            per-atom energy spread exceeds :data:`PLAUSIBLE_ENERGY_SPREAD_EV_PER_ATOM`.
    """
    forces = [s[K.FORCES].double().norm(dim=1) for s in structures if K.FORCES in s]
    magnitudes = torch.cat(forces) if forces else torch.zeros(0, dtype=torch.float64)
    magnitudes = magnitudes[magnitudes > _ZERO_FORCE_EV_PER_A]
    median_force = float(magnitudes.median()) if magnitudes.numel() else math.nan
    residuals = [
        (float(s[K.ENERGY]) - sum(reference_energies.get(int(z), 0.0) for z in s[K.NUMBERS].tolist()))
        / len(s[K.NUMBERS])
        for s in structures if K.ENERGY in s
    ]
    spread = float(np.std(residuals)) if len(residuals) > 1 else math.nan
    problems = []
    low, high = PLAUSIBLE_MEDIAN_FORCE_EV_PER_A
    too_high = median_force > high
    too_low = median_force < low and not spread >= QUIET_ENERGY_SPREAD_EV_PER_ATOM  # NaN spread: no energies
    if too_high or too_low:
        quiet = ""
        if too_low and math.isfinite(spread):
            quiet = f" and the energies per atom spread by only {spread:.2g} eV/atom"
        problems.append(
            f"the median force is {median_force:.3g} eV/Å per atom{quiet}, outside the {low}–{high} eV/Å of DFT "
            "data (kcal/mol read as eV gives 23 times too much, Hartree/Bohr read as eV/Å 51 times too little)"
        )
    if math.isfinite(spread) and spread > PLAUSIBLE_ENERGY_SPREAD_EV_PER_ATOM:
        problems.append(
            f"the energies per atom spread by {spread:.3g} eV/atom about the per-element references, more than any "
            f"cohesive energy ({PLAUSIBLE_ENERGY_SPREAD_EV_PER_ATOM} eV/atom)"
        )
    if problems:
        message = (
            f"data: implausible labels for energy_unit {energy_unit or 'eV'!r} and length_unit {length_unit!r}: "
            + "; ".join(problems)
        )
        if not allow_unusual_units:
            raise ValueError(
                message + ". Fix data.energy_unit / data.length_unit, or, if the numbers are right (e.g. nearly "
                "relaxed structures), pass --allow-unusual-units (data.allow_unusual_units: true)"
            )
        warnings.warn(message + " (allowed by allow_unusual_units)", stacklevel=2)
    return {"median_force_eV_per_A": median_force, "energy_spread_eV_per_atom": spread}


def training_min_distances(structures: Sequence[dict[str, Tensor]]) -> dict[str, float]:
    """The shortest interatomic distance, Å, per element pair within the cutoff of the neighbour lists.

    Args:
        structures: AtomicData with ``edge_index``/``edge_shift`` (the training set).

    Returns:
        ``{"H-O": 0.93, ...}`` (keys from :func:`mlpot.dynamics.health.pair_key`: symbols in
        alphabetical order joined by ``-``), sorted; pairs never within the cutoff are absent.
    """
    best: dict[tuple[int, int], float] = {}
    for s in structures:
        if s[K.EDGE_INDEX].shape[1] == 0:
            continue
        lengths = _edge_lengths(s).detach().double()
        z = s[K.NUMBERS][s[K.EDGE_INDEX]]  # [2, E]
        low, high = torch.minimum(z[0], z[1]), torch.maximum(z[0], z[1])
        codes = low * 1000 + high
        for code in torch.unique(codes).tolist():
            shortest = float(lengths[codes == code].min())
            pair = (code // 1000, code % 1000)
            best[pair] = min(best.get(pair, math.inf), shortest)
    return dict(sorted((pair_key(*pair), value) for pair, value in best.items()))
