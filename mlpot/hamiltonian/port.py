"""Port-Hamiltonian neural networks: energy, dissipation and input, each with its structure built in.

A port-Hamiltonian system is

    ż = (J − R) ∇H(z) + G u,

with J skew-symmetric (the interconnection), R symmetric positive semi-definite (dissipation)
and G the input matrix of a known control u(t). Then

    dH/dt = ∇Hᵀ (J − R) ∇H + ∇Hᵀ G u = −∇Hᵀ R ∇H + ∇Hᵀ G u,

so without input the energy can only decrease, for any weights. :class:`PortHamiltonianNN` keeps
these properties by construction: R = L Lᵀ (or a softplus diagonal), J canonical or J = A − Aᵀ.
:class:`DampedOscillatorNN` is the special case of friction on the momenta only,
ṗ = −∂H/∂q − γ ∂H/∂p with γ = softplus(θ) > 0: a damped cantilever (e.g. an AFM tip), or the
damped Duffing oscillator of :mod:`mlpot.hamiltonian.systems`.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from mlpot.hamiltonian.hnn import HNN, _default_create_graph, mlp
from mlpot.hamiltonian.state import broadcast_input, check_dim, check_state, symplectic_matrix

__all__ = ["PortHamiltonianNN", "DampedOscillatorNN", "broadcast_input"]

DISSIPATION_MODES = ("none", "momentum", "diagonal", "full", "state")


def _inverse_softplus(x: float) -> float:
    return x + math.log(-math.expm1(-x))


class PortHamiltonianNN(nn.Module):
    """Port-Hamiltonian NN: ż = (J − R)∇H_θ + G u, with structure guaranteed by construction.

    Args:
        dim: degrees of freedom; states z = (q, p) have length ``2 * dim``.
        hidden: hidden widths of the Hamiltonian MLP (and of the R(z) network for ``"state"``).
        activation: smooth activation of the MLPs.
        dissipation: how R is parametrised (always symmetric PSD):
            ``"full"`` (default) constant R = L Lᵀ, L a learned lower-triangular [2d, 2d];
            ``"diagonal"`` R = diag(softplus(θ)) over all 2d coordinates;
            ``"momentum"`` R = diag(0, softplus(θ)) — friction on the momenta only;
            ``"state"`` R(z) = L(z) L(z)ᵀ with L(z) from an MLP of the state;
            ``"none"`` R = 0 (an HNN, possibly with learned J and an input port).
        learn_structure: learn J = A − Aᵀ (skew by construction, A initialised to J_canonical/2)
            instead of using the canonical J.
        input_dim: size m of the control u (0: no input port).
        input_matrix: a known G [2d, m]; if None and ``input_dim > 0``, G is learned (from zero).
        separable: use a separable H = T(p) + V(q) (see :class:`HNN`).
        initial_dissipation: initial scale of R (softplus modes: the initial diagonal; ``"full"``:
            R = initial_dissipation · I). Small by default: starting nearly conservative and letting
            the data add friction converged faster and more reliably than starting from above.
    """

    def __init__(self, dim: int, hidden: Sequence[int] = (200, 200), activation: str = "tanh",
                 dissipation: str = "full", learn_structure: bool = False, input_dim: int = 0,
                 input_matrix: torch.Tensor | None = None, separable: bool = False,
                 initial_dissipation: float = 0.05):
        super().__init__()
        self.dim = check_dim(dim)
        n = 2 * self.dim
        if dissipation not in DISSIPATION_MODES:
            raise ValueError(f"dissipation must be one of {DISSIPATION_MODES}, got {dissipation!r}")
        if isinstance(input_dim, bool) or not isinstance(input_dim, int) or input_dim < 0:
            raise ValueError(f"input_dim must be a non-negative int, got {input_dim!r}")
        if not initial_dissipation > 0:
            raise ValueError(f"initial_dissipation must be positive, got {initial_dissipation!r}")
        self.dissipation = dissipation
        self.learn_structure = bool(learn_structure)
        self.input_dim = input_dim
        self.energy = HNN(self.dim, hidden, activation, separable=separable)

        theta0 = _inverse_softplus(initial_dissipation)
        if dissipation == "momentum":
            self.dissipation_raw = nn.Parameter(torch.full((self.dim,), theta0))
        elif dissipation == "diagonal":
            self.dissipation_raw = nn.Parameter(torch.full((n,), theta0))
        elif dissipation == "full":
            self.dissipation_factor = nn.Parameter(math.sqrt(initial_dissipation) * torch.eye(n))
        elif dissipation == "state":
            self.dissipation_net = mlp(n, self.energy.hidden, n * n, activation)
            with torch.no_grad():  # start near R = initial_dissipation · I
                last = self.dissipation_net[-1]
                last.weight.mul_(1e-2)
                last.bias.copy_(math.sqrt(initial_dissipation) * torch.eye(n).flatten())

        self.register_buffer("canonical_J", symplectic_matrix(self.dim, dtype=torch.get_default_dtype()))
        if self.learn_structure:
            self.structure_raw = nn.Parameter(0.5 * symplectic_matrix(self.dim, dtype=torch.get_default_dtype()))

        if input_dim > 0:
            if input_matrix is not None:
                g = torch.as_tensor(input_matrix, dtype=torch.get_default_dtype())
                if g.shape != (n, input_dim):
                    raise ValueError(
                        f"input_matrix must have shape [2*dim, input_dim] = [{n}, {input_dim}], got {tuple(g.shape)}"
                    )
                self.register_buffer("fixed_input_matrix", g.clone())
                self.input_matrix_raw = None
            else:
                self.fixed_input_matrix = None
                self.input_matrix_raw = nn.Parameter(torch.zeros(n, input_dim))
        elif input_matrix is not None:
            raise ValueError("input_matrix given but input_dim is 0")

    # --- the three structural pieces ---------------------------------------------------------

    def hamiltonian(self, z: torch.Tensor) -> torch.Tensor:
        """H_θ(z): [batch, 2*dim] → [batch]."""
        return self.energy.hamiltonian(z)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`hamiltonian`."""
        return self.hamiltonian(z)

    def structure_matrix(self) -> torch.Tensor:
        """J [2d, 2d], skew-symmetric: canonical, or A − Aᵀ when learned."""
        if self.learn_structure:
            return self.structure_raw - self.structure_raw.transpose(0, 1)
        return self.canonical_J

    def dissipation_matrix(self, z: torch.Tensor | None = None) -> torch.Tensor:
        """R, symmetric positive semi-definite.

        Returns [2d, 2d] for the constant modes, or [batch, 2d, 2d] for ``dissipation="state"``
        (which needs ``z`` [batch, 2d]).
        """
        n = 2 * self.dim
        ref = self.canonical_J
        if self.dissipation == "none":
            return ref.new_zeros(n, n)
        if self.dissipation == "momentum":
            diag = torch.cat([self.dissipation_raw.new_zeros(self.dim), F.softplus(self.dissipation_raw)])
            return torch.diag(diag)
        if self.dissipation == "diagonal":
            return torch.diag(F.softplus(self.dissipation_raw))
        if self.dissipation == "full":
            lower = torch.tril(self.dissipation_factor)
            return lower @ lower.transpose(0, 1)
        if z is None:
            raise ValueError("dissipation='state' makes R depend on the state: pass z")
        check_state(z, self.dim)
        lower = torch.tril(self.dissipation_net(z).reshape(z.shape[:-1] + (n, n)))
        return lower @ lower.transpose(-1, -2)

    def input_matrix(self) -> torch.Tensor:
        """G [2d, input_dim] (empty [2d, 0] without an input port)."""
        if self.input_dim == 0:
            return self.canonical_J.new_zeros(2 * self.dim, 0)
        return self.fixed_input_matrix if self.input_matrix_raw is None else self.input_matrix_raw

    @property
    def damping(self) -> torch.Tensor:
        """The friction coefficients softplus(θ) (modes ``"momentum"`` [dim], ``"diagonal"`` [2d])."""
        if self.dissipation not in ("momentum", "diagonal"):
            raise AttributeError(
                f"damping is defined for dissipation 'momentum' or 'diagonal', not {self.dissipation!r}"
            )
        return F.softplus(self.dissipation_raw)

    # --- dynamics ----------------------------------------------------------------------------

    def _apply_structure(self, grad: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """(J − R) ∇H for ∇H [batch, 2d]."""
        out = grad @ self.structure_matrix().transpose(0, 1)
        if self.dissipation == "state":
            out = out - torch.einsum("...ij,...j->...i", self.dissipation_matrix(z), grad)
        elif self.dissipation != "none":
            out = out - grad @ self.dissipation_matrix()  # R is symmetric
        return out

    def vector_field(self, z: torch.Tensor, u: torch.Tensor | None = None,
                     create_graph: bool | None = None) -> torch.Tensor:
        """ż = (J − R) ∇H_θ(z) + G u.

        Args:
            z: [batch, 2*dim] states (q, p).
            u: control, [batch, input_dim], [input_dim] or a number; None means u = 0.
            create_graph: keep the graph of ∇H (default: if grad mode is on and z or a parameter
                requires grad).

        Returns:
            [batch, 2*dim] time derivatives.
        """
        check_state(z, self.dim)
        if u is not None and self.input_dim == 0:
            raise ValueError("this model has no input port (input_dim=0) but a control u was given")
        grad = self.energy.gradient(z, _default_create_graph(self, z, create_graph))
        out = self._apply_structure(grad, z)
        if self.input_dim > 0 and u is not None:
            out = out + broadcast_input(u, z, self.input_dim) @ self.input_matrix().transpose(0, 1)
        return out

    def energy_rate(self, z: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        """dH_θ/dt = ∇Hᵀ ż along the model's own flow, [batch]; ≤ 0 when u = 0."""
        check_state(z, self.dim)
        create_graph = _default_create_graph(self, z, None)
        grad = self.energy.gradient(z, create_graph)
        return (grad * self.vector_field(z, u, create_graph=create_graph)).sum(-1)

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, dissipation={self.dissipation!r}, learn_structure={self.learn_structure}, "
                f"input_dim={self.input_dim}")


class DampedOscillatorNN(PortHamiltonianNN):
    """A learned H with friction on the momenta: ṗ = −∂H/∂q − γ ∂H/∂p (+ G u), γ = softplus(θ) > 0.

    For H = p²/2m + U(q) this is m q̈ = −U'(q) − γ q̇: γ is the usual damping coefficient, read off
    as :attr:`damping` ([dim]). It is ``PortHamiltonianNN(dissipation="momentum")``.

    Args:
        dim: degrees of freedom (1 for a single oscillator).
        hidden, activation, separable: of the Hamiltonian MLP, as for :class:`HNN`.
        initial_damping: γ at initialisation (small: start nearly conservative).
        input_dim, input_matrix: an optional drive port, as for :class:`PortHamiltonianNN`.
    """

    def __init__(self, dim: int = 1, hidden: Sequence[int] = (200, 200), activation: str = "tanh",
                 separable: bool = False, initial_damping: float = 0.05, input_dim: int = 0,
                 input_matrix: torch.Tensor | None = None):
        super().__init__(dim, hidden, activation, dissipation="momentum", input_dim=input_dim,
                         input_matrix=input_matrix, separable=separable, initial_dissipation=initial_damping)
