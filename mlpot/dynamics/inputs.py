"""What the MD engine does once, before the first step: check the input systems, build the state.

* :func:`check_atoms` refuses, with a message naming the system and the atoms, input no step should
  see: no atoms, constraints, non-finite positions or momenta, non-positive masses, a singular
  periodic cell, overlapping atoms.
* :func:`initial_state` builds the :class:`~mlpot.dynamics.state.MDState` of the systems
  (concatenated, ``batch`` giving each atom's system), with initial momenta and N_dof.
"""

from __future__ import annotations

import math
import os
import warnings

import ase
import numpy as np
import torch
from ase.data import covalent_radii
from torch import Tensor

from mlpot.dynamics.momenta import (
    degrees_of_freedom,
    maxwell_boltzmann_momenta,
    net_motion,
    remove_net_motion,
    rigid_rotations,
)
from mlpot.dynamics.state import MDState
from mlpot.neighbors import neighbor_list

__all__ = [
    "OVERLAP_FRACTION",
    "check_atoms",
    "initial_state",
    "is_ase_calculator",
    "potential_device_dtype",
    "resolve_potential",
]

#: Two atoms closer than this fraction of the sum of their covalent radii count as overlapping.
OVERLAP_FRACTION = 0.3


def is_ase_calculator(potential) -> bool:
    from ase.calculators.calculator import BaseCalculator

    return isinstance(potential, BaseCalculator) or (
        hasattr(potential, "get_forces") and hasattr(potential, "get_potential_energy")
    )


def check_atoms(atoms: ase.Atoms, index: int, n_systems: int) -> None:
    """Raise ValueError, naming the system and atoms, for input no step should see."""
    where = f"system {index}: " if n_systems > 1 else ""
    if not isinstance(atoms, ase.Atoms):
        raise TypeError(f"{where}expected ase.Atoms, got {type(atoms).__name__}")
    if len(atoms) == 0:
        raise ValueError(f"{where}no atoms")
    if atoms.constraints:
        raise ValueError(f"{where}constraints ({atoms.constraints}) are not supported by the mlpot MD engine")
    positions = atoms.get_positions()
    bad = np.flatnonzero(~np.isfinite(positions).all(axis=1))
    if bad.size:
        raise ValueError(f"{where}positions of atoms {bad[:10].tolist()} are NaN or infinite")
    momenta = atoms.get_momenta()
    bad = np.flatnonzero(~np.isfinite(momenta).all(axis=1))
    if bad.size:
        raise ValueError(f"{where}momenta of atoms {bad[:10].tolist()} are NaN or infinite")
    masses = atoms.get_masses()
    bad = np.flatnonzero(~(np.isfinite(masses) & (masses > 0)))
    if bad.size:
        raise ValueError(
            f"{where}atoms {bad[:10].tolist()} have non-positive or non-finite masses {masses[bad[:10]].tolist()} amu"
        )
    cell = atoms.cell.array
    if atoms.pbc.any():
        periodic = cell[atoms.pbc]
        if np.linalg.matrix_rank(periodic) < periodic.shape[0]:
            raise ValueError(f"{where}the cell is singular on its periodic axes {np.flatnonzero(atoms.pbc).tolist()}")
    # Overlaps: every pair closer than OVERLAP_FRACTION·(r_i + r_j), periodic images included.
    radii = covalent_radii[atoms.numbers]
    reach = OVERLAP_FRACTION * 2.0 * float(radii.max())
    if len(atoms) > 1 or atoms.pbc.any():
        pos = torch.as_tensor(positions, dtype=torch.float64)
        edge_index, edge_shift = neighbor_list(
            pos,
            max(reach, 1e-3),
            cell=torch.as_tensor(cell, dtype=torch.float64),
            pbc=torch.as_tensor(atoms.pbc),
        )
        if edge_index.shape[1]:
            i, j = edge_index.numpy()
            d = np.linalg.norm(positions[j] - positions[i] + edge_shift.numpy() @ cell, axis=1)
            too_close = d < OVERLAP_FRACTION * (radii[i] + radii[j])
            if too_close.any():
                k = int(np.flatnonzero(too_close)[0])
                raise ValueError(
                    f"{where}atoms {int(i[k])} and {int(j[k])} overlap: {d[k]:.3g} Å apart "
                    f"(less than {OVERLAP_FRACTION} of the sum of their covalent radii); "
                    f"{int(too_close.sum()) // 2 or 1} such pairs"
                )


