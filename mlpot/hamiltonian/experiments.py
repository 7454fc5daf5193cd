"""The classic HNN benchmark and the port-Hamiltonian Duffing experiment, as reusable functions.

``scripts/hnn_benchmarks.py`` (all systems, JSON + plots) and ``mlpot hnn SYSTEM`` (one system)
are thin wrappers around :func:`run_conservative` and :func:`run_duffing`.

Protocol (after Greydanus, Dzamba & Yosinski 2019, Table 1):

* data: the system's default settings (:mod:`mlpot.hamiltonian.systems`), split by trajectory
  into train and test halves;
* models: :class:`~mlpot.hamiltonian.NeuralODEBaseline` and :class:`~mlpot.hamiltonian.HNN` with
  the same MLP (full: 200×200 tanh) trained the same way (full: 2000 full-batch Adam steps at
  lr 1e-3, the paper's recipe) with :func:`mlpot.training.loop.fit`;
* **test loss**: MSE of the predicted ż on the test points (noisy states, exact ż), as in the paper;
* **energy MSE**: from the clean initial state of each test trajectory, integrate the learned
  field and average (H(ẑ(t)) − H(z₀))² over time and trajectories, H the *true* energy. It is
  reported (a) with RK4 up to t = 20 (the paper's horizon, comparable to its table), and (b)
  over a long horizon with RK4 and with the implicit midpoint rule (symplectic for the HNN; for
  the baseline, whose field is not Hamiltonian, it is just an implicit 2nd-order method).

The port-Hamiltonian experiment trains a general :class:`~mlpot.hamiltonian.PortHamiltonianNN`
(R = LLᵀ), a :class:`~mlpot.hamiltonian.DampedOscillatorNN`, an HNN and the baseline on damped
Duffing data, and compares the energy-vs-time curves of their rollouts with the true ones; a
second run on the driven Duffing oscillator learns the input matrix G.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from mlpot.files import atomic_write_text
from mlpot.hamiltonian.hnn import HNN, NeuralODEBaseline
from mlpot.hamiltonian.integrators import implicit_midpoint, rk4
from mlpot.hamiltonian.port import DampedOscillatorNN, PortHamiltonianNN
from mlpot.hamiltonian.systems import System, get_system
from mlpot.hamiltonian.training import evaluate_vector_field, train_vector_field

__all__ = [
    "RunSettings",
    "settings_for",
    "run_conservative",
    "run_duffing",
    "CONSERVATIVE_SYSTEMS",
]

CONSERVATIVE_SYSTEMS = ("mass-spring", "pendulum", "two-body")

@dataclass
class RunSettings:
    """Everything that defines one benchmark run of one system (recorded in the JSON)."""

    system: str
    n_trajectories: int
    n_train: int
    hidden: tuple = (200, 200)
    epochs: int = 2000
    lr: float = 1e-3
    schedule: str = "constant"
    batch_size: int | None = None
    dt: float = 0.05
    paper_horizon: float = 20.0
    long_horizon: float = 100.0
    n_rollouts: int = 25
    seed: int = 0
    solver_tol: float = 1e-10

    def to_json(self) -> dict:
        out = asdict(self)
        out["hidden"] = list(self.hidden)
        return out


def settings_for(system: str, quick: bool = False, seed: int = 0, epochs: int | None = None,
                 horizon: float | None = None) -> RunSettings:
    """The benchmark settings of ``system``: full (the paper's recipe) or ``quick`` (~seconds each).

    Full: 200×200 networks, 2000 full-batch steps at lr 1e-3 (the paper's recipe), 25 test
    trajectories rolled out for 100 (two-body 60) time units; the Duffing runs use 64×64
    networks, 1500 steps at lr 1e-2 (cosine). Quick: 64×64 networks, 400 steps at lr 1e-2 with a
    cosine schedule, fewer two-body orbits, rollouts of 40 (two-body 20) time units and at most
    10 test trajectories. ``epochs`` and ``horizon`` (the long-rollout time) override.
    """
    if system not in CONSERVATIVE_SYSTEMS + ("duffing", "driven-duffing"):
        choices = CONSERVATIVE_SYSTEMS + ("duffing", "driven-duffing")
        raise ValueError(f"unknown benchmark system {system!r}; choose from {choices}")
    s = RunSettings(system=system, n_trajectories=50, n_train=25, seed=seed)
    if system == "two-body":
        s.n_trajectories, s.n_train, s.dt, s.long_horizon = 100, 50, 0.02, 60.0
    if system in ("duffing", "driven-duffing"):
        # the port-Hamiltonian demonstration needs no paper-size networks
        s.n_trajectories, s.n_train, s.paper_horizon, s.long_horizon = 40, 20, 30.0, 30.0
        s.hidden, s.epochs, s.lr, s.schedule = (64, 64), 1500, 1e-2, "cosine"
    if quick:
        s.hidden, s.epochs, s.lr, s.schedule = (64, 64), 400, 1e-2, "cosine"
        s.long_horizon = min(s.long_horizon, 40.0)
        s.paper_horizon = min(s.paper_horizon, 20.0)
        s.n_rollouts = 10
        if system == "two-body":
            s.n_trajectories, s.n_train, s.epochs, s.batch_size, s.long_horizon = 40, 20, 400, None, 20.0
        if system in ("duffing", "driven-duffing"):
            s.n_trajectories, s.n_train = 24, 12
    if epochs is not None:
        s.epochs = int(epochs)
    if horizon is not None:
        if not horizon > 0:
            raise ValueError(f"horizon must be positive, got {horizon}")
        s.long_horizon = float(horizon)
        s.paper_horizon = min(s.paper_horizon, s.long_horizon)
    return s


def _loop_config(s: RunSettings, seed_offset: int = 0):
    from mlpot.training.loop import LoopConfig

    return LoopConfig(max_epochs=s.epochs, lr=s.lr, schedule=s.schedule, ema_decay=None, grad_clip=None,
                      progress=False, seed=s.seed + seed_offset)


def _train(model, train, test, s: RunSettings) -> dict:
    torch.manual_seed(s.seed)
    start = time.perf_counter()
    result = train_vector_field(model, train, config=_loop_config(s), batch_size=s.batch_size)
    seconds = time.perf_counter() - start
    model.eval()
    flat = test.flat()
    return {
        "train_loss": result.history[-1]["train_loss"] if result.history else math.nan,
        "test_loss": evaluate_vector_field(model, flat["z"], flat["dz"], flat.get("u")),
        "train_time_s": seconds,
    }


def _energy_mse(energy: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean of (E − E_ref)² over time and trajectories; a blown-up rollout counts as inf."""
    err = (energy - reference) ** 2
    if not bool(torch.isfinite(err).all()):
        return math.inf
    return float(err.mean())


def _steps(horizon: float, dt: float) -> int:
    return max(1, int(round(horizon / dt)))


def _prepare(name: str, settings: RunSettings | None, quick: bool, log):
    """Settings, logger, system, its data with the train/test split, and the rollout start states
    [n_rollouts, 2·dim]."""
    s = settings or settings_for(name, quick)
    system = get_system(name)
    data = system.generate(s.n_trajectories, seed=s.seed)
    train, test = data.split(s.n_train)
    return s, log or (lambda *a, **k: None), system, data, train, test, test.z_clean[: s.n_rollouts, 0]


def run_conservative(name: str, settings: RunSettings | None = None, *, quick: bool = False,
                     out_dir: str | Path | None = None, plot: bool = True, log=print) -> dict:
    """Train baseline and HNN on one conservative system; return metrics, optionally plot.

    Args:
        name: ``"mass-spring"``, ``"pendulum"`` or ``"two-body"``.
        settings: :class:`RunSettings` (default: :func:`settings_for` ``(name, quick)``).
        quick: use the quick settings when ``settings`` is None.
        out_dir: where ``<name>.png`` goes (plots need ``plot=True``).
        log: a print-like function for progress lines (None: silent).

    Returns:
        ``{"settings", "data", "baseline": {...}, "hnn": {...}, "figure"}``: per model
        ``test_loss``, ``train_loss``, ``train_time_s``, ``energy_mse_rk4_paper_horizon``,
        ``energy_mse_rk4_long``, ``energy_mse_midpoint_long``, ``state_mse_rk4_paper_horizon``.
    """
    if name not in CONSERVATIVE_SYSTEMS:
        raise ValueError(f"run_conservative needs one of {CONSERVATIVE_SYSTEMS}, got {name!r}")
    s, log, system, data, train, test, z0 = _prepare(name, settings, quick, log)
    energy0 = system.hamiltonian(z0)
    n_paper, n_long = _steps(s.paper_horizon, s.dt), _steps(s.long_horizon, s.dt)
    with torch.no_grad():
        truth = rk4(system.vector_field, z0, s.dt, n_paper)

    results: dict = {"settings": s.to_json(), "data": data.settings}
    paths = {}
    for label, make in (("baseline", lambda: NeuralODEBaseline(system.dim, s.hidden)),
                        ("hnn", lambda: HNN(system.dim, s.hidden))):
        torch.manual_seed(s.seed)  # initial weights depend only on the seed
        model = make().double()
        metrics = _train(model, train, test, s)
        with torch.no_grad():
            short = rk4(model, z0, s.dt, n_paper)
            long_rk4 = rk4(model, z0, s.dt, n_long)
            long_mid = implicit_midpoint(model, z0, s.dt, n_long, tol=s.solver_tol)
        metrics.update(
            energy_mse_rk4_paper_horizon=_energy_mse(system.hamiltonian(short), energy0),
            energy_mse_rk4_long=_energy_mse(system.hamiltonian(long_rk4), energy0),
            energy_mse_midpoint_long=_energy_mse(system.hamiltonian(long_mid), energy0),
            state_mse_rk4_paper_horizon=_energy_mse(short, truth),
        )
        results[label] = metrics
        paths[label] = {"rk4": long_rk4, "midpoint": long_mid}
        log(f"  {name:12s} {label:8s} test loss {metrics['test_loss']:.3e}  energy MSE (RK4, t≤{s.paper_horizon:g}) "
            f"{metrics['energy_mse_rk4_paper_horizon']:.3e}  (midpoint, t≤{s.long_horizon:g}) "
            f"{metrics['energy_mse_midpoint_long']:.3e}  [{metrics['train_time_s']:.1f} s]")
    if plot and out_dir is not None:
        with torch.no_grad():
            truth_long = rk4(system.vector_field, z0[:1], s.dt / 4, 4 * n_long)[::4]
        results["figure"] = str(_plot_conservative(system, s, paths, truth_long, Path(out_dir)))
    return results


def _rollout_driven(model_or_system, system: System, z0, dt, steps):
    """RK4 rollout of a model (or the true system) under the system's drive u(t)."""
    if isinstance(model_or_system, System):
        return rk4(lambda z, t: model_or_system.vector_field(z, t), z0, dt, steps, kind="vector_field",
                   time_dependent=True)
    if not system.input_dim:
        return rk4(model_or_system, z0, dt, steps)
    u_of = system.control
    if getattr(model_or_system, "input_dim", 0):
        return rk4(lambda z, t: model_or_system.vector_field(z, u=u_of(t).to(z.dtype)), z0, dt, steps,
                   kind="vector_field", time_dependent=True)
    return rk4(lambda z, t: model_or_system.vector_field(z), z0, dt, steps, kind="vector_field", time_dependent=True)


def run_duffing(driven: bool = False, settings: RunSettings | None = None, *, quick: bool = False,
                out_dir: str | Path | None = None, plot: bool = True, log=print) -> dict:
    """Port-Hamiltonian models on the damped (or driven) Duffing oscillator.

    Trains a :class:`PortHamiltonianNN` with a full constant R = LLᵀ, a
    :class:`DampedOscillatorNN` (friction softplus(θ) on p), a conservative HNN and the baseline;
    the driven run gives the port models an input port and learns G. Rollouts (RK4, with the true
    drive) from the test initial states are compared with the truth through the energy curves:
    ``energy_curve_mse`` = mean (H(ẑ(t)) − H(z(t)))², and ``final_energy_ratio`` = mean H(ẑ(T)) /
    mean H(z(T)).

    Returns:
        ``{"settings", "data", "true": {...}, "<model>": {...}, "figure"}``.
    """
    name = "driven-duffing" if driven else "duffing"
    s, log, system, data, train, test, z0 = _prepare(name, settings, quick, log)
    n_steps = _steps(s.long_horizon, s.dt)
    with torch.no_grad():
        truth = _rollout_driven(system, system, z0, s.dt, n_steps)
    true_energy = system.hamiltonian(truth)
    results: dict = {"settings": s.to_json(), "data": data.settings,
                     "true": {"damping": system.damping,
                              "input_matrix": system.input_matrix().flatten().tolist() if driven else None,
                              "final_energy_mean": float(true_energy[-1].mean())}}
    m = system.input_dim
    candidates = {
        "port_hnn": lambda: PortHamiltonianNN(1, s.hidden, dissipation="full", input_dim=m),
        "damped_hnn": lambda: DampedOscillatorNN(1, s.hidden, input_dim=m),
        "hnn": lambda: HNN(1, s.hidden),
        "baseline": lambda: NeuralODEBaseline(1, s.hidden, input_dim=m),
    }
    curves = {"true": true_energy}
    for label, make in candidates.items():
        torch.manual_seed(s.seed)  # initial weights depend only on the seed
        model = make().double()
        metrics = _train(model, train, test, s)
        with torch.no_grad():
            path = _rollout_driven(model, system, z0, s.dt, n_steps)
        energy = system.hamiltonian(path)
        curves[label] = energy
        metrics["energy_curve_mse"] = _energy_mse(energy, true_energy)
        metrics["final_energy_ratio"] = float(energy[-1].mean() / true_energy[-1].mean())
        if isinstance(model, PortHamiltonianNN):
            metrics["R"] = model.dissipation_matrix().detach().tolist()
            metrics["R_pp"] = float(model.dissipation_matrix().detach()[1, 1])
            if isinstance(model, DampedOscillatorNN):
                metrics["damping"] = float(model.damping.detach()[0])
            if m:
                metrics["input_matrix"] = model.input_matrix().detach().flatten().tolist()
        results[label] = metrics
        extra = f"  R_pp {metrics['R_pp']:.4f}" if "R_pp" in metrics else ""
        log(f"  {name:14s} {label:10s} test loss {metrics['test_loss']:.3e}  energy-curve MSE "
            f"{metrics['energy_curve_mse']:.3e}  final E ratio {metrics['final_energy_ratio']:.3f}{extra}"
            f"  [{metrics['train_time_s']:.1f} s]")
    if plot and out_dir is not None:
        results["figure"] = str(_plot_duffing(name, s, curves, Path(out_dir)))
    return results


# --- reporting -----------------------------------------------------------------------------------


def write_json(results: dict, path: str | Path) -> Path:
    """Write ``results`` as indented JSON (inf → "inf")."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def clean(x):
        if isinstance(x, float) and not math.isfinite(x):
            return str(x)
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x

    return atomic_write_text(path, json.dumps(clean(results), indent=2) + "\n")


# --- plots (matplotlib without pyplot: no global backend state) ----------------------------------


def _figure(n_panels: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.0 * n_panels, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, [fig.add_subplot(1, n_panels, i + 1) for i in range(n_panels)]


_COLORS = {"true": "black", "baseline": "tab:red", "hnn": "tab:blue", "port_hnn": "tab:green",
           "damped_hnn": "tab:purple"}


def _plot_conservative(system, s: RunSettings, paths: dict, truth: torch.Tensor, out_dir: Path) -> Path:
    fig, (ax_phase, ax_rk4, ax_mid) = _figure(3)
    t = torch.arange(truth.shape[0], dtype=torch.float64) * s.dt
    if system.name == "two-body":  # orbit of body 1 in the plane
        ax_phase.plot(truth[:, 0, 0], truth[:, 0, 1], color="black", lw=2.5, alpha=0.4, label="truth")
        for label in ("baseline", "hnn"):
            path = paths[label]["midpoint"]
            ax_phase.plot(path[:, 0, 0], path[:, 0, 1], color=_COLORS[label], lw=0.8, label=label)
        ax_phase.set(xlabel="x₁", ylabel="y₁", title="two-body: orbit of body 1 (midpoint)")
        ax_phase.set_aspect("equal", adjustable="datalim")
    else:
        ax_phase.plot(truth[:, 0, 0], truth[:, 0, 1], color="black", lw=2.5, alpha=0.4, label="truth")
        for label in ("baseline", "hnn"):
            path = paths[label]["rk4"]
            ax_phase.plot(path[:, 0, 0], path[:, 0, 1], color=_COLORS[label], lw=0.8, label=f"{label} (RK4)")
        ax_phase.set(xlabel="q", ylabel="p", title=f"{system.name}: phase portrait, t ≤ {s.long_horizon:g}")
    ax_phase.legend(fontsize=8)
    energy0 = float(system.hamiltonian(truth[:1, 0])[0])
    for ax, key, title in ((ax_rk4, "rk4", "RK4"), (ax_mid, "midpoint", "implicit midpoint (symplectic)")):
        ax.axhline(energy0, color="black", lw=2.5, alpha=0.4, label="truth")
        for label in ("baseline", "hnn"):
            energy = system.hamiltonian(paths[label][key][:, 0])
            ax.plot(t[: energy.shape[0]], energy, color=_COLORS[label], lw=1.0, label=label)
        ax.set(xlabel="t", ylabel="true energy H(ẑ(t))", title=f"energy along the rollout, {title}")
        finite = [
            float(system.hamiltonian(paths[lb][key][:, 0]).abs().nan_to_num(0).max()) for lb in ("baseline", "hnn")
        ]
        top = max(2.0 * abs(energy0), min(max(finite), 10 * abs(energy0)))
        if system.name != "two-body":
            ax.set_ylim(0, top)
        ax.legend(fontsize=8)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{system.name}.png"
    fig.savefig(path, dpi=110)
    return path


def _plot_duffing(name: str, s: RunSettings, curves: dict, out_dir: Path) -> Path:
    fig, (ax_one, ax_mean) = _figure(2)
    n = next(iter(curves.values())).shape[0]
    t = torch.arange(n, dtype=torch.float64) * s.dt
    for label, energy in curves.items():
        style = {"color": _COLORS.get(label, "gray"), "lw": 2.5 if label == "true" else 1.0,
                 "alpha": 0.5 if label == "true" else 1.0}
        ax_one.plot(t, energy[:, 0], label=label, **style)
        ax_mean.plot(t, energy.mean(1), label=label, **style)
    ax_one.set(xlabel="t", ylabel="true energy", title=f"{name}: one test trajectory (RK4)")
    ax_mean.set(xlabel="t", ylabel="mean true energy", title="mean over test trajectories", yscale="log")
    for ax in (ax_one, ax_mean):
        ax.legend(fontsize=8)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.png"
    fig.savefig(path, dpi=110)
    return path
