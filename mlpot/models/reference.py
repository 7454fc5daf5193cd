"""Small analytic potentials on the :class:`~mlpot.models.potential.Potential` contract.

They validate the MD engine (and the thermodynamics built on it) against exact results,
independently of any learned model:

* :class:`LennardJones` — the 12-6 pair potential with ASE's conventions (energy shifted to zero
  at ``rc``, or ASE's ``smooth`` cutoff function between ``ro`` and ``rc``). It is only
  :meth:`~LennardJones.atomic_energies`: edges, the skin, forces and stress come from
  :class:`Potential`, so it exercises the same code paths as a learned model. Having no weights,
  it computes in float64 (:attr:`Potential.dtype`) unless given a floating buffer of another dtype.
* :class:`HarmonicSprings` — an exactly harmonic crystal or molecule: zero-length vector springs
  ``U = ½ k Σ_b |x_j − x_i − d_b|²`` between bonded atoms, ``d_b`` the bond vector of a reference
  structure. U is quadratic in the positions, translation invariant (the total momentum is
  conserved) and its normal modes are known, so equipartition, the shadow Hamiltonian of velocity
  Verlet and canonical fluctuations can be checked exactly. Periodic systems use the minimum
  image of ``x_j − x_i − d_b`` so that wrapped and unwrapped positions give the same energy.
  The springs act on a fixed bond graph, not on neighbour edges, so their forces are written out
  in :meth:`~HarmonicSprings.forward` (no stress).
"""

from __future__ import annotations

import ase
import numpy as np
import torch
from torch import Tensor

from mlpot.data import keys as K
from mlpot.models.potential import Potential, count_systems
from mlpot.neighbors import complete_cell, neighbor_list

__all__ = ["HarmonicSprings", "LennardJones"]


class LennardJones(Potential):
    """12-6 Lennard-Jones with ASE's conventions (``ase.calculators.lj.LennardJones``).

    Args:
        sigma: Å. epsilon: eV.
        rc: cutoff, Å (default 3σ, as ASE).
        ro: start of the smooth cutoff, Å (default 0.66 rc, as ASE); used when ``smooth``.
        smooth: False: energy shifted by u(rc) (forces jump at rc, as ASE's default);
            True: ASE's C¹ cutoff function between ``ro`` and rc.
    """

    def __init__(self, sigma: float = 1.0, epsilon: float = 1.0, rc: float | None = None, ro=None, smooth=False):
        super().__init__()
        if not sigma > 0:
            raise ValueError(f"sigma must be positive (Å), got {sigma}")
        self.sigma = float(sigma)
        self.epsilon = float(epsilon)
        self.cutoff = float(rc if rc is not None else 3.0 * sigma)
        self.ro = float(ro if ro is not None else 0.66 * self.cutoff)
        self.smooth = bool(smooth)

    def atomic_energies(self, data: dict[str, Tensor], edge_index: Tensor, vectors: Tensor, training: bool = True):
        """Half of each pair energy u(r_ij) to each of the two atoms, eV, [n_atoms]."""
        r2 = vectors.square().sum(dim=1)
        rc2 = self.cutoff**2
        c6 = (self.sigma**2 / r2) ** 3
        pair = 4.0 * self.epsilon * (c6.square() - c6)
        if self.smooth:
            ro2 = self.ro**2
            switch = (rc2 - r2) ** 2 * (rc2 + 2 * r2 - 3 * ro2) / (rc2 - ro2) ** 3
            pair = pair * torch.where(r2 < ro2, torch.ones_like(r2), switch)
        else:
            pair = pair - 4.0 * self.epsilon * ((self.sigma**2 / rc2) ** 6 - (self.sigma**2 / rc2) ** 3)
        return vectors.new_zeros(data[K.NUMBERS].shape[0]).index_add(0, edge_index[0], 0.5 * pair)


