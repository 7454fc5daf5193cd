"""Variational wavefunctions ψ_θ(σ) of spin-½ configurations: RBMs and a feed-forward network.

Every ansatz is a ``torch.nn.Module`` with **real** parameters whose ``forward(spins)`` takes
[batch, N] configurations (±1) and returns log ψ [batch]: real for a positive wavefunction,
complex when it carries a phase (complex RBM, Marshall sign). Complex weights are stored as
their real and imaginary parts, so one real-parameter optimiser (SR or Adam) serves all.

* :class:`RBM` — restricted Boltzmann machine (Carleo & Troyer, Science 355, 602 (2017)),
  log ψ = Σ_i a s_i + Σ_f,t log cosh(b_f + Σ_i W_fi s_{T_t(i)}). With a list of lattice
  translations T_t it is their *symmetric* RBM: α feature filters shared by all translations
  (α(N+1)+1 parameters instead of N + αN + αN²), and ψ is translation invariant by construction.
  Without translations it is the dense RBM.
* :class:`FeedForward` — log ψ = Σ_j log cosh(W₂ tanh(W₁ s + b₁) + b₂)_j, a two-layer network.

The Marshall sign rule (``sublattice`` given): for the Heisenberg antiferromagnet on a bipartite
lattice the ground state has sign (−1)^(number of up spins on sublattice A); the ansatz then
models only the positive amplitude and adds iπ n_A to log ψ.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

__all__ = ["RBM", "FeedForward", "lattice_translations"]


def lattice_translations(shape: tuple[int, ...]) -> np.ndarray:
    """[n_translations, N] site permutations of a periodic chain or square lattice.

    Row t maps site i to the site T_t(i) it is moved to, for every translation of the lattice.
    """
    index = np.arange(int(np.prod(shape))).reshape(shape)
    shifts = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).reshape(-1, len(shape))
    return np.stack([np.roll(index, tuple(shift), axis=tuple(range(len(shape)))).reshape(-1) for shift in shifts])


class _Ansatz(nn.Module):
    """Shared input checks and the Marshall sign."""

    def __init__(self, n_sites: int, sublattice=None, dtype=torch.float64):
        super().__init__()
        self.n_sites = int(n_sites)
        self.dtype = dtype
        mask = None if sublattice is None else torch.as_tensor(np.asarray(sublattice) == 0, dtype=dtype)
        if mask is not None and mask.shape != (self.n_sites,):
            raise ValueError(f"sublattice must have shape [{self.n_sites}], got {tuple(mask.shape)}")
        self.register_buffer("sublattice_a", mask)

    def _check(self, spins: torch.Tensor) -> torch.Tensor:
        if spins.ndim != 2 or spins.shape[1] != self.n_sites:
            raise ValueError(f"spins must have shape [batch, {self.n_sites}], got {tuple(spins.shape)}")
        return spins.to(self.dtype)

    def _with_sign(self, log_amplitude: torch.Tensor, spins: torch.Tensor) -> torch.Tensor:
        if self.sublattice_a is None:
            return log_amplitude
        n_up_a = ((spins > 0).to(self.dtype) * self.sublattice_a).sum(1)
        # exp(iπ n) = (−1)^n; only n mod 2 matters, which keeps the phase small.
        return torch.complex(log_amplitude, math.pi * torch.remainder(n_up_a, 2.0))


def _log_cosh(x: torch.Tensor) -> torch.Tensor:
    """log cosh x, stable for large |x| (real or complex)."""
    if torch.is_complex(x):
        # log cosh z = z' + log(1 + e^{−2z'}) − log 2 with z' = ±z so that Re z' ≥ 0 (cosh is even)
        z = torch.where(x.real < 0, -x, x)
        return z + torch.log1p(torch.exp(-2.0 * z)) - math.log(2.0)
    return torch.abs(x) + torch.log1p(torch.exp(-2.0 * torch.abs(x))) - math.log(2.0)


class RBM(_Ansatz):
    """Restricted Boltzmann machine wavefunction (see the module docstring).

    Args:
        n_sites: N.
        alpha: hidden-unit density: α·N hidden units (dense) or α filters (symmetric).
        translations: [n_translations, N] permutations (:func:`lattice_translations`) for the
            symmetric RBM, or None for the dense one.
        complex_parameters: complex weights (an amplitude and a phase); else ψ > 0 (times the
            Marshall sign when ``sublattice`` is given).
        sublattice: [N] 0/1 colouring for the Marshall sign, or None.
        init_scale: standard deviation of the initial weights (small: start near ψ = const).
        seed: initialisation seed.
    """

    def __init__(self, n_sites: int, alpha: int = 2, translations=None, complex_parameters: bool = False,
                 sublattice=None, init_scale: float = 0.01, seed: int = 0, dtype=torch.float64):
        super().__init__(n_sites, sublattice, dtype)
        if int(alpha) < 1:
            raise ValueError(f"alpha must be a positive integer, got {alpha}")
        self.alpha, self.complex_parameters = int(alpha), bool(complex_parameters)
        generator = torch.Generator().manual_seed(seed)
        parts = 2 if complex_parameters else 1
        if translations is None:
            self.register_buffer("translations", None)
            self.register_buffer("inverse_translations", None)
            n_hidden, n_inputs, n_visible = self.alpha * self.n_sites, self.n_sites, self.n_sites
        else:
            translations = torch.as_tensor(np.asarray(translations), dtype=torch.long)
            if translations.ndim != 2 or translations.shape[1] != self.n_sites:
                raise ValueError(f"translations must have shape [n, {self.n_sites}], got {tuple(translations.shape)}")
            self.register_buffer("translations", translations)
            self.register_buffer("inverse_translations", translations.argsort(1))
            # translation invariance forces one visible bias for all sites
            n_hidden, n_inputs, n_visible = self.alpha, self.n_sites, 1

        def init(*shape):
            return nn.Parameter(init_scale * torch.randn(parts, *shape, generator=generator, dtype=dtype))

        self.visible_bias, self.hidden_bias, self.weights = init(n_visible), init(n_hidden), init(n_hidden, n_inputs)

    def _value(self, parameter: torch.Tensor) -> torch.Tensor:
        return torch.complex(parameter[0], parameter[1]) if self.complex_parameters else parameter[0]

    def forward(self, spins: torch.Tensor) -> torch.Tensor:
        s = self._check(spins)
        a, b, w = self._value(self.visible_bias), self._value(self.hidden_bias), self._value(self.weights)
        if self.complex_parameters:
            s = s.to(w.dtype)
        if self.translations is None:
            theta = s @ w.T + b  # [batch, αN]
            visible = s @ a
        else:
            # θ_ft = Σ_i W_fi s_{T_t(i)} = Σ_j W_{f,T_t⁻¹(j)} s_j: expand the filters into the
            # equivalent dense matrix [α·n_translations, N] once, then one matmul (gathering the
            # shifted inputs instead would make a [batch, n_translations, N] tensor).
            dense = w[:, self.inverse_translations].reshape(-1, self.n_sites)
            theta = s @ dense.T + b.repeat_interleave(self.translations.shape[0])
            visible = a[0] * s.sum(1)
        log_amplitude = visible + _log_cosh(theta).flatten(1).sum(1)
        if self.complex_parameters:
            return log_amplitude if self.sublattice_a is None else log_amplitude + self._with_sign(
                torch.zeros_like(log_amplitude.real), spins)
        return self._with_sign(log_amplitude, spins)


class FeedForward(_Ansatz):
    """Two-layer feed-forward wavefunction, log ψ = Σ_j log cosh(W₂ tanh(W₁ s + b₁) + b₂)_j.

    ψ > 0 (times the Marshall sign when ``sublattice`` is given); ``alpha`` sets both hidden widths
    to α·N.
    """

    def __init__(self, n_sites: int, alpha: int = 2, sublattice=None, init_scale: float = 0.05, seed: int = 0,
                 dtype=torch.float64):
        super().__init__(n_sites, sublattice, dtype)
        if int(alpha) < 1:
            raise ValueError(f"alpha must be a positive integer, got {alpha}")
        generator = torch.Generator().manual_seed(seed)
        width = int(alpha) * self.n_sites

        def init(*shape):
            return nn.Parameter(init_scale * torch.randn(*shape, generator=generator, dtype=dtype))

        self.w1, self.b1, self.w2, self.b2 = init(width, self.n_sites), init(width), init(width, width), init(width)

    def forward(self, spins: torch.Tensor) -> torch.Tensor:
        s = self._check(spins)
        hidden = torch.tanh(s @ self.w1.T + self.b1)
        return self._with_sign(_log_cosh(hidden @ self.w2.T + self.b2).sum(1), spins)
