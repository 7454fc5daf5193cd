"""Phase-space states z = (q, p) and the canonical symplectic matrix J.

Every object in :mod:`mlpot.hamiltonian` works on states laid out as ``z = (q, p)`` along the
last axis: ``z[..., :dim]`` are the generalised coordinates q and ``z[..., dim:]`` the conjugate
momenta p, so a system with ``dim`` degrees of freedom has states of length ``2 * dim``.

With that layout the canonical symplectic matrix is

    J = [[ 0, I],
         [-I, 0]],

and Hamilton's equations read ż = J ∇H(z), i.e. q̇ = ∂H/∂p, ṗ = −∂H/∂q. J is skew-symmetric,
so dH/dt = ∇Hᵀ J ∇H = 0 whatever H is.
"""

from __future__ import annotations

import torch


def check_state(z, dim: int | None = None, *, name: str = "z", finite: bool = False) -> torch.Tensor:
    """Validate a phase-space state and return it.

    Args:
        z: [..., 2*dim] tensor of states (q, p).
        dim: expected number of degrees of freedom, or None to only require an even length.
        name: what to call the argument in error messages.
        finite: also reject NaN/inf entries (used for initial conditions and training data;
            models do not check, so that a blown-up rollout can carry NaN without raising).

    Raises:
        ValueError: ``z`` is not a floating tensor, is a scalar, has an odd last dimension, does not
            match ``2 * dim``, or (with ``finite``) holds NaN/inf.
    """
    if not isinstance(z, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape [batch, 2*dim], got {type(z).__name__}")
    if z.ndim == 0:
        raise ValueError(f"{name} must have shape [batch, 2*dim] (q then p), got a scalar")
    if not z.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {z.dtype}")
    size = z.shape[-1]
    if dim is None:
        if size == 0 or size % 2:
            raise ValueError(
                f"{name} = (q, p) must have an even, non-zero last dimension 2*dim; got {size} "
                f"(shape {tuple(z.shape)})"
            )
    elif size != 2 * dim:
        raise ValueError(
            f"{name} must have last dimension 2*dim = {2 * dim} (q then p for dim={dim} degrees of "
            f"freedom); got {size} (shape {tuple(z.shape)})"
        )
    if finite and not bool(torch.isfinite(z).all()):
        bad = (~torch.isfinite(z)).nonzero()
        raise ValueError(f"{name} contains NaN or inf (first at index {tuple(bad[0].tolist())})")
    return z


def check_dim(dim) -> int:
    """Return ``dim`` as an int after checking it is a positive number of degrees of freedom."""
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim (number of degrees of freedom) must be a positive int, got {dim!r}")
    return dim


def split_state(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split [..., 2*dim] states into q [..., dim] and p [..., dim]."""
    dim = z.shape[-1] // 2
    return z[..., :dim], z[..., dim:]


def symplectic_matrix(dim: int, dtype=torch.float64, device=None) -> torch.Tensor:
    """Return the canonical symplectic matrix J [2*dim, 2*dim] for the (q, p) layout."""
    eye = torch.eye(dim, dtype=dtype, device=device)
    zero = torch.zeros(dim, dim, dtype=dtype, device=device)
    return torch.cat([torch.cat([zero, eye], 1), torch.cat([-eye, zero], 1)], 0)


def symplectic_gradient(grad_h: torch.Tensor) -> torch.Tensor:
    """Return J ∇H = (∂H/∂p, −∂H/∂q) for gradients [..., 2*dim], without forming J."""
    dh_dq, dh_dp = split_state(grad_h)
    return torch.cat([dh_dp, -dh_dq], dim=-1)


def broadcast_input(u, z: torch.Tensor, input_dim: int) -> torch.Tensor:
    """Return the control u as [batch, input_dim] matching z [batch, 2*dim] (None → zeros).

    The input port of the driven models (:mod:`mlpot.hamiltonian.port`, the baseline of
    :mod:`mlpot.hamiltonian.hnn`).

    Accepts a tensor or number of shape [], [input_dim] or [batch, input_dim].
    """
    batch_shape = z.shape[:-1]
    if u is None:
        return z.new_zeros(batch_shape + (input_dim,))
    u = torch.as_tensor(u, dtype=z.dtype, device=z.device)
    if u.ndim == 0:
        if input_dim != 1:
            raise ValueError(f"a scalar control u needs input_dim == 1, the model has input_dim={input_dim}")
        u = u.reshape(1)
    if u.shape[-1] != input_dim:
        raise ValueError(f"control u must have last dimension input_dim={input_dim}, got shape {tuple(u.shape)}")
    try:
        return u.expand(batch_shape + (input_dim,))
    except RuntimeError:
        raise ValueError(
            f"control u of shape {tuple(u.shape)} does not broadcast to the batch of states {tuple(batch_shape)}"
        ) from None
