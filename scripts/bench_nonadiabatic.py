"""Non-adiabatic dynamics benchmarks: FSSH / Ehrenfest against exact wave packets; learned diabats.

    python scripts/bench_nonadiabatic.py --part tully     # Tully's three models, k = 5…30 a.u.
    python scripts/bench_nonadiabatic.py --part learned   # learned diabatic model vs two networks
    python scripts/bench_nonadiabatic.py --quick          # a fast smoke run (few k, few trajectories)

Writes benchmarks/results/nonadiabatic.json (each part under its own key, with the command that
produced it; running one part keeps the other's results) and plots next to it. Mass 2000 a.u.,
packets of σ = 10/k0 starting at −10 Bohr (−15 for the extended-coupling model), lower state.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlpot.nonadiabatic import adiabatic_states, systems  # noqa: E402
from mlpot.nonadiabatic.adiabatic import eigh  # noqa: E402
from mlpot.nonadiabatic.ehrenfest import ehrenfest  # noqa: E402
from mlpot.nonadiabatic.hopping import branching, run_surface_hopping, surface_hopping  # noqa: E402
from mlpot.nonadiabatic.models import CoordinateDiabaticModel  # noqa: E402
from mlpot.nonadiabatic.training import phase_free_coupling_error, train_diabatic  # noqa: E402
from mlpot.nonadiabatic.wavepacket import wavepacket  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
CHANNELS = ("transmission_lower", "transmission_upper", "reflection_lower", "reflection_upper")


def trajectory_timestep(k0: float) -> float:
    """Nuclear step (a.u.): 2 at low momenta, down to 1 at k = 30, so x moves ≤ 0.015 Bohr per step."""
    return float(np.clip(30.0 / k0, 1.0, 2.0))


EXACT_SETTINGS = {"timestep_au": 2.0, "remaining_tolerance": 1e-3}  # dt = 0.5, 1, 2 agree to 1e-4


def run_tully(k_exact: list[float], k_trajectories: list[float], n_trajectories: int, n_edc: int,
              n_ehrenfest: int, seed: int) -> dict:
    out = {}
    for name, cls in systems.TULLY_MODELS.items():
        system = cls()
        entry = {"k_exact": k_exact, "k_trajectories": k_trajectories, "exact": {c: [] for c in CHANNELS},
                 "fssh": {c: [] for c in CHANNELS}, "fssh_edc": {c: [] for c in CHANNELS},
                 "ehrenfest": {c: [] for c in CHANNELS}, "fssh_standard_error": {c: [] for c in CHANNELS},
                 "seconds": {"exact": 0.0, "fssh": 0.0, "fssh_edc": 0.0, "ehrenfest": 0.0},
                 "start_position_bohr": system.start_position_bohr}
        for k in k_exact:
            start = time.perf_counter()
            result = wavepacket(system, k, **EXACT_SETTINGS)
            entry["seconds"]["exact"] += time.perf_counter() - start
            for c in CHANNELS:
                entry["exact"][c].append(result[c])
            print(f"{name} k={k:5.1f} exact     " + "  ".join(f"{result[c]:.3f}" for c in CHANNELS), flush=True)
        for k in k_trajectories:
            dt = trajectory_timestep(k)
            for method, run in (("fssh", partial(surface_hopping, system, k, n_trajectories=n_trajectories,
                                                 seed=seed, timestep_au=dt, show_progress=False)),
                                ("fssh_edc", partial(surface_hopping, system, k, n_trajectories=n_edc, seed=seed,
                                                     decoherence="edc", timestep_au=dt, show_progress=False)),
                                ("ehrenfest", partial(ehrenfest, system, k, n_trajectories=n_ehrenfest, seed=seed,
                                                      timestep_au=dt, show_progress=False))):
                start = time.perf_counter()
                result = run()
                entry["seconds"][method] += time.perf_counter() - start
                for c in CHANNELS:
                    entry[method][c].append(result[c])
                    if method == "fssh":
                        entry["fssh_standard_error"][c].append(result["standard_error"][c])
                print(f"{name} k={k:5.1f} {method:9s} " + "  ".join(f"{result[c]:.3f}" for c in CHANNELS)
                      + f"  (dt={dt:.2f}, |ΔE|max={result['max_energy_error_au']:.1e})", flush=True)
        # Largest FSSH − exact difference over the trajectory momenta with k ≥ 10 (exact interpolated
        # linearly between its own momenta when the grids differ).
        entry["max_abs_error_k_ge_10"] = {}
        for method in ("fssh", "fssh_edc", "ehrenfest"):
            errors = {}
            for c in CHANNELS:
                exact = np.interp(k_trajectories, k_exact, entry["exact"][c])
                diff = [abs(a - b) for k, a, b in zip(k_trajectories, entry[method][c], exact) if k >= 10]
                errors[c] = max(diff) if diff else None
            entry["max_abs_error_k_ge_10"][method] = errors
        out[name] = entry
    return out


def plot_tully(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(data)
    fig, axes = plt.subplots(len(models), 4, figsize=(15, 3.2 * len(models)), squeeze=False)
    for row, name in enumerate(models):
        entry = data[name]
        for col, c in enumerate(CHANNELS):
            ax = axes[row, col]
            ax.plot(entry["k_exact"], entry["exact"][c], "k-", label="exact (wave packet)")
            ax.errorbar(entry["k_trajectories"], entry["fssh"][c], yerr=entry["fssh_standard_error"][c], fmt="o",
                        label="FSSH")
            ax.plot(entry["k_trajectories"], entry["fssh_edc"][c], "s", mfc="none", label="FSSH + EDC")
            ax.plot(entry["k_trajectories"], entry["ehrenfest"][c], "^", mfc="none", label="Ehrenfest")
            ax.set_title(f"{name}: {c.replace('_', ' ')}", fontsize=9)
            ax.set_xlabel("k (a.u.)")
            ax.set_ylim(-0.03, 1.03)
        axes[row, 0].set_ylabel("probability")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


class TwoNetworks(torch.nn.Module):
    """The baseline: one independent network per adiabatic surface, x → (E_0, E_1). No couplings."""

    def __init__(self, n_coordinates: int, hidden=(32, 32)):
        super().__init__()
        self.nets = torch.nn.ModuleList(CoordinateDiabaticModel(1, n_coordinates, hidden) for _ in range(2))

    def energies(self, x):
        return torch.cat([net(x)[..., 0, :] for net in self.nets], -1)

    def diabatic(self, x):
        """diag(E_0, E_1): a 'diabatic' matrix with zero coupling, so FSSH runs on it unchanged."""
        return torch.diag_embed(self.energies(x))


def fit_baseline(x, energies, forces, epochs: int, seed: int) -> TwoNetworks:
    model = TwoNetworks(1 if x.ndim == 1 else x.shape[-1])
    for i, net in enumerate(model.nets):
        train_diabatic(net, x, energies[:, i:i + 1], forces[:, i:i + 1], epochs=epochs, seed=seed + i,
                       show_progress=False)
    return model


class Learned(systems.DiabaticSystem):
    """Wraps a trained callable as a system for the trajectory methods (weights frozen)."""

    def __init__(self, fn, like: systems.DiabaticSystem, name: str):
        self.fn, self.start_position_bohr, self.name, self.dim = fn, like.start_position_bohr, name, like.dim

    def diabatic(self, x):
        return self.fn(x)


def sample(system, n: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    if system.dim == 1:
        x = 16.0 * torch.rand(n, generator=generator, dtype=torch.float64) - 8.0
    else:  # a box around the conical intersection
        x_ci, _ = system.intersection
        x = torch.rand(n, 2, generator=generator, dtype=torch.float64) * 3.0 - 1.5
        x[:, 0] += x_ci
    return x, adiabatic_states(system.diabatic, x, gradient_fn=system.diabatic_gradient)


def test_points(system):
    if system.dim == 1:  # the crossing region
        return torch.linspace(-1.0, 1.0, 401, dtype=torch.float64), torch.linspace(-2.0, 2.0, 401, dtype=torch.float64)
    x_ci, _ = system.intersection
    grid = torch.stack(torch.meshgrid(torch.linspace(-0.5, 0.5, 41, dtype=torch.float64),
                                      torch.linspace(-0.5, 0.5, 41, dtype=torch.float64), indexing="ij"), -1)
    grid = grid.reshape(-1, 2)
    radius = grid.norm(dim=-1)
    grid[:, 0] += x_ci
    # Energies within 0.5 Bohr of the intersection; couplings on the annulus 0.1–0.5 Bohr (they diverge at it).
    return grid[radius <= 0.5], grid[(radius >= 0.1) & (radius <= 0.5)]


def evaluate(system, energies_fn, coupling_fn) -> dict:
    x_energy, x_coupling = test_points(system)
    exact = eigh(system.diabatic(x_energy))[0]  # the grid contains the intersection itself: energies only
    with torch.no_grad():
        energies = energies_fn(x_energy)
    out = {"energy_mae_near_crossing_hartree": float((energies - exact).abs().mean()),
           "energy_max_error_near_crossing_hartree": float((energies - exact).abs().max())}
    reference = adiabatic_states(system.diabatic, x_coupling, gradient_fn=system.diabatic_gradient).couplings
    norm = float(phase_free_coupling_error(torch.zeros_like(reference), reference).mean().sqrt())
    if coupling_fn is None:
        out["coupling_rms_error_per_bohr"], out["coupling_relative_error"] = norm, 1.0
    else:
        error = float(phase_free_coupling_error(coupling_fn(x_coupling), reference).mean().sqrt())
        out["coupling_rms_error_per_bohr"], out["coupling_relative_error"] = error, error / norm
    return out


def plot_learned_1d(system, models: dict, baseline: TwoNetworks, path: Path) -> None:
    """Adiabatic energies and |d_01| of the exact model, the learned diabats and the baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = torch.linspace(-3.0, 3.0, 601, dtype=torch.float64)
    exact = adiabatic_states(system.diabatic, x, gradient_fn=system.diabatic_gradient)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(x, exact.energies, "k-", lw=2.5, alpha=0.4)
    right.plot(x, exact.couplings[:, 0, 1, 0].abs(), "k-", lw=2.5, alpha=0.4, label="exact")
    for (name, model), style in zip(models.items(), ("C0--", "C1:")):
        states = adiabatic_states(model, x)
        left.plot(x, states.energies.detach(), style)
        right.plot(x, states.couplings[:, 0, 1, 0].abs().detach(), style, label=name.replace("_", " "))
    with torch.no_grad():
        left.plot(x, baseline.energies(x), "C2-.", lw=1)
    right.plot(x, torch.zeros_like(x), "C2-.", lw=1, label="two networks (no coupling)")
    left.set(xlabel="x (Bohr)", ylabel="adiabatic energy (Hartree)", title=system.name)
    right.set(xlabel="x (Bohr)", ylabel="|d_01| (1/Bohr)", title="derivative coupling")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def anchors(system, x: torch.Tensor, data) -> tuple[torch.Tensor, torch.Tensor]:
    """Where the diabatic matrix is known to be diagonal, and which adiabatic state each diabat is there.

    The prior that fixes the diabatic gauge without couplings (see :mod:`mlpot.nonadiabatic.training`);
    it uses no data beyond the 200 samples. Diabat 0 is the lower adiabatic state before the crossing
    (smaller tuning coordinate than the training sample with the smallest gap) and the upper one after it.

    * 1D scattering: the asymptotes, i.e. the training samples where every adiabatic force is below 1%
      of the largest one in the data (flat surfaces: the states no longer interact).
    * 2D LVC: the symmetry line y = 0 of the coupling mode (H_12 is odd in y, as for a molecule whose
      two states belong to different irreducible representations in a mirror plane): 41 points across
      the sampled range of x, leaving out 0.25 Bohr either side of the smallest-gap sample, where the
      order of the diabats is not known from the data.

    Returns:
        (positions ``[m]`` or ``[m, 2]``, states ``[m, 2]``: the adiabatic state of each diabat).
    """
    gap = data.energies[:, 1] - data.energies[:, 0]
    if system.dim == 1:
        force = data.gradients.norm(dim=-1)  # [n_samples, n_states]
        positions = x[(force < 0.01 * force.max()).all(-1)]
        tuning, crossing = positions, float(x[gap.argmin()])
    else:
        crossing = float(x[gap.argmin(), 0])
        line = torch.linspace(float(x[:, 0].min()), float(x[:, 0].max()), 41, dtype=torch.float64)
        line = line[(line - crossing).abs() >= 0.25]
        positions = torch.stack([line, torch.zeros_like(line)], -1)
        tuning = line
    states = torch.where((tuning < crossing)[:, None], torch.tensor([0, 1]), torch.tensor([1, 0]))
    return positions, states


