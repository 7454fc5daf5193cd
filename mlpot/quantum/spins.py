"""Spin-½ lattice Hamiltonians, their exact ground states, and matrix-free local energies.

Two models, in units of the coupling J = 1:

* transverse-field Ising (``"tfim"``):  H = −Σ_<ij> σᶻ_i σᶻ_j − h Σ_i σˣ_i  (Pauli matrices);
* Heisenberg / XXZ (``"heisenberg"``):  H = Σ_<ij> (Sˣ_i Sˣ_j + Sʸ_i Sʸ_j + Δ Sᶻ_i Sᶻ_j)  with
  spin-½ operators S = σ/2 (Δ = 1 is the isotropic Heisenberg model H = Σ S·S).

on a chain (``shape=(N,)``) or a square lattice (``shape=(Lx, Ly)``), open or periodic.

A configuration is a vector of σᶻ eigenvalues s_i ∈ {+1, −1}, stored as a float tensor
[batch, n_sites]. A basis state is an integer whose bit i is set when s_i = +1, so the exact
Hamiltonian is built with vectorised bit operations (no loop over states). For U(1)-symmetric
models the exact ground state is searched in the Sᶻ_total = 0 sector (C(N, N/2) states instead
of 2^N); the lowest eigenvalue comes from scipy's Lanczos (:func:`scipy.sparse.linalg.eigsh`).

Closed forms used as checks (see ``tests/quantum``):

* periodic TFIM, Jordan–Wigner: the ground state lies in the even fermion-parity sector, where
  the fermions obey antiperiodic boundary conditions, k = π(2n+1)/N, n = 0..N−1, and
  E₀ = −Σ_k √(1 + h² − 2h cos k); at h = 1 this is E₀ = −2 / sin(π/2N);
* periodic Heisenberg chain: the finite-N Bethe-ansatz ground state (:func:`bethe_ansatz_energy`),
  whose energy per site tends to 1/4 − ln 2 as N → ∞.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import scipy.optimize
import scipy.sparse
import scipy.sparse.linalg
import torch

try:  # optional: ARPACK's BLAS calls on single vectors only lose from threads (10× slower on a busy machine)
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    def threadpool_limits(limits=None):
        return nullcontext()

__all__ = [
    "SpinModel",
    "make_model",
    "hamiltonian_matrix",
    "exact_ground_energy",
    "sector_states",
    "connected_configurations",
    "local_energy",
    "jordan_wigner_tfim_energy",
    "bethe_ansatz_energy",
    "HEISENBERG_INFINITE_CHAIN",
]

MODELS = ("tfim", "heisenberg")
HEISENBERG_INFINITE_CHAIN = 0.25 - math.log(2.0)
"""Ground energy per site of the infinite spin-½ Heisenberg chain (Hulthén 1938), J = 1."""


@dataclass(frozen=True)
class SpinModel:
    """A spin-½ lattice model.

    Attributes:
        name: ``"tfim"`` or ``"heisenberg"``.
        shape: lattice shape, (N,) for a chain or (Lx, Ly) for a square lattice.
        periodic: periodic boundaries in every direction.
        field: transverse field h (TFIM only, else 0).
        delta: XXZ anisotropy Δ (Heisenberg only, 1 is isotropic).
        bonds: [n_bonds, 2] int64 nearest-neighbour pairs (i, j), each bond once.
        sublattice: [n_sites] 0/1 checkerboard colouring, or None when the lattice is not bipartite.
    """

    name: str
    shape: tuple[int, ...]
    periodic: bool
    field: float
    delta: float
    bonds: np.ndarray = field(repr=False)
    sublattice: np.ndarray | None = field(repr=False)

    @property
    def n_sites(self) -> int:
        return int(np.prod(self.shape))

    @property
    def conserves_magnetisation(self) -> bool:
        """True when H commutes with Sᶻ_total (the U(1)-symmetric Heisenberg/XXZ model)."""
        return self.name == "heisenberg"


def _lattice_bonds(shape: tuple[int, ...], periodic: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Nearest-neighbour bonds of a chain or square lattice and its checkerboard colouring."""
    coordinates = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).reshape(-1, len(shape))
    index = np.arange(coordinates.shape[0]).reshape(shape)
    bonds = set()
    for axis, length in enumerate(shape):
        if length == 1:
            continue
        for site, coordinate in enumerate(coordinates):
            neighbour = coordinate.copy()
            neighbour[axis] += 1
            if neighbour[axis] == length:
                # A periodic length-2 direction would give the same bond twice: keep it once.
                if not periodic or length == 2:
                    continue
                neighbour[axis] = 0
            bonds.add(tuple(sorted((site, int(index[tuple(neighbour)])))))
    bonds = np.array(sorted(bonds), dtype=np.int64).reshape(-1, 2)
    colour = coordinates.sum(1) % 2
    bipartite = bool(np.all(colour[bonds[:, 0]] != colour[bonds[:, 1]])) if len(bonds) else True
    return bonds, (colour.astype(np.int64) if bipartite else None)


