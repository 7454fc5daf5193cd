"""Equivariant layers on e3nn irreps, channel by channel.

Features are e3nn irreps tensors whose every irrep comes with the same number of channels C
(``C x 0e + C x 1o + ...``, laid out block by block as e3nn does: the C copies of one irrep, then
the next). Parity is part of each irrep: ``0e`` scalars, ``0o`` pseudoscalars (which flip sign in
a mirror), ``1o`` vectors, ``1e`` axial vectors, ``2e``, ``2o`` … Spherical harmonics of a bond
direction carry parity (−1)^l, so coupling them produces every parity: 1o ⊗ 1o → 1e (a cross
product), then 1e ⊗ 1o → 0o (a triple product).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from e3nn import o3
from torch import Tensor, nn


def sh_irreps(l_max: int) -> o3.Irreps:
    """Irreps of the spherical harmonics up to ``l_max``: 0e + 1o + 2e + … (parity (−1)^l)."""
    return o3.Irreps.spherical_harmonics(l_max)


def edge_irreps(channels: int, l_max: int, parities: Sequence[int] = (1, -1), scalars_only: bool = False) -> o3.Irreps:
    """``channels`` copies of every irrep with l ≤ ``l_max`` and a parity in ``parities``, scalars
    first: ``C x 0e + C x 0o + C x 1o + C x 1e + …`` (``scalars_only``: the l = 0 ones only)."""
    irreps = []
    for l in range(1 if scalars_only else l_max + 1):
        natural = (-1) ** l  # the parity spherical harmonics have; listed first
        for p in sorted(parities, key=lambda p: p != natural):
            irreps.append((channels, (l, p)))
    return o3.Irreps(irreps)


def scale_channels(weights: Tensor, harmonics: Tensor, l_max: int) -> Tensor:
    """Channel-weighted spherical harmonics: w_{c,l} · Y_l(r̂), as an irreps tensor
    ``C x 0e + C x 1o + C x 2e + …``.

    Args:
        weights: [E, C·(l_max + 1)] per-edge weights, l-major (all channels of l = 0 first).
        harmonics: [E, (l_max + 1)²] spherical harmonics of :func:`sh_irreps`.
        l_max: highest l.

    Returns:
        [E, C·(l_max + 1)²].
    """
    n_edges = harmonics.shape[0]
    weights = weights.view(n_edges, l_max + 1, -1)
    blocks = []
    for l in range(l_max + 1):
        y_l = harmonics[:, l * l : (l + 1) * (l + 1)]  # [E, 2l+1]
        blocks.append((weights[:, l, :, None] * y_l[:, None, :]).reshape(n_edges, -1))
    return torch.cat(blocks, dim=1)


class ChannelwiseTensorProduct(nn.Module):
    """x ⊗ y channel by channel (e3nn mode ``uuu``), every allowed coupling, then a linear mix.

    Each channel c of x couples only with channel c of y: for every pair of irreps
    (l1, p1) ⊗ (l2, p2) → (l, p1·p2) with |l1 − l2| ≤ l ≤ l1 + l2 and (l, p) in ``irreps_out``,
    one learnable weight per channel. An equivariant linear layer (e3nn ``o3.Linear``) then mixes
    channels and sums the paths that reach the same irrep. The cost is C per path instead of the
    C³ of a fully connected product, which is what keeps a per-edge product affordable
    (Allegro's choice, Musaelian et al. 2023).

    Args:
        irreps_x, irreps_y: inputs, every irrep with the same number of channels C.
        irreps_out: output irreps (C channels each); those no coupling reaches are dropped.
    """

    def __init__(self, irreps_x: o3.Irreps, irreps_y: o3.Irreps, irreps_out: o3.Irreps):
        super().__init__()
        channels = {mul for mul, _ in irreps_x} | {mul for mul, _ in irreps_y}
        if len(channels) != 1:
            raise ValueError(f"channel-wise products need equal channel counts, got {irreps_x} and {irreps_y}")
        (c,) = channels
        wanted = {ir for _, ir in irreps_out}
        paths, instructions = [], []
        for i, (_, ir_x) in enumerate(irreps_x):
            for j, (_, ir_y) in enumerate(irreps_y):
                for ir in ir_x * ir_y:
                    if ir in wanted:
                        instructions.append((i, j, len(paths), "uuu", True))
                        paths.append((c, ir))
        if not paths:
            raise ValueError(f"no coupling of {irreps_x} and {irreps_y} reaches {irreps_out}")
        reached = {ir for _, ir in paths}
        self.irreps_out = o3.Irreps([(mul, ir) for mul, ir in irreps_out if ir in reached])
        self.product = o3.TensorProduct(irreps_x, irreps_y, o3.Irreps(paths), instructions)
        self.mix = o3.Linear(o3.Irreps(paths), self.irreps_out)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """[E, dim x], [E, dim y] → [E, dim irreps_out]."""
        return self.mix(self.product(x, y))

    def _apply(self, fn, *args, **kwargs):
        """After every cast or move, recompute the Wigner 3j coefficients in the new dtype.

        e3nn computes them once, in torch's default dtype (float32), and keeps them as buffers;
        casting those to float64 keeps their float32 rounding (~1e-8 relative), which breaks the
        rotation invariance of a float64 model at that level. Recomputing them makes the
        products exact to float64 round-off.
        """
        module = super()._apply(fn, *args, **kwargs)
        with torch.no_grad():
            for owner in self.modules():
                for name, buffer in owner._buffers.items():
                    if buffer is not None and name.startswith("_w3j_"):
                        l1, l2, l3 = (int(part) for part in name.removeprefix("_w3j_").split("_"))
                        exact = o3.wigner_3j(l1, l2, l3, dtype=torch.float64)
                        buffer.copy_(exact.reshape(buffer.shape).to(buffer.dtype))
        return module


class ScalarMLP(nn.Module):
    """A SiLU multilayer perceptron on invariant features (no activation after the last layer).

    Args:
        widths: [n_in, hidden…, n_out].
        last_gain: scale of the last layer's initial weights (small: an untrained model predicts
            close to its reference energies).
    """

    def __init__(self, widths: Sequence[int], last_gain: float = 1.0):
        super().__init__()
        layers: list[nn.Module] = []
        for k, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
            linear = nn.Linear(n_in, n_out)
            last = k == len(widths) - 2
            nn.init.normal_(linear.weight, std=(last_gain if last else 1.0) / math.sqrt(n_in))
            nn.init.zeros_(linear.bias)
            layers.append(linear)
            if not last:
                layers.append(nn.SiLU())
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """[..., n_in] → [..., n_out]."""
        return self.layers(x)
