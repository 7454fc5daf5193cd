"""Observed trajectories of a phase-space system (:class:`TrajectoryData`) and derivative estimates.

What :mod:`mlpot.hamiltonian.systems` generates and the training code
(:mod:`mlpot.hamiltonian.training`) consumes: states z = (q, p) sampled along trajectories, with
targets ż, exact or by :func:`finite_difference`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from mlpot.hamiltonian.state import check_state

__all__ = ["TrajectoryData", "finite_difference"]


@dataclass
class TrajectoryData:
    """Observed trajectories of a system.

    Attributes:
        t: [n_points] observation times.
        z: [n_trajectories, n_points, 2*dim] observed (possibly noisy) states.
        dz: [n_trajectories, n_points, 2*dim] time-derivative targets ż.
        z_clean: [n_trajectories, n_points, 2*dim] noise-free states.
        u: [n_trajectories, n_points, input_dim] control at each point, or None.
        settings: how the data were made (for provenance in benchmark JSON).
    """

    t: torch.Tensor
    z: torch.Tensor
    dz: torch.Tensor
    z_clean: torch.Tensor
    u: torch.Tensor | None = None
    settings: dict = field(default_factory=dict)

    def __post_init__(self):
        check_state(self.z, name="trajectory states z", finite=True)
        check_state(self.dz, self.z.shape[-1] // 2, name="trajectory derivatives dz", finite=True)
        if self.z.ndim != 3 or self.dz.shape != self.z.shape:
            raise ValueError(
                f"z and dz must both be [n_trajectories, n_points, 2*dim]; got {tuple(self.z.shape)} "
                f"and {tuple(self.dz.shape)}"
            )
        if self.u is not None and not bool(torch.isfinite(self.u).all()):
            raise ValueError("trajectory controls u contain NaN or inf")

    def __len__(self) -> int:
        return self.z.shape[0]

    @property
    def dim(self) -> int:
        return self.z.shape[-1] // 2

    def subset(self, index) -> "TrajectoryData":
        """The trajectories selected by ``index`` (slice, list or tensor)."""
        return replace(self, z=self.z[index], dz=self.dz[index], z_clean=self.z_clean[index],
                       u=None if self.u is None else self.u[index])

    def split(self, n_first: int) -> tuple["TrajectoryData", "TrajectoryData"]:
        """Split by trajectory (never within one): the first ``n_first`` and the rest."""
        if not 0 < n_first < len(self):
            raise ValueError(f"cannot split {len(self)} trajectories at {n_first}")
        return self.subset(slice(0, n_first)), self.subset(slice(n_first, None))

    def flat(self) -> dict[str, torch.Tensor]:
        """Point-wise samples: ``{"z": [N, 2d], "dz": [N, 2d]}`` (+ ``"u": [N, m]``), N = n_traj·n_points."""
        out = {"z": self.z.reshape(-1, self.z.shape[-1]), "dz": self.dz.reshape(-1, self.dz.shape[-1])}
        if self.u is not None:
            out["u"] = self.u.reshape(-1, self.u.shape[-1])
        return out


def finite_difference(t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """ż from sampled trajectories by second-order finite differences (one-sided at the ends).

    Works on non-uniform grids (the three-point formula of ``numpy.gradient``).

    Args:
        t: [n_points] strictly increasing times.
        z: [n_trajectories, n_points, 2*dim] states.

    Returns:
        [n_trajectories, n_points, 2*dim] derivative estimates.

    Raises:
        ValueError: NaN/inf in ``t`` or ``z``, fewer than 3 points, or non-increasing times.
    """
    check_state(z, name="trajectory z", finite=True)
    if z.ndim != 3:
        raise ValueError(f"z must be [n_trajectories, n_points, 2*dim], got shape {tuple(z.shape)}")
    t = torch.as_tensor(t, dtype=z.dtype, device=z.device)
    if t.ndim != 1 or t.shape[0] != z.shape[1]:
        raise ValueError(f"t must be [n_points] = [{z.shape[1]}], got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError("times t contain NaN or inf")
    if t.shape[0] < 3:
        raise ValueError("finite differences need at least 3 points per trajectory")
    h = t[1:] - t[:-1]
    if not bool((h > 0).all()):
        raise ValueError("times t must be strictly increasing")
    out = torch.empty_like(z)
    h0, h1 = h[:-1, None], h[1:, None]  # spacing left / right of each interior point
    out[:, 1:-1] = (h0**2 * z[:, 2:] - h1**2 * z[:, :-2] + (h1**2 - h0**2) * z[:, 1:-1]) / (h0 * h1 * (h0 + h1))
    a, b = h[0], h[1]  # second-order one-sided ends
    out[:, 0] = (
        (-(2 * a + b) / (a * (a + b))) * z[:, 0] + ((a + b) / (a * b)) * z[:, 1] - (a / (b * (a + b))) * z[:, 2]
    )
    a, b = h[-1], h[-2]
    out[:, -1] = (
        ((2 * a + b) / (a * (a + b))) * z[:, -1] - ((a + b) / (a * b)) * z[:, -2] + (a / (b * (a + b))) * z[:, -3]
    )
    return out