def lvc_start(system, k0: float, n: int, seed: int, mass_au: float = 2000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Wigner samples of the vibrational ground state of diabat 0's well, kicked by k0 along the tuning mode.

    Both modes have ω = √(K/m); position width σ = (2mω)^(−1/2), momentum width 1/(2σ); centre (−a, 0),
    mean momentum (k0, 0). The packet runs through the conical intersection (at x = Δ/(2Ka) > 0).
    """
    omega = (system.K / mass_au) ** 0.5
    sigma = (2.0 * mass_au * omega) ** -0.5
    generator = torch.Generator().manual_seed(int(seed))
    x = sigma * torch.randn(n, 2, generator=generator, dtype=torch.float64)
    p = 0.5 / sigma * torch.randn(n, 2, generator=generator, dtype=torch.float64)
    x[:, 0] -= system.a
    p[:, 0] += k0
    return x, p


LVC_EXIT_BOHR = 1.0  # passed the intersection (x > 1) or turned back (x < −1): one passage, inside the samples


def lvc_scattering(model, reference, k0: float, n_trajectories: int, seed: int, mass_au: float = 2000.0) -> dict:
    """FSSH branching on ``model`` of one passage through the LVC intersection, starting on the lower state.

    ``reference`` (the exact :class:`LinearVibronicCoupling2D`) defines the initial packet (:func:`lvc_start`),
    so every model starts from the same trajectories.

    Transmission = x > 0 when the trajectory leaves |x| ≤ 1 Bohr moving outwards; lower/upper = the
    active adiabatic state then. Time step 1 a.u.; at most 20 crossing times 2m/k0.
    """
    x, p = lvc_start(reference, k0, n_trajectories, seed, mass_au)
    final = run_surface_hopping(model.diabatic, x, p, mass_au, gradient_fn=getattr(model, "diabatic_gradient", None),
                                timestep_au=1.0, max_time_au=20 * 2 * mass_au / k0, exit_bohr=LVC_EXIT_BOHR,
                                seed=seed, show_progress=False)
    result = branching(final)
    result["unfinished"] = int((final["positions"][:, 0].abs() <= LVC_EXIT_BOHR).sum())
    return result


def run_learned(quick: bool, seed: int, folder: Path, n_trajectories: int) -> dict:
    epochs, n_fssh, k_values = (200, 100, [20.0]) if quick else (2000, n_trajectories, [10.0, 20.0, 30.0])
    out = {"n_samples": 200, "epochs": epochs, "hidden": [32, 32], "n_trajectories": n_fssh, "k_values": k_values,
           "fssh_protocol": {
               "simple_avoided_crossing": "surface_hopping (Tully packet from x = -10 Bohr, lower state)",
               "lvc_2d": "lvc_scattering (ground-state packet of diabat 0 at (-a, 0) kicked by k along x, lower "
                         "state; branching when |x| > 1 Bohr moving outwards)"},
           "systems": {}}
    for system in (systems.TullySimpleAvoidedCrossing(), systems.LinearVibronicCoupling2D()):
        x, data = sample(system, 200, seed)
        forces = -data.gradients
        anchor_positions, anchor_states = anchors(system, x, data)
        entry = {"n_anchors": int(anchor_positions.shape[0])}
        fits = {"diabatic": dict(anchor_positions=anchor_positions, anchor_states=anchor_states),
                "diabatic_unanchored": {},
                "diabatic_with_couplings": dict(couplings=data.couplings)}
        models = {}
        for name, extra in fits.items():
            model = CoordinateDiabaticModel(2, system.dim, (32, 32))
            start = time.perf_counter()
            history = train_diabatic(model, x, data.energies, forces, epochs=epochs, seed=seed, show_progress=False,
                                     **extra)
            model.requires_grad_(False)
            models[name] = model
            entry[name] = {"final_loss": history[-1], "train_seconds": time.perf_counter() - start,
                           **evaluate(system, lambda q, m=model: eigh(m(q))[0],
                                      lambda q, m=model: adiabatic_states(m, q).couplings)}
            print(f"{system.name} {name}: {entry[name]}", flush=True)
        start = time.perf_counter()
        baseline = fit_baseline(x, data.energies, forces, epochs, seed)
        baseline.requires_grad_(False)
        entry["two_networks"] = {"train_seconds": time.perf_counter() - start,
                                 **evaluate(system, baseline.energies, None)}
        print(f"{system.name} two_networks: {entry['two_networks']}", flush=True)
        if system.dim == 1:
            plot_learned_1d(system, {n: models[n] for n in ("diabatic", "diabatic_unanchored")}, baseline,
                            folder / "nonadiabatic_learned.png")
        # FSSH on each model against FSSH on the exact model: same trajectories, seeds and random numbers.
        runs = {"exact_model": system, **{n: Learned(m, system, n) for n, m in models.items()},
                "two_networks": Learned(baseline.diabatic, system, "two_networks")}
        for name, model in runs.items():
            entry.setdefault(name, {})["fssh"] = {}
            for k in k_values:
                if system.dim == 1:
                    result = surface_hopping(model, k, n_trajectories=n_fssh, seed=seed,
                                             timestep_au=trajectory_timestep(k), show_progress=False)
                else:
                    result = lvc_scattering(model, system, k, n_fssh, seed)
                entry[name]["fssh"][str(k)] = {c: result[c] for c in CHANNELS}
                print(f"{system.name} {name} FSSH k={k}: " + "  ".join(f"{result[c]:.3f}" for c in CHANNELS),
                      flush=True)
        for name in runs:
            if name != "exact_model":
                differences = {str(k): max(abs(entry[name]["fssh"][str(k)][c] - entry["exact_model"]["fssh"][str(k)][c])
                                           for c in CHANNELS) for k in k_values}
                entry[name]["fssh_max_abs_difference_per_k"] = differences
                entry[name]["fssh_max_abs_difference_vs_exact_model"] = max(differences.values())
        out["systems"][system.name] = entry
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("tully", "learned", "all"), default="all")
    parser.add_argument("--quick", action="store_true", help="few momenta and trajectories (smoke test)")
    parser.add_argument("--n-trajectories", type=int, default=2000,
                        help="FSSH trajectories per momentum (Tully part, and every model of the learned part)")
    parser.add_argument("--n-edc", type=int, default=1000, help="trajectories of FSSH with decoherence")
    parser.add_argument("--n-ehrenfest", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=RESULTS / "nonadiabatic.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    command = shlex.join(["python", "scripts/bench_nonadiabatic.py", *(sys.argv[1:] if argv is None else argv)])
    data = json.loads(args.output.read_text()) if args.output.exists() else {}
    note = "timings taken under load: 2 CPU cores shared with other jobs (contended); one torch thread"
    if args.part in ("tully", "all"):
        if args.quick:
            k_exact, k_traj, n_traj, n_edc, n_ehr = [10.0, 20.0], [10.0, 20.0], 200, 200, 50
        else:
            k_exact = [float(k) for k in np.arange(5.0, 30.01, 2.5)]
            k_traj, n_traj = [5.0, 10.0, 15.0, 20.0, 25.0, 30.0], args.n_trajectories
            n_edc, n_ehr = args.n_edc, args.n_ehrenfest
        tully = run_tully(k_exact, k_traj, n_traj, n_edc, n_ehr, args.seed)
        data["tully"] = {"command": command, "note": note, "mass_au": 2000.0, "n_trajectories": n_traj,
                         "n_trajectories_edc": n_edc, "n_ehrenfest": n_ehr, "seed": args.seed,
                         "exact_settings": EXACT_SETTINGS, "models": tully}
        plot_tully(tully, args.output.with_name("nonadiabatic_tully.png"))
    if args.part in ("learned", "all"):
        data["learned"] = {"command": command, "note": note,
                           **run_learned(args.quick, args.seed, args.output.parent, args.n_trajectories)}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    # Re-read before writing, so a part run meanwhile in another process is kept.
    latest = json.loads(args.output.read_text()) if args.output.exists() else {}
    latest.update({part: data[part] for part in ("tully", "learned") if part in data and args.part in (part, "all")})
    args.output.write_text(json.dumps(latest, indent=1))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
