"""Harmonic phonons through phonopy (optional dependency, ``mlpot[phonons]``), with forces from any potential.

phonopy does the finite displacements, force constants, band structure, DOS and harmonic thermodynamics; mlpot
only supplies the forces of the displaced supercells (an mlpot model through :class:`mlpot.MLPotCalculator`, or
any ASE calculator). :func:`compute_phonons` returns a :class:`PhononResult` whose tables are per cell of the
input structure and whose heat capacity is in k_B, comparable with the MD and VDOS estimates of
:mod:`mlpot.analysis` (e.g. :func:`mlpot.analysis.quantum_heat_capacity` on the same supercell).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms
from ase import units as _ase

from mlpot.files import atomic_write_text

__all__ = ["PhononResult", "compute_phonons", "require_phonopy"]

_R_J_PER_MOL_K = _ase._k * _ase._Nav
_KJ_PER_MOL_TO_EV = 1e3 / (_ase._e * _ase._Nav)


def require_phonopy():
    """Import phonopy, or say how to install it."""
    try:
        import phonopy
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("phonons need phonopy: pip install 'mlpot[phonons]' (or pip install phonopy)") from error
    return phonopy


@dataclass
class PhononResult:
    """Harmonic thermodynamics per cell of the input structure, and the phonopy object for more.

    Attributes:
        temperatures_K: [n_T].
        heat_capacity_kB: [n_T] C_V in k_B per input cell (harmonic, quantum; the three translations at Γ,
            ν = 0, are left out: add 3 k_B / n_cells to compare with an MD cell whose momenta are thermalised).
        free_energy_eV: [n_T] vibrational Helmholtz free energy per input cell, eV (zero-point energy included).
        entropy_kB: [n_T] vibrational entropy per input cell, k_B.
        n_atoms: atoms in the input cell.
        supercell: the supercell repeat used for the force constants.
        mesh: the q-point mesh of the thermodynamic sums.
        frequencies_THz, dos: the total phonon DOS per input cell (1/THz).
        phonopy: the phonopy object (force constants, bands …).
    """

    temperatures_K: np.ndarray
    heat_capacity_kB: np.ndarray
    free_energy_eV: np.ndarray
    entropy_kB: np.ndarray
    n_atoms: int
    supercell: tuple[int, int, int]
    mesh: tuple[int, int, int]
    frequencies_THz: np.ndarray
    dos: np.ndarray
    phonopy: object = field(repr=False, default=None)

    def as_dict(self) -> dict:
        return {
            "units": {"heat_capacity": "k_B per input cell", "free_energy": "eV per input cell",
                      "entropy": "k_B per input cell", "frequencies": "THz"},
            "n_atoms": self.n_atoms,
            "supercell": list(self.supercell),
            "mesh": list(self.mesh),
            "temperatures_K": self.temperatures_K.tolist(),
            "heat_capacity_kB": self.heat_capacity_kB.tolist(),
            "heat_capacity_kB_per_atom": (self.heat_capacity_kB / self.n_atoms).tolist(),
            "free_energy_eV": self.free_energy_eV.tolist(),
            "entropy_kB": self.entropy_kB.tolist(),
        }

    def write(self, folder: str | Path, band_structure: bool = True) -> list[Path]:
        """Write phonons.json, phonon_dos.png and (optionally) phonon_bands.png into ``folder``."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = [folder / "phonons.json"]
        atomic_write_text(written[0], json.dumps(self.as_dict(), indent=2))
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot(self.frequencies_THz, self.dos, color="k")
        ax.set_xlabel("frequency (THz)")
        ax.set_ylabel("DOS (states/THz per cell)")
        fig.tight_layout()
        fig.savefig(folder / "phonon_dos.png", dpi=120)
        plt.close(fig)
        written.append(folder / "phonon_dos.png")
        if band_structure:
            self._run_band_structure()
            plot = self.phonopy.plot_band_structure()
            plot.savefig(folder / "phonon_bands.png", dpi=120)
            plot.close("all")
            written.append(folder / "phonon_bands.png")
        return written


    def _run_band_structure(self, points_per_segment: int = 51) -> None:
        """Bands along ASE's standard path of the input cell (no seekpath needed)."""
        cell = self.phonopy.unitcell.cell
        path = Atoms(cell=cell, pbc=True).cell.bandpath(npoints=0)
        to_primitive = np.asarray(self.phonopy.primitive_matrix)  # q_primitive = q_unit @ P
        bands, labels, connections = [], [], []
        for segment in path.path.split(","):  # "GXWKGLUWLK,UX": a comma breaks the path
            names = _split_labels(segment)
            for a, b in zip(names[:-1], names[1:]):
                start, stop = path.special_points[a], path.special_points[b]
                bands.append(np.linspace(start, stop, points_per_segment) @ to_primitive)
                connections.append(True)
            connections[-1] = False
            labels += ["$\\Gamma$" if n == "G" else n for n in names]
        self.phonopy.run_band_structure(bands, labels=labels, path_connections=connections)


