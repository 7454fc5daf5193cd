"""Systems with a known closed-form Hamiltonian, to score :func:`mlpot.hamiltonian.discovery.discover` against.

Each :class:`ReferenceProblem` holds its law as text, H and ∂H/∂q, the true {term: coefficient},
the library to search, initial states and the sampling; :meth:`ReferenceProblem.simulate` gives
trajectories with their exact flow. Used by the tests and ``scripts/discovery_benchmarks.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from mlpot.hamiltonian.discovery import Term

__all__ = ["ReferenceProblem", "REFERENCE_PROBLEMS", "add_noise"]

_DTYPE = torch.float64


@dataclass(frozen=True)
class ReferenceProblem:
    """A system with a known closed-form H to score discovery against: its law as text, H and ∂H/∂q
    (torch, (q [n, d], p [n, d]) → [n] and [n, d]; ∂H/∂p = p for all), the true {term: coefficient},
    the library to search, initial states [n_traj, 2d], and the sampling (dt, n_steps)."""

    name: str
    law: str
    hamiltonian: Callable
    dH_dq: Callable
    true_terms: dict
    library: object
    initial_states: tuple
    dt: float
    n_steps: int

    def simulate(self, substeps: int = 4):
        """Trajectories by leapfrog at dt/substeps with their exact flow: q, p, dq_dt, dp_dt, [n_traj, n_steps, d].

        The flow (q̇, ṗ) = (p, −∂H/∂q) is evaluated exactly at each sampled state, so the pairs
        (state, flow) are exact whatever the integration error of the path.
        """
        from mlpot.hamiltonian.integrators import leapfrog

        z0 = torch.tensor(self.initial_states, dtype=_DTYPE)
        d = z0.shape[-1] // 2
        path = leapfrog((self.dH_dq, lambda q, p: p), z0, self.dt / substeps, (self.n_steps - 1) * substeps)
        q, p = path[::substeps].transpose(0, 1).split(d, dim=-1)  # [n_traj, n_steps, d] each
        dp = -self.dH_dq(q.reshape(-1, d), p.reshape(-1, d)).reshape(q.shape)
        return q.numpy(), p.numpy(), p.numpy().copy(), dp.numpy()


def add_noise(x: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """x plus Gaussian noise of standard deviation ``fraction`` × the std of each coordinate [..., d]."""
    scale = x.reshape(-1, x.shape[-1]).std(0)
    return x + fraction * scale * rng.standard_normal(x.shape)


def _inverse_r(q, p):
    return 1.0 / torch.linalg.norm(q, dim=-1)


def _henon_heiles_force(q, p):  # ∂H/∂q
    return torch.stack([q[:, 0] + 2 * q[:, 0] * q[:, 1], q[:, 1] + q[:, 0] ** 2 - q[:, 1] ** 2], -1)


REFERENCE_PROBLEMS = {
    "pendulum": ReferenceProblem(
        "pendulum", "H = p^2/2 - cos(q)", lambda q, p: 0.5 * p[:, 0] ** 2 - torch.cos(q[:, 0]),
        lambda q, p: torch.sin(q), {"p^2": 0.5, "cos(q)": -1.0}, "poly4+trig",
        tuple((a, 0.0) for a in (0.5, 1.0, 1.5, 2.0, 2.5, -0.8, -1.8, -2.3)), 0.05, 400),
    "duffing": ReferenceProblem(
        "duffing", "H = p^2/2 + q^2/2 + q^4/4",
        lambda q, p: 0.5 * p[:, 0] ** 2 + 0.5 * q[:, 0] ** 2 + 0.25 * q[:, 0] ** 4, lambda q, p: q + q**3,
        {"q^2": 0.5, "p^2": 0.5, "q^4": 0.25}, "poly4+trig",
        tuple((a, 0.0) for a in (0.3, 0.6, 0.9, 1.2, 1.5, -0.5, -1.0, -1.4)), 0.05, 400),
    "henon-heiles": ReferenceProblem(
        "henon-heiles", "H = (p1^2 + p2^2 + q1^2 + q2^2)/2 + q1^2*q2 - q2^3/3",
        lambda q, p: 0.5 * (p**2 + q**2).sum(-1) + q[:, 0] ** 2 * q[:, 1] - q[:, 1] ** 3 / 3, _henon_heiles_force,
        {"q1^2": 0.5, "q2^2": 0.5, "p1^2": 0.5, "p2^2": 0.5, "q1^2*q2": 1.0, "q2^3": -1 / 3}, "poly4",
        ((0.0, 0.1, 0.45, 0.0), (0.2, -0.1, 0.3, 0.25), (-0.3, 0.2, 0.1, -0.3), (0.1, 0.4, -0.2, 0.1),
         (0.35, 0.0, 0.0, 0.3), (-0.1, -0.25, 0.3, 0.2)), 0.1, 500),
    "kepler": ReferenceProblem(
        "kepler", "H = (p1^2 + p2^2)/2 - 1/r", lambda q, p: 0.5 * (p**2).sum(-1) - _inverse_r(q, p),
        lambda q, p: q / torch.linalg.norm(q, dim=-1, keepdim=True) ** 3,
        {"p1^2": 0.5, "p2^2": 0.5, "1/r": -1.0}, ("poly2", Term("1/r", _inverse_r)),
        ((1.0, 0.0, 0.0, 1.2), (0.0, 1.5, -0.7, 0.0), (-1.2, 0.3, 0.1, -0.8), (0.8, 0.8, -0.5, 0.6)), 0.02, 600),
}
