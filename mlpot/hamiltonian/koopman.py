"""Koopman analysis by extended dynamic mode decomposition (EDMD).

The Koopman operator 𝒦 advances observables, (𝒦g)(x) = g(F(x)), where F is the flow map over one
sampling interval Δt. It is linear even when F is not. EDMD (Williams, Kevrekidis & Rowley,
J. Nonlinear Sci. 25, 1307 (2015)) restricts it to the span of a dictionary ψ(x) = (ψ_1 … ψ_K):
with snapshot pairs (x_k, x_{k+1}) stacked as X = ψ(x_k), Y = ψ(x_{k+1}) ([m, K] each),

    K = argmin ‖X K − Y‖_F = X⁺ Y,                    ψ(F(x)) ≈ ψ(x) K.

An eigenpair K ξ_j = λ_j ξ_j gives an eigenfunction φ_j(x) = ψ(x) ξ_j with φ_j(F(x)) ≈ λ_j φ_j(x).
λ_j are discrete-time eigenvalues; μ_j = log(λ_j)/Δt are the continuous-time ones, whose
imaginary part is a frequency (rad per unit time) and whose negative real part is a decay rate.
Modes v_j express the state in eigenfunctions, x = Σ_j φ_j(x) v_j, which gives the prediction
by the linear lift, x_n = Σ_j λ_j^n φ_j(x_0) v_j.

For a linear system and the linear dictionary ψ(x) = x, EDMD is DMD and exact: a harmonic
oscillator of angular frequency ω gives λ = exp(±iωΔt) to round-off. For a nonlinear system the
dictionary is not invariant under 𝒦, and the spectrum is an approximation that improves with
the dictionary. Periodic orbits give eigenvalues at the fundamental and its harmonics;
:meth:`KoopmanResult.dominant_frequency` picks the one that carries the most of the state.

Dictionaries: ``"linear"`` (the state), ``"polyN"`` (constant and monomials to degree N),
``"rbfM"`` (constant, the state and M Gaussian radial basis functions centred on data points),
or any callable ``psi(x [m, n]) -> [m, K]`` (numpy). A learned dictionary (a network trained end
to end) is not implemented.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["KoopmanResult", "edmd", "make_dictionary"]


def _monomials(n: int, degree: int) -> Callable[[np.ndarray], np.ndarray]:
    powers = [tuple(c.count(i) for i in range(n))
              for d in range(degree + 1) for c in itertools.combinations_with_replacement(range(n), d)]
    exponents = np.array(powers, dtype=int)  # [K, n]; row 0 is the constant

    def psi(x):
        return np.prod(x[:, None, :] ** exponents[None], axis=-1)

    return psi


def _rbf(x_data: np.ndarray, count: int, seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = x_data[rng.choice(x_data.shape[0], size=min(count, x_data.shape[0]), replace=False)]
    d2 = ((centres[:, None] - centres[None]) ** 2).sum(-1)
    width2 = float(np.median(d2[d2 > 0])) if (d2 > 0).any() else 1.0  # median distance between centres

    def psi(x):
        r2 = ((x[:, None, :] - centres[None]) ** 2).sum(-1)
        return np.concatenate([np.ones((x.shape[0], 1)), x, np.exp(-r2 / width2)], axis=1)

    return psi


def make_dictionary(dictionary, n_features: int, x_data: np.ndarray | None = None) -> Callable:
    """The dictionary ψ as a callable ``[m, n] -> [m, K]`` (see the module docstring)."""
    if callable(dictionary):
        return dictionary
    if not isinstance(dictionary, str):
        raise TypeError(f"dictionary must be a string or a callable, got {type(dictionary).__name__}")
    if dictionary == "linear":
        return lambda x: x
    if dictionary.startswith("poly") and dictionary[4:].isdigit() and 1 <= int(dictionary[4:]) <= 10:
        return _monomials(n_features, int(dictionary[4:]))
    if dictionary.startswith("rbf") and dictionary[3:].isdigit() and int(dictionary[3:]) >= 1:
        if x_data is None:
            raise ValueError("an 'rbfM' dictionary needs data to place its centres")
        return _rbf(x_data, int(dictionary[3:]))
    raise ValueError(f"unknown dictionary {dictionary!r}: use 'linear', 'polyN' (N 1..10), 'rbfM' or a callable")


@dataclass
class KoopmanResult:
    """EDMD spectrum and the linear lift.

    Attributes:
        eigenvalues: [K] complex discrete-time eigenvalues λ_j (per sampling interval dt).
        eigenvectors: [K, K] complex ξ_j as columns (eigenfunctions φ_j = ψ ξ_j).
        modes: [K, n] complex v_j (rows): x = Σ_j φ_j(x) v_j.
        matrix: [K, K] the EDMD matrix K.
        dt: sampling interval (time units of the data).
        psi: the dictionary callable.
        amplitudes: [K] how much of the state each eigenpair carries on the data,
            rms_k|φ_j(x_k)| · ‖v_j‖.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    modes: np.ndarray
    matrix: np.ndarray
    dt: float
    psi: Callable
    amplitudes: np.ndarray

    @property
    def continuous_eigenvalues(self) -> np.ndarray:
        """μ_j = log(λ_j)/dt (principal branch: frequencies up to π/dt are resolved)."""
        with np.errstate(divide="ignore"):
            return np.log(self.eigenvalues.astype(complex)) / self.dt

    @property
    def frequencies(self) -> np.ndarray:
        """Im μ_j: angular frequencies, rad per unit time (± pairs for real data)."""
        return self.continuous_eigenvalues.imag

    @property
    def decay_rates(self) -> np.ndarray:
        """−Re μ_j: decay rates per unit time (positive = decaying)."""
        return -self.continuous_eigenvalues.real

    def eigenfunctions(self, x) -> np.ndarray:
        """φ_j(x) for states x [m, n] → [m, K] complex."""
        return self.psi(np.atleast_2d(np.asarray(x, dtype=float))) @ self.eigenvectors

    def dominant_frequency(self) -> float:
        """The positive frequency whose eigenpair carries the most of the state (the fundamental)."""
        positive = self.frequencies > 1e-12 / self.dt
        if not positive.any():
            raise ValueError("no oscillating eigenvalue (all frequencies are zero)")
        index = np.flatnonzero(positive)[np.argmax(self.amplitudes[positive])]
        return float(self.frequencies[index])

    def dominant_decay_rate(self) -> float:
        """The decay rate of the eigenpair of :meth:`dominant_frequency` (or the strongest real one)."""
        positive = self.frequencies > 1e-12 / self.dt
        pool = np.flatnonzero(positive) if positive.any() else np.arange(len(self.eigenvalues))
        return float(self.decay_rates[pool[np.argmax(self.amplitudes[pool])]])

    def predict(self, x0, steps: int) -> np.ndarray:
        """Linear-lift prediction x_n = Re Σ_j λ_j^n φ_j(x_0) v_j, n = 0..steps: [steps + 1, m, n]."""
        phi0 = self.eigenfunctions(x0)  # [m, K]
        powers = self.eigenvalues[None, :] ** np.arange(steps + 1)[:, None]  # [steps+1, K]
        return np.einsum("tk,mk,kn->tmn", powers, phi0, self.modes).real

    def to_dict(self) -> dict:
        order = np.argsort(-self.amplitudes)
        return {"dt": self.dt,
                "eigenvalues": [[float(v.real), float(v.imag)] for v in self.eigenvalues[order]],
                "frequencies": [float(v) for v in self.frequencies[order]],
                "decay_rates": [float(v) for v in self.decay_rates[order]],
                "amplitudes": [float(v) for v in self.amplitudes[order]]}


