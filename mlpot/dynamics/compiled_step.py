"""The integrator's own step, compiled with the force evaluation and the engine's checks.

For a small system a step costs what launching its few hundred small tensor operations costs,
not arithmetic. When the potential evaluates compiled (``potential.compiled`` is True, e.g. after
``DescriptorModel.compile()``) and the scheme draws no random numbers, :class:`CompiledStep`
hands :func:`step_with_checks` to :func:`mlpot.models.compile.compile_function`: the scheme's
pure step function (the same one the engine calls otherwise, over the same kick–drift–kick),
with the fixed-topology evaluation of the current neighbour list as its force function, then the
largest displacement since the list was built and the engine's health measures. Each step is
then one call and one host sync (a [5] tensor), instead of the generic path's eager kicks,
neighbour-list check and health check, each with its own sync.

Steps are pure, so the state the step started from is still there afterwards. Whether the list
was still valid is known only after the drift, inside the graph: when an atom moved more than
skin/2, the result is dropped and the engine takes the generic step from that unchanged state,
which rebuilds the list first. That costs one wasted evaluation per rebuild, and none for a
complete list (a small molecule), which never needs rebuilding.

Both paths run the same operations, so they agree to round-off (the compiler fuses and reorders
floating-point arithmetic); a test checks it over steps with rebuilds, periodic and not.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import torch
from torch import Tensor

from mlpot.dynamics.forces import PotentialForces, as_outputs
from mlpot.dynamics.health import health_measures
from mlpot.dynamics.integrators import Integrator
from mlpot.dynamics.state import MDState
from mlpot.models.compile import compile_function, supports_compile
from mlpot.neighbors import largest_squared_displacement

__all__ = ["CompiledStep", "CompiledVerlet", "step_with_checks"]


#: The state fields a step changes; a scheme's own extra fields are added to them.
_BASE_FIELDS = frozenset(("positions", "momenta", "masses", "numbers", "cell", "pbc", "batch", "forces", "energy",
                          "thermostat_work", "n_dof"))
_CHANGED = ("positions", "momenta", "forces", "energy", "thermostat_work")


def step_with_checks(
    step: Callable,
    state_type: type,
    fields: dict[str, Tensor],
    changed: tuple[str, ...],
    params,
    reference_positions: Tensor,
    health_inverse_masses: Tensor,
    inverse_dof_kB: Tensor,
    energy_and_forces: Callable,
    potential: torch.nn.Module,
    *arguments,
) -> tuple[dict[str, Tensor], Tensor]:
    """``step(state, force_fn, params)``, then what the engine checks, on tensors in and out.

    Tensors in and out, not state objects: the compiled function then guards on a flat set of
    tensors and returns only what the step changed, which keeps its per-call overhead at that of
    a plain tensor function (a state object in and out measured ~15% slower for a 9-atom molecule).

    Args:
        step: a scheme's pure step function (:mod:`mlpot.dynamics.integrators`).
        state_type: the state's class (:class:`MDState` or a scheme's subclass); ``fields`` its tensor fields.
        changed: the names of the fields the step may change (returned).
        params: the scheme's parameters.
        reference_positions: [n, 3] Å, the positions the neighbour list was built from.
        health_inverse_masses, inverse_dof_kB: as in :func:`~mlpot.dynamics.health.health_measures`.
        energy_and_forces, potential, arguments: the potential's fixed-topology evaluation
            (:class:`~mlpot.models.potential.FixedTopology`): ``energy_and_forces(potential,
            positions, *arguments)`` → (energy [S], forces [n, 3]) or an output dict.

    Returns:
        The changed fields of the new state, and [5]: the largest squared displacement since the
        list was built (Å²), then the health measures.
    """
    state = state_type(**fields)
    n_systems = state.energy.shape[0]

    def force_fn(s: MDState) -> MDState:
        out = as_outputs(energy_and_forces(potential, s.positions, *arguments), n_systems)
        return s.evolve(energy=out["energy"], forces=out["forces"])

    new = step(state, force_fn, params)
    displacement2 = largest_squared_displacement(new.positions, reference_positions)
    health = health_measures(
        new.positions, new.momenta, new.forces, new.energy, health_inverse_masses, inverse_dof_kB, new.batch
    )
    return {name: getattr(new, name) for name in changed}, torch.cat((displacement2.reshape(1), health))


class CompiledStep:
    """Deterministic steps through one compiled graph per neighbour list, where the potential allows it.

    Args:
        integrator: the prepared integrator (its step function and parameters).
        forces: the fast-path force provider (its neighbour list and evaluator).
        health_inverse_masses: [n] 1/amu.
        inverse_dof_kB: [S] 1/(N_dof k_B).
    """

    def __init__(
        self, integrator: Integrator, forces: PotentialForces, health_inverse_masses: Tensor, inverse_dof_kB: Tensor
    ):
        self.step_function = integrator.step_function
        # dt as a tensor, not a number: the compiled step would be specialised on its value.
        dt = torch.tensor(integrator.dt, dtype=health_inverse_masses.dtype, device=health_inverse_masses.device)
        self.params = replace(integrator.params, dt=dt)
        self.forces = forces
        self.health_inverse_masses = health_inverse_masses
        self.inverse_dof_kB = inverse_dof_kB

    @staticmethod
    def applies(integrator: Integrator, forces) -> bool:
        """Whether a compiled step can serve: a deterministic scheme and an mlpot potential that evaluates compiled."""
        if integrator.stochastic or not isinstance(forces, PotentialForces):
            return False
        return supports_compile(forces.potential) and bool(forces.potential.compiled)

    def step(self, state: MDState) -> tuple[MDState, list[float]] | None:
        """The next state (its ``step`` not yet counted) and its health measures [max |F|², max T,
        Σ E, max |R|]; or None where the generic step must take it: no list yet, an evaluator that
        is not one fixed compiled pass (the generic forward, e.g. for a list too large for one
        pass), or a list that has to be rebuilt first."""
        topology = self.forces.topology(state)
        if topology is None or not topology.compiled:
            return None
        fields = state.tensors()
        changed = _CHANGED + tuple(name for name in fields if name not in _BASE_FIELDS)
        new_fields, checks = compile_function(step_with_checks)(
            self.step_function,
            type(state),
            fields,
            changed,
            self.params,
            self.forces.reference_positions,
            self.health_inverse_masses,
            self.inverse_dof_kB,
            topology.function,
            topology.potential,
            *topology.arguments,
        )
        displacement2, *health = checks.tolist()  # the step's one host sync
        if self.forces.moved_too_far(displacement2):
            return None
        new = state.evolve(**new_fields, outputs={"energy": new_fields["energy"], "forces": new_fields["forces"]})
        return new, health


#: The name of the NVE-only version this generalises.
CompiledVerlet = CompiledStep
