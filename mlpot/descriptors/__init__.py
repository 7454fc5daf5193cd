"""Descriptors of an atom's neighbourhood: scalars (0e) and pseudoscalars (0o).

:class:`Descriptor` (:mod:`.descriptor`) turns edge vectors into, per atom,

* scalars: neighbour densities c_{k00}, the power spectrum p_{kk'l} (three-body) and the
  bispectrum b_{k,(l1 l2 l3)} (four-body) (:mod:`.invariants`), invariant under rotations,
  translations, permutations and mirrors;
* pseudoscalars: triple products of the l = 1 density channels (:mod:`.chirality`),
  invariant under proper rotations and odd under mirrors.

:func:`mlpot.models.describe` gives the raw descriptors of a model for inspection and tests
(``mlpot.descriptors.describe`` still works, deprecated: descriptors sit below models).
"""

from __future__ import annotations

import importlib
import warnings

from mlpot.descriptors.descriptor import Descriptor

__all__ = ["Descriptor"]


def __getattr__(name: str):
    # A deprecated alias, resolved at call time through importlib: a module-level import of
    # mlpot.models here would run the import cycle descriptors ↔ models that moving it removed.
    if name == "describe":
        warnings.warn(
            "mlpot.descriptors.describe is deprecated; use mlpot.models.describe", DeprecationWarning, stacklevel=2
        )
        return importlib.import_module("mlpot.models.atomistic").describe
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
