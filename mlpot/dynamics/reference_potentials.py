"""Deprecated location of the analytic reference potentials: they live in :mod:`mlpot.models.reference`.

``from mlpot.dynamics.reference_potentials import LennardJones`` keeps working, with a
DeprecationWarning on first import of this module.
"""

import warnings

from mlpot.models.reference import HarmonicSprings, LennardJones

__all__ = ["HarmonicSprings", "LennardJones"]

warnings.warn(
    "mlpot.dynamics.reference_potentials is deprecated; import LennardJones and HarmonicSprings "
    "from mlpot.models.reference",
    DeprecationWarning,
    stacklevel=2,
)
