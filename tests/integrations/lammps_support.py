"""Shared set-up of the LAMMPS tests: systems, LAMMPS data files and inputs, and runs of
``mpirun -np N mlpot lammps`` in a subprocess, read back at full precision.

It holds no tests; the ``test_lammps_*`` modules of this folder import it.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
from pathlib import Path

import ase
import ase.units
import numpy as np
from ase.build import bulk, molecule

from mlpot.integrations import lammps as mlammps

#: The input every exactness test runs: NVE with the model attached to fix mlpot, then the
#: final potential energy and (unwrapped) positions written at full precision.
NVE_INPUT = """\
units metal
atom_style atomic
boundary ${boundary}
read_data ${data}
pair_style zero ${pair_cutoff}
pair_coeff * *
neighbor 1.0 bin
fix mlpot all external pf/callback 1 1
fix integrate all nve
timestep ${timestep_ps}
thermo_style custom step pe ke press pxx pyy pzz pxy pxz pyz
thermo_modify format float %.17g
thermo 10
run ${steps}
print "$(pe:%.17g) $(press:%.17g) $(pxx:%.17g) $(pyy:%.17g) $(pzz:%.17g) $(pxy:%.17g) $(pxz:%.17g) $(pyz:%.17g)" &
    file ${out}/final.txt screen no
write_dump all custom ${out}/final.dump id xu yu zu modify sort id format float %.17g
"""


def lammps_installed() -> bool:
    """Whether the ``mlpot[lammps]`` extra (lammps, mpich, mpi4py) is installed."""
    found = (importlib.util.find_spec(name) is not None for name in ("lammps", "mpi4py"))
    return mlammps.mpi_library_path() is not None and all(found)


@functools.cache
def lammps_constants() -> dict[str, float]:
    """LAMMPS' metal-unit conversion factors, read from LAMMPS itself: ``ftm2v`` (eV/(Å amu) to
    Å/ps²) and ``nktv2p`` (eV/Å³ to bar)."""
    lammps = mlammps.import_lammps()
    lmp = lammps.lammps(cmdargs=["-screen", "none", "-log", "none", "-nocite"])
    try:
        lmp.command("units metal")
        return {"ftm2v": lmp.extract_global("ftm2v"), "nktv2p": lmp.extract_global("nktv2p")}
    finally:
        lmp.close()


def lammps_time_scale() -> float:
    """s such that LAMMPS with time step s·h and velocities v/s follows ASE's trajectory of step h.

    LAMMPS rounds its metal-unit force-to-acceleration factor to 8 digits (ftm2v = 1/1.0364269e-4)
    where ASE's CODATA constants give (1000 fs)² = 9648.5332907… Å²/ps² per eV/amu: 5.5e-8 apart.
    Velocity Verlet moves x by h v + h² a/2 with a ∝ ftm2v, so scaling h by s = √(ftm2v_ASE /
    ftm2v_LAMMPS) and v by 1/s makes both codes take the same positions step by step.
    """
    ase_ftm2v = (1000.0 * ase.units.fs) ** 2
    return float(np.sqrt(ase_ftm2v / lammps_constants()["ftm2v"]))


def copper_with_vacancy(repeat: int = 4) -> ase.Atoms:
    """fcc Cu (a = 3.61 Å), repeat³ cubic cells, atom 0 removed: 255 atoms for repeat = 4."""
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(repeat)
    del atoms[0]
    return atoms


def triclinic_copper() -> ase.Atoms:
    """The primitive fcc Cu cell repeated 5×5×5 (125 atoms): a triclinic box with 60° angles,
    rotated into LAMMPS' orientation (a along x, b in the xy plane)."""
    atoms = bulk("Cu", "fcc", a=3.61).repeat(5)
    atoms.rattle(0.05, seed=3)
    return to_lammps_orientation(atoms)


