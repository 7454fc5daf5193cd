"""Short-range nuclear repulsion: the Ziegler–Biersack–Littmark (ZBL) universal potential.

A network fitted to DFT data near equilibrium knows nothing of what happens when two nuclei are
pushed together: nothing in the training data tells it that the energy must rise steeply, so it
may even fall (an untrained direction of descriptor space). Adding the screened Coulomb
repulsion of the bare nuclei as a fixed prior, as NequIP and MACE offer, makes close contacts
cost what they physically cost, whatever the network does there.

The ZBL universal screened nuclear repulsion (J. F. Ziegler, J. P. Biersack and U. Littmark,
*The Stopping and Range of Ions in Solids*, Pergamon, 1985, ch. 2):

    E(r) = (Z_i Z_j e² / 4πε₀ r) · φ(r/a),   a = 0.8854 a₀ / (Z_i^0.23 + Z_j^0.23) = 0.46850 Å / (…),
    φ(x) = 0.18175 e^{−3.19980 x} + 0.50986 e^{−0.94229 x} + 0.28022 e^{−0.40290 x} + 0.02817 e^{−0.20162 x}.

It is multiplied by a switch s(r) that is 1 below r_in = ½ r_out and falls smoothly (C², the
quintic smoothstep) to exactly 0 at r_out = r_cov,i + r_cov,j (ASE's covalent radii, capped at
the model's cutoff): the prior acts only inside the covalent range and leaves bonded geometries,
which the network fits, untouched.

Each unordered pair's energy is split evenly between its two atoms, so with a full neighbour
list (both directions of each pair) atom i receives ½ E(r_ij) from each of its edges.
"""

from __future__ import annotations

import torch
from ase.data import covalent_radii
from ase.units import Bohr, Hartree
from torch import Tensor, nn

__all__ = ["ZBLRepulsion", "zbl_energy", "REPULSIONS"]

#: Model option values of ``repulsion`` (None: no prior).
REPULSIONS = (None, "zbl")

#: e²/(4πε₀) in eV·Å (Hartree · Bohr, from ASE's CODATA constants).
COULOMB_EV_ANGSTROM = Hartree * Bohr
#: The ZBL screening length's prefactor, 0.8854 a₀, in Å, as the literature tabulates it.
SCREENING_LENGTH_ANGSTROM = 0.46850
_COEFFICIENTS = (0.18175, 0.50986, 0.28022, 0.02817)
_EXPONENTS = (3.19980, 0.94229, 0.40290, 0.20162)


def zbl_energy(r: Tensor, z_i: Tensor, z_j: Tensor, r_out: Tensor) -> tuple[Tensor, Tensor]:
    """Switched ZBL pair energy and its radial derivative.

    Args:
        r: [E] distances, Å (> 0).
        z_i, z_j: [E] atomic numbers of the two atoms (any numeric dtype).
        r_out: [E] distance where the switched repulsion reaches zero, Å.

    Returns:
        ``(energy [E] eV, dE/dr [E] eV/Å)``; both zero for r ≥ r_out. ``energy`` is
        differentiable by autograd as well (training uses that; evaluation uses dE/dr).
    """
    z_i, z_j = z_i.to(r.dtype), z_j.to(r.dtype)
    a = SCREENING_LENGTH_ANGSTROM / (z_i.pow(0.23) + z_j.pow(0.23))
    inside = r < r_out
    # Keep r away from 0 and r_out where the switch is off, so no inf or NaN reaches a gradient.
    r_safe = torch.where(inside, r, 0.5 * r_out)
    x = r_safe / a
    phi = torch.zeros_like(r_safe)
    dphi_dx = torch.zeros_like(r_safe)
    for c, d in zip(_COEFFICIENTS, _EXPONENTS):
        term = c * torch.exp(-d * x)
        phi = phi + term
        dphi_dx = dphi_dx - d * term
    prefactor = COULOMB_EV_ANGSTROM * z_i * z_j
    coulomb = prefactor / r_safe
    bare = coulomb * phi
    bare_dr = -coulomb / r_safe * phi + coulomb * dphi_dx / a

    # Switch: 1 for r ≤ r_in, 1 − (10t³ − 15t⁴ + 6t⁵) for t = (r − r_in)/(r_out − r_in) in [0, 1].
    r_in = 0.5 * r_out
    t = ((r_safe - r_in) / (r_out - r_in)).clamp(0.0, 1.0)
    switch = 1.0 - t * t * t * (10.0 - 15.0 * t + 6.0 * t * t)
    switch_dr = -30.0 * t * t * (1.0 - t) * (1.0 - t) / (r_out - r_in)

    energy = torch.where(inside, bare * switch, torch.zeros_like(r_safe))
    derivative = torch.where(inside, bare_dr * switch + bare * switch_dr, torch.zeros_like(r_safe))
    return energy, derivative


class ZBLRepulsion(nn.Module):
    """Per-atom ZBL repulsion energies and their edge gradients for a model's edges.

    Args:
        cutoff: the model's cutoff, Å; the switch never reaches beyond it (strict locality).

    The tables below are non-persistent buffers: they are constants of physics, not weights,
    and model files stay as they were.
    """

    def __init__(self, cutoff: float):
        super().__init__()
        radii = torch.as_tensor(covalent_radii, dtype=torch.float64)
        self.cutoff = float(cutoff)
        self.register_buffer("covalent_radius", radii, persistent=False)

    def forward(
        self, vectors: Tensor, edge_index: Tensor, numbers: Tensor, with_gradient: bool = True
    ) -> tuple[Tensor, Tensor | None]:
        """Per-atom energies and per-edge gradients.

        Args:
            vectors: [E, 3] r_ij, Å, for a full neighbour list (both directions of each pair).
            edge_index: [2, E] int64 (centre i, neighbour j).
            numbers: [n_atoms] int64 atomic numbers.
            with_gradient: also return ∂E/∂r_ij.

        Returns:
            ``(atomic_energy [n_atoms] eV, gradient [E, 3] eV/Å or None)``: atom i gets
            ½ E(r_ij) from each edge (i, j); ∂E/∂r_ij = ½ E'(r) r̂_ij.
        """
        z_i = numbers.index_select(0, edge_index[0])
        z_j = numbers.index_select(0, edge_index[1])
        radius = self.covalent_radius.to(vectors.dtype)
        r_out = (radius.index_select(0, z_i) + radius.index_select(0, z_j)).clamp(max=self.cutoff)
        r = vectors.square().sum(dim=1).clamp(min=1e-24).sqrt()
        pair, d_pair = zbl_energy(r, z_i, z_j, r_out)
        atomic = vectors.new_zeros(numbers.shape[0]).index_add(0, edge_index[0], 0.5 * pair)
        if not with_gradient:
            return atomic, None
        return atomic, (0.5 * d_pair / r)[:, None] * vectors
