"""Equivariant building blocks on e3nn: parity-aware irreps of edge features, channel-wise
tensor products, and the small scalar networks around them (used by
:class:`mlpot.models.EquivariantModel`)."""

from mlpot.nn.blocks import ChannelwiseTensorProduct, ScalarMLP, edge_irreps, scale_channels, sh_irreps

__all__ = ["ChannelwiseTensorProduct", "ScalarMLP", "edge_irreps", "scale_channels", "sh_irreps"]