def ethanol_cluster(n: int = 8, spacing: float = 5.0, vacuum: float = 12.0) -> ase.Atoms:
    """n ethanol molecules on a 2×2×2 grid, ``spacing`` Å apart, in a non-periodic box."""
    cluster = ase.Atoms()
    for k in range(n):
        mol = molecule("CH3CH2OH")
        mol.rotate(37.0 * k, (1.0, 0.3 * k, 0.5))
        mol.translate(spacing * np.array([k % 2, (k // 2) % 2, k // 4]))
        cluster += mol
    cluster.center(vacuum=vacuum)
    cluster.pbc = False
    return cluster


def to_lammps_orientation(atoms: ase.Atoms) -> ase.Atoms:
    """The same structure with the cell rotated to a lower-triangular matrix (LAMMPS' restricted
    triclinic form): a = (ax, 0, 0), b = (bx, by, 0), c = (cx, cy, cz), with positive diagonal."""
    cell = atoms.cell.array
    q, r = np.linalg.qr(cell.T)  # cell.T = q r, so cell = rᵀ qᵀ and cell q = rᵀ (lower triangular)
    signs = np.sign(np.diag(r))
    q = q * signs
    rotated = atoms.copy()
    rotated.set_cell(cell @ q, scale_atoms=False)
    rotated.positions = atoms.positions @ q
    return rotated


def write_data_file(path: Path, atoms: ase.Atoms, velocities: np.ndarray, elements: list[str]) -> None:
    """A LAMMPS data file (atom_style atomic) with positions and velocities at full precision.

    Args:
        atoms: lower-triangular cell (see :func:`to_lammps_orientation`), positions inside it.
        velocities: [n, 3], Å/ps.
        elements: element of each type, in type order.
    """
    cell = atoms.cell.array
    if abs(cell[0, 1]) + abs(cell[0, 2]) + abs(cell[1, 2]) > 1e-12:
        raise ValueError("the cell must be lower triangular (LAMMPS orientation)")
    masses = {s: m for s, m in zip(atoms.get_chemical_symbols(), atoms.get_masses())}
    types = [elements.index(s) + 1 for s in atoms.get_chemical_symbols()]
    def f(value) -> str:  # shortest text that reads back as the same double
        return repr(float(value))

    lines = ["mlpot test data", "", f"{len(atoms)} atoms", f"{len(elements)} atom types", "",
             f"0.0 {f(cell[0, 0])} xlo xhi", f"0.0 {f(cell[1, 1])} ylo yhi", f"0.0 {f(cell[2, 2])} zlo zhi",
             f"{f(cell[1, 0])} {f(cell[2, 0])} {f(cell[2, 1])} xy xz yz", "", "Masses", ""]
    lines += [f"{t + 1} {f(float(masses[s]))}" for t, s in enumerate(elements) if s in masses]
    lines += ["", "Atoms # atomic", ""]
    lines += [f"{i + 1} {t} {f(x)} {f(y)} {f(z)}" for i, (t, (x, y, z)) in enumerate(zip(types, atoms.positions))]
    lines += ["", "Velocities", ""]
    lines += [f"{i + 1} {f(vx)} {f(vy)} {f(vz)}" for i, (vx, vy, vz) in enumerate(velocities)]
    path.write_text("\n".join(lines) + "\n")


def lammps_velocities(atoms: ase.Atoms) -> np.ndarray:
    """Velocities [n, 3] in Å/ps of ``atoms``' momenta, divided by :func:`lammps_time_scale`."""
    velocities_ase = atoms.get_momenta() / atoms.get_masses()[:, None]  # Å per ASE time unit
    return velocities_ase * (1000.0 * ase.units.fs) / lammps_time_scale()


def run_mlpot_lammps(
    model_path: Path, input_text: str, folder: Path, elements: list[str], ranks: int, variables: dict[str, str],
    timeout: float = 600, extra: list[str] = (),
) -> subprocess.CompletedProcess:
    """Run ``mpirun -np ranks mlpot lammps`` on ``input_text`` in ``folder``; returns the process."""
    folder.mkdir(parents=True, exist_ok=True)
    input_path = folder / "in.lammps"
    input_path.write_text(input_text)
    command = mlammps.command_line(model_path, input_path, elements, ranks=ranks, variables=variables)
    command += ["--threads", "1", "--log", str(folder / "log.lammps"), *extra]
    environment = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}  # mlpot finds MPI itself
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=timeout, env=environment)


def read_final(folder: Path) -> dict[str, np.ndarray]:
    """The final ``pe`` (eV), pressure and its components (bar), and positions [n, 3] (Å, by atom id)."""
    values = np.array(folder.joinpath("final.txt").read_text().split(), dtype=float)
    lines = folder.joinpath("final.dump").read_text().splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith("ITEM: ATOMS")) + 1
    table = np.array([line.split() for line in lines[start:]], dtype=float)
    table = table[np.argsort(table[:, 0])]
    return {"energy": values[0], "pressure": values[1], "pressure_tensor": values[2:], "positions": table[:, 1:4]}
