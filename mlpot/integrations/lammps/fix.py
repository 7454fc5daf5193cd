"""An mlpot model attached to a LAMMPS instance's ``fix external pf/callback``: :class:`MLPotFix`."""

from __future__ import annotations

import math
import os
import sys
import time

import numpy as np
import torch
from torch import nn

from mlpot.integrations.lammps.evaluation import LocalTerms, ghost_cutoff_needed, local_energy_forces_virial
from mlpot.models.potential import Potential

#: The fix id where ``mlpot lammps`` attaches the model.
FIX_ID = "mlpot"
#: LAMMPS' default neighbour skin in metal units, Å (``neighbor`` command documentation).
DEFAULT_METAL_SKIN = 2.0
#: The line a user's input must contain.
FIX_LINE = f"fix {FIX_ID} all external pf/callback 1 1"


def _model_elements(model: nn.Module) -> list[int] | None:
    """Atomic numbers the model (every member of a committee) knows, or None if it does not say."""
    numbers = getattr(model, "atomic_numbers", None)
    if numbers is None and getattr(model, "members", None) is not None:
        sets = [_model_elements(m) for m in model.members]
        if any(s is None for s in sets):
            return None
        return sorted(set.intersection(*(set(s) for s in sets)))
    return None if numbers is None else [int(z) for z in numbers]


def _atomic_numbers(elements: list[str | int]) -> list[int]:
    """Atomic numbers of ``--elements`` (symbols, or atomic numbers as ints or digit strings)."""
    from ase.data import atomic_numbers, chemical_symbols

    result = []
    for element in elements:
        if isinstance(element, str) and element.isdigit():
            element = int(element)
        if isinstance(element, int):
            if not 0 < element < len(chemical_symbols):
                raise ValueError(f"--elements: {element} is not an atomic number")
            result.append(element)
        elif element in atomic_numbers:
            result.append(atomic_numbers[element])
        else:
            raise ValueError(f"--elements: unknown element {element!r} (use chemical symbols such as Cu Au)")
    return result


