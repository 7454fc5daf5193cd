"""Per-element networks: one MLP per element on an atom's descriptors, with the chain rule
through them written out beside the forward pass.

:meth:`ElementMLPs.forward` is differentiated by autograd (training); :meth:`ElementMLPs.evaluate`
and :meth:`ElementMLPs.backward` are the inference path, ∂output/∂descriptors with the weights
held fixed (a test compares the two).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mlpot.descriptors.descriptor import warn_training_argument
from mlpot.descriptors.invariants import neighbour_slots

__all__ = ["ElementMLPs", "GROUP_BY_ELEMENT_FROM"]


class ElementMLPs(nn.Module):
    """One MLP per element, evaluated on the atoms of that element only.

    Weights of all elements are stacked ([n_species, in, out] per layer) so that the module
    is one set of tensors, whatever the number of elements.

    Args:
        n_species: number of elements.
        n_inputs: descriptor length.
        hidden: hidden layer widths.
    """

    def __init__(self, n_species: int, n_inputs: int, hidden: Sequence[int]):
        super().__init__()
        widths = [n_inputs, *hidden, 1]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for n_in, n_out in zip(widths[:-1], widths[1:]):
            # Variance-preserving initialisation for SiLU layers; the last layer starts small
            # so that an untrained model predicts energies close to the reference.
            gain = 1.0 if n_out > 1 else 0.1
            self.weights.append(nn.Parameter(torch.randn(n_species, n_in, n_out) * gain / math.sqrt(n_in)))
            self.biases.append(nn.Parameter(torch.zeros(n_species, n_out)))

    def forward(
        self, scalars: Tensor, pseudoscalars: Tensor, species: Tensor, even: bool = False, training: bool | None = None
    ) -> Tensor:
        """f_z(s, χ) of every atom, or its mirror average ½[f_z(s, χ) + f_z(s, −χ)] when ``even``.

        All networks run as one batched product per layer. For a small system every atom goes
        through every element's network and keeps its own element's output: a few operations
        instead of a Python loop over elements, which is what costs time there. For a large
        one, the atoms are first laid out in a table with one row per element (padded to the
        most atoms of one element), so that each network sees only its own element's atoms.

        Args:
            scalars: [n, n_s] standardised scalar descriptors.
            pseudoscalars: [n, n_p] scaled pseudoscalar descriptors.
            species: [n] int64 species index of each atom.
            even: average over the mirror image χ → −χ.
            training: deprecated and ignored (the inference path is :meth:`evaluate` + :meth:`backward`).

        Returns:
            [n] outputs.
        """
        if training is not None:
            warn_training_argument("ElementMLPs.forward")
        output, _ = self.evaluate(scalars, pseudoscalars, species, even)
        return output

    def evaluate(
        self,
        scalars: Tensor,
        pseudoscalars: Tensor,
        species: Tensor,
        even: bool,
        layout: tuple[Tensor | None, int] | None = None,
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """:meth:`forward` by autograd, plus the pre-activations of the hidden layers [S, rows, width].
        ``layout``: :meth:`layout` of ``species``, when the caller has it already."""
        weights, biases = list(self.weights), list(self.biases)  # (slicing a ParameterList builds a module)
        n_species, n_scalars = weights[0].shape[0], scalars.shape[1]
        slot, width = self.layout(species) if layout is None else layout
        if slot is not None:
            scalars = scalars.new_zeros(n_species * width, n_scalars).index_copy(0, slot, scalars)
            pseudoscalars = pseudoscalars.new_zeros(n_species * width, pseudoscalars.shape[1]).index_copy(
                0, slot, pseudoscalars
            )
            scalars, pseudoscalars = scalars.view(n_species, width, -1), pseudoscalars.view(n_species, width, -1)
        else:
            scalars = scalars.expand(n_species, *scalars.shape)  # no copy
            pseudoscalars = pseudoscalars.expand(n_species, *pseudoscalars.shape)
        # The first layer is split into its scalar and pseudoscalar parts, W·[s, χ] = W_s·s + W_χ·χ,
        # so that the mirror image (s, −χ) reuses W_s·s and costs one sign, not a second product.
        even_part = torch.baddbmm(biases[0][:, None, :], scalars, weights[0][:, :n_scalars])
        odd_part = torch.bmm(pseudoscalars, weights[0][:, n_scalars:])
        x = torch.cat((even_part + odd_part, even_part - odd_part), dim=1) if even else even_part + odd_part
        pre_activations = []
        for weight, bias in zip(weights[1:], biases[1:]):
            pre_activations.append(x)
            x = torch.baddbmm(bias[:, None, :], torch.nn.functional.silu(x), weight)  # [S, rows, out]
        output = x[:, :, 0]
        if even:
            output = 0.5 * (output[:, :width] + output[:, width:])  # ½[f(s, χ) + f(s, −χ)]
        if slot is not None:
            return output.reshape(-1).index_select(0, slot), tuple(pre_activations)
        return output.gather(0, species[None, :])[0], tuple(pre_activations)

    def layout(self, species: Tensor, group: bool | None = None) -> tuple[Tensor | None, int]:
        """Row slots (species · width + rank) of the atoms in the per-element table, and its width;
        no slots (None, n_atoms) when every atom goes through every network. ``group``: whether
        to group atoms by element (default: from ``GROUP_BY_ELEMENT_FROM`` atoms)."""
        n_species = self.weights[0].shape[0]
        if group is None:
            group = species.shape[0] >= GROUP_BY_ELEMENT_FROM
        if n_species > 1 and group:
            return neighbour_slots(species, n_species)
        return None, species.shape[0]

    def backward(
        self,
        g_output: Tensor,
        species: Tensor,
        pre_activations: tuple[Tensor, ...],
        even: bool,
        layout: tuple[Tensor | None, int],
        n_scalars: int,
    ) -> tuple[Tensor, Tensor]:
        """Chain rule through :meth:`evaluate`, written out: ∂/∂scalars [n, n_s] and
        ∂/∂pseudoscalars [n, n_p] from ∂/∂output ``g_output`` [n] (weights held fixed), given
        the pre-activations and layout of the forward pass and the number of scalars n_s."""
        weights = [w.detach() for w in self.weights]
        n_species, n_atoms = weights[0].shape[0], species.shape[0]
        slot, width = layout
        # Only each atom's own element's output depends on it: its row of the table gets the gradient.
        if slot is not None:
            g_x = g_output.new_zeros(n_species * width).index_copy(0, slot, g_output).view(n_species, width)
        else:
            g_x = g_output.new_zeros(n_species, n_atoms).scatter(0, species[None, :], g_output[None, :])
        if even:
            g_x = 0.5 * torch.cat((g_x, g_x), dim=1)
        g_x = g_x[:, :, None]  # [S, rows, 1], the gradient of the last layer's output
        for weight, z in zip(reversed(weights[1:]), reversed(pre_activations)):
            # x_next = silu(z) W + b: back through W, then through silu at its input z.
            g_x = torch.ops.aten.silu_backward(torch.bmm(g_x, weight.transpose(1, 2)), z)
        if even:  # rows [s, χ] then [s, −χ]
            g_even, g_odd = g_x[:, :width] + g_x[:, width:], g_x[:, :width] - g_x[:, width:]
        else:
            g_even = g_odd = g_x
        g_scalars = torch.bmm(g_even, weights[0][:, :n_scalars].transpose(1, 2))
        g_pseudoscalars = torch.bmm(g_odd, weights[0][:, n_scalars:].transpose(1, 2))
        if slot is not None:
            g_scalars = g_scalars.reshape(n_species * width, -1).index_select(0, slot)
            g_pseudoscalars = g_pseudoscalars.reshape(n_species * width, -1).index_select(0, slot)
        else:  # every element's rows saw the atom; only its own carries a gradient
            g_scalars, g_pseudoscalars = g_scalars.sum(0), g_pseudoscalars.sum(0)
        return g_scalars, g_pseudoscalars


#: Atoms from which :class:`ElementMLPs` groups atoms by element (below, the bookkeeping
#: costs more than running every atom through every element's network).
GROUP_BY_ELEMENT_FROM = 64
