"""Toy mechanical systems with exact Hamiltonians and data generators.

The conservative systems follow the classic HNN benchmark (Greydanus, Dzamba & Yosinski,
"Hamiltonian Neural Networks", NeurIPS 2019): an ideal mass-spring, an ideal pendulum and the
two-body gravitational problem, each observed as short trajectories with Gaussian noise on the
states and exact time derivatives as targets. :class:`Duffing` adds friction and an optional
periodic drive, for the port-Hamiltonian models. Settings (time spans, number of points, initial
condition ranges, noise) are each system's class attributes and are documented there; they are
our reading of the paper and may differ from its code in details (e.g. the number of two-body
orbits), which is why the benchmark script records them in its JSON.

Ground-truth trajectories are integrated with RK4 at a step ``substeps`` times finer than the
observation interval, in float64 (global error ~1e-9 for these settings).

Every system exposes ``hamiltonian(z)``, ``vector_field(z, t)`` (exact, with friction and drive),
``control(t)`` (the drive u(t) or None) and ``generate(...)`` → :class:`TrajectoryData`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch

from mlpot.hamiltonian.integrators import rk4
from mlpot.hamiltonian.state import check_state, split_state

__all__ = [
    "TrajectoryData",
    "System",
    "MassSpring",
    "Pendulum",
    "TwoBody",
    "Duffing",
    "SYSTEMS",
    "get_system",
    "finite_difference",
]

_DTYPE = torch.float64


@dataclass
class TrajectoryData:
    """Observed trajectories of a system.

    Attributes:
        t: [n_points] observation times.
        z: [n_trajectories, n_points, 2*dim] observed (possibly noisy) states.
        dz: [n_trajectories, n_points, 2*dim] time-derivative targets ż.
        z_clean: [n_trajectories, n_points, 2*dim] noise-free states.
        u: [n_trajectories, n_points, input_dim] control at each point, or None.
        settings: how the data were made (for provenance in benchmark JSON).
    """

    t: torch.Tensor
    z: torch.Tensor
    dz: torch.Tensor
    z_clean: torch.Tensor
    u: torch.Tensor | None = None
    settings: dict = field(default_factory=dict)

    def __post_init__(self):
        check_state(self.z, name="trajectory states z", finite=True)
        check_state(self.dz, self.z.shape[-1] // 2, name="trajectory derivatives dz", finite=True)
        if self.z.ndim != 3 or self.dz.shape != self.z.shape:
            raise ValueError(
                f"z and dz must both be [n_trajectories, n_points, 2*dim]; got {tuple(self.z.shape)} "
                f"and {tuple(self.dz.shape)}"
            )
        if self.u is not None and not bool(torch.isfinite(self.u).all()):
            raise ValueError("trajectory controls u contain NaN or inf")

    def __len__(self) -> int:
        return self.z.shape[0]

    @property
    def dim(self) -> int:
        return self.z.shape[-1] // 2

    def subset(self, index) -> "TrajectoryData":
        """The trajectories selected by ``index`` (slice, list or tensor)."""
        return replace(self, z=self.z[index], dz=self.dz[index], z_clean=self.z_clean[index],
                       u=None if self.u is None else self.u[index])

    def split(self, n_first: int) -> tuple["TrajectoryData", "TrajectoryData"]:
        """Split by trajectory (never within one): the first ``n_first`` and the rest."""
        if not 0 < n_first < len(self):
            raise ValueError(f"cannot split {len(self)} trajectories at {n_first}")
        return self.subset(slice(0, n_first)), self.subset(slice(n_first, None))

    def flat(self) -> dict[str, torch.Tensor]:
        """Point-wise samples: ``{"z": [N, 2d], "dz": [N, 2d]}`` (+ ``"u": [N, m]``), N = n_traj·n_points."""
        out = {"z": self.z.reshape(-1, self.z.shape[-1]), "dz": self.dz.reshape(-1, self.dz.shape[-1])}
        if self.u is not None:
            out["u"] = self.u.reshape(-1, self.u.shape[-1])
        return out


def finite_difference(t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """ż from sampled trajectories by second-order finite differences (one-sided at the ends).

    Works on non-uniform grids (the three-point formula of ``numpy.gradient``).

    Args:
        t: [n_points] strictly increasing times.
        z: [n_trajectories, n_points, 2*dim] states.

    Returns:
        [n_trajectories, n_points, 2*dim] derivative estimates.

    Raises:
        ValueError: NaN/inf in ``t`` or ``z``, fewer than 3 points, or non-increasing times.
    """
    check_state(z, name="trajectory z", finite=True)
    if z.ndim != 3:
        raise ValueError(f"z must be [n_trajectories, n_points, 2*dim], got shape {tuple(z.shape)}")
    t = torch.as_tensor(t, dtype=z.dtype, device=z.device)
    if t.ndim != 1 or t.shape[0] != z.shape[1]:
        raise ValueError(f"t must be [n_points] = [{z.shape[1]}], got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError("times t contain NaN or inf")
    if t.shape[0] < 3:
        raise ValueError("finite differences need at least 3 points per trajectory")
    h = t[1:] - t[:-1]
    if not bool((h > 0).all()):
        raise ValueError("times t must be strictly increasing")
    out = torch.empty_like(z)
    h0, h1 = h[:-1, None], h[1:, None]  # spacing left / right of each interior point
    out[:, 1:-1] = (h0**2 * z[:, 2:] - h1**2 * z[:, :-2] + (h1**2 - h0**2) * z[:, 1:-1]) / (h0 * h1 * (h0 + h1))
    a, b = h[0], h[1]  # second-order one-sided ends
    out[:, 0] = (-(2 * a + b) / (a * (a + b))) * z[:, 0] + ((a + b) / (a * b)) * z[:, 1] - (a / (b * (a + b))) * z[:, 2]
    a, b = h[-1], h[-2]
    out[:, -1] = ((2 * a + b) / (a * (a + b))) * z[:, -1] - ((a + b) / (a * b)) * z[:, -2] + (a / (b * (a + b))) * z[:, -3]
    return out


class System:
    """Base class of the toy systems. Subclasses set the class attributes and three methods.

    Class attributes (the data-generation defaults):
        name: registry key.
        dim: degrees of freedom.
        input_dim: size of the control u (0: autonomous).
        t_span: (start, end) of each observed trajectory.
        n_points: observations per trajectory (evenly spaced, both ends included).
        noise_std: standard deviation of the Gaussian noise added to observed states.
        n_trajectories: trajectories generated by default (half train, half test in the benchmark).
        substeps: RK4 steps per observation interval for the ground truth.
    """

    name = "system"
    dim = 1
    input_dim = 0
    t_span = (0.0, 3.0)
    n_points = 30
    noise_std = 0.1
    n_trajectories = 50
    substeps = 20

    def hamiltonian(self, z: torch.Tensor) -> torch.Tensor:
        """The true energy H(z): [batch, 2*dim] → [batch]."""
        raise NotImplementedError

    def vector_field(self, z: torch.Tensor, t: float = 0.0) -> torch.Tensor:
        """The exact ż(z, t): [batch, 2*dim] → [batch, 2*dim]."""
        raise NotImplementedError

    def sample_initial_states(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """[n, 2*dim] random initial states from this system's documented distribution."""
        raise NotImplementedError

    def control(self, t: float) -> torch.Tensor | None:
        """The drive u(t) [input_dim], or None for an autonomous system."""
        return None

    def settings(self) -> dict:
        """The parameters and data settings, JSON-serialisable."""
        out = {k: getattr(self, k) for k in ("name", "dim", "input_dim", "t_span", "n_points", "noise_std",
                                             "n_trajectories", "substeps")}
        out["t_span"] = list(out["t_span"])
        out.update(self.parameters())
        return out

    def parameters(self) -> dict:
        return {}

    def simulate(self, z0: torch.Tensor, t_span=None, n_points: int | None = None,
                 substeps: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Integrate the exact dynamics from ``z0`` [n, 2*dim].

        Returns:
            (t [n_points], z [n, n_points, 2*dim]) sampled at evenly spaced times.
        """
        t_span = self.t_span if t_span is None else tuple(t_span)
        n_points = self.n_points if n_points is None else int(n_points)
        substeps = self.substeps if substeps is None else int(substeps)
        if n_points < 2:
            raise ValueError(f"n_points must be >= 2, got {n_points}")
        z0 = check_state(torch.as_tensor(z0, dtype=_DTYPE), self.dim, name="z0", finite=True)
        t = torch.linspace(t_span[0], t_span[1], n_points, dtype=_DTYPE)
        dt = (t_span[1] - t_span[0]) / ((n_points - 1) * substeps)
        path = rk4(lambda z, s: self.vector_field(z, s), z0, dt, (n_points - 1) * substeps,
                   kind="vector_field", time_dependent=True, t0=float(t_span[0]))
        z = path[::substeps].transpose(0, 1)
        if not bool(torch.isfinite(z).all()):
            raise ValueError(f"{self.name}: the ground-truth trajectory diverged (NaN/inf); check the settings")
        return t, z

    def generate(self, n_trajectories: int | None = None, *, seed: int = 0, noise_std: float | None = None,
                 derivatives: str = "exact", t_span=None, n_points: int | None = None,
                 z0: torch.Tensor | None = None) -> TrajectoryData:
        """Sample trajectories, add observation noise and compute ż targets.

        Args:
            n_trajectories: number of trajectories (default: the class setting).
            seed: seed of the initial conditions and the noise.
            noise_std: Gaussian noise on the observed states (default: the class setting; 0 for none).
            derivatives: ``"exact"`` (ż of the clean state, as in the paper) or
                ``"finite_difference"`` (of the noisy observed trajectory).
            t_span, n_points: override the class settings.
            z0: [n, 2*dim] explicit initial states instead of random ones.

        Returns:
            :class:`TrajectoryData`, float64.
        """
        if derivatives not in ("exact", "finite_difference"):
            raise ValueError(f"derivatives must be 'exact' or 'finite_difference', got {derivatives!r}")
        noise_std = self.noise_std if noise_std is None else float(noise_std)
        if not noise_std >= 0:
            raise ValueError(f"noise_std must be >= 0, got {noise_std}")
        gen = torch.Generator().manual_seed(int(seed))
        if z0 is None:
            n = self.n_trajectories if n_trajectories is None else int(n_trajectories)
            if n < 1:
                raise ValueError(f"n_trajectories must be >= 1, got {n}")
            z0 = self.sample_initial_states(n, gen)
        t, clean = self.simulate(z0, t_span, n_points)
        observed = clean + noise_std * torch.randn(clean.shape, generator=gen, dtype=_DTYPE) if noise_std else clean.clone()
        if derivatives == "exact":
            dz = torch.stack([self.vector_field(clean[:, i], float(t[i])) for i in range(t.shape[0])], dim=1)
        else:
            dz = finite_difference(t, observed)
        u = None
        if self.input_dim:
            u_t = torch.stack([self.control(float(ti)) for ti in t])  # [n_points, m]
            u = u_t.unsqueeze(0).expand(clean.shape[0], -1, -1).clone()
        settings = self.settings()
        settings.update(noise_std=noise_std, derivatives=derivatives, seed=int(seed), n_trajectories=clean.shape[0],
                        t_span=[float(t[0]), float(t[-1])], n_points=int(t.shape[0]))
        return TrajectoryData(t=t, z=observed, dz=dz, z_clean=clean, u=u, settings=settings)


def _random_radius_states(n, generator, r_min, r_max):
    """States on circles of radius U(r_min, r_max) in (q, p), uniform angle (the paper's sampler)."""
    direction = torch.randn(n, 2, generator=generator, dtype=_DTYPE)
    direction = direction / direction.norm(dim=-1, keepdim=True)
    radius = r_min + (r_max - r_min) * torch.rand(n, 1, generator=generator, dtype=_DTYPE)
    return direction * radius


class MassSpring(System):
    """Ideal mass-spring, H = p²/2m + k q²/2.

    Defaults m = 1/2, k = 2 give the benchmark's H = q² + p² (ω = 2). Settings: trajectories over
    t ∈ [0, 3] with 30 points, initial states on a circle of radius U(0.1, 1.0) in (q, p),
    observation noise σ = 0.1, 50 trajectories (25 train / 25 test), exact ż targets.
    """

    name = "mass-spring"
    dim = 1
    t_span = (0.0, 3.0)
    n_points = 30
    noise_std = 0.1
    n_trajectories = 50
    radius = (0.1, 1.0)

    def __init__(self, mass: float = 0.5, stiffness: float = 2.0):
        if not (mass > 0 and stiffness > 0):
            raise ValueError("mass and stiffness must be positive")
        self.mass, self.stiffness = float(mass), float(stiffness)

    @property
    def omega(self) -> float:
        return math.sqrt(self.stiffness / self.mass)

    def parameters(self):
        return {"mass": self.mass, "stiffness": self.stiffness, "radius": list(self.radius)}

    def hamiltonian(self, z):
        q, p = split_state(check_state(z, self.dim))
        return (p**2 / (2 * self.mass) + 0.5 * self.stiffness * q**2).sum(-1)

    def vector_field(self, z, t=0.0):
        q, p = split_state(check_state(z, self.dim))
        return torch.cat([p / self.mass, -self.stiffness * q], dim=-1)

    def sample_initial_states(self, n, generator):
        return _random_radius_states(n, generator, *self.radius)


class Pendulum(System):
    """Ideal pendulum, H = m g l (1 − cos q) + p²/(2 m l²).

    Defaults m = 1/2, l = 1, g = 6 give the benchmark's H = 3(1 − cos q) + p². Settings:
    t ∈ [0, 3] with 45 points, initial states on circles of radius U(1.3, 2.3) in (q, p) (all
    librating: H < 6 at the separatrix), noise σ = 0.1, 50 trajectories, exact ż targets.
    """

    name = "pendulum"
    dim = 1
    t_span = (0.0, 3.0)
    n_points = 45
    noise_std = 0.1
    n_trajectories = 50
    radius = (1.3, 2.3)

    def __init__(self, mass: float = 0.5, length: float = 1.0, gravity: float = 6.0):
        if not (mass > 0 and length > 0 and gravity > 0):
            raise ValueError("mass, length and gravity must be positive")
        self.mass, self.length, self.gravity = float(mass), float(length), float(gravity)

    def parameters(self):
        return {"mass": self.mass, "length": self.length, "gravity": self.gravity, "radius": list(self.radius)}

    def hamiltonian(self, z):
        q, p = split_state(check_state(z, self.dim))
        m, l, g = self.mass, self.length, self.gravity
        return (m * g * l * (1 - torch.cos(q)) + p**2 / (2 * m * l**2)).sum(-1)

    def vector_field(self, z, t=0.0):
        q, p = split_state(check_state(z, self.dim))
        m, l, g = self.mass, self.length, self.gravity
        return torch.cat([p / (m * l**2), -m * g * l * torch.sin(q)], dim=-1)

    def sample_initial_states(self, n, generator):
        return _random_radius_states(n, generator, *self.radius)


class TwoBody(System):
    """Two bodies in a plane under Newtonian gravity.

    State z = (q1x, q1y, q2x, q2y, p1x, p1y, p2x, p2y) (dim = 4, p = m v) and
    H = |p1|²/2m1 + |p2|²/2m2 − G m1 m2 / |q1 − q2|. Defaults m1 = m2 = 1, G = 1. Initial states:
    near-circular orbits about the origin (centre of mass at rest) with orbit radius U(0.5, 1.5),
    random phase, and the circular speed scaled by (1 + 0.05 ξ), ξ ~ N(0, 1) ("orbit noise").
    Settings: t ∈ [0, 20] with 50 points (1–3 orbits), no observation noise by default,
    200 trajectories (the paper used more orbits; the benchmark's --quick uses fewer).
    """

    name = "two-body"
    dim = 4
    t_span = (0.0, 20.0)
    n_points = 50
    noise_std = 0.0
    n_trajectories = 200
    substeps = 40
    radius = (0.5, 1.5)
    orbit_noise = 0.05

    def __init__(self, masses=(1.0, 1.0), gravity: float = 1.0):
        if len(masses) != 2 or not all(m > 0 for m in masses) or not gravity > 0:
            raise ValueError("two positive masses and a positive gravitational constant are required")
        self.masses = (float(masses[0]), float(masses[1]))
        self.gravity = float(gravity)

    def parameters(self):
        return {"masses": list(self.masses), "gravity": self.gravity, "radius": list(self.radius),
                "orbit_noise": self.orbit_noise}

    def _unpack(self, z):
        q, p = split_state(check_state(z, self.dim))
        return q[..., 0:2], q[..., 2:4], p[..., 0:2], p[..., 2:4]

    def hamiltonian(self, z):
        q1, q2, p1, p2 = self._unpack(z)
        m1, m2 = self.masses
        r = (q1 - q2).norm(dim=-1)
        return (p1**2).sum(-1) / (2 * m1) + (p2**2).sum(-1) / (2 * m2) - self.gravity * m1 * m2 / r

    def vector_field(self, z, t=0.0):
        q1, q2, p1, p2 = self._unpack(z)
        m1, m2 = self.masses
        d = q1 - q2
        r3 = (d**2).sum(-1, keepdim=True) ** 1.5
        f1 = -self.gravity * m1 * m2 * d / r3  # force on body 1
        return torch.cat([p1 / m1, p2 / m2, f1, -f1], dim=-1)

    def sample_initial_states(self, n, generator):
        m1, m2 = self.masses
        total = m1 + m2
        radius = self.radius[0] + (self.radius[1] - self.radius[0]) * torch.rand(n, 1, generator=generator, dtype=_DTYPE)
        angle = 2 * math.pi * torch.rand(n, 1, generator=generator, dtype=_DTYPE)
        e = torch.cat([torch.cos(angle), torch.sin(angle)], -1)
        e_perp = torch.cat([-torch.sin(angle), torch.cos(angle)], -1)
        separation = 2 * radius  # each body at ~radius from the centre of mass
        v_rel = torch.sqrt(self.gravity * total / separation)
        v_rel = v_rel * (1 + self.orbit_noise * torch.randn(n, 1, generator=generator, dtype=_DTYPE))
        q1, q2 = (m2 / total) * separation * e, -(m1 / total) * separation * e
        v1, v2 = (m2 / total) * v_rel * e_perp, -(m1 / total) * v_rel * e_perp
        return torch.cat([q1, q2, m1 * v1, m2 * v2], dim=-1)


class Duffing(System):
    """Damped (and optionally driven) Duffing oscillator — a port-Hamiltonian system.

    H = p²/2m + α q²/2 + β q⁴/4, and
        q̇ = p/m,   ṗ = −α q − β q³ − γ p/m + F cos(Ω t),
    i.e. ż = (J − R)∇H + G u with R = diag(0, γ), G = (0, 1)ᵀ, u(t) = F cos(Ω t). With β = 0 it
    is the linear damped (driven) oscillator. Defaults: m = 1, α = 1, β = 1 (hardening, single
    well), γ = 0.1, F = 0 (no drive; ``forcing > 0`` adds the input port, input_dim = 1),
    Ω = 1.2. Settings: t ∈ [0, 10] with 100 points, initial states on circles of radius
    U(0.5, 1.5) in (q, p), no observation noise by default, 50 trajectories.
    """

    name = "duffing"
    dim = 1
    t_span = (0.0, 10.0)
    n_points = 100
    noise_std = 0.0
    n_trajectories = 50
    radius = (0.5, 1.5)

    def __init__(self, mass: float = 1.0, alpha: float = 1.0, beta: float = 1.0, damping: float = 0.1,
                 forcing: float = 0.0, frequency: float = 1.2):
        if not mass > 0 or damping < 0 or beta < 0:
            raise ValueError("mass must be positive, damping and beta non-negative")
        self.mass, self.alpha, self.beta = float(mass), float(alpha), float(beta)
        self.damping, self.forcing, self.frequency = float(damping), float(forcing), float(frequency)
        self.input_dim = 1 if self.forcing else 0

    def parameters(self):
        return {"mass": self.mass, "alpha": self.alpha, "beta": self.beta, "damping": self.damping,
                "forcing": self.forcing, "frequency": self.frequency, "radius": list(self.radius)}

    def hamiltonian(self, z):
        q, p = split_state(check_state(z, self.dim))
        return (p**2 / (2 * self.mass) + 0.5 * self.alpha * q**2 + 0.25 * self.beta * q**4).sum(-1)

    def control(self, t):
        if not self.input_dim:
            return None
        return torch.tensor([self.forcing * math.cos(self.frequency * t)], dtype=_DTYPE)

    def input_matrix(self) -> torch.Tensor:
        """The true G [2, 1] = (0, 1)ᵀ."""
        return torch.tensor([[0.0], [1.0]], dtype=_DTYPE)

    def vector_field(self, z, t=0.0):
        q, p = split_state(check_state(z, self.dim))
        v = p / self.mass
        pdot = -self.alpha * q - self.beta * q**3 - self.damping * v
        if self.input_dim:
            pdot = pdot + self.forcing * math.cos(self.frequency * t)
        return torch.cat([v, pdot], dim=-1)

    def sample_initial_states(self, n, generator):
        return _random_radius_states(n, generator, *self.radius)


#: Registry of the named systems (constructors with their default parameters).
SYSTEMS = {
    "mass-spring": MassSpring,
    "pendulum": Pendulum,
    "two-body": TwoBody,
    "duffing": Duffing,
    "driven-duffing": lambda **kw: Duffing(**{"forcing": 0.5, **kw}),
}


def get_system(name: str, **parameters) -> System:
    """Instantiate a system by registry name (``mass-spring``, ``pendulum``, ``two-body``,
    ``duffing``, ``driven-duffing``)."""
    if name not in SYSTEMS:
        raise ValueError(f"unknown system {name!r}; choose one of {sorted(SYSTEMS)}")
    return SYSTEMS[name](**parameters)
