"""The AtomicData contract: every key that mlpot passes between stages.

AtomicData is a plain ``dict[str, torch.Tensor]``. This file is the API: each key is a
constant with its shape, unit and scope documented above it. Scopes:

* atom   — one row per atom, ``n_atoms`` rows (all systems of a batch concatenated);
* edge   — one row per directed neighbour pair, ``n_edges`` rows;
* system — one row per structure in the batch, ``n_systems`` rows.

Conventions (as in ASE): cells hold lattice vectors as *rows*; the vector from centre ``i`` to
neighbour ``j`` is ``r_ij = positions[j] - positions[i] + edge_shift @ cell``. Neighbour lists
are full: both ``i→j`` and ``j→i`` are present. Stages return new dicts and never mutate input.
"""

from __future__ import annotations

# --- atom scope -------------------------------------------------------------------------
#: [n_atoms, 3] float, Å. Cartesian positions.
POSITIONS = "positions"
#: [n_atoms] int64. Atomic numbers, 1..118.
NUMBERS = "numbers"
#: [n_atoms] int64. Index of the system each atom belongs to, 0..n_systems-1, non-decreasing.
BATCH = "batch"
#: [n_atoms] float, eV. Per-atom energies; they sum to ENERGY within each system.
ATOMIC_ENERGY = "atomic_energy"
#: [n_atoms, 3] float, eV/Å. Forces, -dE/dR.
FORCES = "forces"
#: [n_atoms, 3] float, eV/Å. Spread of a committee's forces: standard deviation across members (1/K).
FORCES_STD = "forces_std"
#: [n_atoms, 3] float, amu·Å/(ASE time unit). Momenta (MD only).
MOMENTA = "momenta"
#: [n_atoms] float, amu. Masses (MD only).
MASSES = "masses"

# --- edge scope -------------------------------------------------------------------------
#: [2, n_edges] int64. Row 0 is the centre atom i, row 1 the neighbour j.
EDGE_INDEX = "edge_index"
#: [n_edges, 3] int64. Integer cell shifts S with r_ij = pos[j] - pos[i] + S @ cell.
EDGE_SHIFT = "edge_shift"

# --- system scope -----------------------------------------------------------------------
#: [n_systems, 3, 3] float, Å. Lattice vectors as rows (zeros on non-periodic axes are allowed).
CELL = "cell"
#: [n_systems, 3] bool. Periodicity of each cell axis.
PBC = "pbc"
#: [n_systems] float, eV. Total potential energy.
ENERGY = "energy"
#: [n_systems, 3, 3] float, eV/Å³. Stress, ASE sign convention: (1/V) dE/dε.
STRESS = "stress"
#: [n_systems] float, eV. Spread of a committee's energy: standard deviation across members (1/K).
ENERGY_STD = "energy_std"
#: [n_systems] int64. Number of atoms in each system (collation bookkeeping).
N_ATOMS = "n_atoms"

# Excited states (several adiabatic surfaces; mlpot.data.multistate reads them, mlpot.nonadiabatic predicts them).
#: [n_systems, n_states] float, eV. Adiabatic energies of the lowest n_states states, ascending.
STATE_ENERGIES = "state_energies"
#: [n_atoms, n_states, 3] float, eV/Å. Forces of each adiabatic state, −∂E_k/∂R.
STATE_FORCES = "state_forces"
#: [n_atoms, n_pairs, 3] float, 1/Å. Derivative couplings d_kl = ⟨k|∇l⟩, pairs k < l in state_pairs order.
NONADIABATIC_COUPLINGS = "nonadiabatic_couplings"
#: [n_systems, n_states, n_states] float, eV. The diabatic Hamiltonian matrix (model output).
DIABATIC_MATRIX = "diabatic_matrix"

#: Keys whose first dimension runs over atoms.
ATOM_KEYS = frozenset({POSITIONS, NUMBERS, BATCH, ATOMIC_ENERGY, FORCES, FORCES_STD, MOMENTA, MASSES})
#: Keys whose first dimension runs over edges (EDGE_INDEX runs over its second dimension).
EDGE_KEYS = frozenset({EDGE_INDEX, EDGE_SHIFT})
#: Keys whose first dimension runs over systems.
SYSTEM_KEYS = frozenset({CELL, PBC, ENERGY, ENERGY_STD, STRESS, N_ATOMS})
#: Label keys a dataset may provide for training (any subset, per structure).
LABEL_KEYS = frozenset({ENERGY, FORCES, STRESS})
