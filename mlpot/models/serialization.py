"""Save and load models safely: a JSON config plus the weights as plain tensors.

A model file is a ``torch.save`` archive holding only strings and tensors::

    {"format": "mlpot-model", "format_version": 1, "class": "DescriptorModel",
     "config": "<JSON>", "metadata": "<JSON>", "state_dict": {name: tensor}}

It is read with ``torch.load(..., weights_only=True)``, which refuses any pickled object, so a
malicious file cannot execute code. Files are written atomically (temporary file, then
rename), so an interrupted save never leaves a half-written model behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from torch import nn

FORMAT = "mlpot-model"
FORMAT_VERSION = 1


def _model_classes() -> dict[str, type]:
    from mlpot.models.atomistic import DescriptorModel
    from mlpot.models.committee import Committee

    return {"DescriptorModel": DescriptorModel, "Committee": Committee}


def save_model(model: nn.Module, path: str | os.PathLike, metadata: dict | None = None) -> Path:
    """Write ``model`` (a DescriptorModel or Committee) to ``path``; returns the path.

    Args:
        model: the model; it must provide ``config()``.
        path: destination file (conventionally ``*.pt``).
        metadata: optional JSON-serialisable information kept with the model (training split,
            units, data provenance), read back with :func:`read_metadata`.
    """
    name = type(model).__name__
    if name not in _model_classes():
        raise TypeError(f"cannot save a {name}; known model classes: {sorted(_model_classes())}")
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "class": name,
        "config": json.dumps(model.config()),
        "metadata": json.dumps(metadata or {}),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(payload, path)
    return path


def atomic_torch_save(payload: dict, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        torch.save(payload, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _read_payload(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt, truncated or unsafe files
        raise ValueError(
            f"{path} is not a readable mlpot model file (corrupt, truncated, or containing objects other than "
            f"tensors, which are refused for safety): {type(error).__name__}: {str(error).splitlines()[0][:200]}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not an mlpot model file (no '{FORMAT}' header)")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{path} has model format version {version}, newer than this mlpot reads ({FORMAT_VERSION}); upgrade mlpot"
        )
    return payload


def read_metadata(path: str | os.PathLike) -> dict:
    """The metadata dict saved with a model."""
    return json.loads(_read_payload(path).get("metadata") or "{}")


def build_model(name: str, config: dict) -> nn.Module:
    """Construct an untrained model of class ``name`` from its ``config()`` dict."""
    classes = _model_classes()
    if name not in classes:
        raise ValueError(f"unknown model class {name!r}; known: {sorted(classes)}")
    if name == "Committee":
        return classes[name]([build_model(m["class"], m["config"]) for m in config["members"]])
    return classes[name](**config)


def load_model(path: str | os.PathLike) -> nn.Module:
    """Load a model written by :func:`save_model` (never unpickles anything)."""
    payload = _read_payload(path)
    model = build_model(payload["class"], json.loads(payload["config"]))
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as error:
        raise ValueError(f"{path}: weights do not match the saved config: {str(error).splitlines()[0]}") from None
    model.eval()
    return model
