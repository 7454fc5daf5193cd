"""Compiled evaluation: one public helper for models and for the MD step that calls them.

For a small molecule an evaluation costs what dispatching a few hundred small tensor operations
costs, not arithmetic; ``torch.compile`` fuses them into a few dozen kernels. A model that offers
compiled evaluation mixes in :class:`CompiledEvaluation`: a boolean class attribute ``compiled``, a
``compile(enabled=True)`` method that sets it, and ``_pass(function)``, through which its
evaluation methods run (``DescriptorModel``, ``EquivariantModel``); they, and the MD engine's step
around them, go through :func:`compile_function` when the flag is set.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import nn

__all__ = ["CompiledEvaluation", "compile_function", "compile_potential", "supports_compile"]

_COMPILED: dict[Callable, Callable] = {}


def compile_function(function: Callable) -> Callable:
    """``torch.compile`` of ``function``, built on first use and shared by every caller.

    ``function`` takes the model as an argument (a method, or MD's step that calls one), so a copy
    of a model needs no compiling of its own. The first call compiles for its shapes (10–30 s on
    CPU, which needs a C++ compiler; later processes reuse torch's on-disk cache); the first change
    of shapes compiles once more, for any shapes from then on. If compiling fails, the call warns
    once and runs ``function`` uncompiled, then and afterwards: slower, never wrong.
    """
    if function not in _COMPILED:
        # dynamic=None: specialised to the first shapes (~15% faster for a small molecule),
        # recompiled once with dynamic shapes when they change.
        compiled = torch.compile(function, options={"cpp_wrapper": True})
        failed = False

        def call(*args):
            nonlocal failed
            if failed:
                return function(*args)
            try:
                return compiled(*args)
            except Exception as error:  # noqa: BLE001 - whatever the compiler raises: fall back, loudly
                first_line = str(error).splitlines()[0] if str(error) else ""
                warnings.warn(
                    f"torch.compile failed ({type(error).__name__}: {first_line}); evaluating uncompiled "
                    "(correct, but slower). On CPU, compiling needs a working C++ compiler.",
                    RuntimeWarning,
                    stacklevel=3,
                )
                failed = True
                return function(*args)

        _COMPILED[function] = call
    return _COMPILED[function]


class CompiledEvaluation:
    """Mixin of a model whose evaluation passes may run compiled (see the module docstring)."""

    #: Whether evaluation goes through the compiled passes (:meth:`compile`).
    compiled: bool = False

    def compile(self, enabled: bool = True):
        """Evaluate (``training=False``, the calculator, MD) through compiled passes; returns the model.

        ``torch.compile`` fuses the hundreds of small tensor operations of an evaluation into a few
        dozen kernels, which is what makes a small molecule fast: there, dispatching operations,
        not arithmetic, is the cost. The first evaluation compiles (10–30 s; it needs a C++
        compiler on CPU, and later processes reuse torch's on-disk cache) for its shapes, which is
        fastest for MD of a molecule whose neighbour list keeps its size; the first change of
        shapes (atoms, edges) compiles once more, for any shapes from then on. Training is
        unaffected. Should compiling fail, evaluation warns once and goes on uncompiled.
        """
        self.compiled = bool(enabled)
        return self

    def _pass(self, function: Callable) -> Callable:
        """``function`` (a method of the model's class, called with the model first), compiled
        when :meth:`compile` asked for it."""
        return compile_function(function) if self.compiled else function


def supports_compile(model: nn.Module) -> bool:
    """Whether ``model`` offers compiled evaluation (a boolean class attribute ``compiled``).

    ``nn.Module.compile`` exists on every module, so its presence says nothing.
    """
    return isinstance(getattr(type(model), "compiled", None), bool)


def compile_potential(potential: nn.Module) -> nn.Module:
    """Switch a model, or every member of a committee, to compiled evaluation; returns it.

    Raises:
        ValueError: for a potential (or member) with no compiled evaluation.
    """
    # Potential.constituents: [itself], or a committee's members. (This module imports nothing from
    # mlpot, so that potential.py can import it; hence no isinstance check against Potential.)
    if not callable(getattr(potential, "constituents", None)):
        raise ValueError(f"{type(potential).__name__} is not an mlpot.models.Potential")
    members = potential.constituents()
    for member in members:
        if not supports_compile(member):
            raise ValueError(f"{type(member).__name__} has no compiled evaluation (DescriptorModel and "
                             "EquivariantModel have: mlpot.models.compile.CompiledEvaluation)")
    for member in members:
        member.compile()
    return potential
