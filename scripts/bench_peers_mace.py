"""The MACE side of scripts/bench_peers.py: time ASE's VelocityVerlet with an untrained MACE.

Runs under ``.bench-venv/bin/python`` (mace-torch pins an older e3nn than mlpot's, so MACE has
an environment of its own) and imports only what that environment holds: torch, ase, mace and
the standard library; mlpot is not installed there. bench_peers.py starts it once per system,
model size and dtype, and sends one JSON request on standard input:

* ``atoms``: ``numbers``, ``positions`` (Å), ``cell`` (Å, rows), ``pbc``, ``momenta`` (ASE
  units): the thermalised state the mlpot runs start from;
* ``elements`` (symbols), ``hidden_irreps`` (e.g. ``"64x0e + 64x1o"``), ``num_interactions``,
  ``correlation``, ``max_ell`` (order of the edge spherical harmonics), ``r_max`` (Å);
* ``dtype`` (``"float64"`` or ``"float32"``), ``threads`` (torch intra-op threads), ``steps``
  per block, ``blocks``, ``warmup_steps``, ``timestep_fs``, ``seed`` (of the weights).

The model is ``mace.modules.ScaleShiftMACE`` with the other choices of mace-torch's training
command line (the model it calls "MACE"): 8 Bessel functions, polynomial envelope p = 5, the
residual interaction block (a plain one first), a 16x0e readout MLP, SiLU gates, a [64, 64, 64]
radial MLP. Its weights are random (a step costs the same whatever the weights, for the same
geometry: an untrained molecule flies apart, so each timed block is a new MD from the requested
state, as in bench_peers.py); the average neighbour count is that of the system itself. It prints
one JSON line on standard output: ``steps_per_s`` and ``best_steps_per_s`` (median and fastest
block), the threads, the versions of torch, e3nn, mace and ase, and the model's description.

    .bench-venv/bin/python scripts/bench_peers_mace.py < request.json
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from statistics import median

import ase
import numpy as np
import torch
from ase import units
from ase.data import atomic_numbers
from ase.md.verlet import VelocityVerlet
from ase.neighborlist import neighbor_list

# e3nn 0.4.4 (mace-torch's pin) reads its bundled constants.pt at import with torch.load's default,
# weights-only since torch 2.6, and that file holds a `slice`: allow that one builtin, so that
# loading stays weights-only. (mace's own answer, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 set when mace
# is imported, turns weights-only loading off for the whole process; it is removed below.)
torch.serialization.add_safe_globals([slice])
import e3nn  # noqa: E402
from e3nn import o3  # noqa: E402
from mace import __version__ as mace_version  # noqa: E402
from mace import modules  # noqa: E402
from mace.calculators import MACECalculator  # noqa: E402

os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)  # nothing here loads a pickle

CALCULATOR = ("mace.calculators.MACECalculator(models=[model], default_dtype=dtype), as mace-torch ships it: "
              "a fresh neighbour list (matscipy) and energy, forces and stress on every call")


def mean_neighbours(atoms: ase.Atoms, r_max: float) -> float:
    """Mean number of neighbours within ``r_max`` (Å): MACE's message normalisation."""
    return len(neighbor_list("i", atoms, r_max)) / len(atoms)


def build_mace(request: dict, atoms: ase.Atoms) -> torch.nn.Module:
    """An untrained ScaleShiftMACE of the requested size, in torch's current default dtype."""
    numbers = sorted(atomic_numbers[symbol] for symbol in request["elements"])
    torch.manual_seed(request["seed"])
    return modules.ScaleShiftMACE(
        r_max=float(request["r_max"]),
        num_bessel=8,
        num_polynomial_cutoff=5,
        max_ell=int(request["max_ell"]),
        interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        interaction_cls_first=modules.interaction_classes["RealAgnosticInteractionBlock"],
        num_interactions=int(request["num_interactions"]),
        num_elements=len(numbers),
        hidden_irreps=o3.Irreps(request["hidden_irreps"]),
        MLP_irreps=o3.Irreps("16x0e"),
        atomic_energies=np.zeros(len(numbers)),
        avg_num_neighbors=mean_neighbours(atoms, float(request["r_max"])),
        atomic_numbers=numbers,
        correlation=int(request["correlation"]),
        gate=torch.nn.functional.silu,
        radial_MLP=[64, 64, 64],
        atomic_inter_scale=1.0,
        atomic_inter_shift=0.0,
    )


def seconds_per_step(run, steps: int, blocks: int) -> tuple[float, float]:
    """Median and minimum over ``blocks`` of the wall time per step of ``run(steps)``, s.

    The statistic of scripts/bench_md.py's ``median_per_call``, written again because this
    environment has no mlpot (bench_md imports it).
    """
    times = []
    for _ in range(blocks):
        start = time.perf_counter()
        run(steps)
        times.append((time.perf_counter() - start) / steps)
    return median(times), min(times)


def main() -> int:
    request = json.loads(sys.stdin.read())
    torch.set_num_threads(int(request["threads"]))
    dtype = {"float64": torch.float64, "float32": torch.float32}[request["dtype"]]
    torch.set_default_dtype(dtype)
    state = request["atoms"]
    atoms = ase.Atoms(numbers=state["numbers"], positions=state["positions"], cell=state["cell"], pbc=state["pbc"])
    atoms.set_momenta(np.asarray(state["momenta"]))
    model = build_mace(request, atoms)

    def driven():
        """``run(n)`` of a new MD from the requested state, its first forces already evaluated (a
        calculator of its own, which keeps them for VelocityVerlet's first step)."""
        system = atoms.copy()
        system.calc = MACECalculator(models=[model], device="cpu", default_dtype=request["dtype"])
        system.get_forces()
        return VelocityVerlet(system, timestep=float(request["timestep_fs"]) * units.fs).run

    driven()(int(request["warmup_steps"]))
    # Each block a new MD from the same state (bench_peers.py's protocol): an untrained model's
    # molecule flies apart, so one long run would time a thinning gas.
    runs = iter([driven() for _ in range(int(request["blocks"]))])
    median_s, fastest_s = seconds_per_step(lambda n: next(runs)(n), int(request["steps"]), int(request["blocks"]))
    answer = {
        "formula": atoms.get_chemical_formula(),
        "hidden_irreps": request["hidden_irreps"],
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "steps_per_s": 1.0 / median_s,
        "best_steps_per_s": 1.0 / fastest_s,
        "threads": torch.get_num_threads(),
        "calculator": CALCULATOR,
        "model": {"class": type(model).__name__, "hidden_irreps": request["hidden_irreps"],
                  "num_interactions": request["num_interactions"], "correlation": request["correlation"],
                  "max_ell": request["max_ell"], "r_max": request["r_max"],
                  "avg_num_neighbors": mean_neighbours(atoms, float(request["r_max"])),
                  "n_parameters": sum(p.numel() for p in model.parameters())},
        "versions": {"mace": mace_version, "torch": torch.__version__, "e3nn": e3nn.__version__,
                     "ase": ase.__version__, "python": platform.python_version()},
    }
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
