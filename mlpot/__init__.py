"""mlpot: machine-learned interatomic potentials built on Hamiltonian mechanics.

Public entry points:

* :func:`load_model`, :func:`save_model` — safe model files (JSON config + tensors);
* :class:`MLPotCalculator` — use a model from any ASE script (:mod:`mlpot.integrations.ase`);
* :class:`mlpot.models.Potential` — the potential contract; :mod:`mlpot.models.registry` names every model class;
* :mod:`mlpot.data`, :mod:`mlpot.neighbors` — the AtomicData contract and neighbour lists.
"""

__version__ = "0.1.0"

from mlpot.integrations.ase import MLPotCalculator
from mlpot.models.serialization import load_model, save_model

__all__ = ["MLPotCalculator", "__version__", "load_model", "save_model"]
