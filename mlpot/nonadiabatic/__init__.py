"""Excited states: diabatic Hamiltonians, adiabatic surfaces and couplings, non-adiabatic dynamics.

Model-system units are atomic units (Hartree, Bohr, electron masses, ħ = 1); the atomistic model is in
ASE's (eV, Å). See docs/nonadiabatic.md.

* :mod:`~mlpot.nonadiabatic.systems`: Tully's three models, a 2D conical intersection, the packet;
* :func:`adiabatic`: energies and derivative couplings of any diabatic matrix function;
* :func:`wavepacket`: exact split-operator scattering probabilities (1D);
* :func:`surface_hopping` (FSSH) and :func:`ehrenfest`: batched trajectory methods;
* :class:`DiabaticModel`: the atomistic learned diabatic matrix (``mlpot train`` with ``model: {type: diabatic}``);
* :class:`CoordinateDiabaticModel` and :func:`train_diabatic`: a learned diabatic matrix of coordinates.
"""

from mlpot.nonadiabatic import systems
from mlpot.nonadiabatic.adiabatic import AdiabaticStates, adiabatic, adiabatic_states
from mlpot.nonadiabatic.atomistic import DiabaticModel
from mlpot.nonadiabatic.ehrenfest import ehrenfest
from mlpot.nonadiabatic.hopping import surface_hopping
from mlpot.nonadiabatic.models import CoordinateDiabaticModel
from mlpot.nonadiabatic.training import train_diabatic
from mlpot.nonadiabatic.wavepacket import wavepacket

__all__ = ["systems", "adiabatic", "adiabatic_states", "AdiabaticStates", "wavepacket", "surface_hopping",
           "ehrenfest", "DiabaticModel", "CoordinateDiabaticModel", "train_diabatic"]