def make_model(model: str, shape, field: float | None = None, periodic: bool = True, delta: float = 1.0) -> SpinModel:
    """Build a :class:`SpinModel`.

    Args:
        model: ``"tfim"`` or ``"heisenberg"``.
        shape: an int N (chain) or a tuple (N,) / (Lx, Ly) (square lattice).
        field: transverse field h, required for the TFIM and not allowed for Heisenberg.
        periodic: periodic boundary conditions.
        delta: XXZ anisotropy (Heisenberg only).
    """
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; expected one of {MODELS}")
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(n) for n in shape)
    if not 1 <= len(shape) <= 2 or any(n < 2 for n in shape):
        raise ValueError(f"lattice shape must be (N,) or (Lx, Ly) with every length >= 2, got {shape}")
    if model == "tfim":
        if field is None:
            raise ValueError("the TFIM needs a transverse field: pass field=h")
        if not math.isfinite(float(field)):
            raise ValueError(f"field must be finite, got {field}")
        field_value, delta = float(field), 0.0
    else:
        if field is not None:
            raise ValueError("the Heisenberg model takes no transverse field (field=None)")
        if not math.isfinite(float(delta)):
            raise ValueError(f"delta must be finite, got {delta}")
        field_value = 0.0
    bonds, sublattice = _lattice_bonds(shape, bool(periodic))
    return SpinModel(model, shape, bool(periodic), field_value, float(delta), bonds, sublattice)


# --------------------------------------------------------------------------- exact diagonalisation


def sector_states(n_sites: int, magnetisation_zero: bool) -> np.ndarray:
    """Basis states (integers, bit i set ⇔ s_i = +1), sorted; only Sᶻ_total = 0 ones if asked."""
    states = np.arange(2**n_sites, dtype=np.int64)
    if not magnetisation_zero:
        return states
    if n_sites % 2:
        raise ValueError("the Sz_total = 0 sector needs an even number of sites")
    popcount = np.zeros_like(states)
    for bit in range(n_sites):
        popcount += (states >> bit) & 1
    return states[popcount == n_sites // 2]


def hamiltonian_matrix(model: SpinModel,
                       magnetisation_zero: bool | None = None) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
    """The Hamiltonian as a sparse matrix on the computational basis (or the Sᶻ = 0 sector).

    Args:
        model: the spin model.
        magnetisation_zero: restrict to Sᶻ_total = 0 (default: True for Heisenberg with even N).

    Returns:
        (H, states): H as a [D, D] scipy CSR matrix and the [D] basis states labelling its rows.
    """
    n = model.n_sites
    if n > 24:
        raise ValueError(f"exact diagonalisation is limited to 24 sites, got {n}")
    if magnetisation_zero is None:
        magnetisation_zero = model.conserves_magnetisation and n % 2 == 0
    if magnetisation_zero and not model.conserves_magnetisation:
        raise ValueError("the TFIM does not conserve Sz_total: magnetisation_zero must be False")
    states = sector_states(n, magnetisation_zero)
    bits = [((states >> site) & 1).astype(np.int8) for site in range(n)]
    rows, columns, values = [], [], []
    diagonal = np.zeros(len(states))
    position = np.arange(len(states))
    for i, j in model.bonds:
        same = bits[i] == bits[j]  # s_i s_j = +1
        if model.name == "tfim":
            diagonal -= np.where(same, 1.0, -1.0)
        else:
            diagonal += 0.25 * model.delta * np.where(same, 1.0, -1.0)
            # ½(S⁺S⁻ + S⁻S⁺) swaps an antiparallel pair with amplitude ½.
            flipped = states[~same] ^ ((1 << int(i)) | (1 << int(j)))
            rows.append(position[~same])
            columns.append(np.searchsorted(states, flipped))
            values.append(np.full(len(flipped), 0.5))
    if model.name == "tfim" and model.field != 0.0:
        for site in range(n):
            rows.append(position)
            columns.append(states ^ (1 << site))  # the full basis: the index is the state
            values.append(np.full(len(states), -model.field))
    rows.append(position), columns.append(position), values.append(diagonal)
    matrix = scipy.sparse.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(columns))), shape=(len(states), len(states))
    )
    return matrix, states


