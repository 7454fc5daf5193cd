"""Training of mlpot models.

* :mod:`mlpot.training.loop` — the one generic loop (:func:`fit`, :class:`LoopConfig`), shared by
  interatomic potentials and Hamiltonian networks.
* :mod:`mlpot.training.losses`, :mod:`~mlpot.training.metrics`, :mod:`~mlpot.training.trainer` —
  energy/force/stress losses, error metrics and the potential trainer built on the loop.
* :mod:`mlpot.training.config` — the YAML configuration of ``mlpot train``.
* :mod:`mlpot.training.checkpoints`, :mod:`~mlpot.training.ema` — checkpoint files and resume
  checks, and the moving average of the weights, used by the loop.
* :mod:`mlpot.training.data_checks` — labels, cutoff and units of a training set, checked before
  training, and the shortest distance per element pair that a model records.
"""

from mlpot.training.loop import FitResult, LoopConfig, TrainingInterrupted, fit, load_checkpoint

__all__ = ["FitResult", "LoopConfig", "TrainingInterrupted", "fit", "load_checkpoint"]
