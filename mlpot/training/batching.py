"""Mini-batches of AtomicData for training: label masks, shuffling, and DDP sharding.

Labels may be missing per structure, but :func:`mlpot.data.collate` keeps only keys that every
structure has. :func:`add_label_masks` therefore gives every structure every label of the
dataset, zero-filled where missing, plus a boolean mask (``energy_mask`` [1], ``forces_mask``
[n_atoms], ``stress_mask`` [1]) that the loss uses. The masks are training-only keys: they never
reach a model (the loss passes only :data:`INPUT_KEYS`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from mlpot.data import collate
from mlpot.data import keys as K

__all__ = ["INPUT_KEYS", "LABEL_ORDER", "mask_key", "add_label_masks", "select_systems", "StructureBatches"]

#: Keys a potential reads; everything else in a training batch is a label or a mask.
INPUT_KEYS = (K.POSITIONS, K.NUMBERS, K.BATCH, K.CELL, K.PBC, K.N_ATOMS, K.EDGE_INDEX, K.EDGE_SHIFT)
#: Label keys in a fixed order.
LABEL_ORDER = (K.ENERGY, K.FORCES, K.STRESS)


def mask_key(label: str) -> str:
    """Name of the mask of a label: ``energy`` → ``energy_mask``."""
    return f"{label}_mask"


def add_label_masks(
    structures: Sequence[dict[str, Tensor]], labels: Sequence[str] | None = None
) -> list[dict[str, Tensor]]:
    """Give every structure every label in ``labels`` (default: those any structure has) plus its mask.

    Args:
        structures: single-system AtomicData dicts.
        labels: label keys to provide; default the union over ``structures``.

    Returns:
        New dicts (inputs are not modified); a missing label is zeros with mask False.
    """
    if labels is None:
        present = set().union(*(s.keys() for s in structures)) if structures else set()
        labels = [k for k in LABEL_ORDER if k in present]
    out = []
    for s in structures:
        n, dtype = s[K.POSITIONS].shape[0], s[K.POSITIONS].dtype
        shapes = {K.ENERGY: (1,), K.FORCES: (n, 3), K.STRESS: (1, 3, 3)}
        mask_shapes = {K.ENERGY: (1,), K.FORCES: (n,), K.STRESS: (1,)}
        d = dict(s)
        for label in labels:
            has = label in s
            if not has:
                d[label] = torch.zeros(shapes[label], dtype=dtype)
            d[mask_key(label)] = torch.full(mask_shapes[label], has, dtype=torch.bool)
        out.append(d)
    return out


def select_systems(batch: dict[str, Tensor], systems: Tensor) -> dict[str, Tensor]:
    """The input keys of the systems ``systems`` of a collated batch, as a batch of their own.

    Args:
        batch: collated AtomicData (with ``edge_index``/``edge_shift``).
        systems: [n_selected] int64 system indices, ascending.

    Returns:
        A new batch of :data:`INPUT_KEYS` (atoms renumbered, ``batch`` 0..n_selected-1).
    """
    atom_system = batch[K.BATCH]
    keep_atom = torch.isin(atom_system, systems)
    new_index = torch.cumsum(keep_atom.to(torch.int64), 0) - 1  # old atom index -> new one
    new_system = torch.full((int(batch[K.N_ATOMS].shape[0]),), -1, dtype=torch.int64, device=systems.device)
    new_system[systems] = torch.arange(systems.numel(), device=systems.device)
    out = {
        K.POSITIONS: batch[K.POSITIONS][keep_atom],
        K.NUMBERS: batch[K.NUMBERS][keep_atom],
        K.BATCH: new_system[atom_system[keep_atom]],
    }
    for key in (K.CELL, K.PBC, K.N_ATOMS):
        if key in batch:
            out[key] = batch[key][systems]
    if K.EDGE_INDEX in batch:
        keep_edge = keep_atom[batch[K.EDGE_INDEX][0]]
        out[K.EDGE_INDEX] = new_index[batch[K.EDGE_INDEX][:, keep_edge]]
        out[K.EDGE_SHIFT] = batch[K.EDGE_SHIFT][keep_edge]
    return out


class StructureBatches:
    """Re-iterable mini-batches of structures, reshuffled on every pass.

    The permutation of a pass is drawn from torch's global RNG (which the training loop seeds
    and checkpoints), so a resumed run sees the same batches. Under DDP every rank builds the
    same global batches of ``batch_size`` structures and takes its own share
    (``global_batch[rank::world_size]``); global batches smaller than ``world_size`` are dropped,
    so every rank runs the same number of steps.

    Args:
        structures: AtomicData dicts (with masks, see :func:`add_label_masks`).
        batch_size: structures per (global) batch.
        shuffle: reshuffle each pass; without it batches are collated once and cached.
        rank, world_size: this process's share under DDP.
        device: move batches to this device.
    """

    def __init__(
        self,
        structures: Sequence[dict[str, Tensor]],
        batch_size: int,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        device: torch.device | str | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not structures:
            raise ValueError("no structures to batch")
        self.structures = list(structures)
        self.batch_size, self.shuffle = batch_size, shuffle
        self.rank, self.world_size = rank, world_size
        self.device = torch.device(device) if device is not None else None
        self._cache: list[dict[str, Tensor]] | None = None

    def _global_batches(self, order: list[int]) -> list[list[int]]:
        chunks = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        return [c for c in chunks if len(c) >= self.world_size]

    def __len__(self) -> int:
        n = len(self.structures)
        full, rest = divmod(n, self.batch_size)
        return full + (1 if rest >= max(self.world_size, 1) and rest else 0)

    def _make(self, idx: list[int]) -> dict[str, Tensor]:
        batch = collate([self.structures[i] for i in idx])
        if self.device is not None:
            batch = {k: v.to(self.device) for k, v in batch.items()}
        return batch

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        n = len(self.structures)
        if not self.shuffle:
            if self._cache is None:
                chunks = self._global_batches(list(range(n)))
                self._cache = [self._make(c[self.rank :: self.world_size]) for c in chunks]
            yield from self._cache
            return
        order = torch.randperm(n).tolist()
        for chunk in self._global_batches(order):
            yield self._make(chunk[self.rank :: self.world_size])
