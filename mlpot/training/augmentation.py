"""Data augmentation for training: mirror images of structures (``chirality: augment``).

A mirror image has the same energy as the original; forces are mirrored as vectors and the stress
as a rank-2 tensor. Training on both teaches a model that lets pseudoscalars into its energy that
enantiomers are degenerate in an achiral environment.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mlpot.data import keys as K
from mlpot.data.multistate import NONADIABATIC_COUPLINGS, STATE_FORCES

__all__ = ["mirror_structure"]


def mirror_structure(structure: dict[str, Tensor]) -> dict[str, Tensor]:
    """The mirror image through the yz plane (x → −x): same energy, mirrored forces and stress.

    Cell rows are mirrored too, so the integer edge shifts stay valid.

    Args:
        structure: AtomicData of one system (positions [n, 3] Å, cell [1, 3, 3] Å, optional
            forces [n, 3] eV/Å and stress [1, 3, 3] eV/Å³, and per-state forces and couplings of
            :mod:`mlpot.data.multistate`, [n, k, 3]).

    Returns:
        A new dict; the input is not modified.
    """
    m = torch.tensor([-1.0, 1.0, 1.0], dtype=structure[K.POSITIONS].dtype)
    out = dict(structure)
    out[K.POSITIONS] = structure[K.POSITIONS] * m
    out[K.CELL] = structure[K.CELL] * m
    if K.FORCES in structure:
        out[K.FORCES] = structure[K.FORCES] * m
    if K.STRESS in structure:
        out[K.STRESS] = structure[K.STRESS] * m[:, None] * m[None, :]
    for key in (STATE_FORCES, NONADIABATIC_COUPLINGS):  # per-state vectors [n_atoms, k, 3]
        if key in structure:
            out[key] = structure[key] * m
    return out
