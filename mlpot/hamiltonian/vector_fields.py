"""What the Hamiltonian integrators accept as dynamics, behind one interface: :class:`Dynamics`.

:func:`as_dynamics` classifies the first argument of every integrator of
:mod:`mlpot.hamiltonian.integrators` (a vector field, a Hamiltonian, a model with
``vector_field`` or a gradient pair; see that module's docstring) and :class:`Dynamics` gives
ż, ∂H/∂q and ∂H/∂p from any of them.
"""

from __future__ import annotations

import torch

from mlpot.hamiltonian.state import split_state

__all__ = ["Dynamics", "as_dynamics"]


class Dynamics:
    """Uniform access to ż, ∂H/∂q and ∂H/∂p, whatever form the caller passed.

    Build it with :func:`as_dynamics`. ``kind`` is ``"vector_field"``, ``"hamiltonian"`` or
    ``"gradients"``.
    """

    def __init__(self, kind: str, func, time_dependent: bool = False):
        self.kind = kind
        self.func = func
        self.time_dependent = time_dependent

    def _call(self, f, *args, t: float):
        return f(*args, t) if self.time_dependent else f(*args)

    def _grad_h(self, z: torch.Tensor, t: float) -> torch.Tensor:
        # The rollout turns grad mode off unless the caller differentiates through it (z0 requires
        # grad or track_grad=True); then the gradient itself must stay differentiable.
        create_graph = torch.is_grad_enabled()
        with torch.enable_grad():
            zz = z if z.requires_grad else z.detach().requires_grad_(True)
            h = self._call(self.func, zz, t=t)
            (grad,) = torch.autograd.grad(h.sum(), zz, create_graph=create_graph)
        return grad

    def field(self, z: torch.Tensor, t: float = 0.0) -> torch.Tensor:
        """ż at states z [batch, 2*dim]."""
        if self.kind == "vector_field":
            return self._call(self.func, z, t=t)
        q, p = split_state(z)
        dh_dq, dh_dp = self.gradients(q, p, t)
        return torch.cat([dh_dp, -dh_dq], dim=-1)

    def gradients(self, q: torch.Tensor, p: torch.Tensor, t: float = 0.0):
        """(∂H/∂q, ∂H/∂p) at (q, p), each [batch, dim]."""
        if self.kind == "gradients":
            dh_dq, dh_dp = self.func
            return self._call(dh_dq, q, p, t=t), self._call(dh_dp, q, p, t=t)
        z = torch.cat([q, p], dim=-1)
        if self.kind == "hamiltonian":
            return split_state(self._grad_h(z, t))
        zdot_q, zdot_p = split_state(self._call(self.func, z, t=t))
        return -zdot_p, zdot_q

    def dh_dq(self, q, p, t: float = 0.0) -> torch.Tensor:
        if self.kind == "gradients":
            return self._call(self.func[0], q, p, t=t)
        return self.gradients(q, p, t)[0]

    def dh_dp(self, q, p, t: float = 0.0) -> torch.Tensor:
        if self.kind == "gradients":
            return self._call(self.func[1], q, p, t=t)
        return self.gradients(q, p, t)[1]


def as_dynamics(source, z0: torch.Tensor, kind: str | None = None, time_dependent: bool = False,
                t0: float = 0.0) -> Dynamics:
    """Classify ``source`` (vector field, Hamiltonian, model or gradient pair); see the module doc."""
    if kind not in (None, "vector_field", "hamiltonian", "gradients"):
        raise ValueError(f"kind must be None, 'vector_field', 'hamiltonian' or 'gradients', got {kind!r}")
    if isinstance(source, (tuple, list)):
        if len(source) != 2 or not all(callable(g) for g in source):
            raise ValueError("a gradient pair must be two callables (dH_dq(q, p), dH_dp(q, p))")
        return Dynamics("gradients", tuple(source), time_dependent)
    if kind == "gradients":
        raise ValueError("kind='gradients' needs a pair of callables (dH_dq, dH_dp)")
    if hasattr(source, "vector_field") and callable(source.vector_field):  # a model
        if time_dependent:
            raise ValueError(
                "time_dependent=True needs a plain callable f(z, t); wrap the model, e.g. "
                "lambda z, t: model.vector_field(z, u=drive(t))"
            )
        if kind is None and getattr(source, "separable", False) and hasattr(source, "separable_gradients"):
            return Dynamics("gradients", source.separable_gradients(), time_dependent)  # separable HNN
        if kind == "hamiltonian":
            return Dynamics("hamiltonian", source.hamiltonian, time_dependent)
        return Dynamics("vector_field", source.vector_field, time_dependent)
    if not callable(source):
        raise ValueError(
            f"expected a vector field, a Hamiltonian, a model with .vector_field or a pair "
            f"(dH_dq, dH_dp); got {type(source).__name__}"
        )
    if kind is not None:
        return Dynamics(kind, source, time_dependent)
    with torch.no_grad():
        probe = z0.detach()
        out = source(probe, t0) if time_dependent else source(probe)
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"the dynamics callable returned {type(out).__name__}, not a tensor")
    if out.shape == z0.shape[:-1]:
        return Dynamics("hamiltonian", source, time_dependent)
    if out.shape == z0.shape:
        return Dynamics("vector_field", source, time_dependent)
    raise ValueError(
        f"cannot tell whether the callable is a Hamiltonian or a vector field: for z0 of shape "
        f"{tuple(z0.shape)} it returned shape {tuple(out.shape)}; a Hamiltonian returns "
        f"{tuple(z0.shape[:-1])} and a vector field {tuple(z0.shape)}"
    )
