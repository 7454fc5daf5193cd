"""Velocity Verlet steps compiled into one graph with the force evaluation and the checks.

For a small system a step costs what launching its few hundred small tensor operations costs,
not arithmetic. When the potential evaluates compiled (``FixedTopology.compiler`` is set,
e.g. after ``DescriptorModel.compile()``), :class:`CompiledVerlet` therefore compiles one
function per neighbour list: half kick, drift, the potential's energy and forces, half kick,
the largest displacement since the list was built and the engine's health measures. Each
step is then one call and one host sync (a [5] tensor), instead of the generic path's eager
kicks, neighbour-list check and health check, each with its own sync.

The step runs on new tensors and the state takes them only afterwards. Whether the list was
still valid is known only after the drift, inside the graph: when an atom moved more than
skin/2, the result is dropped and the engine takes the generic step from the unchanged
state, which rebuilds the list first. That costs one wasted evaluation per rebuild, and none
for a complete list (a small molecule), which never needs rebuilding.

Both paths compute the same operations, so they agree to round-off (the compiler fuses and
reorders floating-point arithmetic); a test checks it over steps with rebuilds, periodic and not.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from mlpot.dynamics.forces import PotentialForces
from mlpot.dynamics.integrators import MDState, VelocityVerlet, health_measures, velocity_verlet_step
from mlpot.neighbors import largest_squared_displacement

__all__ = ["CompiledVerlet", "verlet_step_with_checks"]


def verlet_step_with_checks(
    positions: Tensor,
    momenta: Tensor,
    forces: Tensor,
    inverse_masses: Tensor,
    reference_positions: Tensor,
    health_inverse_masses: Tensor,
    inverse_dof_kB: Tensor,
    batch: Tensor,
    dt: Tensor,
    energy_and_forces: Callable[..., tuple[Tensor, Tensor]],
    potential: torch.nn.Module,
    *arguments,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """:func:`~mlpot.dynamics.integrators.velocity_verlet_step`, then what the engine checks.

    Args:
        positions, momenta, forces: [n, 3] the state before the step (Å, amu·Å/(ASE time), eV/Å).
        inverse_masses: [n, 1] 1/amu.
        reference_positions: [n, 3] Å, the positions the neighbour list was built from.
        health_inverse_masses, inverse_dof_kB, batch: as in :func:`~mlpot.dynamics.integrators.health_measures`.
        dt: [] time step, ASE time units.
        energy_and_forces, potential, arguments: the potential's fixed-topology evaluation
            (:class:`~mlpot.models.potential.FixedTopology`).

    Returns:
        New positions, momenta, forces [n, 3] and energy [S], and [5]: the largest squared
        displacement since the list was built (Å²), then the health measures.
    """
    positions, momenta, forces, energy = velocity_verlet_step(
        positions, momenta, forces, inverse_masses, dt, energy_and_forces, potential, *arguments
    )
    displacement2 = largest_squared_displacement(positions, reference_positions)
    health = health_measures(positions, momenta, forces, energy, health_inverse_masses, inverse_dof_kB, batch)
    return positions, momenta, forces, energy, torch.cat((displacement2.reshape(1), health))


class CompiledVerlet:
    """NVE steps through one compiled graph per neighbour list, where the potential allows it.

    Args:
        integrator: the velocity Verlet integrator (its time step and 1/m).
        forces: the fast-path force provider (its neighbour list and evaluator).
        health_inverse_masses: [n] 1/amu.
        inverse_dof_kB: [S] 1/(N_dof k_B).
    """

    def __init__(
        self, integrator: VelocityVerlet, forces: PotentialForces, health_inverse_masses: Tensor, inverse_dof_kB: Tensor
    ):
        self.integrator = integrator
        self.forces = forces
        # A tensor, not a number: the compiled step would be specialised on its value.
        self.dt = torch.tensor(integrator.dt, dtype=health_inverse_masses.dtype, device=health_inverse_masses.device)
        self.health_inverse_masses = health_inverse_masses
        self.inverse_dof_kB = inverse_dof_kB

    def step(self, state: MDState) -> list[float] | None:
        """Advance ``state`` by one step (its positions, momenta, forces and energy replaced by
        the step's) and return the health measures [max |F|², max T, Σ E, max |R|]; or return None, with
        the state untouched, where the generic step must take it: no compiled evaluator, no list
        yet, or a list that has to be rebuilt first."""
        topology = self.forces.topology(state)
        if topology is None or topology.compiler is None:
            return None
        step = topology.compiler(verlet_step_with_checks)
        positions, momenta, forces, energy, checks = step(
            state.positions,
            state.momenta,
            state.forces,
            self.integrator._inverse_masses,
            self.forces.reference_positions,
            self.health_inverse_masses,
            self.inverse_dof_kB,
            state.batch,
            self.dt,
            topology.function,
            topology.potential,
            *topology.arguments,
        )
        displacement2, *health = checks.tolist()  # the step's one host sync
        if self.forces.moved_too_far(displacement2):
            return None
        state.positions, state.momenta, state.forces, state.energy = positions, momenta, forces, energy
        state.step += 1
        return health
