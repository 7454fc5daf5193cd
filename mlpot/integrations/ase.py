"""The ASE wing: :class:`MLPotCalculator`, so that any ASE script (MD, optimisers, phonons) can use
an mlpot model.

It follows ASE's calculator contract: results are cached until ``system_changes`` says the
atoms changed. The neighbour list is a :class:`mlpot.neighbors.VerletList`: built with
``cutoff + skin`` and reused until an atom has moved more than skin/2 (or the cell, periodicity or
species change), so an ASE MD run does not rebuild it every step.
"""

from __future__ import annotations

import copy
import os
import warnings

import numpy as np
import torch
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from mlpot.data import keys as K
from mlpot.dynamics.health import MIN_DISTANCE_FRACTION, CloseContactGuard
from mlpot.models.potential import edge_vectors, require_finite
from mlpot.neighbors import VerletList

_DTYPES = {"float64": torch.float64, "float32": torch.float32}


class MLPotCalculator(Calculator):
    """ASE calculator for an mlpot potential.

    Args:
        model_or_path: a model (DescriptorModel, Committee, any mlpot potential) or a saved model file.
        device: torch device, e.g. ``"cpu"`` or ``"cuda"``.
        dtype: ``"float64"`` (default, for MD and optimisation) or ``"float32"`` (faster).
        skin: neighbour-list skin, Å.
        compile: evaluate through compiled passes (:meth:`mlpot.models.DescriptorModel.compile`;
            the first call compiles, for tens of seconds; then small molecules evaluate faster).
        min_distance_fraction: warn (once) when two atoms come closer than this fraction of the
            shortest distance of their element pair in the model's training data
            (``model.training_min_distances``): the energy there is an extrapolation. None turns
            the check off; models without that record are not checked.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies"]

    def __init__(
        self,
        model_or_path,
        device: str = "cpu",
        dtype: str = "float64",
        skin: float = 1.0,
        compile: bool = False,
        min_distance_fraction: float | None = MIN_DISTANCE_FRACTION,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
        if not skin >= 0:
            raise ValueError(f"skin must be non-negative, got {skin}")
        if isinstance(model_or_path, (str, os.PathLike)):
            from mlpot.models.serialization import load_model

            model = load_model(model_or_path)
        else:
            model = model_or_path
            if model.dtype != _DTYPES[dtype]:
                model = copy.deepcopy(model)  # never change the dtype of the caller's model
        self.model = model.to(device=device, dtype=_DTYPES[dtype]).eval()
        if compile:
            from mlpot.models import compile_potential

            compile_potential(self.model)
        self.device = torch.device(device)
        self.dtype = _DTYPES[dtype]
        self.skin = float(skin)
        self.verlet_list = VerletList(self.model.cutoff, self.skin)  # reused while atoms move less than skin/2
        self._contact_guard = CloseContactGuard.for_potential(
            self.model, min_distance_fraction, self.device, self.dtype
        )
        self._warned_contact = False

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        want_stress = "stress" in properties
        if want_stress and not atoms.pbc.all():
            raise PropertyNotImplementedError("stress is only defined for fully periodic cells")
        positions = torch.tensor(atoms.get_positions(), dtype=self.dtype, device=self.device)
        cell = torch.tensor(atoms.get_cell().array, dtype=self.dtype, device=self.device)
        pbc = torch.tensor(atoms.get_pbc(), dtype=torch.bool, device=self.device)
        numbers = torch.tensor(atoms.get_atomic_numbers(), dtype=torch.int64, device=self.device)
        require_finite(positions, cell if bool(pbc.any()) else None)  # before the cached list is consulted
        periodic = bool(pbc.any())
        edge_index, edge_shift, _ = self.verlet_list.get(
            positions, cell if periodic else None, pbc if periodic else None, numbers
        )
        data = {
            K.POSITIONS: positions,
            K.NUMBERS: numbers,
            K.BATCH: torch.zeros(len(atoms), dtype=torch.int64, device=self.device),
            K.CELL: cell[None],
            K.PBC: pbc[None],
            K.EDGE_INDEX: edge_index,
            K.EDGE_SHIFT: edge_shift,
        }
        if self._contact_guard is not None and not self._warned_contact:
            self._warn_close_contact(data)
        out = self.model(data, compute_forces=True, compute_stress=want_stress)
        energy = float(out[K.ENERGY][0])
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "forces": out[K.FORCES].cpu().numpy().astype(np.float64),
            "energies": out[K.ATOMIC_ENERGY].cpu().numpy().astype(np.float64),
        }
        if want_stress:
            self.results["stress"] = full_3x3_to_voigt_6_stress(out[K.STRESS][0].cpu().numpy().astype(np.float64))

    def _warn_close_contact(self, data: dict) -> None:
        """Warn once when a pair of the neighbour list is closer than the training data supports."""
        periodic = bool(data[K.PBC].any())
        vectors = edge_vectors(
            data[K.POSITIONS], data[K.EDGE_INDEX], data[K.EDGE_SHIFT], data[K.CELL] if periodic else None, data[K.BATCH]
        )
        found = self._contact_guard.find(vectors, data[K.EDGE_INDEX], data[K.NUMBERS])
        if found is not None:
            self._warned_contact = True
            warnings.warn(
                f"{self._contact_guard.describe(found, data[K.NUMBERS])}: the model's energy there is an "
                "extrapolation (this warning is shown once per calculator)",
                stacklevel=3,
            )
