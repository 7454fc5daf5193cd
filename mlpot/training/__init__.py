"""Training of mlpot models.

* :mod:`mlpot.training.loop` — the one generic loop (:func:`fit`, :class:`LoopConfig`), shared by
  interatomic potentials and Hamiltonian networks.
* :mod:`mlpot.training.losses`, :mod:`~mlpot.training.metrics`, :mod:`~mlpot.training.trainer` —
  energy/force/stress losses, error metrics and the potential trainer built on the loop.
* :mod:`mlpot.training.config` — the YAML configuration of ``mlpot train``.
"""

from mlpot.training.loop import FitResult, LoopConfig, TrainingInterrupted, fit, load_checkpoint

__all__ = ["FitResult", "LoopConfig", "TrainingInterrupted", "fit", "load_checkpoint"]