def _as_trajectories(snapshots) -> np.ndarray:
    x = np.asarray(snapshots, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[1] < 2:
        raise ValueError(f"snapshots must be [n_steps, n] or [n_traj, n_steps, n] with n_steps >= 2, got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("snapshots contain NaN or inf")
    return x


def edmd(snapshots, dt: float, dictionary="poly3", *, rcond: float | None = None) -> KoopmanResult:
    """Extended dynamic mode decomposition of uniformly sampled trajectories.

    Args:
        snapshots: [n_steps, n] one trajectory or [n_traj, n_steps, n] several (states x, e.g.
            (q, p)), sampled every ``dt``.
        dt: sampling interval (time units of the data); frequencies come out in rad per unit.
        dictionary: ``"linear"``, ``"polyN"``, ``"rbfM"`` or a callable (module docstring).
        rcond: cut-off of small singular values in the least squares (default: numpy's).

    Returns:
        :class:`KoopmanResult`.
    """
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive number, got {dt!r}")
    x = _as_trajectories(snapshots)
    n = x.shape[-1]
    now, nxt = x[:, :-1].reshape(-1, n), x[:, 1:].reshape(-1, n)
    psi = make_dictionary(dictionary, n, now)
    X, Y = psi(now), psi(nxt)
    if X.ndim != 2 or X.shape[0] != now.shape[0]:
        raise ValueError(f"the dictionary must return [m, K], got shape {X.shape}")
    if X.shape[1] > X.shape[0]:
        raise ValueError(f"{X.shape[0]} snapshot pairs are fewer than the {X.shape[1]} dictionary functions")
    matrix = np.linalg.lstsq(X, Y, rcond=rcond)[0]
    eigenvalues, eigenvectors = np.linalg.eig(matrix)
    B = np.linalg.lstsq(X, now, rcond=rcond)[0]  # state from the dictionary, x ≈ ψ(x) B
    modes = np.linalg.solve(eigenvectors, B.astype(complex))
    phi = X @ eigenvectors
    amplitudes = np.sqrt(np.mean(np.abs(phi) ** 2, axis=0)) * np.linalg.norm(modes, axis=1)
    return KoopmanResult(eigenvalues, eigenvectors, modes, matrix, float(dt), psi, amplitudes)