def potential_device_dtype(potential: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    for tensor in list(potential.parameters()) + list(potential.buffers()):
        if torch.is_floating_point(tensor):
            return tensor.device, tensor.dtype
    return torch.device("cpu"), torch.float64


def resolve_potential(potential, device=None, dtype=None) -> tuple:
    """The potential MD runs, whether it takes the fast path, and the device and dtype of the state.

    Args:
        potential: an mlpot potential (fast path), a path to a saved mlpot model, or any ASE
            calculator (generic path: CPU, float64). An ``MLPotCalculator`` is unwrapped to its model.
        device, dtype: the fast path's (default: those of the potential's parameters).

    Returns:
        ``(potential, fast_path, device, dtype)``.
    """
    if isinstance(potential, (str, os.PathLike)):
        from mlpot.models.serialization import load_model

        potential = load_model(potential)
    if type(potential).__name__ == "MLPotCalculator" and isinstance(getattr(potential, "model", None), torch.nn.Module):
        potential = potential.model  # an mlpot model behind an ASE calculator: take the fast path
    if isinstance(potential, torch.nn.Module):
        model_device, model_dtype = potential_device_dtype(potential)
        return potential, True, torch.device(device) if device is not None else model_device, dtype or model_dtype
    if is_ase_calculator(potential):
        return potential, False, torch.device("cpu"), torch.float64
    raise TypeError(
        f"potential must be an mlpot potential (torch.nn.Module with 'cutoff') or an ASE calculator, "
        f"got {type(potential).__name__}"
    )


def initial_state(
    systems: list[ase.Atoms],
    conserving: bool,
    temperature_K: float | None,
    generator: torch.Generator,
    device: torch.device,
    dtype: torch.dtype,
) -> MDState:
    """The MD state of ``systems`` at step 0 (forces and energy still zero).

    Momenta: those of the atoms when any is non-zero, else Maxwell–Boltzmann at ``temperature_K``
    (drawn from ``generator``), else zero. When the scheme ``conserving`` the total momentum (and,
    for a system with no periodic axis, the angular momentum), both are set to zero, with a
    warning for given momenta that carried any; N_dof follows (:mod:`mlpot.dynamics.momenta`).
    """
    kw = {"dtype": dtype, "device": device}
    n_systems = len(systems)
    positions = torch.as_tensor(np.concatenate([a.get_positions() for a in systems]), **kw)
    masses = torch.as_tensor(np.concatenate([a.get_masses() for a in systems]), **kw)
    numbers = torch.as_tensor(np.concatenate([a.numbers for a in systems]), dtype=torch.int64, device=device)
    sizes = torch.tensor([len(a) for a in systems], dtype=torch.int64)
    batch = torch.repeat_interleave(torch.arange(n_systems), sizes).to(device)
    cell = torch.as_tensor(np.stack([a.cell.array for a in systems]), **kw)
    pbc = torch.as_tensor(np.stack([a.pbc for a in systems]), dtype=torch.bool, device=device)
    momenta = torch.as_tensor(np.concatenate([a.get_momenta() for a in systems]), **kw)
    rotations = rigid_rotations(positions, masses, batch, n_systems, pbc) if conserving else None
    if not bool(momenta.any()) and temperature_K:
        momenta = maxwell_boltzmann_momenta(masses, batch, n_systems, float(temperature_K), generator)
        if rotations is not None:
            momenta = remove_net_motion(positions, momenta, masses, batch, n_systems, rotations)
    elif conserving and bool(momenta.any()):
        momenta = without_net_motion(positions, momenta, masses, batch, n_systems, rotations)
    n_dof = degrees_of_freedom(sizes, conserving, rotations).to(**kw)
    zeros = torch.zeros(n_systems, **kw)
    return MDState(
        positions=positions,
        momenta=momenta,
        masses=masses,
        numbers=numbers,
        cell=cell,
        pbc=pbc,
        batch=batch,
        forces=torch.zeros_like(positions),
        energy=zeros.clone(),
        thermostat_work=zeros.clone(),
        n_dof=n_dof,
        step=0,
    )


def without_net_motion(positions, momenta, masses, batch, n_systems, rotations) -> Tensor:
    """User-given momenta with their net (and, for isolated systems, angular) momentum
    removed, with a warning when there was any: the temperature's N_dof assumes them zero."""
    total, angular = net_motion(positions, momenta, masses, batch, n_systems)
    # Round-off of a sum of n momenta is ~√n ε |p|: anything well above it was given on purpose.
    scale = 64 * torch.finfo(momenta.dtype).eps * math.sqrt(momenta.shape[0]) * momenta.norm(dim=1).max()
    radius = (positions - positions.mean(dim=0)).norm(dim=1).max().clamp(min=1.0)
    moving = total.norm(dim=1) > scale
    rotating = (angular.norm(dim=1) > scale * radius) & (rotations > 0)
    if bool(moving.any()) or bool(rotating.any()):
        what = " and ".join(
            text for text, flag in (("net momentum", moving), ("net angular momentum", rotating)) if bool(flag.any())
        )
        systems = sorted(set(torch.nonzero(moving | rotating).flatten().tolist()))
        warnings.warn(
            f"the given momenta carry {what} (systems {systems[:10]}); removed, since it is a constant of "
            f"motion that the temperature's degrees of freedom exclude",
            stacklevel=4,
        )
        return remove_net_motion(positions, momenta, masses, batch, n_systems, rotations)
    return momenta
