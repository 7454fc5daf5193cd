"""Frames for reweighting: decorrelated snapshots of a model's MD, and the energies of other potentials on them.

:class:`FrameRecorder` is an MD reporter that keeps, every ``interval`` steps after equilibration, the positions,
cell and the model's K and U of every system. :func:`reference_energies` evaluates any ASE calculator (EMT,
Lennard-Jones, tblite, PySCF …) on them; :func:`member_energies` each member of an mlpot committee;
:func:`read_labelled_energies` takes energies labelled elsewhere (an extxyz file of the same frames, matched by
index and checked by position).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mlpot.analysis.reweighting import InsufficientOverlapError, heat_capacity_committee, heat_capacity_reweighted

__all__ = ["FrameRecorder", "member_energies", "read_labelled_energies", "reference_energies", "reweight_frames",
           "write_frames"]


class FrameRecorder:
    """Keeps positions [n_atoms_total, 3] (Å), cells [S, 3, 3], E_kin and E_pot [S] (eV) every ``interval`` steps.

    Args:
        interval: steps between frames (choose it beyond the correlation time of the energy).
        after_step: frames are kept only after this step (the end of equilibration).
    """

    def __init__(self, interval: int, after_step: int = 0):
        self.interval = int(interval)
        self.after_step = int(after_step)
        self.positions: list[np.ndarray] = []
        self.cells: list[np.ndarray] = []
        self.kinetic: list[np.ndarray] = []
        self.potential: list[np.ndarray] = []

    def start(self, sim) -> None:
        self.sizes = [len(a) for a in sim._template]
        self.template = [a.copy() for a in sim._template]

    def report(self, sim) -> None:
        if sim.state.step <= self.after_step:
            return
        observed = sim.observables()
        self.positions.append(sim.state.positions.detach().to("cpu", torch.float64).numpy().copy())
        self.cells.append(sim.state.cell.detach().to("cpu", torch.float64).numpy().copy())
        self.kinetic.append(observed["E_kin"].copy())
        self.potential.append(observed["E_pot"].copy())

    def close(self, sim) -> None:
        pass

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The frames kept so far (float64 tensors, [F, ...]), for a checkpoint."""
        return {name: torch.from_numpy(np.asarray(getattr(self, name), dtype=np.float64))
                for name in ("positions", "cells", "kinetic", "potential")}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Continue from :meth:`state_dict`: the frames of the run a checkpoint interrupted."""
        for name in ("positions", "cells", "kinetic", "potential"):
            setattr(self, name, [row.copy() for row in state[name].numpy()])

    def frames(self, system: int):
        """The ``ase.Atoms`` of ``system`` at each kept frame (no calculator), and its K and U [F] (eV)."""
        start = int(np.sum(self.sizes[:system]))
        stop = start + self.sizes[system]
        atoms = []
        for positions, cell in zip(self.positions, self.cells):
            frame = self.template[system].copy()
            frame.set_cell(cell[system])
            frame.set_positions(positions[start:stop])
            atoms.append(frame)
        kinetic = np.asarray([k[system] for k in self.kinetic])
        potential = np.asarray([u[system] for u in self.potential])
        return atoms, kinetic, potential


def reference_energies(calculator, frames) -> np.ndarray:
    """Potential energy (eV) of each ``ase.Atoms`` in ``frames`` with an ASE ``calculator``, [F]."""
    energies = []
    for frame in frames:
        atoms = frame.copy()
        atoms.calc = calculator
        energies.append(atoms.get_potential_energy())
    return np.asarray(energies, dtype=np.float64)


def member_energies(committee: torch.nn.Module, frames) -> np.ndarray:
    """Each committee member's energy (eV) on each frame, [n_members, F] (any mlpot potential as a member)."""
    from mlpot.neighbors import neighbor_list

    out = np.zeros((len(committee.members), len(frames)))
    with torch.no_grad():
        for m, member in enumerate(committee.members):
            dtype = _dtype(member)
            for f, atoms in enumerate(frames):
                positions = torch.as_tensor(atoms.positions, dtype=dtype)
                cell = torch.as_tensor(atoms.cell.array, dtype=dtype)[None]
                pbc = torch.as_tensor(atoms.pbc)[None]
                edge_index, edge_shift = neighbor_list(positions, float(member.cutoff), cell=cell, pbc=pbc)
                data = {
                    "positions": positions, "cell": cell, "pbc": pbc,
                    "edge_index": edge_index, "edge_shift": edge_shift,
                    "numbers": torch.as_tensor(atoms.numbers, dtype=torch.int64),
                    "batch": torch.zeros(len(atoms), dtype=torch.int64),
                }
                with torch.enable_grad():  # some potentials differentiate inside forward regardless
                    out[m, f] = float(member(data, compute_forces=False)["energy"].reshape(-1)[0])
    return out


