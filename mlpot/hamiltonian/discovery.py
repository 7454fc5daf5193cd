"""Symbolic Hamiltonian discovery: find H(q, p) in closed form from trajectories.

H is sought as a sparse combination H = Σ_k c_k θ_k(q, p) of library terms θ_k (monomials of q
and p, cos/sin of q, user-supplied terms such as 1/r). We regress the *flow*, not H itself:

    dq/dt = Σ_k c_k ∂θ_k/∂p,        dp/dt = −Σ_k c_k ∂θ_k/∂q,

which is linear in c. So the design matrix holds the symplectic gradients J∇θ_k of the terms
(by autograd, so any differentiable user term works), and Hamilton's structure is built into the
fit: whatever c comes out, the model conserves its own H. A constant term has zero gradient and
cannot be identified from dynamics; it is never in the library (H is known up to a constant).

The fit is sequentially thresholded least squares (STLSQ, Brunton, Proctor & Kutz, PNAS 2016):
least squares, drop terms whose share of the flow is below a threshold, refit, repeat. The
threshold is chosen by K-fold cross-validation over contiguous blocks of samples with the
one-standard-error rule (the sparsest model whose validation error is within one standard error
of the best). Coefficient errors come from a moving-block bootstrap of the final fit (they do
not include the uncertainty of the term selection).

Not pysindy: SINDy fits each component of ẋ with its own coefficients; here one set is shared
by q̇ and ṗ through the gradients of one scalar (docs/hamiltonian.md says more).

Derivatives, when not given, come from a Savitzky–Golay filter, which also smooths the states
at which the library is evaluated: noise in the regressors (errors in variables) biases least
squares toward zero by about σ²/Var(x), far below 1e-3 after smoothing.

Naming. With one degree of freedom the variables are ``q`` and ``p``; with several, ``q1, q2, …,
p1, p2, …`` (1-based, column order of the input arrays). Monomials are written ``q^2*p``,
``p1^2``; trigonometric terms ``cos(q)``, ``sin(q2)``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

__all__ = ["Term", "DiscoveryResult", "build_library", "discover", "discover_from_model", "estimate_derivatives",
           "stlsq"]

_DTYPE = torch.float64


@dataclass(frozen=True)
class Term:
    """A library term θ(q, p).

    Attributes:
        name: printed name, e.g. ``"1/r"``.
        func: ``(q [n, d], p [n, d]) -> [n]`` on float64 torch tensors; must be differentiable
            (its gradient is taken by autograd).
    """

    name: str
    func: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def variable_names(dim: int) -> list[str]:
    """``["q", "p"]`` for one degree of freedom, else ``["q1", …, "qd", "p1", …, "pd"]``."""
    if dim == 1:
        return ["q", "p"]
    return [f"q{i + 1}" for i in range(dim)] + [f"p{i + 1}" for i in range(dim)]


def _monomial(powers: tuple[int, ...], names: list[str]) -> Term:
    name = "*".join(n if e == 1 else f"{n}^{e}" for n, e in zip(names, powers) if e)

    def func(q, p, powers=powers):
        z = torch.cat([q, p], dim=-1)
        out = torch.ones_like(z[:, 0])
        for i, e in enumerate(powers):
            if e:
                out = out * z[:, i] ** e
        return out

    return Term(name, func)


def _inverse_r(q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """1/|q| over all coordinates: the Kepler (or Coulomb) potential in relative coordinates."""
    return 1.0 / torch.linalg.vector_norm(q, dim=-1)


def build_library(library, dim: int) -> list[Term]:
    """Expand a library specification into terms.

    Args:
        library: a string of ``+``-separated tokens, or a list of tokens and custom terms. Tokens:
            ``polyN`` (all monomials of (q, p) of degree 1..N, no constant), ``trig`` (cos and sin
            of each q), ``1/r`` (1/|q|, the Kepler potential in relative coordinates). Custom terms
            are :class:`Term` or ``(name, func)`` pairs.
        dim: degrees of freedom.

    Returns:
        The terms, without duplicates (by name), in a fixed order.
    """
    items = library.split("+") if isinstance(library, str) else list(library)
    if not items:
        raise ValueError("the library is empty")
    names = variable_names(dim)
    terms: list[Term] = []
    for item in items:
        if isinstance(item, Term):
            terms.append(item)
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) and callable(item[1]):
            terms.append(Term(*item))
        elif isinstance(item, str) and item.strip().startswith("poly") and item.strip()[4:].isdigit():
            degree = int(item.strip()[4:])
            if not 1 <= degree <= 8:
                raise ValueError(f"polynomial degree must be 1..8, got {item!r}")
            for deg in range(1, degree + 1):
                for combo in itertools.combinations_with_replacement(range(2 * dim), deg):
                    terms.append(_monomial(tuple(combo.count(i) for i in range(2 * dim)), names))
        elif isinstance(item, str) and item.strip() == "1/r":
            terms.append(Term("1/r", _inverse_r))
        elif isinstance(item, str) and item.strip() == "trig":
            for i in range(dim):
                terms.append(Term(f"cos({names[i]})", lambda q, p, i=i: torch.cos(q[:, i])))
                terms.append(Term(f"sin({names[i]})", lambda q, p, i=i: torch.sin(q[:, i])))
        else:
            raise ValueError(
                f"unknown library item {item!r}: use 'polyN', 'trig', '1/r', a Term or a (name, func) pair")
    unique = {}
    for term in terms:
        unique.setdefault(term.name, term)
    return list(unique.values())


def _term_gradients(terms: Sequence[Term], q: np.ndarray, p: np.ndarray) -> np.ndarray:
    """∇θ_k for every term: [K, n, 2d] (∂/∂q then ∂/∂p)."""
    qt = torch.as_tensor(q, dtype=_DTYPE).requires_grad_(True)
    pt = torch.as_tensor(p, dtype=_DTYPE).requires_grad_(True)
    out = []
    for term in terms:
        value = term.func(qt, pt)
        if value.shape != (q.shape[0],):
            raise ValueError(f"library term {term.name!r} returned shape {tuple(value.shape)}, expected [{q.shape[0]}]")
        if not value.requires_grad:  # a term independent of (q, p): zero gradient, never identifiable
            out.append(np.zeros(q.shape[:-1] + (2 * q.shape[-1],)))
            continue
        gq, gp = torch.autograd.grad(value.sum(), (qt, pt), allow_unused=True)
        gq = torch.zeros_like(qt) if gq is None else gq
        gp = torch.zeros_like(pt) if gp is None else gp
        out.append(torch.cat([gq, gp], dim=-1).detach().numpy())
    grads = np.stack(out)
    if not np.isfinite(grads).all():
        bad = [t.name for t, g in zip(terms, grads) if not np.isfinite(g).all()]
        raise ValueError(f"library terms {bad} have non-finite gradients on the data")
    return grads


def _flow_columns(grads: np.ndarray) -> np.ndarray:
    """Design matrix [n, 2d, K] of J∇θ_k = (∂θ/∂p, −∂θ/∂q)."""
    dim = grads.shape[-1] // 2
    flow = np.concatenate([grads[..., dim:], -grads[..., :dim]], axis=-1)  # [K, n, 2d]
    return np.moveaxis(flow, 0, -1)


def _stlsq_gram(G: np.ndarray, h: np.ndarray, bb: float, threshold: float, max_iter: int = 20) -> np.ndarray:
    """STLSQ on the normal equations G = AᵀA, h = Aᵀb, bb = bᵀb (columns rescaled to unit norm first)."""
    scale = np.sqrt(np.clip(np.diag(G), 0.0, None))
    active = scale > 0
    safe = np.where(active, scale, 1.0)
    Gs, hs = G / np.outer(safe, safe), h / safe  # unit-norm columns: |c_s| is a term's share of ‖b‖
    coef = np.zeros(G.shape[0])
    for _ in range(max_iter):
        coef[:] = 0.0
        if not active.any():
            break
        coef[active] = np.linalg.lstsq(Gs[np.ix_(active, active)], hs[active], rcond=None)[0]
        keep = active & (np.abs(coef) >= threshold * math.sqrt(bb))
        if (keep == active).all():
            break
        active = keep
    coef[~active] = 0.0
    return coef / safe


def stlsq(A: np.ndarray, b: np.ndarray, threshold: float, max_iter: int = 20) -> np.ndarray:
    """Sequentially thresholded least squares.

    Args:
        A: [rows, K] design matrix; b: [rows] targets.
        threshold: drop a term when its share of the flow, |c_k|·‖A_k‖ / ‖b‖, is below this.

    Returns:
        [K] coefficients, zero outside the selected support.
    """
    return _stlsq_gram(A.T @ A, A.T @ b, float(b @ b), threshold, max_iter)


def _blocks(n: int, n_blocks: int) -> list[np.ndarray]:
    return [idx for idx in np.array_split(np.arange(n), n_blocks) if idx.size]


def _cross_validate(A, b, thresholds, folds: int):
    """Mean and standard error of the validation MSE over contiguous folds, per threshold.

    A: [n, 2d, K], b: [n, 2d]. Works on per-fold normal equations, so each fit costs O(K³).
    """
    blocks = _blocks(A.shape[0], folds)
    parts = []
    for val in blocks:
        Av, bv = A[val].reshape(-1, A.shape[-1]), b[val].reshape(-1)
        parts.append((Av.T @ Av, Av.T @ bv, float(bv @ bv), bv.size))
    G_all, h_all, bb_all = (sum(part[i] for part in parts) for i in range(3))
    errors = np.zeros((len(thresholds), len(blocks)))
    for j, (Gv, hv, bbv, rows) in enumerate(parts):
        for i, thr in enumerate(thresholds):
            c = _stlsq_gram(G_all - Gv, h_all - hv, bb_all - bbv, thr)
            errors[i, j] = max(c @ Gv @ c - 2 * c @ hv + bbv, 0.0) / rows
    return errors.mean(1), errors.std(1, ddof=1) / math.sqrt(len(blocks))


def _dominant_period(x: np.ndarray, dt: float) -> float:
    """Median over channels of the period of the strongest non-zero Fourier component of x [n_steps, c]."""
    n = x.shape[0]
    spectrum = np.abs(np.fft.rfft(x - x.mean(0), axis=0))[1:]
    if spectrum.size == 0:
        return n * dt
    k = 1 + np.argmax(spectrum, axis=0)
    return float(np.median(n * dt / k))


def estimate_derivatives(x: np.ndarray, dt: float, window: int | None = None, polyorder: int = 5):
    """Smoothed states and their time derivatives by a Savitzky–Golay filter.

    Args:
        x: [n_traj, n_steps, c] uniformly sampled trajectories.
        dt: sampling interval.
        window: filter length in samples (odd); default about a sixth of the dominant period,
            at least ``polyorder + 2`` and at most a third of the trajectory.
        polyorder: degree of the local polynomial.

    Returns:
        (x_smooth, dx_dt), both [n_traj, n_steps, c].
    """
    from scipy.signal import savgol_filter

    n_steps = x.shape[1]
    if window is None:
        period = np.median([_dominant_period(traj, dt) for traj in x])
        window = int(round(period / dt / 6))
        window = min(window, n_steps // 3)
    window = max(int(window), polyorder + 2)
    window += 1 - window % 2  # odd
    if window > n_steps:
        raise ValueError(f"trajectories of {n_steps} points are too short for a smoothing window of {window}")
    smooth = savgol_filter(x, window, polyorder, deriv=0, axis=1, mode="interp")
    deriv = savgol_filter(x, window, polyorder, deriv=1, delta=dt, axis=1, mode="interp")
    return smooth, deriv


@dataclass
class DiscoveryResult:
    """The recovered Hamiltonian.

    Attributes:
        terms: {printed name: coefficient} of the selected terms (H up to an additive constant).
        errors: {name: bootstrap standard error} of those coefficients.
        library: names of every candidate term.
        threshold: the cross-validated STLSQ threshold.
        cv_error: validation MSE of the flow at that threshold.
        residual_rms: RMS of the flow residual on all data.
        dim: degrees of freedom.
    """

    terms: dict[str, float]
    errors: dict[str, float]
    library: list[str]
    threshold: float
    cv_error: float
    residual_rms: float
    dim: int
    _terms: list[Term] = field(default_factory=list, repr=False)

    def hamiltonian(self, q, p) -> np.ndarray:
        """The recovered H at ``q``, ``p`` ([n, dim] numpy arrays; [n] when dim = 1) → [n], up to a constant."""
        qt = torch.as_tensor(np.asarray(q, dtype=float), dtype=_DTYPE).reshape(-1, self.dim)
        pt = torch.as_tensor(np.asarray(p, dtype=float), dtype=_DTYPE).reshape(-1, self.dim)
        out = torch.zeros(qt.shape[0], dtype=_DTYPE)
        by_name = {t.name: t for t in self._terms}
        for name, c in self.terms.items():
            out = out + c * by_name[name].func(qt, pt)
        return out.numpy()

    def formula(self, digits: int = 5) -> str:
        """``H = 0.50000(±1e-05) p^2 - 1.00000(±2e-05) cos(q) + const``."""
        parts = [f"{'-' if c < 0 else '+'} {abs(c):.{digits}f}(±{self.errors.get(name, float('nan')):.1g}) {name}"
                 for name, c in self.terms.items()]
        body = " ".join(parts).lstrip("+ ") if parts else "0"
        return f"H = {body} + const"

    def to_dict(self) -> dict:
        return {"terms": self.terms, "errors": self.errors, "formula": self.formula(), "library": self.library,
                "threshold": self.threshold, "cv_error": self.cv_error, "residual_rms": self.residual_rms,
                "dim": self.dim}


def _as_samples(x, name: str, dt) -> np.ndarray:
    """Return x as [n_traj, n_steps, d] (with dt) or [1, n, d] (without)."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ValueError(f"{name} must be [n_samples, d] or [n_traj, n_steps, d], got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    return x


