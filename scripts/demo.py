"""mlpot's main job, end to end (``make demo``).

Stage 1 (foundation): build a periodic crystal and a molecule with ASE, convert them to
AtomicData, compute their neighbour lists with mlpot's cell list and check them against ASE.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from ase.build import bulk, molecule
from ase.neighborlist import neighbor_list as ase_neighbor_list

from mlpot.data import atomic_data_from_atoms


def neighbour_summary() -> None:
    print("== Neighbour lists (mlpot cell list vs ASE) ==")
    systems = {
        "Cu fcc 4x4x4 (periodic)": (bulk("Cu", "fcc", a=3.61, cubic=True).repeat(4), 5.0),
        "ethanol (molecule)": (molecule("CH3CH2OH"), 3.0),
    }
    print(f"{'system':<26} {'atoms':>6} {'cutoff/Å':>9} {'pairs':>8} {'mean nbrs':>10} {'mlpot ms':>9} {'ASE ms':>8} {'agree':>6}")
    for name, (atoms, cutoff) in systems.items():
        atomic_data_from_atoms(atoms, cutoff=cutoff)  # warm-up: the first call pays one-off costs
        start = time.perf_counter()
        data = atomic_data_from_atoms(atoms, cutoff=cutoff)
        ours_ms = 1e3 * (time.perf_counter() - start)
        start = time.perf_counter()
        i, j, shift = ase_neighbor_list("ijS", atoms, cutoff)
        ase_ms = 1e3 * (time.perf_counter() - start)
        ours = np.column_stack([data["edge_index"].T.numpy(), data["edge_shift"].numpy()])
        theirs = np.column_stack([i, j, shift])
        agree = np.array_equal(ours[np.lexsort(ours.T[::-1])], theirs[np.lexsort(theirs.T[::-1])])
        n_pairs = data["edge_index"].shape[1]
        print(f"{name:<26} {len(atoms):>6} {cutoff:>9.1f} {n_pairs:>8} {n_pairs / len(atoms):>10.1f} {ours_ms:>9.2f} {ase_ms:>8.2f} {str(agree):>6}")
        if not agree:
            raise SystemExit(f"neighbour lists disagree with ASE for {name}")


def main() -> None:
    torch.set_num_threads(2)
    neighbour_summary()


if __name__ == "__main__":
    main()
