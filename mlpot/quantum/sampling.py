"""Samples of |ψ(σ)|²: Metropolis chains in parallel, exact enumeration, and error bars.

* :class:`MetropolisSampler` runs ``n_chains`` Markov chains at once, vectorised in torch. A move
  is a single spin flip, or — for models that conserve Sᶻ_total — the exchange of a random up spin
  with a random down spin, which keeps every chain in its magnetisation sector (the zero sector
  for the antiferromagnet). Both proposals are symmetric, so the acceptance is
  min(1, |ψ(σ')/ψ(σ)|²). Chains persist between calls (they stay equilibrated as θ changes
  slowly), and samples are taken one sweep (N moves) apart.
* :func:`enumerate_states` gives every configuration of the relevant sector with its exact
  probability: small systems then have exact expectation values, for testing the gradient and
  SR code without sampling noise.
* :func:`blocking_error` — the standard error of a correlated series' mean by the
  Flyvbjerg–Petersen blocking transformation (J. Chem. Phys. 91, 461 (1989)).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mlpot.quantum.spins import SpinModel, sector_states

__all__ = ["MetropolisSampler", "enumerate_states", "blocking_error", "states_to_spins"]


def states_to_spins(states: np.ndarray, n_sites: int, dtype=torch.float64) -> torch.Tensor:
    """[D] basis integers (bit i set ⇔ s_i = +1) → [D, N] configurations of ±1."""
    bits = (torch.as_tensor(states, dtype=torch.long)[:, None] >> torch.arange(n_sites)) & 1
    return (2 * bits - 1).to(dtype)


def enumerate_states(model: SpinModel, dtype=torch.float64) -> torch.Tensor:
    """Every configuration a sampler of this model can visit: [D, N] (2^N, or the Sᶻ = 0 sector)."""
    if model.n_sites > 24:
        raise ValueError(f"exact enumeration is limited to 24 sites, got {model.n_sites}")
    zero_sector = model.conserves_magnetisation and model.n_sites % 2 == 0
    return states_to_spins(sector_states(model.n_sites, zero_sector), model.n_sites, dtype)


class MetropolisSampler:
    """Parallel Metropolis chains for |ψ|² (see the module docstring).

    Args:
        model: the spin model (decides single flips or exchange moves).
        n_chains: chains run in parallel.
        seed: random seed (the chains' initial states and every move).
        dtype: dtype of the configurations.
    """

    def __init__(self, model: SpinModel, n_chains: int = 512, seed: int = 0, dtype=torch.float64):
        if int(n_chains) < 1:
            raise ValueError(f"n_chains must be positive, got {n_chains}")
        self.model, self.n_chains, self.dtype = model, int(n_chains), dtype
        self.exchange = model.conserves_magnetisation and model.n_sites % 2 == 0
        self.generator = torch.Generator().manual_seed(int(seed))
        n = model.n_sites
        if self.exchange:
            # random configurations with exactly N/2 up spins
            order = torch.rand(self.n_chains, n, generator=self.generator).argsort(1)
            spins = torch.where(order < n // 2, 1.0, -1.0)
        else:
            spins = torch.where(torch.rand(self.n_chains, n, generator=self.generator) < 0.5, 1.0, -1.0)
        self.spins = spins.to(dtype)
        self.accepted, self.proposed = 0, 0

    def _propose(self) -> torch.Tensor:
        """One proposed move per chain: [n_chains, N] new configurations."""
        n, chains = self.model.n_sites, torch.arange(self.n_chains)
        proposal = self.spins.clone()
        if self.exchange:
            # a uniformly random up spin and a uniformly random down spin (the argmax of uniform
            # noise restricted to each set), exchanged: 1/(n_up n_down) both ways, so symmetric
            noise = torch.rand(self.n_chains, n, generator=self.generator)
            up = torch.where(self.spins > 0, noise, -1.0).argmax(1)
            down = torch.where(self.spins < 0, noise, -1.0).argmax(1)
            proposal[chains, up], proposal[chains, down] = -1.0, 1.0
        else:
            site = torch.randint(n, (self.n_chains,), generator=self.generator)
            proposal[chains, site] *= -1.0
        return proposal

    @torch.no_grad()
    def sweep(self, log_psi, n_sweeps: int = 1) -> None:
        """Advance every chain by ``n_sweeps`` × N Metropolis moves."""
        log_current = log_psi(self.spins)
        for _ in range(int(n_sweeps) * self.model.n_sites):
            proposal = self._propose()
            log_proposal = log_psi(proposal)
            log_ratio = 2.0 * (log_proposal.real - log_current.real)  # log |ψ'/ψ|²
            accept = torch.log(torch.rand(self.n_chains, generator=self.generator, dtype=log_ratio.dtype)) < log_ratio
            self.spins = torch.where(accept[:, None], proposal, self.spins)
            log_current = torch.where(accept, log_proposal, log_current)
            self.accepted += int(accept.sum())
            self.proposed += self.n_chains

    @torch.no_grad()
    def sample(self, log_psi, n_samples: int, n_discard_sweeps: int = 2) -> torch.Tensor:
        """Draw about ``n_samples`` configurations: [n_per_chain, n_chains, N], one sweep apart.

        ``n_discard_sweeps`` sweeps are run first to re-equilibrate after a parameter update.
        """
        n_per_chain = max(1, math.ceil(int(n_samples) / self.n_chains))
        self.sweep(log_psi, n_discard_sweeps)
        samples = []
        for _ in range(n_per_chain):
            self.sweep(log_psi, 1)
            samples.append(self.spins)
        return torch.stack(samples)

    @property
    def acceptance(self) -> float:
        """Fraction of moves accepted so far."""
        return self.accepted / max(self.proposed, 1)


def blocking_error(series: np.ndarray) -> float:
    """Standard error of the mean of a correlated time series, by Flyvbjerg–Petersen blocking.

    The series is halved by averaging neighbours until too short; at each level the naive error
    σ/√(n−1) is computed, and the plateau value — here the maximum over levels with at least 32
    blocks, a conservative reading — is returned. For uncorrelated data this is σ/√n.

    Args:
        series: [n] samples in time order (n ≥ 2).
    """
    x = np.asarray(series, dtype=np.float64).reshape(-1)
    if x.size < 2:
        raise ValueError("blocking_error needs at least two samples")
    if not np.all(np.isfinite(x)):
        raise ValueError("blocking_error got NaN or infinite samples")
    errors = []
    while x.size >= 32 or not errors:
        errors.append(math.sqrt(x.var() / (x.size - 1)))
        if x.size < 4:
            break
        x = 0.5 * (x[: x.size // 2 * 2 : 2] + x[1 : x.size // 2 * 2 : 2])
    return max(errors)
