"""The quantum side: spin ground states with neural quantum states, and Schrödinger networks.

* :mod:`~mlpot.quantum.spins` — transverse-field Ising and Heisenberg (XXZ) models on chains and
  square lattices; sparse Hamiltonians, exact ground energies by Lanczos
  (:func:`~mlpot.quantum.spins.exact_ground_energy`), matrix-free local energies, and the
  Jordan–Wigner and Bethe-ansatz closed forms.
* :mod:`~mlpot.quantum.nqs` — variational Monte Carlo with neural quantum states
  (:func:`~mlpot.quantum.nqs.ground_state`); the ansätze (:mod:`~mlpot.quantum.ansatz`), the
  Metropolis sampler (:mod:`~mlpot.quantum.sampling`) and SR / Adam (:mod:`~mlpot.quantum.sr`).
* :mod:`~mlpot.quantum.waves` — plane-wave networks that solve the free Schrödinger equation
  exactly (:func:`~mlpot.quantum.waves.free_packet`);
  :mod:`~mlpot.quantum.pinn` — physics-informed solvers for a potential V(x) built on them.

See ``docs/quantum.md``.
"""

from mlpot.quantum import ansatz, nqs, pinn, sampling, spins, sr, waves
from mlpot.quantum.nqs import GroundStateResult, ground_state
from mlpot.quantum.spins import exact_ground_energy
from mlpot.quantum.waves import PlaneWaveNetwork, free_packet

__all__ = ["ansatz", "nqs", "pinn", "sampling", "spins", "sr", "waves", "GroundStateResult", "ground_state",
           "exact_ground_energy", "PlaneWaveNetwork", "free_packet"]