def _split_labels(segment: str) -> list[str]:
    """'GXW1K' → ['G', 'X', 'W1', 'K'] (a letter, then digits)."""
    names: list[str] = []
    for char in segment:
        if char.isdigit() and names:
            names[-1] += char
        else:
            names.append(char)
    return names


def compute_phonons(
    atoms: Atoms,
    calculator,
    supercell=(3, 3, 3),
    temperatures_K=(100.0, 300.0),
    mesh=(20, 20, 20),
    displacement_A: float = 0.01,
    primitive: bool = False,
) -> PhononResult:
    """Finite-displacement phonons of ``atoms`` with forces from ``calculator``, and harmonic thermodynamics.

    Args:
        atoms: the (relaxed) periodic cell, ``ase.Atoms``.
        calculator: an ASE calculator (wrap an mlpot model in :class:`mlpot.MLPotCalculator`).
        supercell: repeats of ``atoms`` for the force constants (three ints or one).
        temperatures_K: temperatures of the thermodynamic tables, K.
        mesh: q-point mesh (three ints); ``gamma``-centred, so a mesh equal to ``supercell`` gives exactly the
            modes of that supercell (the ones an MD run in it has).
        displacement_A: finite displacement, Å.
        primitive: let phonopy reduce to the primitive cell (tables then stay per *input* cell here).
    """
    require_phonopy()
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms

    if not all(atoms.pbc):
        raise ValueError("phonons need a structure periodic along all three axes")
    repeat = (int(supercell),) * 3 if np.ndim(supercell) == 0 else tuple(int(s) for s in supercell)
    mesh = (int(mesh),) * 3 if np.ndim(mesh) == 0 else tuple(int(m) for m in mesh)
    if len(repeat) != 3 or min(repeat) < 1 or len(mesh) != 3 or min(mesh) < 1:
        raise ValueError(f"supercell and mesh need three positive integers, got {supercell!r} and {mesh!r}")
    temperatures = np.asarray(temperatures_K, dtype=float)
    if (temperatures.ndim != 1 or temperatures.size == 0 or np.any(~np.isfinite(temperatures))
            or np.any(temperatures < 0)):
        raise ValueError(f"temperatures_K must be finite and non-negative, got {temperatures_K!r}")
    unit = PhonopyAtoms(symbols=atoms.get_chemical_symbols(), cell=atoms.cell.array,
                        scaled_positions=atoms.get_scaled_positions(), masses=atoms.get_masses())
    phonon = Phonopy(unit, supercell_matrix=np.diag(repeat), primitive_matrix="auto" if primitive else "P")
    phonon.generate_displacements(distance=displacement_A)
    forces = []
    for displaced in phonon.supercells_with_displacements:
        frame = Atoms(displaced.symbols, cell=displaced.cell, scaled_positions=displaced.scaled_positions, pbc=True)
        frame.calc = calculator
        forces.append(frame.get_forces())
    phonon.forces = np.asarray(forces)
    phonon.produce_force_constants()
    phonon.run_mesh(list(mesh), is_gamma_center=True)
    # The three acoustic modes at Γ are translations (ν = 0): left out of the sums, always (phonopy includes
    # them when round-off leaves them above its cutoff frequency, which made the tables depend on noise).
    phonon.run_thermal_properties(temperatures=temperatures, exclude_gamma_acoustic=True)
    # Temperatures (K), F (kJ/mol), S and C_V (J/K/mol): the result objects, not the dict getters
    # that phonopy 4 deprecates.
    table_temperatures, free_energy, entropy, heat_capacity = phonon.thermal_properties.thermal_properties
    phonon.run_total_dos()
    dos = phonon.total_dos
    # phonopy's tables are per mole of its primitive cell; scale to the input cell.
    cells = len(atoms) / len(phonon.primitive)
    return PhononResult(
        temperatures_K=np.asarray(table_temperatures),
        heat_capacity_kB=np.asarray(heat_capacity) / _R_J_PER_MOL_K * cells,
        free_energy_eV=np.asarray(free_energy) * _KJ_PER_MOL_TO_EV * cells,
        entropy_kB=np.asarray(entropy) / _R_J_PER_MOL_K * cells,
        n_atoms=len(atoms),
        supercell=repeat,
        mesh=mesh,
        frequencies_THz=np.asarray(dos.frequency_points),
        dos=np.asarray(dos.dos) * cells,
        phonopy=phonon,
    )
