"""Shared fixtures of the MD tests: small systems with exact answers and a block-averaging helper."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk

from mlpot.models.reference import HarmonicSprings


@pytest.fixture(autouse=True)
def single_intra_op_thread():
    """MD on small systems is latency bound: one intra-op thread avoids OpenMP hand-offs that, on a
    busy machine, cost milliseconds per tensor operation. Restored after each test."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def harmonic_crystal():
    """32-atom fcc Cu cell held by disordered zero-length vector springs: an exactly harmonic,
    translation-invariant system with a non-degenerate spectrum. Returns (atoms, potential)."""
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    potential = HarmonicSprings.from_atoms(atoms, bond_cutoff=3.0, spring_constant=1.0, disorder=(0.5, 2.0, 0))
    return atoms, potential


@pytest.fixture
def harmonic_molecule():
    """A free 8-atom harmonic cluster (no cell), for cheap long NVE runs. Returns (atoms, potential)."""
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
    atoms.pbc = False
    atoms.cell = [0, 0, 0]
    potential = HarmonicSprings.from_atoms(atoms, bond_cutoff=3.0, spring_constant=1.0, disorder=(0.5, 2.0, 1))
    atoms.rattle(0.05, seed=3)
    return atoms, potential


def _block_mean_error(series, min_blocks: int = 16):
    """(mean, standard error) of a correlated series by block averaging.

    Uses :func:`mlpot.analysis.blocking.mean_error` (Flyvbjerg–Petersen with Jonsson's plateau
    test) when available, else a plain blocking with the largest block size that leaves
    ``min_blocks`` blocks, where block means of a series this long are uncorrelated.
    """
    try:
        from mlpot.analysis.blocking import mean_error
    except ImportError:  # pragma: no cover - fallback while the analysis module is absent
        x = np.asarray(series, dtype=float)
        size = max(1, x.size // min_blocks)
        n_blocks = x.size // size
        means = x[: n_blocks * size].reshape(n_blocks, size).mean(axis=1)
        return float(x.mean()), float(means.std(ddof=1) / np.sqrt(n_blocks))
    result = mean_error(np.asarray(series, dtype=float), min_blocks=min_blocks)
    return result.mean, result.error


@pytest.fixture
def block_mean_error():
    return _block_mean_error
