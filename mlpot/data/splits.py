"""Train/validation/test splits of a dataset: drawn by seed, saved with the run, or read from an index file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from mlpot.files import atomic_write_text

__all__ = ["split_indices", "save_split", "load_split"]


def split_indices(
    n: int, n_train: int | None, n_val: int, seed: int = 0, n_test: int = 0
) -> dict[str, list[int]]:
    """A random split of ``range(n)`` into train/val (and test) index lists.

    Args:
        n: number of structures.
        n_train: training structures; None takes all that remain after val and test.
        n_val: validation structures.
        seed: seed of the permutation (numpy ``default_rng``), so the split is reproducible.
        n_test: test structures (0 when a separate test file is used).

    Returns:
        ``{"train": [...], "val": [...], "test": [...], "seed": seed}``; indices sorted within each part.
    """
    if n_val < 0 or n_test < 0 or (n_train is not None and n_train < 0):
        raise ValueError(f"split sizes must be >= 0, got n_train={n_train}, n_val={n_val}, n_test={n_test}")
    n_train = n - n_val - n_test if n_train is None else n_train
    if n_train + n_val + n_test > n:
        raise ValueError(
            f"split asks for n_train={n_train} + n_val={n_val} + n_test={n_test} structures, but only {n} are available"
        )
    order = np.random.default_rng(seed).permutation(n)
    parts = np.split(order[: n_train + n_val + n_test], [n_train, n_train + n_val])
    return {
        "train": sorted(int(i) for i in parts[0]),
        "val": sorted(int(i) for i in parts[1]),
        "test": sorted(int(i) for i in parts[2]),
        "seed": seed,
    }


def save_split(split: dict[str, Any], path: str | os.PathLike, **metadata: Any) -> None:
    """Write a split (as from :func:`split_indices`) and optional metadata to a JSON file."""
    atomic_write_text(path, json.dumps({**metadata, **split}, indent=1))


def load_split(path: str | os.PathLike, n: int | None = None) -> dict[str, list[int]]:
    """Read an index file: JSON with "train"/"val" (and optionally "test") lists, or an npz with
    arrays train/val/test (also sGDML-style idx_train/idx_valid/idx_test).

    Args:
        path: the file.
        n: if given, indices must lie in ``range(n)``.

    Raises:
        ValueError: naming the problem (missing "train", out-of-range or overlapping indices).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"split file not found: {path}")
    if path.suffix.lower() == ".npz":
        with np.load(path) as d:
            aliases = {
                "train": ("train", "idx_train"), "val": ("val", "idx_val", "idx_valid"), "test": ("test", "idx_test")
            }
            raw = {part: d[next(a for a in names if a in d.files)].tolist()
                   for part, names in aliases.items() if any(a in d.files for a in names)}
    else:
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not a JSON split file: {exc}") from exc
    if "train" not in raw:
        raise ValueError(f"{path}: split file has no 'train' indices")
    split = {part: [int(i) for i in raw.get(part, [])] for part in ("train", "val", "test")}
    seen: set[int] = set()
    for part, idx in split.items():
        if n is not None and any(i < 0 or i >= n for i in idx):
            raise ValueError(f"{path}: '{part}' indices outside 0..{n - 1}")
        if seen & set(idx):
            raise ValueError(f"{path}: '{part}' indices overlap another part of the split")
        seen |= set(idx)
    return split
