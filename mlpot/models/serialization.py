"""Save and load models safely: a JSON config plus the weights as plain tensors.

A model file is a ``torch.save`` archive holding only strings and tensors::

    {"format": "mlpot-model", "format_version": 1, "class": "DescriptorModel", "model": "descriptor",
     "config": "<JSON>", "metadata": "<JSON>", "state_dict": {name: tensor}}

``model`` is the registry name (:mod:`mlpot.models.registry`) through which the model is rebuilt,
``cls(**config)``; ``class`` is the Python class name, which files written before the registry
carry alone (they still load: the class name is looked up among the registered classes).

plus ``"training_min_distances": "<JSON>"`` when the model records the shortest interatomic
distance per element pair of its training data (files without it load with None).

It is read with ``torch.load(..., weights_only=True)``, which refuses any pickled object, so a
malicious file cannot execute code. Files are written through :func:`mlpot.files.atomic_write`
(temporary file in the same folder, fsync, rename, fsync of the folder), so an interrupted save
or a full disk never leaves a half-written model behind.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from torch import nn

from mlpot.files import atomic_torch_save, safe_torch_load
from mlpot.models import registry
from mlpot.models.committee import Committee

FORMAT = "mlpot-model"
FORMAT_VERSION = 1


def save_model(model: nn.Module, path: str | os.PathLike, metadata: dict | None = None) -> Path:
    """Write ``model`` (a registered model, :mod:`mlpot.models.registry`, or a Committee of them)
    to ``path``; returns the path.

    Args:
        model: the model; it must provide ``config()``.
        path: destination file (conventionally ``*.pt``).
        metadata: optional JSON-serialisable information kept with the model (training split,
            units, data provenance), read back with :func:`read_metadata`.
    """
    members = list(model.members) if isinstance(model, Committee) else [model]
    for member in members:
        if registry.name_of(member) is None:
            raise TypeError(
                f"cannot save a {type(member).__name__}: not a registered model (known: "
                f"{', '.join(registry.names())}); register its class with mlpot.models.registry.register"
            )
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "class": type(model).__name__,
        "config": json.dumps(model.config()),
        "metadata": json.dumps(metadata or {}),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    if not isinstance(model, Committee):
        payload["model"] = registry.name_of(model)
    distances = getattr(model, "training_min_distances", None)
    if distances is not None:
        payload["training_min_distances"] = json.dumps({str(k): float(v) for k, v in distances.items()})
    path = Path(path)
    atomic_torch_save(payload, path)
    return path


def model_fingerprint(model: nn.Module) -> str:
    """SHA-256 (hex) of a model's class, ``config()`` and weights: equal exactly for identical models.

    Used by resumed runs (training and MD) to check that they continue with the model that wrote
    the checkpoint. An ASE calculator (no weights) is hashed by its class and parameters.
    """
    digest = hashlib.sha256(type(model).__name__.encode())
    if isinstance(model, nn.Module):
        config = model.config() if callable(getattr(model, "config", None)) else {}
    else:  # an ASE calculator: its parameters dict is the config
        config = dict(getattr(model, "parameters", {}) or {})
    digest.update(json.dumps(config, sort_keys=True, default=repr).encode())
    if isinstance(model, nn.Module):
        for name, tensor in sorted(model.state_dict().items()):
            value = tensor.detach().cpu().contiguous().reshape(-1)
            digest.update(f"{name}:{value.dtype}:{tuple(tensor.shape)}".encode())
            digest.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()


def _read_payload(path: str | os.PathLike) -> dict:
    path = Path(path)
    payload = safe_torch_load(path, "mlpot model file")
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
    """Construct an untrained model from its ``config()`` dict.

    Args:
        name: a registry name (``"descriptor"``, ``"equivariant"``, …), a registered class's
            Python name (``"DescriptorModel"``, as model files and committee configs store it),
            or ``"Committee"``.
        config: the model's ``config()``.
    """
    if name == "Committee":
        return Committee([build_model(m.get("model") or m["class"], m["config"]) for m in config["members"]])
    cls = registry.get(name) if name in registry.names() else registry.class_named(name)
    if cls is None:
        raise ValueError(
            f"unknown model class {name!r}; known models: {', '.join(registry.names())} (a model defined "
            "outside mlpot must be registered, by importing its module, before its file is loaded)"
        )
    return cls(**config)


def load_model(path: str | os.PathLike) -> nn.Module:
    """Load a model written by :func:`save_model` (never unpickles anything)."""
    payload = _read_payload(path)
    model = build_model(payload.get("model") or payload["class"], json.loads(payload["config"]))
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as error:
        raise ValueError(f"{path}: weights do not match the saved config: {str(error).splitlines()[0]}") from None
    distances = payload.get("training_min_distances")
    set_training_min_distances(model, json.loads(distances) if distances else None)
    model.eval()
    return model


def set_training_min_distances(model: nn.Module, distances: dict[str, float] | None) -> None:
    """Set ``training_min_distances`` (Å, keys like ``"H-O"``) on a model and on each committee member."""
    value = None if distances is None else {str(k): float(v) for k, v in distances.items()}
    model.training_min_distances = value
    for member in model.members if isinstance(model, Committee) else []:
        member.training_min_distances = None if value is None else dict(value)
