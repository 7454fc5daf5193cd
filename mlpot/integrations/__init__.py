"""Wings that connect mlpot potentials to host codes, one module per host.

* :mod:`mlpot.integrations.ase` — the ASE calculator (``mlpot.MLPotCalculator``).
* :mod:`mlpot.integrations.lammps` — LAMMPS across MPI ranks (``mlpot lammps``).

Nothing is imported here, so that ``import mlpot`` never pulls in a host code.
"""
