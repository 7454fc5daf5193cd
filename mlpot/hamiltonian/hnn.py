"""Hamiltonian Neural Networks and the unconstrained neural-ODE baseline.

An :class:`HNN` (Greydanus, Dzamba & Yosinski, NeurIPS 2019) learns one scalar, H_θ(q, p), and
takes the dynamics from Hamilton's equations, ż = J ∇H_θ(z), with ∇H_θ by autograd. Because J is
skew-symmetric, dH_θ/dt = ∇H_θᵀ J ∇H_θ = 0 for *any* weights: the learned flow conserves the
learned energy exactly, and a symplectic integrator keeps it bounded over long rollouts.

:class:`NeuralODEBaseline` is the same MLP predicting ż directly. It fits the data about as well,
but nothing ties its flow to a conserved quantity, so its energy drifts.

Both take states z = (q, p) of shape [batch, 2*dim] (see :mod:`mlpot.hamiltonian.state`) and
are dtype-agnostic: call ``.double()`` for float64 work. The package never changes torch's
global default dtype.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from mlpot.hamiltonian.state import broadcast_input, check_dim, check_state, split_state, symplectic_gradient

__all__ = ["HNN", "NeuralODEBaseline", "mlp", "mlp_input_gradient", "hamiltonian_gradient"]

_ACTIVATIONS = {"tanh": nn.Tanh, "softplus": nn.Softplus, "silu": nn.SiLU, "gelu": nn.GELU}


def mlp(in_features: int, hidden: Sequence[int], out_features: int, activation: str = "tanh") -> nn.Sequential:
    """A plain MLP ``in → hidden... → out`` with a smooth activation between layers.

    The activation must be smooth (twice differentiable) because an HNN is trained on its
    gradient; ReLU would give a piecewise-constant vector field and a zero Hessian.
    """
    if activation not in _ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {sorted(_ACTIVATIONS)} (smooth, as the vector field is a "
            f"gradient), got {activation!r}"
        )
    hidden = tuple(int(h) for h in hidden)
    if any(h < 1 for h in hidden):
        raise ValueError(f"hidden layer widths must be positive, got {hidden}")
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h), _ACTIVATIONS[activation]()]
        width = h
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


def hamiltonian_gradient(hamiltonian, z: torch.Tensor, create_graph: bool) -> torch.Tensor:
    """∇H(z) [..., 2*dim] by autograd, whatever the ambient grad mode.

    Args:
        hamiltonian: callable ``z -> [...]``.
        z: [..., 2*dim] states.
        create_graph: keep the graph of the gradient (needed to train on it, or to differentiate
            the vector field again, e.g. for a Jacobian).
    """
    with torch.enable_grad():
        zz = z if z.requires_grad else z.detach().requires_grad_(True)
        h = hamiltonian(zz)
        (grad,) = torch.autograd.grad(h.sum(), zz, create_graph=create_graph)
    return grad


def mlp_input_gradient(net: nn.Sequential, x: torch.Tensor) -> torch.Tensor | None:
    """∂ net(x).sum() / ∂x for a scalar-output :func:`mlp`, by a hand-written backward pass.

    Rollouts evaluate ∇H thousands of times on small batches, where the autograd engine's
    overhead dominates; this pass is the same arithmetic in a few tensor ops. It returns None for
    architectures it does not know (then the caller uses autograd). No graph is kept.
    """
    layers = list(net)
    if not layers or not isinstance(layers[-1], nn.Linear) or layers[-1].out_features != 1:
        return None
    with torch.no_grad():
        slopes = []
        h = x
        for layer in layers[:-1]:
            if isinstance(layer, nn.Linear):
                h = torch.nn.functional.linear(h, layer.weight, layer.bias)
            elif isinstance(layer, nn.Tanh):
                h = torch.tanh(h)
                slopes.append(1 - h * h)
            elif isinstance(layer, nn.Softplus) and layer.beta == 1:
                slopes.append(torch.sigmoid(h))
                h = torch.nn.functional.softplus(h, threshold=layer.threshold)
            elif isinstance(layer, nn.SiLU):
                s = torch.sigmoid(h)
                slopes.append(s * (1 + h * (1 - s)))
                h = h * s
            else:
                return None
        linears = [layer for layer in layers if isinstance(layer, nn.Linear)]
        if len(linears) != len(slopes) + 1:
            return None
        g = linears[-1].weight[0].expand(x.shape[:-1] + (linears[-1].in_features,))
        for linear, slope in zip(reversed(linears[:-1]), reversed(slopes)):
            g = (g * slope) @ linear.weight
    return g


def _default_create_graph(module: nn.Module, z: torch.Tensor, create_graph: bool | None) -> bool:
    """Keep the graph of ∇H exactly when someone may differentiate the result.

    That is: grad mode is on and either z or a parameter requires grad (training; Jacobians with
    respect to z). Under ``torch.no_grad()`` (rollouts), or in the training loop's validation
    (parameters frozen), no graph is built and a hand-written backward pass is used instead.
    """
    if create_graph is not None:
        return bool(create_graph)
    if not torch.is_grad_enabled():
        return False
    return z.requires_grad or any(p.requires_grad for p in module.parameters())


class HNN(nn.Module):
    """Hamiltonian Neural Network: an MLP H_θ(q, p) → scalar, dynamics ż = J ∇H_θ.

    Args:
        dim: degrees of freedom; states z = (q, p) have length ``2 * dim``.
        hidden: widths of the hidden layers (the paper uses two layers of 200, tanh).
        activation: smooth activation, ``"tanh"`` (default), ``"softplus"``, ``"silu"`` or ``"gelu"``.
        separable: learn H = T_θ(p) + V_θ(q) with two MLPs instead of one MLP of (q, p). Separable
            models can be integrated with the explicit leapfrog (velocity Verlet), like MD.

    Example:
        >>> model = HNN(1, hidden=(32, 32)).double()
        >>> z = torch.randn(8, 2, dtype=torch.float64)
        >>> model.hamiltonian(z).shape, model.vector_field(z).shape
        (torch.Size([8]), torch.Size([8, 2]))
    """

    def __init__(self, dim: int, hidden: Sequence[int] = (200, 200), activation: str = "tanh",
                 separable: bool = False):
        super().__init__()
        self.dim = check_dim(dim)
        self.hidden = tuple(int(h) for h in hidden)
        self.activation = activation
        self.separable = bool(separable)
        if self.separable:
            self.kinetic_net = mlp(self.dim, self.hidden, 1, activation)
            self.potential_net = mlp(self.dim, self.hidden, 1, activation)
        else:
            self.net = mlp(2 * self.dim, self.hidden, 1, activation)

    def hamiltonian(self, z: torch.Tensor) -> torch.Tensor:
        """H_θ(z).

        Args:
            z: [batch, 2*dim] states (q, p).

        Returns:
            [batch] learned energies.
        """
        check_state(z, self.dim)
        if self.separable:
            q, p = split_state(z)
            return self.kinetic_net(p).squeeze(-1) + self.potential_net(q).squeeze(-1)
        return self.net(z).squeeze(-1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`hamiltonian`."""
        return self.hamiltonian(z)

    def vector_field(self, z: torch.Tensor, u: torch.Tensor | None = None,
                     create_graph: bool | None = None) -> torch.Tensor:
        """ż = J ∇H_θ(z) = (∂H/∂p, −∂H/∂q).

        Args:
            z: [batch, 2*dim] states (q, p).
            u: must be None (an HNN has no input port; see :class:`PortHamiltonianNN`).
            create_graph: keep the graph of ∇H (needed to train on ż). Default: when grad mode is
                on and ``z`` or a parameter requires grad; rollouts under ``torch.no_grad()`` skip it.

        Returns:
            [batch, 2*dim] time derivatives (q̇, ṗ).
        """
        if u is not None:
            raise ValueError("HNN has no input port (u); use PortHamiltonianNN(..., input_dim=m) for a control u")
        check_state(z, self.dim)
        return symplectic_gradient(self.gradient(z, _default_create_graph(self, z, create_graph)))

    def gradient(self, z: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
        """∇H_θ(z) = (∂H/∂q, ∂H/∂p), [batch, 2*dim].

        Without ``create_graph`` a hand-written backward pass is used (same values, no graph,
        several times faster for rollouts); with it, autograd.
        """
        check_state(z, self.dim)
        if not create_graph:
            if self.separable:
                q, p = split_state(z)
                gq, gp = mlp_input_gradient(self.potential_net, q), mlp_input_gradient(self.kinetic_net, p)
                if gq is not None and gp is not None:
                    return torch.cat([gq, gp], dim=-1)
            else:
                g = mlp_input_gradient(self.net, z)
                if g is not None:
                    return g
        return hamiltonian_gradient(self.hamiltonian, z, create_graph)

    def separable_gradients(self):
        """For a separable model, the pair ``(dH_dq(q, p), dH_dp(q, p))`` = (∇V_θ(q), ∇T_θ(p)).

        Each evaluates only its own network, so leapfrog costs one V and one T gradient per step.
        The integrators use this pair automatically for separable HNNs.
        """
        if not self.separable:
            raise ValueError("separable_gradients() needs HNN(..., separable=True)")

        def part(net, x):
            create_graph = _default_create_graph(net, x, None)
            if not create_graph:
                g = mlp_input_gradient(net, x)
                if g is not None:
                    return g
            return hamiltonian_gradient(lambda y: net(y).squeeze(-1), x, create_graph)

        return (lambda q, p: part(self.potential_net, q)), (lambda q, p: part(self.kinetic_net, p))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, hidden={self.hidden}, activation={self.activation!r}, separable={self.separable}"


class NeuralODEBaseline(nn.Module):
    """The baseline: an MLP that predicts ż = f_θ(z) directly (no conservation law built in).

    Args:
        dim: degrees of freedom; states have length ``2 * dim``.
        hidden: hidden layer widths (same default as :class:`HNN`, for a fair comparison).
        activation: smooth activation (as for :class:`HNN`).
        input_dim: size of a control input u appended to the network input (0: none).
    """

    def __init__(self, dim: int, hidden: Sequence[int] = (200, 200), activation: str = "tanh",
                 input_dim: int = 0):
        super().__init__()
        self.dim = check_dim(dim)
        if isinstance(input_dim, bool) or not isinstance(input_dim, int) or input_dim < 0:
            raise ValueError(f"input_dim must be a non-negative int, got {input_dim!r}")
        self.input_dim = input_dim
        self.hidden = tuple(int(h) for h in hidden)
        self.activation = activation
        self.net = mlp(2 * self.dim + input_dim, self.hidden, 2 * self.dim, activation)

    def vector_field(self, z: torch.Tensor, u: torch.Tensor | None = None,
                     create_graph: bool | None = None) -> torch.Tensor:
        """ż = f_θ(z[, u]).

        Args:
            z: [batch, 2*dim] states.
            u: [batch, input_dim] control (only if the model has ``input_dim > 0``; None means 0).
            create_graph: accepted for interface compatibility; unused.

        Returns:
            [batch, 2*dim] predicted time derivatives.
        """
        check_state(z, self.dim)
        if self.input_dim == 0:
            if u is not None:
                raise ValueError("this baseline has no input port (input_dim=0) but u was given")
            return self.net(z)
        return self.net(torch.cat([z, broadcast_input(u, z, self.input_dim)], dim=-1))

    def forward(self, z: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        """Same as :meth:`vector_field`."""
        return self.vector_field(z, u)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, hidden={self.hidden}, activation={self.activation!r}, input_dim={self.input_dim}"
