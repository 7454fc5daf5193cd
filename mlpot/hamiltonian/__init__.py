"""The Hamiltonian layer: learn an energy H(q, p) and let Hamilton's equations give the motion.

* :class:`HNN` — Hamiltonian Neural Network, ż = J ∇H_θ (Greydanus et al., NeurIPS 2019).
* :class:`NeuralODEBaseline` — the unconstrained baseline, ż = f_θ(z).
* :class:`PortHamiltonianNN` — ż = (J − R)∇H_θ + G u with R = LLᵀ ⪰ 0 and J skew by construction;
  :class:`DampedOscillatorNN` — its special case with friction softplus(θ) > 0 on the momenta.
* :mod:`~mlpot.hamiltonian.integrators` — RK4, leapfrog (velocity Verlet), symplectic Euler and
  implicit midpoint on batches of states.
* :mod:`~mlpot.hamiltonian.systems` — mass-spring, pendulum, two-body and Duffing data.
* :mod:`~mlpot.hamiltonian.training` — the loss and batches for :func:`mlpot.training.loop.fit`.
* :mod:`~mlpot.hamiltonian.experiments` — the classic benchmark and ``mlpot hnn SYSTEM``.
* :mod:`~mlpot.hamiltonian.discovery` — symbolic H from trajectories (:func:`discover`).
* :mod:`~mlpot.hamiltonian.koopman` — Koopman spectra by EDMD (:func:`edmd`).
* :mod:`~mlpot.hamiltonian.afm` — the AFM cantilever: DMT ground truth, a port-Hamiltonian model,
  quality factor, resonance curves and frequency shift.

States are z = (q, p) of shape [batch, 2*dim]; see :mod:`mlpot.hamiltonian.state` and
``docs/hamiltonian.md``.
"""

from mlpot.hamiltonian import afm, discovery, integrators, koopman
from mlpot.hamiltonian.discovery import discover
from mlpot.hamiltonian.hnn import HNN, NeuralODEBaseline
from mlpot.hamiltonian.koopman import edmd
from mlpot.hamiltonian.port import DampedOscillatorNN, PortHamiltonianNN
from mlpot.hamiltonian.state import symplectic_matrix
from mlpot.hamiltonian.systems import SYSTEMS, Duffing, MassSpring, Pendulum, TrajectoryData, TwoBody, get_system
from mlpot.hamiltonian.training import DerivativeBatches, train_vector_field, vector_field_loss

__all__ = [
    "HNN",
    "NeuralODEBaseline",
    "PortHamiltonianNN",
    "DampedOscillatorNN",
    "integrators",
    "afm",
    "discovery",
    "koopman",
    "discover",
    "edmd",
    "symplectic_matrix",
    "SYSTEMS",
    "get_system",
    "MassSpring",
    "Pendulum",
    "TwoBody",
    "Duffing",
    "TrajectoryData",
    "DerivativeBatches",
    "train_vector_field",
    "vector_field_loss",
]