def _tfim_operator(model: SpinModel) -> scipy.sparse.linalg.LinearOperator:
    """H of the TFIM as a matrix-free operator (2^N states, N bit-flip gathers per product).

    At N = 20 the CSR matrix would hold 2.2e7 entries (~0.5 GB while being assembled); the
    operator needs only the diagonal and the flips.
    """
    n = model.n_sites
    states = np.arange(2**n, dtype=np.int64)
    spins = [2.0 * ((states >> site) & 1) - 1.0 for site in range(n)]
    diagonal = np.zeros(2**n)
    for i, j in model.bonds:
        diagonal -= spins[i] * spins[j]
    flips = [states ^ (1 << site) for site in range(n)]

    def matvec(vector):
        vector = np.asarray(vector).reshape(-1)
        out = diagonal * vector
        for flip in flips:
            out -= model.field * vector[flip]
        return out

    return scipy.sparse.linalg.LinearOperator((2**n, 2**n), matvec=matvec, dtype=np.float64)


def exact_ground_energy(model: str, n_sites, field: float | None = None, periodic: bool = True) -> float:
    """The exact ground energy by Lanczos, in units of J = 1.

    Args:
        model: ``"tfim"`` (H = −Σσᶻσᶻ − hΣσˣ, h = ``field``) or ``"heisenberg"`` (H = Σ S·S).
        n_sites: N for a chain, or a tuple (Lx, Ly) for a square lattice (e.g. (4, 4)).
        field: the TFIM's transverse field; None for Heisenberg.
        periodic: periodic boundary conditions.

    Returns:
        The lowest eigenvalue of H (for Heisenberg with even N it lies in the Sᶻ_total = 0
        sector, since the ground state of a bipartite antiferromagnet is a singlet, Lieb–Mattis).
    """
    spin_model = make_model(model, n_sites, field, periodic)
    return ground_state_vector(spin_model)[0]


def ground_state_vector(model: SpinModel) -> tuple[float, np.ndarray, np.ndarray]:
    """(E₀, ψ₀ [D], states [D]) of a model with at most 24 sites, by Lanczos."""
    if model.n_sites > 24:
        raise ValueError(f"exact diagonalisation is limited to 24 sites, got {model.n_sites}")
    if model.name == "tfim" and model.n_sites > 18:
        operator, states = _tfim_operator(model), np.arange(2**model.n_sites, dtype=np.int64)
    else:
        operator, states = hamiltonian_matrix(model)
    if operator.shape[0] <= 64:  # Lanczos needs more states than it keeps vectors
        dense = operator.toarray() if scipy.sparse.issparse(operator) else operator @ np.eye(operator.shape[0])
        values, vectors = np.linalg.eigh(dense)
        return float(values[0]), vectors[:, 0], states
    start = np.random.default_rng(0).standard_normal(operator.shape[0])  # reproducible Lanczos start
    with threadpool_limits(limits=1):
        values, vectors = scipy.sparse.linalg.eigsh(operator, k=1, which="SA", v0=start, tol=1e-13)
    return float(values[0]), vectors[:, 0], states


def jordan_wigner_tfim_energy(n_sites: int, field: float) -> float:
    """Exact ground energy of the periodic TFIM chain from free fermions (even-parity sector).

    E₀ = −Σ_k √(1 + h² − 2h cos k) with antiperiodic momenta k = π(2n+1)/N, n = 0..N−1.
    """
    k = np.pi * (2 * np.arange(n_sites) + 1) / n_sites
    return float(-np.sqrt(1.0 + field**2 - 2.0 * field * np.cos(k)).sum())


