"""Training checkpoints: writing, reading, the RNG state inside them, and the resume checks.

A checkpoint of :func:`mlpot.training.loop.fit` holds only tensors, numbers, strings, lists and
dicts. It is written through :func:`mlpot.files.atomic_torch_save` (temporary file in the same
folder, fsync, rename, fsync of the folder; a full disk leaves the previous checkpoint intact)
and read with ``torch.load(weights_only=True)``: loading one never executes pickled code.

**Resume checks.** A run that continues from a checkpoint must be the run that wrote it. When the
caller of ``fit`` passes its settings, the checkpoint stores a *fingerprint*: the hash of the
model's config and initial weights (:func:`mlpot.models.serialization.model_fingerprint`) and
the settings themselves. ``resume`` compares both with the current run and refuses, naming every
changed setting, instead of silently mixing two runs. Settings that a resumed run may change
(a larger epoch budget, a fresh time budget, the device, progress output) are left out by the
caller.

**Output folders.** :func:`existing_checkpoints` lists the checkpoints a folder holds, so that
``mlpot train`` can refuse to start over them without ``--resume`` or ``--overwrite``.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlpot.files import atomic_torch_save, refuse_to_replace_run, safe_torch_load

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_NAMES",
    "save_checkpoint",
    "load_checkpoint",
    "rng_state",
    "set_rng_state",
    "seed_everything",
    "fingerprint",
    "check_fingerprint",
    "changed_settings",
    "existing_checkpoints",
    "check_output_folder",
    "without_keys",
]

#: Version tag stored in every checkpoint written by :func:`mlpot.training.loop.fit`.
CHECKPOINT_FORMAT = "mlpot.training.loop/1"

#: File names of the checkpoints ``fit`` writes into its output folder.
CHECKPOINT_NAMES = ("last.pt", "best.pt")


# --------------------------------------------------------------------------------------- files
def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write a checkpoint atomically (see :mod:`mlpot.files`); returns the path."""
    return atomic_torch_save(state, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint written by :func:`mlpot.training.loop.fit` (``torch.load(weights_only=True)``, on CPU).

    ``last.pt`` is the state to resume from. ``best.pt`` is written together with ``last.pt``
    whenever the monitored loss improved since the previous write; its ``best_weights`` are the
    evaluation (EMA) weights of the best epoch ``best_epoch``.

    Keys: ``format``, ``epoch`` (completed epochs), ``batch_in_epoch``, ``model`` (state dict),
    ``optimizer``, ``scheduler``, ``ema``, ``rng``, ``best_weights``, ``best_val_loss``,
    ``best_epoch``, ``history``, ``config``, ``finished``, and ``fingerprint`` (None when the run
    gave no settings to check).

    Raises:
        ValueError: the file is not a readable checkpoint (truncated, corrupt, or another format).
    """
    state = safe_torch_load(path, "training checkpoint")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a checkpoint written by mlpot.training.loop.fit ({CHECKPOINT_FORMAT})")
    return state


def existing_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Checkpoints in ``output_dir`` and in its ensemble members' folders (``member_K/``), sorted."""
    out = Path(output_dir)
    if not out.is_dir():
        return []
    folders = [out, *sorted(p for p in out.glob("member_*") if p.is_dir())]
    return [folder / name for folder in folders for name in CHECKPOINT_NAMES if (folder / name).is_file()]


def check_output_folder(output: str | os.PathLike, resume: bool, overwrite: bool) -> list[Path]:
    """Refuse to start a fresh run over the checkpoints of an earlier one.

    Returns:
        The checkpoints found in ``output`` (the caller deletes them for ``overwrite``).

    Raises:
        ValueError: checkpoints exist and neither ``resume`` nor ``overwrite`` is set, or both are set.
    """
    found = existing_checkpoints(output)
    refuse_to_replace_run(output, found, resume, overwrite, "checkpoints of an earlier run")
    return found


# --------------------------------------------------------------------------------------- RNG
def rng_state() -> dict[str, Any]:
    """Every global RNG state (torch, CUDA, numpy, python) as tensors and plain numbers."""
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64).copy()),
        "numpy_pos": int(np_pos),
        "numpy_has_gauss": int(np_has_gauss),
        "numpy_cached_gaussian": float(np_gauss),
        "python_version": int(py_version),
        "python_internal": torch.tensor(py_internal, dtype=torch.int64),
        "python_gauss": py_gauss,
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the RNG states saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(
        (
            "MT19937",
            state["numpy_keys"].numpy().astype(np.uint32),
            int(state["numpy_pos"]),
            int(state["numpy_has_gauss"]),
            float(state["numpy_cached_gaussian"]),
        )
    )
    random.setstate(
        (int(state["python_version"]), tuple(int(v) for v in state["python_internal"].tolist()), state["python_gauss"])
    )
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and python."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


# --------------------------------------------------------------------------------------- resume checks
def fingerprint(model: torch.nn.Module, settings: dict[str, Any]) -> dict[str, Any]:
    """What a resumed run must match: ``{"model": <sha256 of config and weights>, "settings": settings}``.

    Call it before training, while ``model`` holds its initial weights: a run rebuilt from the
    same config, seed and data has the same initial weights, hence the same hash.
    """
    from mlpot.models.serialization import model_fingerprint

    return {"model": model_fingerprint(model), "settings": _plain(settings)}


def _plain(value: Any) -> Any:
    """Settings as JSON-like data (tuples become lists), so a saved copy compares equal to a new one."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def without_keys(values: dict[str, Any], dotted: Sequence[str]) -> dict[str, Any]:
    """A copy of nested ``values`` without the ``section.key`` entries named in ``dotted``."""
    out = _plain(values)
    for name in dotted:
        *sections, key = name.split(".")
        node = out
        for section in sections:
            node = node.get(section, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(key, None)
    return out


def changed_settings(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the settings that differ, as ``"trainer.lr: 0.005 in the checkpoint, now 0.01"``."""
    changes = []
    for key in sorted(set(saved) | set(current)):
        name = f"{prefix}{key}"
        old, new = saved.get(key, "<absent>"), current.get(key, "<absent>")
        if isinstance(old, dict) and isinstance(new, dict):
            changes += changed_settings(old, new, prefix=f"{name}.")
        elif old != new:
            changes.append(f"{name}: {old!r} in the checkpoint, now {new!r}")
    return changes


def check_fingerprint(saved: dict[str, Any] | None, current: dict[str, Any] | None, path: str | os.PathLike) -> None:
    """Raise ``ValueError`` naming every difference between a checkpoint's fingerprint and this run's.

    Nothing is checked when either is None (a checkpoint of an older mlpot, or a caller of ``fit``
    that gives no settings).
    """
    if saved is None or current is None:
        return
    changes = changed_settings(saved.get("settings", {}), current.get("settings", {}))
    if changes:
        raise ValueError(
            f"--resume: the settings differ from those of the run that wrote {path}: " + "; ".join(changes)
            + ". Resume with the original settings, or start again with --overwrite"
        )
    if saved.get("model") != current.get("model"):
        raise ValueError(
            f"--resume: the model differs from the one that wrote {path} (the hash of its config and initial "
            f"weights, {str(current.get('model'))[:12]} now against {str(saved.get('model'))[:12]}, changes with the "
            f"training data and the mlpot version). Resume with the original data, or start again with --overwrite"
        )
