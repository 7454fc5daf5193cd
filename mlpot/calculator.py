"""Deprecated location of the ASE calculator: it lives in :mod:`mlpot.integrations.ase`.

``from mlpot.calculator import MLPotCalculator`` keeps working (with a DeprecationWarning on first
import of this module); ``mlpot.MLPotCalculator`` is the preferred spelling.
"""

import warnings

from mlpot.integrations.ase import MLPotCalculator

__all__ = ["MLPotCalculator"]

warnings.warn(
    "mlpot.calculator is deprecated; import MLPotCalculator from mlpot (or mlpot.integrations.ase)",
    DeprecationWarning,
    stacklevel=2,
)