class HarmonicSprings(Potential):
    """Zero-length vector springs on a fixed bond graph: an exactly harmonic system.

    Args:
        bonds: [n_bonds, 2] int64 atom pairs (i, j) of one structure of ``n_atoms`` atoms.
        rest_vectors: [n_bonds, 3] float, Å, the bond vectors d_b at the energy minimum.
        spring_constant: k, eV/Å²: a float, [n_bonds] (one per bond) or [n_bonds, 3] (a diagonal
            stiffness per bond, k_x, k_y, k_z: U_b = ½ Σ_a k_a δ_a²). Unequal values remove the
            degeneracies of a symmetric lattice, which matters for global thermostats (Bussi), whose
            ergodicity on a harmonic system relies on non-degenerate normal modes.
        n_atoms: number of atoms of the structure. Data with a multiple of it (replicas
            batched together) gets the bonds repeated per replica.
        cutoff: the value of the contract's ``cutoff`` attribute, Å (the engine builds a
            neighbour list of this range, which the springs do not need).
    """

    def __init__(self, bonds, rest_vectors, spring_constant, n_atoms: int, cutoff: float = 0.5):
        super().__init__()
        bonds = torch.as_tensor(bonds, dtype=torch.int64).reshape(-1, 2)
        self.register_buffer("bonds", bonds)
        self.register_buffer("rest_vectors", torch.as_tensor(rest_vectors, dtype=torch.float64).reshape(-1, 3))
        k = torch.as_tensor(spring_constant, dtype=torch.float64)
        if k.ndim < 2:
            k = k.reshape(-1, 1)
        self.register_buffer("spring_constant", k.expand(bonds.shape[0], 3).clone())
        self.n_atoms_structure = int(n_atoms)
        self.cutoff = float(cutoff)

    @classmethod
    def from_atoms(cls, atoms: ase.Atoms, bond_cutoff: float, spring_constant=1.0, cutoff: float = 0.5, disorder=None):
        """Bond every pair closer than ``bond_cutoff`` (each pair once), at rest in ``atoms``.

        Args:
            spring_constant: eV/Å², as in the constructor (scalar, per bond or per bond and axis).
            disorder: optional ``(low, high, seed)``: multiply each bond's k_x, k_y, k_z by
                independent factors uniform in [low, high] (a non-degenerate spectrum).
        """
        positions = torch.as_tensor(atoms.get_positions(), dtype=torch.float64)
        cell = torch.as_tensor(atoms.cell.array, dtype=torch.float64)
        edge_index, edge_shift = neighbor_list(positions, bond_cutoff, cell=cell, pbc=torch.as_tensor(atoms.pbc))
        i, j = edge_index
        # One direction per pair: i < j, or i == j (an image of itself) with a lexicographically positive shift.
        key = (edge_shift[:, 0] * 1024 + edge_shift[:, 1]) * 1024 + edge_shift[:, 2]
        keep = (i < j) | ((i == j) & (key > 0))
        i, j, shift = i[keep], j[keep], edge_shift[keep]
        rest = positions[j] - positions[i] + shift.to(torch.float64) @ cell
        bonds = torch.stack((i, j), dim=1)
        k = torch.as_tensor(spring_constant, dtype=torch.float64)
        if k.ndim < 2:
            k = k.reshape(-1, 1)
        k = k.expand(bonds.shape[0], 3).clone()
        if disorder is not None:
            low, high, seed = disorder
            rng = np.random.default_rng(seed)
            k = k * torch.as_tensor(rng.uniform(low, high, size=(bonds.shape[0], 3)))
        return cls(bonds, rest, k, n_atoms=len(atoms), cutoff=cutoff)

    def normal_mode_frequencies(self, masses) -> np.ndarray:
        """Angular frequencies ω (1/ASE time) of the 3N normal modes of one structure, sorted (3 are zero)."""
        n = self.n_atoms_structure
        inv_sqrt_m = 1.0 / np.sqrt(np.asarray(masses, dtype=float))
        omega2 = []
        for axis in range(3):  # the Cartesian components decouple
            laplacian = np.zeros((n, n))
            for (i, j), k in zip(self.bonds.tolist(), self.spring_constant[:, axis].tolist()):
                if i == j:
                    continue  # a spring to one's own image is a constant
                laplacian[i, i] += k
                laplacian[j, j] += k
                laplacian[i, j] -= k
                laplacian[j, i] -= k
            dynamical = laplacian * inv_sqrt_m[:, None] * inv_sqrt_m[None, :]
            omega2.append(np.linalg.eigvalsh(dynamical))
        return np.sort(np.sqrt(np.clip(np.concatenate(omega2), 0.0, None)))

    def _tiled(self, replicas: int, dtype: torch.dtype, device: torch.device):
        """Bonds, rest vectors and spring constants repeated for ``replicas`` replicas (cached)."""
        key = (replicas, dtype, device)
        if getattr(self, "_tile_key", None) != key:
            offsets = torch.arange(replicas, device=device) * self.n_atoms_structure
            bonds = (self.bonds.to(device)[None] + offsets[:, None, None]).reshape(-1, 2)
            self._tile = (
                bonds[:, 0].contiguous(),
                bonds[:, 1].contiguous(),
                self.rest_vectors.to(device, dtype).repeat(replicas, 1),
                self.spring_constant.to(device, dtype).repeat(replicas, 1),
            )
            self._tile_key = key
        return self._tile

    def _cells(self, cell: Tensor, pbc: Tensor, bond_system: Tensor):
        """Per-bond completed cell and inverse, [B, 3, 3] each (cached while the cell is unchanged)."""
        cached = getattr(self, "_cell_cache", None)
        if (
            cached is None
            or cached[0].shape != cell.shape
            or cached[2].shape[0] != bond_system.shape[0]
            or not torch.equal(cached[0], cell)
            or not torch.equal(cached[1], pbc)
        ):
            full = complete_cell(cell, pbc)
            self._cell_cache = (
                cell.clone(),
                pbc.clone(),
                full[bond_system],
                torch.linalg.inv(full)[bond_system],
                pbc[bond_system],
            )
        return self._cell_cache[2:]

    def _bond_deviations(self, data: dict[str, Tensor], positions: Tensor, batch: Tensor):
        """Bond ends i, j [B], spring constants [B, 3] (eV/Å²) and deviations δ_b = x_j − x_i − d_b
        [B, 3] (Å, minimum image on periodic axes) for ``positions`` [n, 3]."""
        n_atoms = positions.shape[0]
        if n_atoms % self.n_atoms_structure:
            raise ValueError(f"{n_atoms} atoms is not a multiple of the springs' {self.n_atoms_structure}")
        i, j, rest, k = self._tiled(n_atoms // self.n_atoms_structure, positions.dtype, positions.device)
        delta = positions.index_select(0, j) - positions.index_select(0, i) - rest
        if K.PBC in data and bool(data[K.PBC].any()):
            cell, inverse, pbc = self._cells(data[K.CELL].to(positions.dtype), data[K.PBC], batch[i])
            fractional = torch.einsum("bi,bik->bk", delta, inverse)
            images = torch.where(pbc, torch.round(fractional), torch.zeros_like(fractional))
            delta = delta - torch.einsum("bk,bkj->bj", images, cell)
        return i, j, k, delta

    def atomic_energies(self, data: dict[str, Tensor], edge_index: Tensor, vectors: Tensor, training: bool = True):
        """Half of each spring's energy to each end, eV, [n_atoms]. The springs read the positions
        of ``data`` (their bond graph is fixed), not the neighbour edges."""
        return self(data, compute_forces=False)[K.ATOMIC_ENERGY]

    @staticmethod
    def _batch(data: dict[str, Tensor], positions: Tensor) -> Tensor:
        if K.BATCH in data:
            return data[K.BATCH]
        return torch.zeros(positions.shape[0], dtype=torch.int64, device=positions.device)

    def forward(self, data, compute_forces: bool = True, compute_stress: bool = False, training: bool = False):
        """Energy, atomic energies and the spring forces written out: −∂U/∂x_i = k δ_b, −∂U/∂x_j = −k δ_b.

        Positions are used in their own dtype (the springs have no weights to set one)."""
        if compute_stress:
            raise NotImplementedError("HarmonicSprings does not compute stress")
        positions = data[K.POSITIONS]
        batch = self._batch(data, positions)
        i, j, k, delta = self._bond_deviations(data, positions, batch)
        bond_energy = 0.5 * (k * delta.square()).sum(dim=1)
        atomic_energy = 0.5 * (positions.new_zeros(positions.shape[0]).index_add(0, i, bond_energy)
                               .index_add(0, j, bond_energy))
        energy = positions.new_zeros(count_systems(data, batch)).index_add(0, batch, atomic_energy)
        out = {K.ENERGY: energy, K.ATOMIC_ENERGY: atomic_energy}
        if compute_forces:
            pull = k * delta  # force on i along the spring; −pull on j
            out[K.FORCES] = torch.zeros_like(positions).index_add_(0, i, pull).index_add_(0, j, pull, alpha=-1)
        return out
