"""Energy statistics of a training set, fixed in a model before training.

Per-element reference energies absorb the bulk of the total energy (a DFT energy is mostly the
sum of its atoms' energies), so the network learns only the interaction part; the force scale
sets the units in which the loss measures errors and the network's output scale. Both are fitted
on the training set alone, never on validation or test data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from mlpot.data import keys as K

__all__ = ["fit_energy_statistics", "fit_multistate_statistics"]


def fit_energy_statistics(structures: Sequence[dict[str, Tensor]]) -> tuple[dict[int, float], float]:
    """Per-element reference energies (eV) and the force scale (eV/Å) of a training set.

    Reference energies are the least-squares fit of the energies on the composition
    (:func:`mlpot.models.fit_reference_energies`); the scale is the RMS force component, or the RMS
    per-atom energy residual when no structure has forces, or 1 when there is nothing to fit.

    Args:
        structures: AtomicData dicts; ``energy`` [1] eV and ``forces`` [n_atoms, 3] eV/Å where labelled.

    Returns:
        ``({atomic number: reference energy in eV}, scale in eV/Å)``.
    """
    from mlpot.models import fit_reference_energies

    with_energy = [s for s in structures if K.ENERGY in s]
    refs: dict[int, float] = {}
    if with_energy:
        numbers = [s[K.NUMBERS] for s in with_energy]
        energies = torch.cat([s[K.ENERGY] for s in with_energy]).double()
        refs = {int(z): float(e) for z, e in fit_reference_energies(numbers, energies).items()}
    forces = [s[K.FORCES] for s in structures if K.FORCES in s]
    if forces:
        scale = float(torch.cat(forces).double().square().mean().sqrt())
    elif with_energy:
        residual = [
            (float(s[K.ENERGY]) - sum(refs.get(int(z), 0.0) for z in s[K.NUMBERS])) / len(s[K.NUMBERS])
            for s in with_energy
        ]
        scale = float(np.sqrt(np.mean(np.square(residual))))
    else:
        scale = 1.0
    if not math.isfinite(scale) or scale <= 0:
        scale = 1.0
    return refs, scale


def fit_multistate_statistics(structures: Sequence[dict[str, Tensor]]) -> tuple[dict[int, float], float]:
    """:func:`fit_energy_statistics` of multistate data (:mod:`mlpot.data.multistate`).

    The reference energies are fitted on the lowest state's energies (every diabatic diagonal
    element starts from them); the force scale is the RMS force component over all states.
    """
    from mlpot.data.multistate import STATE_ENERGIES, STATE_FORCES

    proxies = []
    for s in structures:
        proxy = {K.NUMBERS: s[K.NUMBERS], K.ENERGY: s[STATE_ENERGIES][:, 0]}
        if STATE_FORCES in s:
            proxy[K.FORCES] = s[STATE_FORCES].reshape(-1, 3)
        proxies.append(proxy)
    return fit_energy_statistics(proxies)
