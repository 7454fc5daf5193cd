"""Physics-informed Schrödinger networks for a potential V(x), with a plane-wave first layer.

The first layer maps x to plane-wave features cos(k_j x), sin(k_j x) with trainable k_j — the
free solutions of :mod:`mlpot.quantum.waves`; the potential is learned on top of them by
minimising the residual of the Schrödinger equation at collocation points. The x-derivatives
of the plane-wave layer are again plane waves and are taken in closed form
(:meth:`PlaneWaveFeatures.derivative`, checked against autograd in the tests); the parameters are
trained by autograd. Units: any consistent set, with ``mass`` and ``hbar`` given in it.

* :func:`bound_states` — the lowest eigenpairs of H = −(ħ²/2m) d²/dx² + V(x) on a box. Each level
  is a network with a **trainable eigenvalue** E; the loss is the mean squared residual of
  Hψ = Eψ plus penalties for the normalisation (∫ψ² = 1), the orthogonality to the levels already
  found and ψ = 0 at the box edges. Because a zero residual holds for *every* eigenpair, each
  level is first pre-trained on the Rayleigh quotient ⟨ψ|H|ψ⟩/⟨ψ|ψ⟩ (the "deep Ritz" loss, whose
  minimum under the orthogonality penalty is the next level), then refined on the residual.
* :func:`scattering_transmission` — the stationary scattering problem: ψ'' = (2m/ħ²)(V − E)ψ with
  a wave e^{ikx} incident from the left. The domain is split where V jumps (a network per piece,
  so the kink of ψ'' at a jump is not smeared; the pieces are joined by continuity of ψ and ψ'),
  and the outer edges carry the exact radiation conditions ψ' + ikψ = 2ik e^{ikx} (left: incident
  plus reflected) and ψ' − ikψ = 0 (right: transmitted only). The loss is then quadratic in the
  output layer, so its minimiser is found by one complex least-squares solve rather than by
  gradient steps. T = |ψ(x_right)|² (equal wave numbers on both sides, V = 0 outside).
* :func:`evolve` — the time-dependent problem iħ∂ψ/∂t = Hψ with ψ(x, t) = Σ_j c_j(t) sin(k_j(x − x_min)):
  at every instant ċ zeroes the residual iħΦċ − HΦc at as many collocation points as waves (the
  McLachlan variational principle, solved exactly), a linear ODE ċ = −(i/ħ)Gc with real symmetric
  G, integrated exactly through G's eigenvectors.
* :func:`square_barrier_transmission` — the textbook closed form, for comparison.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["PlaneWaveFeatures", "BoundStateNetwork", "bound_states", "scattering_transmission",
           "square_barrier_transmission", "TimeEvolution", "evolve"]


class PlaneWaveFeatures(nn.Module):
    """x [n] → [n, 2·n_waves] features (cos(k_j (x − centre)), sin(k_j (x − centre))), k trainable."""

    def __init__(self, wave_numbers: torch.Tensor, centre: float = 0.0):
        super().__init__()
        self.wave_numbers = nn.Parameter(torch.as_tensor(wave_numbers, dtype=torch.float64).clone())
        self.centre = float(centre)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.derivative(x, 0)

    def derivative(self, x: torch.Tensor, order: int) -> torch.Tensor:
        """d^order/dx^order of the features [n, 2·n_waves], in closed form.

        The derivatives of plane waves are plane waves (cos' = −k sin, sin' = k cos): exact and far
        cheaper than nested autograd inside a training loop (the tests check them against autograd).
        """
        phase = (x[:, None] - self.centre) * self.wave_numbers
        k = self.wave_numbers**order
        # d^n cos(kx) = k^n cos(kx + nπ/2), d^n sin(kx) = k^n sin(kx + nπ/2)
        shifted = phase + 0.5 * math.pi * order
        return torch.cat([k * torch.cos(shifted), k * torch.sin(shifted)], dim=1)


class BoundStateNetwork(nn.Module):
    """ψ(x) = Σ_j a_j cos(k_j x) + b_j sin(k_j x): a plane-wave layer and a linear read-out, real.

    Attributes:
        energy: the trainable eigenvalue E.
    """

    def __init__(self, wave_numbers: torch.Tensor, seed: int = 0):
        super().__init__()
        self.features = PlaneWaveFeatures(wave_numbers)
        generator = torch.Generator().manual_seed(seed)
        self.readout = nn.Parameter(torch.randn(2 * len(wave_numbers), generator=generator, dtype=torch.float64)
                                    / math.sqrt(len(wave_numbers)))
        self.energy = nn.Parameter(torch.zeros((), dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x) @ self.readout

    def derivatives(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """ψ, ψ', ψ'' at x [n] (differentiable with respect to the parameters)."""
        return tuple(self.features.derivative(x, order) @ self.readout for order in range(3))


