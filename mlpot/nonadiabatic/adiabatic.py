"""Adiabatic energies, per-state gradients and non-adiabatic couplings of a diabatic matrix.

For a real symmetric diabatic matrix H_d(x) the adiabatic states are its eigenvectors,
H_d |i⟩ = E_i |i⟩, and everything else follows from ∇H_d alone:

* per-state gradients (Hellmann–Feynman): ∇E_i = ⟨i|∇H_d|i⟩;
* derivative couplings: d_ij = ⟨i|∇j⟩ = ⟨i|∇H_d|j⟩ / (E_j − E_i) for i ≠ j, d_ii = 0,
  antisymmetric in (i, j).

Eigenvectors are defined up to a sign each, so d_ij is too: flipping |i⟩ flips row and column i.
:func:`align_signs` fixes the signs against a reference (the previous step of a trajectory, or a
neighbouring grid point), and the couplings follow with :func:`flip_couplings`.

**Degeneracies.** d_ij diverges as E_j − E_i → 0 (at a conical intersection it is genuinely
singular). By default a gap below ``min_gap`` raises a ValueError naming the point; with
``regularization=ε`` the coupling is the Lorentzian-regularised ⟨i|∇H|j⟩ Δ/(Δ² + ε²), Δ = E_j − E_i,
which equals the exact coupling to relative order (ε/Δ)² away from the degeneracy and stays
finite (zero) on it. Never a silent NaN.

∇H_d comes from autograd by default (any differentiable ``diabatic_fn``, e.g. a learned model),
or from an analytic ``gradient_fn`` where one exists (the reference systems), which is faster.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch

__all__ = ["AdiabaticStates", "adiabatic", "adiabatic_states", "eigh", "diabatic_gradient", "align_signs",
           "flip_couplings"]


class AdiabaticStates(NamedTuple):
    """The adiabatic picture of a diabatic matrix at a batch of points.

    Attributes:
        energies: [..., n] eigenvalues, ascending (Hartree for the reference systems).
        vectors: [..., n, n] eigenvectors as columns (diabatic components × adiabatic state).
        gradients: [..., n, dim] ∇E_i (Hartree/Bohr); the force on state i is −gradients[..., i, :].
        couplings: [..., n, n, dim] derivative couplings d_ij (1/Bohr), antisymmetric in (i, j).
        diabatic: [..., n, n] the diabatic matrix itself.
        diabatic_gradient: [..., n, n, dim] ∂H_d/∂x.
    """

    energies: torch.Tensor
    vectors: torch.Tensor
    gradients: torch.Tensor
    couplings: torch.Tensor
    diabatic: torch.Tensor
    diabatic_gradient: torch.Tensor


def _is_scalar_coordinate(h: torch.Tensor, x: torch.Tensor) -> bool:
    """True if ``x`` holds one coordinate per point (``x.shape == h.shape[:-2]``)."""
    return tuple(x.shape) == tuple(h.shape[:-2])


def diabatic_gradient(
    diabatic_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, create_graph: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """H_d(x) and ∂H_d/∂x by autograd.

    ``diabatic_fn`` must act pointwise over the batch (H at one point depends only on that
    point's coordinates), so one backward pass per matrix element gives the whole batch.

    Args:
        diabatic_fn: x → H_d ``[..., n, n]``.
        x: ``[...]`` (one coordinate per point) or ``[..., dim]``.
        create_graph: keep the graph of the gradient (training on forces or couplings).

    Returns:
        (H ``[..., n, n]``, ∂H/∂x ``[..., n, n, dim]``).
    """
    xg = x if x.requires_grad else x.detach().requires_grad_(True)
    with torch.enable_grad():
        h = diabatic_fn(xg)
        _check_matrix(h)
        n = h.shape[-1]
        scalar = _is_scalar_coordinate(h, xg)
        grads = {}
        for i in range(n):
            for j in range(i, n):
                (g,) = torch.autograd.grad(h[..., i, j].sum(), xg, retain_graph=True, create_graph=create_graph,
                                           allow_unused=True)
                grads[i, j] = torch.zeros_like(xg) if g is None else g
    rows = [torch.stack([grads[min(i, j), max(i, j)] for j in range(n)], -1 if scalar else -2) for i in range(n)]
    dh = torch.stack(rows, -2 if scalar else -3)  # [..., n, n] or [..., n, n, dim]
    if scalar:
        dh = dh.unsqueeze(-1)
    if not create_graph:
        h, dh = h.detach(), dh.detach()
    return h, dh


def _check_matrix(h: torch.Tensor) -> None:
    if h.ndim < 2 or h.shape[-1] != h.shape[-2]:
        raise ValueError(f"a diabatic matrix must be [..., n, n]; got {tuple(h.shape)}")
    if not bool(torch.isfinite(h).all()):
        raise ValueError("the diabatic matrix contains NaN or inf")


def adiabatic_states(
    diabatic_fn: Callable[[torch.Tensor], torch.Tensor],
    x,
    gradient_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    min_gap: float = 1e-10,
    regularization: float | None = None,
    create_graph: bool = False,
) -> AdiabaticStates:
    """Energies, eigenvectors, per-state gradients and couplings at positions ``x``.

    Args:
        diabatic_fn: x → H_d ``[..., n, n]`` (real symmetric).
        x: positions, ``[...]`` for one coordinate per point or ``[..., dim]``.
        gradient_fn: optional analytic x → ∂H_d/∂x ``[..., n, n, dim]``; autograd otherwise.
        min_gap: without regularisation, gaps below this raise a ValueError (units of H_d).
        regularization: ε of the regularised coupling ⟨i|∇H|j⟩ Δ/(Δ² + ε²); None = exact.
        create_graph: keep the autograd graph (for training through the couplings).

    Returns:
        :class:`AdiabaticStates`.
    """
    if not torch.is_tensor(x):
        x = torch.as_tensor(x, dtype=torch.float64)
    if not bool(torch.isfinite(x).all()):
        raise ValueError("positions contain NaN or inf")
    if regularization is not None and not regularization > 0:
        raise ValueError(f"regularization must be a positive energy or None; got {regularization!r}")
    if gradient_fn is None:
        h, dh = diabatic_gradient(diabatic_fn, x, create_graph=create_graph)
    else:
        h, dh = diabatic_fn(x), gradient_fn(x)
        _check_matrix(h)
        if dh.shape[:-1] != h.shape:
            raise ValueError(f"gradient_fn returned {tuple(dh.shape)}, expected {tuple(h.shape)} + (dim,)")
    energies, vectors = eigh(h)
    # g_ij = ⟨i|∇H|j⟩ for every coordinate: [..., n, n, dim]
    g = (vectors.transpose(-1, -2).unsqueeze(-3) @ dh.movedim(-1, -3) @ vectors.unsqueeze(-3)).movedim(-3, -1)
    n = h.shape[-1]
    diagonal = torch.arange(n)
    gradients = g[..., diagonal, diagonal, :]
    gap = energies.unsqueeze(-2) - energies.unsqueeze(-1)  # [..., i, j] = E_j − E_i
    off = ~torch.eye(n, dtype=torch.bool, device=h.device)
    if regularization is None:
        smallest = gap.abs().masked_fill(~off, float("inf")).amin(dim=(-2, -1)) if n > 1 else None
        if smallest is not None and bool((smallest < min_gap).any()):
            where = int(torch.argmin(smallest.reshape(-1)))
            point = x.reshape(-1) if _is_scalar_coordinate(h, x) else x.reshape(-1, x.shape[-1])
            gap_value = float(smallest.reshape(-1)[where].detach())
            raise ValueError(
                f"adiabatic states are degenerate (gap {gap_value:.3g} < min_gap={min_gap:g}) "
                f"at position {point[where].tolist()}: the derivative coupling diverges there; pass "
                "regularization=ε for a finite regularised coupling"
            )
        inverse = torch.where(off, 1.0 / torch.where(off, gap, torch.ones_like(gap)), torch.zeros_like(gap))
    else:
        inverse = torch.where(off, gap / (gap**2 + regularization**2), torch.zeros_like(gap))
    couplings = g * inverse.unsqueeze(-1)
    return AdiabaticStates(energies, vectors, gradients, couplings, h, dh)


def eigh(h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues ``[..., n]`` (ascending) and eigenvectors ``[..., n, n]`` of real symmetric matrices.

    For n = 2 a closed form, H = m + r [[cos 2θ, sin 2θ], [sin 2θ, −cos 2θ]] with E = m ∓ r,
    lower vector (−sin θ, cos θ), upper (cos θ, sin θ): elementwise, so it costs a few vector
    operations instead of one LAPACK call per matrix (FSSH evaluates it every step for thousands
    of trajectories). Otherwise ``torch.linalg.eigh``.
    """
    if h.shape[-1] != 2:
        return torch.linalg.eigh(h)
    a, b, d = h[..., 0, 0], 0.5 * (h[..., 0, 1] + h[..., 1, 0]), h[..., 1, 1]
    mean, half_difference = 0.5 * (a + d), 0.5 * (a - d)
    radius = torch.sqrt(half_difference**2 + b**2)
    theta = 0.5 * torch.atan2(b, half_difference)
    cos, sin = torch.cos(theta), torch.sin(theta)
    energies = torch.stack([mean - radius, mean + radius], -1)
    vectors = torch.stack([torch.stack([-sin, cos], -1), torch.stack([cos, sin], -1)], -1)
    return energies, vectors


def adiabatic(diabatic_fn: Callable[[torch.Tensor], torch.Tensor], x, **options) -> tuple[torch.Tensor, torch.Tensor]:
    """Adiabatic energies ``[..., n]`` and couplings ``[..., n, n, dim]`` of ``diabatic_fn`` at ``x``.

    The public entry point; see :func:`adiabatic_states` for the options (degeneracy handling,
    analytic gradients) and for eigenvectors and per-state gradients.
    """
    states = adiabatic_states(diabatic_fn, x, **options)
    return states.energies, states.couplings


def align_signs(vectors: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip eigenvector signs so each column overlaps positively with the reference's.

    Args:
        vectors: [..., n, n] eigenvectors (columns).
        reference: [..., n, n] eigenvectors at a nearby point.

    Returns:
        (aligned vectors ``[..., n, n]``, signs ``[..., n]`` of ±1 that were applied).
    """
    overlap = (vectors * reference).sum(-2)
    signs = torch.where(overlap < 0, -1.0, 1.0).to(vectors.dtype)
    return vectors * signs.unsqueeze(-2), signs


def flip_couplings(couplings: torch.Tensor, signs: torch.Tensor) -> torch.Tensor:
    """Couplings ``[..., n, n, dim]`` after eigenvector sign flips ``signs`` ``[..., n]``."""
    return couplings * (signs.unsqueeze(-1) * signs.unsqueeze(-2)).unsqueeze(-1)