def _dtype(module: torch.nn.Module) -> torch.dtype:
    for tensor in list(module.parameters()) + list(module.buffers()):
        if torch.is_floating_point(tensor):
            return tensor.dtype
    return torch.float64


def write_frames(path: str | Path, frames) -> Path:
    """Write the frames as extxyz (for labelling with a reference elsewhere)."""
    import ase.io

    path = Path(path)
    ase.io.write(path, list(frames), format="extxyz")
    return path


def read_labelled_energies(path: str | Path, frames, tolerance_A: float = 1e-4) -> np.ndarray:
    """Energies (eV) of ``frames`` from a file of the same frames labelled elsewhere, matched by index.

    Raises:
        ValueError: a different number of frames, a frame without an energy, or positions that differ by more
            than ``tolerance_A`` (the file is not of these frames).
    """
    import ase.io

    labelled = ase.io.read(path, index=":")
    if len(labelled) != len(frames):
        raise ValueError(
            f"{path} holds {len(labelled)} frames, the run produced {len(frames)}: they must match by index"
        )
    energies = []
    for k, (theirs, ours) in enumerate(zip(labelled, frames)):
        if len(theirs) != len(ours) or np.max(np.abs(theirs.positions - ours.positions)) > tolerance_A:
            raise ValueError(f"frame {k} of {path} is not frame {k} of this run (atoms or positions differ)")
        try:
            energies.append(theirs.get_potential_energy())
        except Exception as error:  # noqa: BLE001 - no calculator or no energy: say which frame
            raise ValueError(f"frame {k} of {path} has no energy ({error})") from error
    return np.asarray(energies, dtype=np.float64)


def reweight_frames(frames, columns, n_atoms, temperature, committee, reference, energies_file, min_ess, seed,
                    n_dof_kinetic, block_frames) -> dict:
    """Reweighted C_V of the reference and/or the committee's members on the kept frames of one size.

    Args:
        frames: the run's :class:`FrameRecorder`; ``columns`` the systems (replicas) of this size, pooled in order.
        n_atoms, temperature: of the cell and the run (K).
        committee: the committee that drove the run (per-member reweighting), or None.
        reference, energies_file: an ASE calculator, or an extxyz file of the frames labelled elsewhere.
        min_ess, seed, n_dof_kinetic, block_frames: as in :func:`mlpot.analysis.heat_capacity_reweighted`
            (``block_frames`` frames per bootstrap block, capped at a quarter of the frames).

    Returns:
        ``{"reweighted": ReweightedHeatCapacity, "committee": CommitteeHeatCapacity}`` as available, or
        ``{"reweighting_error": message}`` when the effective sample size is too small.
    """

    pooled_frames, kinetic, model = [], [], []
    for column in columns:  # independent replicas, one after the other
        atoms, k, u = frames.frames(column)
        pooled_frames += atoms
        kinetic.append(k)
        model.append(u)
    kinetic, model = np.concatenate(kinetic), np.concatenate(model)
    out = {}
    options = {"n_atoms": n_atoms, "min_effective_samples": min_ess, "seed": seed, "n_dof_kinetic": n_dof_kinetic,
               "block_length": min(block_frames, max(1, kinetic.size // 4))}
    try:
        if reference is not None or energies_file is not None:
            energies = (
                reference_energies(reference, pooled_frames) if reference is not None
                else read_labelled_energies(energies_file, pooled_frames)
            )
            out["reweighted"] = heat_capacity_reweighted(kinetic, model, energies, temperature, **options)
        if committee is not None:
            members = member_energies(committee, pooled_frames)
            out["committee"] = heat_capacity_committee(kinetic, model, members, temperature, **options)
    except InsufficientOverlapError as error:
        out["reweighting_error"] = str(error)
    return out