class MLPotFix:
    """An mlpot model attached to a ``fix external pf/callback`` of a LAMMPS instance.

    Construct it after the fix is defined and before the first ``run`` or ``minimize``; it sets
    ``fix_modify ID energy yes virial yes`` (so that ``pe``, ``press`` and barostats see the
    model) and ``comm_modify cutoff`` (the ghost shell, :func:`ghost_cutoff_needed`).

    Args:
        lmp: a ``lammps.lammps`` instance in ``units metal`` with the box and types defined.
        model: an mlpot potential or committee (on the device and in the dtype to evaluate in).
        elements: element of each LAMMPS atom type, in type order (symbols or atomic numbers).
        fix_id: id of the ``fix external pf/callback`` to attach to.
        skin: LAMMPS' neighbour skin, Å (the ``neighbor`` command; 2.0 by default in metal units).
        comm: the mpi4py communicator of ``lmp`` (default: ``MPI.COMM_WORLD``).
        ghost_cutoff: the input's own ``comm_modify cutoff``, Å, if any: the larger is kept.
        abort_on_error: an error inside the callback prints one line and aborts all ranks (the
            command line); otherwise it stops the run (``force_timeout``) and :meth:`check`
            raises it.
    """

    def __init__(self, lmp, model: nn.Module, elements, fix_id: str = FIX_ID, skin: float = DEFAULT_METAL_SKIN,
                 comm=None, abort_on_error: bool = False, ghost_cutoff: float = 0.0):
        if not isinstance(model, Potential):
            raise TypeError(f"the model must be an mlpot potential (mlpot.models.Potential), "
                            f"got {type(model).__name__}")
        if lmp.extract_global("units") != "metal":
            units = lmp.extract_global("units")
            raise ValueError(f"mlpot needs 'units metal' (eV, Å, ps), the input uses units {units}")
        if not (math.isfinite(float(skin)) and skin >= 0):
            raise ValueError(f"skin must be a non-negative number of Å, got {skin}")
        self.lmp, self.model, self.fix_id = lmp, model, fix_id
        self.numbers = _atomic_numbers(list(elements))
        n_types = int(lmp.extract_global("ntypes"))
        if n_types > len(self.numbers):
            raise ValueError(
                f"atom types {len(self.numbers) + 1}..{n_types} have no element: give one element per type "
                f"with --elements (got {len(self.numbers)} for {n_types} types)"
            )
        known = _model_elements(model)
        if known is not None:
            from ase.data import chemical_symbols

            missing = sorted({z for z in self.numbers[:n_types] if z not in known})
            if missing:
                raise ValueError(
                    f"the model knows no {', '.join(chemical_symbols[z] for z in missing)} "
                    f"(it has {' '.join(chemical_symbols[z] for z in known)})"
                )
        # type → atomic number; index 0 is unused (LAMMPS types start at 1).
        self.type_to_number = torch.tensor([0, *self.numbers], dtype=torch.int64)
        self.ghost_cutoff = max(ghost_cutoff_needed(model.cutoff, skin), float(ghost_cutoff))
        from mlpot.neighbors import VerletList

        # mlpot's list over local + ghost atoms, with LAMMPS' skin: atoms move less than skin/2
        # between LAMMPS' re-neighbourings, so it is rebuilt at those (the atoms change) and rarely else.
        self.neighbors = VerletList(float(model.cutoff), max(float(skin), 0.0))
        if comm is None and int(lmp.extract_setting("world_size")) > 1:
            from mpi4py import MPI

            comm = MPI.COMM_WORLD
        self.comm = comm
        self.abort_on_error = abort_on_error
        self.error: BaseException | None = None
        #: Where this rank's callback time goes (s), and the atoms it saw, summed over calls.
        self.calls = 0
        self.seconds = {"callback": 0.0, "model": 0.0, "allreduce": 0.0}
        self.atom_counts = {"local": 0, "ghost": 0}
        lmp.command(f"fix_modify {fix_id} energy yes virial yes")
        lmp.command(f"comm_modify cutoff {self.ghost_cutoff!r}")
        lmp.set_fix_external_callback(fix_id, MLPotFix._callback, self)

    @staticmethod
    def _callback(self: MLPotFix, timestep: int, n_local: int, tag, x, f) -> None:
        """LAMMPS' ``pf/callback``: every rank, every step (exceptions cannot cross into C)."""
        if self.error is not None:
            f[:] = 0.0
            return
        try:
            self._compute(n_local, f)
        except BaseException as error:  # noqa: BLE001  reported below: ctypes would swallow it
            self._fail(error)

    def _compute(self, n_local: int, f) -> None:
        lmp = self.lmp
        start = time.perf_counter()
        n_all = n_local + int(lmp.extract_global("nghost"))
        self.atom_counts["local"] += n_local
        self.atom_counts["ghost"] += n_all - n_local
        if n_all > 0:
            positions = torch.from_numpy(np.array(lmp.numpy.extract_atom("x", nelem=n_all, dim=3), dtype=np.float64))
            types = torch.from_numpy(np.array(lmp.numpy.extract_atom("type", nelem=n_all), dtype=np.int64))
            if int(types.max()) >= self.type_to_number.shape[0]:
                raise ValueError(f"atom type {int(types.max())} has no element (--elements)")
            model_start = time.perf_counter()
            numbers = self.type_to_number[types]
            terms = local_energy_forces_virial(self.model, positions, numbers, n_local, self.neighbors)
            self.seconds["model"] += time.perf_counter() - model_start
        else:
            terms = LocalTerms(0.0, np.zeros(0), np.zeros((0, 3)), np.zeros((3, 3)))
        if n_local:
            f[:] = terms.forces
        w = terms.virial
        # LAMMPS' order: energy, then the virial's xx, yy, zz, xy, xz, yz.
        totals = np.array([terms.energy, w[0, 0], w[1, 1], w[2, 2], w[0, 1], w[0, 2], w[1, 2]])
        if self.comm is not None:
            from mpi4py import MPI

            reduce_start = time.perf_counter()
            # In place on a float64 buffer: no pickling of Python objects, one message per step.
            self.comm.Allreduce(MPI.IN_PLACE, totals, op=MPI.SUM)  # the sum over ranks (package docstring)
            self.seconds["allreduce"] += time.perf_counter() - reduce_start
        lmp.fix_external_set_energy_global(self.fix_id, float(totals[0]))
        lmp.fix_external_set_virial_global(self.fix_id, [float(v) for v in totals[1:]])
        if n_local:
            lmp.numpy.fix_external_set_energy_peratom(self.fix_id, terms.atomic_energy)  # a C array, no list
        self.calls += 1
        self.seconds["callback"] += time.perf_counter() - start

    def summary(self) -> str:
        """One line: this rank's callbacks, their time split, and the mean local and ghost atoms.

        The all-reduce's time includes waiting for the slowest rank: it measures load imbalance
        more than communication."""
        calls = max(self.calls, 1)
        s, local, ghost = self.seconds, self.atom_counts["local"] / calls, self.atom_counts["ghost"] / calls
        return (
            f"mlpot lammps: rank {0 if self.comm is None else self.comm.Get_rank()}: {self.calls} callbacks, "
            f"{s['callback']:.3f} s in them (model {s['model']:.3f} s, allreduce {s['allreduce']:.3f} s), "
            f"{local:.1f} local and {ghost:.1f} ghost atoms per call"
        )

    def _fail(self, error: BaseException) -> None:
        self.error = error
        if self.abort_on_error:
            message = " ".join(str(error).split()) or type(error).__name__
            print(f"mlpot lammps: error: {message}", file=sys.stderr, flush=True)
            if self.comm is not None:
                self.comm.Abort(2)
            os._exit(2)
        self.lmp.force_timeout()

    def check(self) -> None:
        """Raise the error that stopped the callback, if any."""
        if self.error is not None:
            raise self.error


def attach(
    lmp, model: nn.Module, elements, fix_id: str = FIX_ID, skin: float = DEFAULT_METAL_SKIN, comm=None
) -> MLPotFix:
    """Attach ``model`` to ``fix <fix_id> ... external pf/callback`` of ``lmp``; see :class:`MLPotFix`."""
    return MLPotFix(lmp, model, elements, fix_id=fix_id, skin=skin, comm=comm)