def bethe_ansatz_energy(n_sites: int) -> float:
    """Ground energy of the periodic spin-½ Heisenberg chain H = Σ S_i·S_{i+1}, N even, from the
    Bethe ansatz: M = N/2 real rapidities λ_j solve

        N · 2 arctan(2λ_j) = 2π I_j + Σ_k 2 arctan(λ_j − λ_k),   I_j = −(M−1)/2, …, (M−1)/2,

    and E = N/4 − Σ_j 1 / (2 (λ_j² + 1/4)). (Exact for any even N; checked against Lanczos.)
    """
    if n_sites % 2 or n_sites < 2:
        raise ValueError(f"the Bethe-ansatz ground state needs an even N >= 2, got {n_sites}")
    m = n_sites // 2
    quantum_numbers = np.arange(m) - (m - 1) / 2.0

    def equations(rapidities):
        difference = rapidities[:, None] - rapidities[None, :]
        return (n_sites * 2 * np.arctan(2 * rapidities) - 2 * np.pi * quantum_numbers
                - (2 * np.arctan(difference)).sum(1))

    # Start from the non-interacting guess λ = ½ tan(π I / N), then Newton (scipy's hybrid method).
    start = 0.5 * np.tan(np.pi * quantum_numbers / n_sites)
    solution = scipy.optimize.root(equations, start, method="hybr", tol=1e-13)
    # hybr may stop with "no further improvement" at round-off: judge by the residual instead.
    if np.max(np.abs(equations(solution.x))) > 1e-9:
        raise RuntimeError(f"Bethe equations did not converge for N = {n_sites}: {solution.message}")
    return float(n_sites / 4.0 - np.sum(1.0 / (2.0 * (solution.x**2 + 0.25))))


# --------------------------------------------------------------------------- matrix-free local energies


def connected_configurations(model: SpinModel, spins: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The off-diagonal matrix elements H_σσ' of each configuration, without the matrix.

    Args:
        model: the spin model.
        spins: [batch, N] configurations, entries ±1.

    Returns:
        (diagonal [batch], connected [batch, C, N], elements [batch, C]): H_σσ, the configurations
        σ' reachable in one application of H (C = N single flips for the TFIM, C = n_bonds pair
        swaps for Heisenberg), and H_σσ' (zero where a swap of a parallel pair does not exist).
    """
    if spins.ndim != 2 or spins.shape[1] != model.n_sites:
        raise ValueError(f"spins must have shape [batch, {model.n_sites}], got {tuple(spins.shape)}")
    bonds = torch.as_tensor(model.bonds, device=spins.device)
    products = spins[:, bonds[:, 0]] * spins[:, bonds[:, 1]]  # [batch, n_bonds]
    batch, n = spins.shape
    if model.name == "tfim":
        diagonal = -products.sum(1)
        eye = torch.eye(n, dtype=spins.dtype, device=spins.device)
        connected = spins[:, None, :] * (1.0 - 2.0 * eye)  # row c has spin c flipped
        elements = torch.full((batch, n), -model.field, dtype=spins.dtype, device=spins.device)
        return diagonal, connected, elements
    diagonal = 0.25 * model.delta * products.sum(1)
    swap = torch.ones(len(bonds), n, dtype=spins.dtype, device=spins.device)
    swap[torch.arange(len(bonds)), bonds[:, 0]] = -1.0
    swap[torch.arange(len(bonds)), bonds[:, 1]] = -1.0
    connected = spins[:, None, :] * swap  # flipping both spins of an antiparallel pair swaps them
    elements = 0.5 * (products < 0).to(spins.dtype)
    return diagonal, connected, elements


def local_energy(model: SpinModel, log_psi, spins: torch.Tensor) -> torch.Tensor:
    """E_loc(σ) = Σ_σ' H_σσ' ψ(σ')/ψ(σ) for any size, from a log-amplitude function.

    Args:
        model: the spin model.
        log_psi: callable [batch, N] → [batch] log ψ (real or complex).
        spins: [batch, N] configurations (±1).

    Returns:
        [batch] local energies (complex if log ψ is complex).
    """
    diagonal, connected, elements = connected_configurations(model, spins)
    batch, n_connected, n = connected.shape
    log_here = log_psi(spins)
    log_there = log_psi(connected.reshape(-1, n)).reshape(batch, n_connected)
    ratios = torch.exp(log_there - log_here[:, None])
    # Zero elements (absent swaps) must not propagate an overflowing ratio: mask before summing.
    off_diagonal = torch.where(elements != 0, elements * ratios, torch.zeros_like(ratios)).sum(1)
    return diagonal.to(off_diagonal.dtype) + off_diagonal