def discover(q, p, dq_dt=None, dp_dt=None, dt=None, library="poly4+trig", *, thresholds=None, folds: int = 5,
             n_bootstrap: int = 200, window: int | None = None, seed: int = 0) -> DiscoveryResult:
    """Recover a sparse closed-form H(q, p) whose Hamiltonian flow matches the data.

    Args:
        q, p: [n_samples, d] coordinates and momenta; with ``dt``, a uniformly sampled trajectory
            [n_steps, d] or several, [n_traj, n_steps, d].
        dq_dt, dp_dt: time derivatives of the same shape; if omitted, estimated from the
            trajectories (needs ``dt``) by a Savitzky–Golay filter, which also smooths q and p.
        dt: sampling interval of the trajectories (time units of the data).
        library: library specification (see :func:`build_library`), default ``"poly4+trig"``.
        thresholds: STLSQ thresholds to cross-validate (default 30 values from 1e-3 to 0.3: a term
            must carry at least 0.1 % of the flow to be resolved; below that, the bias of the
            derivative estimate is fitted by spurious terms that cross-validation cannot reject,
            because the bias is systematic and the same in every fold).
        folds: number of contiguous cross-validation folds.
        n_bootstrap: bootstrap resamples for the coefficient errors (0: none).
        window: Savitzky–Golay window (samples), default from the dominant period.
        seed: seed of the bootstrap.

    Returns:
        :class:`DiscoveryResult`.
    """
    q, p = _as_samples(q, "q", dt), _as_samples(p, "p", dt)
    if q.shape != p.shape:
        raise ValueError(f"q and p must have the same shape, got {q.shape} and {p.shape}")
    if (dq_dt is None) != (dp_dt is None):
        raise ValueError("give both dq_dt and dp_dt, or neither")
    if dq_dt is None:
        if dt is None:
            raise ValueError("without dq_dt and dp_dt, pass dt so that derivatives can be estimated from trajectories")
        if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
            raise ValueError(f"dt must be a positive number, got {dt!r}")
        z, dz = estimate_derivatives(np.concatenate([q, p], -1), float(dt), window)
    else:
        dq, dp = _as_samples(dq_dt, "dq_dt", dt), _as_samples(dp_dt, "dp_dt", dt)
        if dq.shape != q.shape or dp.shape != q.shape:
            raise ValueError(f"dq_dt and dp_dt must have the shape of q {q.shape}, got {dq.shape} and {dp.shape}")
        z, dz = np.concatenate([q, p], -1), np.concatenate([dq, dp], -1)
    dim = q.shape[-1]
    z, dz = z.reshape(-1, 2 * dim), dz.reshape(-1, 2 * dim)
    if z.shape[0] < 2 * folds:
        raise ValueError(f"{z.shape[0]} samples are too few for {folds}-fold cross-validation")
    terms = build_library(library, dim)
    A = _flow_columns(_term_gradients(terms, z[:, :dim], z[:, dim:]))  # [n, 2d, K]
    thresholds = np.geomspace(1e-3, 0.3, 30) if thresholds is None else np.sort(np.asarray(thresholds, float))
    mean, se = _cross_validate(A, dz, thresholds, folds)
    best = int(np.argmin(mean))
    # one-standard-error rule: the largest threshold (sparsest model) within one SE of the best
    chosen = max(i for i in range(len(thresholds)) if mean[i] <= mean[best] + se[best])
    A2, b2 = A.reshape(-1, len(terms)), dz.reshape(-1)
    support = np.flatnonzero(stlsq(A2, b2, thresholds[chosen]))
    coef = np.zeros(len(terms))
    coef[support] = np.linalg.lstsq(A2[:, support], b2, rcond=None)[0]  # refit on A (better conditioned than AᵀA)
    residual = A2 @ coef - b2
    errors = _bootstrap(A, dz, support, n_bootstrap, seed)
    return DiscoveryResult(
        terms={terms[k].name: float(coef[k]) for k in support},
        errors={terms[k].name: float(e) for k, e in zip(support, errors)},
        library=[t.name for t in terms], threshold=float(thresholds[chosen]), cv_error=float(mean[chosen]),
        residual_rms=float(np.sqrt(np.mean(residual**2))), dim=dim, _terms=terms)


