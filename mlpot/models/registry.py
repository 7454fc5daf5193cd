"""The model registry: a name for every potential class, so that a new model is one file.

Training configs (``model: {type: NAME}``), model files and committees name a model class by
its registry name; this module maps the name to the class. A model class registers itself::

    from mlpot.models.registry import register

    @register("morse")
    class MorsePotential(Potential):
        def __init__(self, elements, cutoff=5.0, chirality="even", dtype=torch.float64, depth=1.0): ...
        def config(self) -> dict: ...          # JSON-able constructor kwargs (weights aside)
        def atomic_energies(self, data, edge_index, vectors, training=True): ...

What a registered class must provide (the trainer, :func:`mlpot.save_model` and
:func:`mlpot.load_model` rely on nothing else):

* a constructor ``cls(elements, cutoff=..., chirality=..., dtype=..., **hyperparameters)``:
  ``elements`` a list of atomic numbers or symbols, ``cutoff`` in Å, ``chirality`` one of
  ``even``, ``augment``, ``free``, ``dtype`` a torch dtype or its name; further keyword
  arguments are the hyper-parameters a config may set;
* ``config()``: the JSON-serialisable keyword arguments that rebuild the model, so that
  ``cls(**model.config())`` followed by ``load_state_dict`` restores it exactly;
* the :class:`~mlpot.models.potential.Potential` contract (``atomic_energies``, ``cutoff``).

Optional, called by the trainer when present: ``set_energy_statistics(reference_energies,
scale)`` and ``fit_descriptor_statistics(data)``.

mlpot's own models register when :mod:`mlpot.models` is imported, which Python does before this
module (its package), so a lookup always finds them; this module imports no model module, which
would make a cycle (each model module imports :func:`register` from here). Models that live in a
package above ``models`` (the atomistic diabatic model of :mod:`mlpot.nonadiabatic`) are named in
:data:`PLUGINS` and imported by name on first lookup, as an entry point would be: ``models`` keeps
no import edge to a package above it, and ``import mlpot`` stays light.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

__all__ = ["register", "unregister", "get", "names", "name_of", "class_named", "load_plugins", "PLUGINS"]

_REGISTRY: dict[str, type] = {}

#: Registry name → the module that registers it, for mlpot's models outside :mod:`mlpot.models`.
PLUGINS: dict[str, str] = {"diabatic": "mlpot.nonadiabatic.atomistic"}


def register(name: str) -> Callable[[type], type]:
    """Class decorator: register a potential class under ``name`` and set its ``registry_name``.

    Raises:
        ValueError: ``name`` is empty, or already taken by another class.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a model's registry name must be a non-empty string, got {name!r}")

    def decorate(cls: type) -> type:
        existing = _REGISTRY.get(name)
        if existing is not None and existing is not cls:
            where = f"{existing.__module__}.{existing.__qualname__}"
            raise ValueError(f"model name {name!r} is already registered to {where}")
        if not callable(getattr(cls, "config", None)):
            raise TypeError(f"{cls.__name__} cannot be registered: it has no config() method")
        cls.registry_name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def unregister(name: str) -> None:
    """Remove ``name`` from the registry (tests that register a model of their own clean up with it)."""
    _REGISTRY.pop(name, None)


def get(name: str) -> type:
    """The class registered under ``name``.

    Raises:
        ValueError: no model of that name (the message lists the known names).
    """
    if name not in _REGISTRY and name in PLUGINS:
        importlib.import_module(PLUGINS[name])
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(names())}")
    return _REGISTRY[name]


def names() -> list[str]:
    """The registered names (plug-ins included, whether imported yet or not), sorted."""
    return sorted(set(_REGISTRY) | set(PLUGINS))


def name_of(model_or_class: object) -> str | None:
    """The registry name of a model or model class, or None when its class is not registered."""
    cls = model_or_class if isinstance(model_or_class, type) else type(model_or_class)
    name = getattr(cls, "registry_name", None)
    return name if name is not None and _REGISTRY.get(name) is cls else None


def class_named(class_name: str) -> type | None:
    """The registered class whose ``__name__`` is ``class_name`` (model files before the registry
    stored class names, e.g. ``"DescriptorModel"``), or None."""
    for cls in _REGISTRY.values():
        if cls.__name__ == class_name:
            return cls
    return None


def load_plugins() -> None:
    """Import every plug-in module, so that every registered class is in the registry."""
    for module in PLUGINS.values():
        importlib.import_module(module)

