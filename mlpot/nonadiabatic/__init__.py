"""Excited states: diabatic Hamiltonians, adiabatic surfaces and couplings, non-adiabatic dynamics.

Atomic units throughout (Hartree, Bohr, electron masses, ħ = 1). See docs/nonadiabatic.md.

* :mod:`~mlpot.nonadiabatic.systems`: Tully's three models, a 2D conical intersection, the packet;
* :func:`adiabatic`: energies and derivative couplings of any diabatic matrix function;
* :func:`wavepacket`: exact split-operator scattering probabilities (1D);
* :func:`surface_hopping` (FSSH) and :func:`ehrenfest`: batched trajectory methods;
* :class:`CoordinateDiabaticModel` and :func:`train_diabatic`: a learned diabatic matrix of coordinates.
"""

from mlpot.nonadiabatic import systems
from mlpot.nonadiabatic.adiabatic import AdiabaticStates, adiabatic, adiabatic_states
from mlpot.nonadiabatic.ehrenfest import ehrenfest
from mlpot.nonadiabatic.hopping import surface_hopping
from mlpot.nonadiabatic.models import CoordinateDiabaticModel

# Until the atomistic model lands, the old name keeps meaning the coordinate model.
DiabaticModel = CoordinateDiabaticModel
from mlpot.nonadiabatic.training import train_diabatic
from mlpot.nonadiabatic.wavepacket import wavepacket

__all__ = ["systems", "adiabatic", "adiabatic_states", "AdiabaticStates", "wavepacket", "surface_hopping",
           "ehrenfest", "DiabaticModel", "CoordinateDiabaticModel", "train_diabatic"]