def _bootstrap(A, dz, support, n_bootstrap: int, seed: int) -> np.ndarray:
    """Moving-block bootstrap standard errors of the least-squares coefficients on ``support``.

    Blocks of ~n/50 consecutive samples keep the correlation left by smoothing and by time order.
    """
    if n_bootstrap <= 0 or support.size == 0:
        return np.full(support.size, np.nan)
    rng = np.random.default_rng(seed)
    n = A.shape[0]
    length = max(1, n // 50)
    starts = np.arange(n - length + 1)
    samples = []
    for _ in range(n_bootstrap):
        idx = (rng.choice(starts, size=math.ceil(n / length))[:, None] + np.arange(length)).reshape(-1)[:n]
        As, bs = A[idx][..., support].reshape(-1, support.size), dz[idx].reshape(-1)
        samples.append(np.linalg.lstsq(As, bs, rcond=None)[0])
    return np.std(samples, axis=0, ddof=1)


def discover_from_model(model, q, p, library="poly4+trig", **kwargs) -> DiscoveryResult:
    """The HNN-first route: regress a trained model's flow J∇H_θ on the library.

    Args:
        model: a trained :class:`~mlpot.hamiltonian.HNN` (anything with ``vector_field``).
        q, p: [n, d] states where the model is trusted (e.g. the training states).
        library, kwargs: as for :func:`discover`.
    """
    q = np.asarray(q, dtype=float).reshape(-1, np.shape(q)[-1])
    p = np.asarray(p, dtype=float).reshape(q.shape)
    param = next(model.parameters())
    z = torch.as_tensor(np.concatenate([q, p], -1), dtype=param.dtype)
    with torch.no_grad():
        dz = model.vector_field(z).double().numpy()
    dim = q.shape[-1]
    return discover(q, p, dz[:, :dim], dz[:, dim:], library=library, **kwargs)
