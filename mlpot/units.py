"""The units policy of mlpot.

Inside mlpot everything is in ASE units: eV, Å, amu, K, and ASE's internal time unit
(``ase.units.fs`` of them make one femtosecond). Readers convert other units once, at the
boundary, with the tables below; the public API names its unit in the argument
(``timestep_fs``, ``temperature_K``). Every constant comes from ``ase.units`` so that mlpot and
ASE can never disagree.
"""

from __future__ import annotations

from ase import units as _ase

#: Boltzmann constant in eV/K.
KB_EV_PER_K: float = _ase.kB

#: One femtosecond in ASE time units.
FS: float = _ase.fs

#: Energies a reader accepts, as the number of eV in one unit.
ENERGY_UNITS: dict[str, float] = {
    "eV": 1.0,
    "meV": 1e-3,
    "kcal/mol": _ase.kcal / _ase.mol,
    "kJ/mol": _ase.kJ / _ase.mol,
    "Hartree": _ase.Hartree,
    "Ha": _ase.Hartree,
    "Ry": _ase.Rydberg,
}

#: Lengths a reader accepts, as the number of Å in one unit.
LENGTH_UNITS: dict[str, float] = {
    "Angstrom": 1.0,
    "Å": 1.0,
    "A": 1.0,
    "Bohr": _ase.Bohr,
    "nm": 10.0,
}


def _lookup(table: dict[str, float], unit: str, kind: str) -> float:
    try:
        return table[unit]
    except KeyError:
        known = ", ".join(sorted(table))
        raise ValueError(f"unknown {kind} unit {unit!r}; known {kind} units: {known}") from None


def energy_to_eV(unit: str) -> float:
    """Return the factor that turns an energy in ``unit`` into eV (e.g. kcal/mol → 0.0433641)."""
    return _lookup(ENERGY_UNITS, unit, "energy")


def length_to_angstrom(unit: str) -> float:
    """Return the factor that turns a length in ``unit`` into Å (e.g. Bohr → 0.529177)."""
    return _lookup(LENGTH_UNITS, unit, "length")


def force_to_eV_per_angstrom(energy_unit: str, length_unit: str) -> float:
    """Return the factor that turns a force in ``energy_unit``/``length_unit`` into eV/Å."""
    return energy_to_eV(energy_unit) / length_to_angstrom(length_unit)