def _derivatives(network, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return network.derivatives(x)


def _minimise(parameters, loss_fn, n_steps: int) -> float:
    optimiser = torch.optim.LBFGS(parameters, lr=1.0, max_iter=n_steps, tolerance_grad=1e-14,
                                  tolerance_change=1e-16, history_size=50, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    optimiser.step(closure)
    return float(loss_fn().detach())


def bound_states(potential, n_states: int = 4, box: tuple[float, float] = (-8.0, 8.0), mass: float = 1.0,
                 hbar: float = 1.0, n_waves: int = 40, n_points: int = 801, n_steps: int = 500,
                 penalty: float = 100.0, seed: int = 0) -> tuple[list[float], list[BoundStateNetwork]]:
    """The ``n_states`` lowest bound states of V(x) by physics-informed training (module docstring).

    Args:
        potential: callable x [n] → V(x) [n].
        n_states: how many levels, found in order.
        box: (x_min, x_max); the bound states must vanish at its edges.
        mass, hbar: particle mass and ħ.
        n_waves: plane waves per network; k_j = jπ/(x_max − x_min), j = 0 … n_waves−1 initially.
        n_points: uniform collocation / quadrature points (trapezoidal rule).
        n_steps: L-BFGS iterations per stage.
        penalty: weight of the normalisation, orthogonality and boundary penalties.
        seed: initial read-out weights.

    Returns:
        (energies, networks): E_n and the trained ψ_n (normalised, ψ_n(x) real), n = 0 … n_states−1.
    """
    x_min, x_max = map(float, box)
    if not x_max > x_min:
        raise ValueError(f"box must be (x_min, x_max) with x_max > x_min, got {box}")
    if n_states < 1 or n_waves < 2 or n_points < 3:
        raise ValueError("n_states, n_waves and n_points must be at least 1, 2 and 3")
    x = torch.linspace(x_min, x_max, n_points, dtype=torch.float64)
    weights = torch.full_like(x, (x_max - x_min) / (n_points - 1))
    weights[0] = weights[-1] = 0.5 * weights[0]
    v = torch.as_tensor(potential(x), dtype=torch.float64)
    if v.shape != x.shape or not torch.isfinite(v).all():
        raise ValueError("potential(x) must return finite values of the same shape as x")
    kinetic = hbar**2 / (2.0 * mass)
    edges = torch.tensor([x_min, x_max], dtype=torch.float64)
    energies, networks = [], []
    for level in range(n_states):
        network = BoundStateNetwork(torch.arange(n_waves, dtype=torch.float64) * math.pi / (x_max - x_min),
                                    seed=seed + level)
        previous = [ψ(x).detach() for ψ in networks]

        # the closures run inside this iteration (via _minimise); the defaults only make that explicit
        def constraints(psi, norm, previous=previous, network=network):
            overlap = sum((weights * psi * old).sum() ** 2 for old in previous) if previous else 0.0
            return penalty * (overlap / norm + (network(edges) ** 2).sum() / norm)

        def ritz(network=network):
            psi, first, _ = _derivatives(network, x)
            norm = (weights * psi**2).sum()
            energy = (weights * (kinetic * first**2 + v * psi**2)).sum() / norm  # ⟨ψ|H|ψ⟩ after parts
            return energy + constraints(psi, norm)

        params = [network.readout, network.features.wave_numbers]
        _minimise(params, ritz, n_steps)
        psi, first, _ = (value.detach() for value in _derivatives(network, x))
        norm = (weights * psi**2).sum()
        with torch.no_grad():  # start the eigenvalue from the Rayleigh quotient, ψ normalised
            network.readout /= norm.sqrt()
            network.energy.fill_((weights * (kinetic * first**2 + v * psi**2)).sum() / norm)

        def residual(network=network):
            psi, _, second = _derivatives(network, x)
            norm = (weights * psi**2).sum()
            residual = -kinetic * second + v * psi - network.energy * psi
            return (weights * residual**2).sum() + penalty * (norm - 1.0) ** 2 + constraints(psi, norm)

        _minimise(list(network.parameters()), residual, n_steps)
        energies.append(float(network.energy.detach()))
        networks.append(network)
    return energies, networks


def square_barrier_transmission(energy: float, height: float, width: float, mass: float = 1.0,
                                hbar: float = 1.0) -> float:
    """Transmission probability through V = height on [0, width] (0 elsewhere), E > 0.

    T = 1 / (1 + V₀² sinh²(κa) / (4E(V₀ − E))) for E < V₀ with κ = √(2m(V₀ − E))/ħ,
    T = 1 / (1 + V₀² sin²(qa) / (4E(E − V₀))) for E > V₀ with q = √(2m(E − V₀))/ħ,
    T = 1 / (1 + m a² V₀ / 2ħ²) at E = V₀.
    """
    if energy <= 0:
        raise ValueError(f"the incident energy must be positive, got {energy}")
    if energy == height:
        return 1.0 / (1.0 + mass * width**2 * height / (2.0 * hbar**2))
    if energy < height:
        kappa = math.sqrt(2.0 * mass * (height - energy)) / hbar
        return 1.0 / (1.0 + height**2 * math.sinh(kappa * width) ** 2 / (4.0 * energy * (height - energy)))
    q = math.sqrt(2.0 * mass * (energy - height)) / hbar
    return 1.0 / (1.0 + height**2 * math.sin(q * width) ** 2 / (4.0 * energy * (energy - height)))


def scattering_transmission(potential, energy: float, breakpoints, mass: float = 1.0, hbar: float = 1.0,
                            margin: float = 2.0, n_waves: int = 24, n_points: int = 200) -> dict:
    """Transmission and reflection of a wave incident from the left on V(x) (module docstring).

    Args:
        potential: callable x [n] → V(x) [n], zero outside [breakpoints[0], breakpoints[-1]].
        energy: incident energy E > 0.
        breakpoints: increasing x where V may jump (at least the two ends of the scatterer).
        mass, hbar: particle mass and ħ.
        margin: free region kept on each side of the scatterer.
        n_waves: plane waves per piece (k_j = jπ/ℓ on a piece of length ℓ).
        n_points: collocation points per piece.

    Returns:
        dict with ``transmission`` |t|², ``reflection`` |r|², ``residual`` (RMS of the fitted
        equations, relative to the incident amplitude), and ``networks``: one
        (features, complex read-out) pair per piece.
    """
    if energy <= 0:
        raise ValueError(f"the incident energy must be positive, got {energy}")
    cuts = [float(b) for b in breakpoints]
    if len(cuts) < 2 or any(b >= c for b, c in zip(cuts, cuts[1:])):
        raise ValueError(f"breakpoints must be at least two increasing positions, got {breakpoints}")
    k = math.sqrt(2.0 * mass * energy) / hbar
    edges = [cuts[0] - margin, *cuts, cuts[-1] + margin]
    pieces = list(zip(edges, edges[1:]))
    scale = 2.0 * mass / hbar**2
    features, rows_per_piece = [], []
    for left, right in pieces:
        length = right - left
        layer = PlaneWaveFeatures(torch.arange(n_waves, dtype=torch.float64) * math.pi / length, 0.5 * (left + right))
        features.append(layer)
        # interior collocation (Chebyshev-like clustering near the ends helps the joins)
        s = torch.cos(math.pi * (torch.arange(n_points, dtype=torch.float64) + 0.5) / n_points)
        x = 0.5 * (left + right) + 0.5 * length * s
        phi, _, phi2 = _feature_derivatives(layer, x)
        v = torch.as_tensor(potential(x), dtype=torch.float64)
        rows_per_piece.append((phi2 + (scale * (energy - v))[:, None] * phi) / (k**2 * math.sqrt(n_points)))
    n_columns = [2 * n_waves] * len(pieces)
    offsets = [sum(n_columns[:i]) for i in range(len(pieces))]
    total = sum(n_columns)

    def place(piece, row):
        full = torch.zeros(row.shape[0], total, dtype=torch.complex128)
        full[:, offsets[piece]:offsets[piece] + n_columns[piece]] = row
        return full

    matrix = [place(i, rows.to(torch.complex128)) for i, rows in enumerate(rows_per_piece)]
    rhs = [torch.zeros(r.shape[0], dtype=torch.complex128) for r in rows_per_piece]
    for i, cut in enumerate(cuts):  # continuity of ψ and ψ'/k at each join
        point = torch.tensor([cut], dtype=torch.float64)
        left_phi, left_d, _ = _feature_derivatives(features[i], point)
        right_phi, right_d, _ = _feature_derivatives(features[i + 1], point)
        matrix += [place(i, left_phi.to(torch.complex128)) - place(i + 1, right_phi.to(torch.complex128)),
                   place(i, left_d.to(torch.complex128) / k) - place(i + 1, right_d.to(torch.complex128) / k)]
        rhs += [torch.zeros(1, dtype=torch.complex128)] * 2
    x_left, x_right = torch.tensor([edges[0]], dtype=torch.float64), torch.tensor([edges[-1]], dtype=torch.float64)
    phi, d, _ = _feature_derivatives(features[0], x_left)
    matrix.append(place(0, (d / k + 1j * phi).to(torch.complex128)))  # (ψ' + ikψ)/k = 2i e^{ikx}
    rhs.append(torch.tensor([2j * complex(math.cos(k * edges[0]), math.sin(k * edges[0]))]))
    phi, d, _ = _feature_derivatives(features[-1], x_right)
    matrix.append(place(len(pieces) - 1, (d / k - 1j * phi).to(torch.complex128)))  # (ψ' − ikψ)/k = 0
    rhs.append(torch.zeros(1, dtype=torch.complex128))
    a, b = torch.cat(matrix), torch.cat(rhs)
    solution = torch.linalg.lstsq(a, b[:, None], driver="gelsd").solution[:, 0]
    residual = float(torch.linalg.vector_norm(a @ solution - b) / math.sqrt(a.shape[0]))
    readouts = [solution[o:o + c] for o, c in zip(offsets, n_columns)]
    with torch.no_grad():
        psi_right = (features[-1](x_right).to(torch.complex128) @ readouts[-1])[0]
        psi_left = (features[0](x_left).to(torch.complex128) @ readouts[0])[0]
    incident = complex(math.cos(k * edges[0]), math.sin(k * edges[0]))
    return {"transmission": float(abs(psi_right) ** 2), "reflection": float(abs(psi_left - incident) ** 2),
            "residual": residual, "networks": list(zip(features, readouts))}


def _feature_derivatives(layer: PlaneWaveFeatures, x: torch.Tensor):
    """Feature matrix and its first and second x-derivatives [n, 2·n_waves] (fixed k)."""
    with torch.no_grad():
        return tuple(layer.derivative(x, order) for order in range(3))


class TimeEvolution:
    """ψ(x, t) = Σ_j c_j(t) φ_j(x) from :func:`evolve`; call with x [n] and a scalar t: complex [n]."""

    def __init__(self, features: PlaneWaveFeatures, initial: torch.Tensor, generator: torch.Tensor, hbar: float):
        self.features, self.initial, self.hbar = features, initial, hbar
        # G is real symmetric (see evolve): exp(−iGt/ħ) through its eigenvectors is exactly unitary
        self.levels, self.modes = torch.linalg.eigh(generator)

    def coefficients(self, t: float) -> torch.Tensor:
        phase = torch.exp(-1j * self.levels * (float(t) / self.hbar))
        modes = self.modes.to(torch.complex128)
        return modes @ (phase * (modes.T @ self.initial))

    def __call__(self, x: torch.Tensor, t: float) -> torch.Tensor:
        with torch.no_grad():
            sines = self.features(torch.as_tensor(x, dtype=torch.float64))[:, self.initial.shape[0]:]
            return sines.to(torch.complex128) @ self.coefficients(t)


def evolve(potential, psi0, box: tuple[float, float] = (-10.0, 10.0), mass: float = 1.0, hbar: float = 1.0,
           n_waves: int = 128) -> TimeEvolution:
    """Solve iħ∂ψ/∂t = −(ħ²/2m)ψ'' + Vψ from ψ(x, 0) = psi0(x) on a box with ψ = 0 at its edges.

    The features are the plane waves sin(k_j (x − x_min)), k_j = jπ/L (j = 1 … n_waves, L the box
    length), which vanish at both edges; the collocation points are the n_waves interior points
    x_m = x_min + mL/(n_waves + 1). There the feature matrix Φ is square and orthogonal (a discrete
    sine transform), so the residual is zeroed exactly and G = Φ⁻¹HΦ = diag(ħ²k²/2m) + Φ⁻¹VΦ is real
    symmetric: the evolution is unitary.

    Args:
        potential: callable x [n] → V(x) [n].
        psi0: callable x [n] → complex ψ(x, 0) [n], negligible at the box edges.
        box: (x_min, x_max).
        mass, hbar: particle mass and ħ.
        n_waves: plane waves (= collocation points).

    Returns:
        :class:`TimeEvolution`, callable as ψ(x, t).
    """
    x_min, x_max = map(float, box)
    if not x_max > x_min:
        raise ValueError(f"box must be (x_min, x_max) with x_max > x_min, got {box}")
    if n_waves < 2:
        raise ValueError(f"n_waves must be at least 2, got {n_waves}")
    length = x_max - x_min
    features = PlaneWaveFeatures(torch.arange(1, n_waves + 1, dtype=torch.float64) * math.pi / length, x_min)
    x = x_min + length * torch.arange(1, n_waves + 1, dtype=torch.float64) / (n_waves + 1)
    v = torch.as_tensor(potential(x), dtype=torch.float64)
    if v.shape != x.shape or not torch.isfinite(v).all():
        raise ValueError("potential(x) must return finite values of the same shape as x")
    phi, _, phi2 = (part[:, n_waves:] for part in _feature_derivatives(features, x))  # the sine half
    h_phi = -hbar**2 / (2.0 * mass) * phi2 + v[:, None] * phi
    inverse = phi.T * (2.0 / (n_waves + 1))  # DST-I: Φ⁻¹ = 2Φᵀ/(n+1)
    generator = inverse @ h_phi
    generator = 0.5 * (generator + generator.T)  # symmetric up to round-off; make it exactly so
    initial = inverse.to(torch.complex128) @ torch.as_tensor(psi0(x), dtype=torch.complex128)
    return TimeEvolution(features, initial, generator, hbar)
