"""Training of mlpot models.

* :mod:`mlpot.training.loop` — the one generic loop, :func:`fit` → :func:`~mlpot.training.loop.train_one_epoch`
  → :func:`~mlpot.training.loop.take_step` (:class:`LoopConfig`), shared by interatomic potentials and
  Hamiltonian networks; :mod:`~mlpot.training.schedules` (learning rates),
  :mod:`~mlpot.training.validation` (epoch metrics, validation), :mod:`~mlpot.training.run_state`
  (what a run carries and checkpoints), :mod:`~mlpot.training.metrics_log` (the metrics CSV).
* :mod:`mlpot.training.checkpoints`, :mod:`~mlpot.training.ema`, :mod:`~mlpot.training.distributed` —
  checkpoint files and resume checks, the moving average of the weights, DDP glue and collectives.
* :mod:`mlpot.training.trainer` — a whole ``mlpot train`` run on top of the loop, with
  :mod:`~mlpot.training.statistics` (reference energies, force scale), :mod:`~mlpot.training.augmentation`
  (mirror images), :mod:`~mlpot.training.losses` / :mod:`~mlpot.training.multistate_loss` (potentials;
  models of several electronic states), :mod:`~mlpot.training.metrics` and :mod:`~mlpot.training.evaluation`.
* :mod:`mlpot.training.config` — the YAML configuration of ``mlpot train`` (its Markdown reference is
  rendered by ``scripts/render_config_docs.py``).
* :mod:`mlpot.training.data_checks` — labels, cutoff and units of a training set, checked before
  training, and the shortest distance per element pair that a model records.
"""

from mlpot.training.loop import FitResult, LoopConfig, TrainingInterrupted, fit, load_checkpoint

__all__ = ["FitResult", "LoopConfig", "TrainingInterrupted", "fit", "load_checkpoint"]
