"""Fewest-switches surface hopping (Tully 1990), batched over trajectories.

Each trajectory carries classical nuclei (x, p), an active adiabatic state a, and electronic
amplitudes c in the adiabatic basis. One step of length dt:

1. **Nuclei**: velocity Verlet on the active surface, force −∇E_a (Hellmann–Feynman).
2. **Electrons**: iċ = (diag(E) − i v·d) c, where v·d is the real antisymmetric matrix of the
   velocity times the derivative couplings. Over the step the matrix is replaced by its average
   over the two ends and exponentiated exactly (``torch.linalg.matrix_exp``): the propagator is
   unitary, so Σ|c|² = 1 to round-off. Eigenvector signs are aligned to the previous step, so the
   couplings are continuous along the trajectory.
3. **Hops**: the probability to leave a for j is g_aj = dt · max(0, b_ja)/|c_a|², with the
   population flux b_ja = −2 Re(c_j* c_a v·d_ja) averaged over the two ends of the step. One
   uniform number per trajectory picks at most one hop (fewest switches).
4. **Energy conservation on a hop**: the momentum is rescaled along the coupling vector d_aj
   (in 1D: along x) so that E_kin + E_active is unchanged. If the kinetic energy along d_aj is
   too small the hop is **frustrated**: it is rejected and the momentum kept unchanged (neither
   reversed nor rescaled; the "keep" convention of Tully's paper).
5. **Decoherence** (optional, ``decoherence="edc"``): the energy-based correction of Granucci &
   Persico, J. Chem. Phys. 126, 134114 (2007): each inactive amplitude decays as
   exp(−dt/τ_j), τ_j = (1 + C/E_kin)/|E_j − E_a| (ħ = 1, C = 0.1 Hartree), and the active one is
   rescaled to keep the norm.

Trajectories leave the batch when they exit the scattering region (|x_1| beyond ``exit_bohr``,
moving outwards) or at ``max_time_au``. Atomic units throughout (ħ = 1).

Known limitation, visible in the benchmark: without decoherence FSSH overestimates the
reflection on the upper state of Tully's extended-coupling model (the amplitudes keep the
coherence of two packets that have long separated).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Callable

import torch

from mlpot.nonadiabatic.adiabatic import AdiabaticStates, adiabatic_states, align_signs, flip_couplings
from mlpot.nonadiabatic.systems import DiabaticSystem, GaussianPacket
from mlpot.progress import progress

__all__ = ["surface_hopping", "run_surface_hopping", "propagate_amplitudes", "branching", "write_json", "write_csv",
           "EDC_ENERGY_HARTREE"]

EDC_ENERGY_HARTREE = 0.1  # Granucci & Persico's recommended C


def _states(diabatic_fn, gradient_fn, x: torch.Tensor, regularization) -> AdiabaticStates:
    return adiabatic_states(diabatic_fn, x, gradient_fn=gradient_fn, regularization=regularization)


def _gather_state(values: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """values [m, n, ...] at the active state of each trajectory → [m, ...]."""
    index = active.view(-1, *([1] * (values.ndim - 1))).expand(-1, 1, *values.shape[2:])
    return values.gather(1, index).squeeze(1)


def _pair(values: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
    """values [m, n, n, ...] at (i[m], j[m]) → [m, ...]."""
    rows = torch.arange(values.shape[0])
    return values[rows, i, j]


def _check_decoherence(decoherence) -> float | None:
    if decoherence is None:
        return None
    if decoherence == "edc":
        return EDC_ENERGY_HARTREE
    raise ValueError(f"unknown decoherence {decoherence!r}; use None or 'edc' (Granucci & Persico 2007)")


def initial_conditions(positions, momenta, mass_au: float, timestep_au: float, max_time_au: float):
    """Checked starting point of a batch of trajectories (FSSH and Ehrenfest share it).

    Args:
        positions, momenta: [n_traj] or [n_traj, dim], Bohr and a.u.
        mass_au, timestep_au, max_time_au: positive numbers.

    Returns:
        ``(x, p, scalar, mass, dt)``: float64 [n_traj, dim] tensors, whether the input was
        one-dimensional ([n_traj]), and the mass and time step as floats.
    """
    x = torch.as_tensor(positions, dtype=torch.float64)
    p = torch.as_tensor(momenta, dtype=torch.float64)
    scalar = x.ndim == 1
    if scalar:
        x, p = x[:, None], p[:, None]
    if x.shape != p.shape or x.ndim != 2:
        raise ValueError(f"positions and momenta must both be [n_traj, dim]; got {tuple(x.shape)}, {tuple(p.shape)}")
    if not (torch.isfinite(x).all() and torch.isfinite(p).all()):
        raise ValueError("initial positions or momenta contain NaN or inf")
    mass, dt = float(mass_au), float(timestep_au)
    if not (mass > 0 and dt > 0 and max_time_au > 0):
        raise ValueError("mass_au, timestep_au and max_time_au must be positive")
    return x, p, scalar, mass, dt


def run_surface_hopping(
    diabatic_fn: Callable[[torch.Tensor], torch.Tensor],
    positions: torch.Tensor,
    momenta: torch.Tensor,
    mass_au: float,
    gradient_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    initial_state: int = 0,
    timestep_au: float = 1.0,
    max_time_au: float = 1e4,
    exit_bohr: float | None = None,
    decoherence: str | None = None,
    seed: int = 0,
    regularization: float | None = None,
    show_progress: bool = True,
) -> dict:
    """FSSH for a batch of trajectories on any diabatic model (see the module docstring).

    Args:
        diabatic_fn: x ``[m, dim]`` → H_d ``[m, n, n]`` (Hartree).
        positions: ``[n_traj, dim]`` (or ``[n_traj]`` for 1D) initial positions (Bohr).
        momenta: same shape, initial momenta (ħ/Bohr).
        mass_au: nuclear mass (electron masses), the same for every coordinate.
        gradient_fn: analytic ∂H_d/∂x ``[m, n, n, dim]``; autograd when None.
        initial_state: adiabatic state every trajectory starts on (0 = lowest).
        timestep_au: step (ħ/Hartree).
        max_time_au: trajectories still running then are stopped where they are.
        exit_bohr: a trajectory stops once |x_1| > exit_bohr with x_1·p_1 > 0 (scattering);
            None runs every trajectory to ``max_time_au``.
        decoherence: None or "edc".
        seed: seed of the hop decisions.
        regularization: passed to :func:`adiabatic_states` (None: error on degeneracy).
        show_progress: a progress bar/lines over time steps.

    Returns:
        dict of per-trajectory final tensors: ``positions`` [n_traj, dim], ``momenta``,
        ``state`` [n_traj] (active state), ``populations`` [n_traj, n] (|c|²), ``time_au``,
        ``hops``, ``frustrated_hops``, ``energy_error_au`` (final − initial total energy),
        plus ``active_fraction_vs_time`` [n_records, n] and ``record_times_au``.
    """
    c_edc = _check_decoherence(decoherence)
    x, p, scalar, mass, dt = initial_conditions(positions, momenta, mass_au, timestep_au, max_time_au)

    def evaluate(xs: torch.Tensor) -> AdiabaticStates:
        arg = xs[:, 0] if scalar else xs
        return _states(diabatic_fn, gradient_fn, arg, regularization)

    n_traj = x.shape[0]
    states = evaluate(x)
    n = states.energies.shape[-1]
    if not 0 <= initial_state < n:
        raise ValueError(f"initial_state must be in [0, {n}); got {initial_state}")
    active = torch.full((n_traj,), initial_state, dtype=torch.long)
    c = torch.zeros(n_traj, n, dtype=torch.complex128)
    c[:, initial_state] = 1.0
    generator = torch.Generator().manual_seed(int(seed))
    ids = torch.arange(n_traj)
    energy0 = _gather_state(states.energies, active) + (p**2).sum(-1) / (2 * mass)
    hops = torch.zeros(n_traj, dtype=torch.long)
    frustrated = torch.zeros(n_traj, dtype=torch.long)
    out = {"positions": x.clone(), "momenta": p.clone(), "state": active.clone(), "populations": c.abs() ** 2,
           "time_au": torch.zeros(n_traj, dtype=torch.float64), "hops": hops.clone(),
           "frustrated_hops": frustrated.clone(), "energy_error_au": torch.zeros(n_traj, dtype=torch.float64)}
    n_steps = int(math.ceil(max_time_au / dt))
    record_every = max(1, n_steps // 200)
    records, record_times = [], []
    final_state = active.clone()  # kept up to date for the population record

    with progress(total=n_steps, desc="FSSH", unit="step", enabled=show_progress) as bar:
        for step in range(1, n_steps + 1):
            # 1. nuclei: velocity Verlet on the active surface
            p_half = p - 0.5 * dt * _gather_state(states.gradients, active)
            x_new = x + dt * p_half / mass
            new = evaluate(x_new)
            vectors, signs = align_signs(new.vectors, states.vectors)
            new = new._replace(vectors=vectors, couplings=flip_couplings(new.couplings, signs))
            p_new = p_half - 0.5 * dt * _gather_state(new.gradients, active)
            # 2. electrons: exact exponential of the step-averaged (diag(E) − i v·d)
            vd_old = (states.couplings @ (p / mass)[:, None, :, None]).squeeze(-1)
            vd_new = (new.couplings @ (p_new / mass)[:, None, :, None]).squeeze(-1)
            c_new = propagate_amplitudes(c, 0.5 * (states.energies + new.energies), 0.5 * (vd_old + vd_new), dt)
            # 3. hop probabilities from the population flux out of the active state
            g = 0.5 * (_flux(c, vd_old, active) + _flux(c_new, vd_new, active)) * dt
            g = g.clamp(min=0.0)
            xi = torch.rand(x.shape[0], generator=generator, dtype=torch.float64)
            cumulative = g.cumsum(-1)
            wants = (xi.unsqueeze(-1) < cumulative) & (g > 0)
            hopping = wants.any(-1)
            target = torch.where(hopping, wants.to(torch.float64).argmax(-1), active)
            # 4. momentum rescaling along d_aj, or a frustrated hop
            if bool(hopping.any()):
                p_new, accepted = _rescale(p_new, new, active, target, hopping, mass)
                frustrated[ids] += (hopping & ~accepted).long()
                hops[ids] += accepted.long()
                active = torch.where(accepted, target, active)
            # 5. decoherence
            if c_edc is not None:
                c_new = _edc(c_new, new.energies, active, (p_new**2).sum(-1) / (2 * mass), c_edc, dt)
            x, p, c, states = x_new, p_new, c_new, new
            final_state[ids] = active

            done = torch.zeros(x.shape[0], dtype=torch.bool)
            if exit_bohr is not None:
                done = (x[:, 0].abs() > exit_bohr) & (x[:, 0] * p[:, 0] > 0)
            if step == n_steps:
                done = torch.ones_like(done)
            if bool(done.any()):
                finished = ids[done]
                energy = _gather_state(states.energies, active) + (p**2).sum(-1) / (2 * mass)
                out["positions"][finished] = x[done]
                out["momenta"][finished] = p[done]
                out["state"][finished] = active[done]
                out["populations"][finished] = c[done].abs() ** 2
                out["time_au"][finished] = step * dt
                out["hops"][finished] = hops[finished]
                out["frustrated_hops"][finished] = frustrated[finished]
                out["energy_error_au"][finished] = energy[done] - energy0[finished]
                keep = ~done
                ids, x, p, c, active = ids[keep], x[keep], p[keep], c[keep], active[keep]
                states = AdiabaticStates(*(t[keep] for t in states))
            if step % record_every == 0 or ids.numel() == 0:
                records.append(torch.bincount(final_state, minlength=n).to(torch.float64) / n_traj)
                record_times.append(step * dt)
            bar.update(1, running=int(ids.numel()))
            if ids.numel() == 0:
                break
    if scalar:
        out["positions"], out["momenta"] = out["positions"][:, 0], out["momenta"][:, 0]
    out["active_fraction_vs_time"] = torch.stack(records)
    out["record_times_au"] = torch.tensor(record_times, dtype=torch.float64)
    return out


def propagate_amplitudes(c: torch.Tensor, energies: torch.Tensor, vd: torch.Tensor, dt: float) -> torch.Tensor:
    """c ← exp(−i (diag(E) − i v·d) dt) c, exactly, for constant E ``[m, n]`` and v·d ``[m, n, n]``.

    The generator is anti-Hermitian (v·d is real antisymmetric), so the result is unitary. For
    two states it is the closed form of a spin-½ rotation, exp(−i n·σ dt) = cos(|n|dt) − i sin(|n|dt)
    n̂·σ with n = (0, w, −Δ/2), w = (v·d)_01, Δ = E_1 − E_0 (global phase dropped); otherwise
    ``torch.linalg.matrix_exp``. Energies are shifted by their mean, a global phase.
    """
    if c.shape[-1] == 2:
        w, half_gap = vd[:, 0, 1], 0.5 * (energies[:, 1] - energies[:, 0])
        norm = torch.sqrt(w**2 + half_gap**2)
        angle = norm * dt
        cos = torch.cos(angle)
        # sin(|n|dt)/|n| → dt as |n| → 0; the where keeps 0/0 out of the result.
        sinc = torch.where(norm > 0, torch.sin(angle) / norm.clamp(min=1e-300), torch.full_like(norm, dt))
        # −i (n·σ) = −i [[−Δ/2, −iw], [iw, Δ/2]] = [[iΔ/2, −w], [w, −iΔ/2]]
        c0, c1 = c[:, 0], c[:, 1]
        new0 = cos * c0 + sinc * (1j * half_gap * c0 - w * c1)
        new1 = cos * c1 + sinc * (w * c0 - 1j * half_gap * c1)
        return torch.stack([new0, new1], -1)
    shifted = energies - energies.mean(-1, keepdim=True)
    generator = -1j * torch.diag_embed(shifted).to(torch.complex128) - vd.to(torch.complex128)
    return (torch.linalg.matrix_exp(generator * dt) @ c.unsqueeze(-1)).squeeze(-1)


def _flux(c: torch.Tensor, vd: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """[m, n] population flux from the active state into each state j, divided by |c_a|²."""
    c_a = _gather_state(c, active)  # [m]
    vd_ja = vd.gather(2, active.view(-1, 1, 1).expand(-1, vd.shape[1], 1)).squeeze(-1)  # [m, n]: vd[j, a]
    flux = -2.0 * (c.conj() * c_a.unsqueeze(-1)).real * vd_ja
    rho_aa = (c_a.abs() ** 2).clamp(min=1e-300)
    return flux / rho_aa.unsqueeze(-1)


def _rescale(p: torch.Tensor, states: AdiabaticStates, active, target, hopping, mass: float):
    """Momenta after attempted hops a → j, rescaled along d_aj; (new momenta, accepted mask)."""
    direction = _pair(states.couplings, active, target)  # [m, dim]
    norm = direction.norm(dim=-1, keepdim=True)
    u = direction / norm.clamp(min=1e-300)
    q = (p * u).sum(-1)
    gap = _gather_state(states.energies, active) - _gather_state(states.energies, target)  # E_a − E_j
    discriminant = q**2 + 2.0 * mass * gap
    accepted = hopping & (discriminant >= 0) & (norm.squeeze(-1) > 0)
    sign = torch.where(q >= 0, 1.0, -1.0).to(p.dtype)
    alpha = -q + sign * discriminant.clamp(min=0.0).sqrt()
    p_new = torch.where(accepted.unsqueeze(-1), p + alpha.unsqueeze(-1) * u, p)
    return p_new, accepted


def _edc(c: torch.Tensor, energies: torch.Tensor, active, kinetic, constant: float, dt: float) -> torch.Tensor:
    """Granucci–Persico energy-based decoherence applied over one step."""
    e_a = _gather_state(energies, active)
    tau = (1.0 + constant / kinetic.clamp(min=1e-300)).unsqueeze(-1) / (energies - e_a.unsqueeze(-1)).abs().clamp(
        min=1e-300)
    is_active = torch.nn.functional.one_hot(active, c.shape[-1]).bool()
    damped = torch.where(is_active, c, c * torch.exp(-dt / tau))
    others = (damped.abs() ** 2).masked_fill(is_active, 0.0).sum(-1)
    c_a = _gather_state(c, active)
    scale = ((1.0 - others).clamp(min=0.0) / (c_a.abs() ** 2).clamp(min=1e-300)).sqrt()
    return torch.where(is_active, c * scale.unsqueeze(-1), damped)


def branching(final: dict, weights: torch.Tensor | None = None) -> dict:
    """Transmission/reflection fractions per state from final positions and states.

    Transmitted means x_1 > 0 at the end. With ``weights`` [n_traj, n] (Ehrenfest populations)
    each trajectory contributes its weights instead of a one-hot active state.
    """
    x = final["positions"]
    x1 = x if x.ndim == 1 else x[:, 0]
    if weights is None:
        n = final["populations"].shape[-1]
        weights = torch.nn.functional.one_hot(final["state"], n).to(torch.float64)
    n_traj = weights.shape[0]
    right = (x1 > 0).to(torch.float64).unsqueeze(-1)
    transmission = (weights * right).sum(0) / n_traj
    reflection = (weights * (1 - right)).sum(0) / n_traj
    result = {"transmission": transmission.tolist(), "reflection": reflection.tolist(), "n_trajectories": n_traj}
    if weights.shape[-1] == 2:
        for name, values in (("transmission", transmission), ("reflection", reflection)):
            result[f"{name}_lower"], result[f"{name}_upper"] = float(values[0]), float(values[1])
    # Binomial standard error of each fraction (for one-hot weights), the statistical tolerance.
    result["standard_error"] = {
        key: math.sqrt(max(result[key] * (1 - result[key]), 0.0) / n_traj)
        for key in ("transmission_lower", "transmission_upper", "reflection_lower", "reflection_upper") if key in result
    }
    return result


def scattering_start(system: DiabaticSystem, k0_au: float, n_trajectories: int, seed: int,
                     x0_bohr: float | None = None) -> tuple[GaussianPacket, torch.Tensor, torch.Tensor]:
    """The packet of :meth:`GaussianPacket.tully` and ``n_trajectories`` Wigner samples of it."""
    if int(n_trajectories) < 1:
        raise ValueError(f"n_trajectories must be at least 1; got {n_trajectories!r}")
    packet = GaussianPacket.tully(system, k0_au, x0_bohr)
    x, p = packet.wigner_sample(int(n_trajectories), seed=seed)
    return packet, x, p


def default_max_time(packet: GaussianPacket, mass_au: float, exit_bohr: float) -> float:
    """Eight times the time to cross from the start to the far exit at the incoming speed."""
    return 8.0 * (exit_bohr + abs(packet.x0_bohr)) / (packet.k0_au / mass_au)


def surface_hopping(
    system: DiabaticSystem,
    k0_au: float,
    mass_au: float = 2000.0,
    n_trajectories: int = 2000,
    seed: int = 0,
    decoherence: str | None = None,
    timestep_au: float = 1.0,
    x0_bohr: float | None = None,
    show_progress: bool = True,
) -> dict:
    """FSSH branching ratios of a 1D two-state scattering problem.

    Trajectories start on the lower adiabatic state from Wigner samples of the packet of
    :meth:`GaussianPacket.tully` (x0 = −10 Bohr for Tully's models I and II, −15 Bohr for model
    III, σ = 10/k0), moving right; they stop once beyond |x0| moving outwards.

    Returns:
        dict with ``transmission_lower``, ``transmission_upper``, ``reflection_lower``,
        ``reflection_upper`` (fractions of trajectories, summing to 1), their binomial
        ``standard_error``, hop statistics, and ``trajectories`` (the per-trajectory final tensors
        of :func:`run_surface_hopping`).
    """
    packet, x, p = scattering_start(system, k0_au, n_trajectories, seed, x0_bohr)
    exit_bohr = abs(packet.x0_bohr)
    gradient_fn = getattr(system, "diabatic_gradient", None)
    final = run_surface_hopping(system.diabatic, x, p, mass_au, gradient_fn=gradient_fn, timestep_au=timestep_au,
                                max_time_au=default_max_time(packet, mass_au, exit_bohr), exit_bohr=exit_bohr,
                                decoherence=decoherence, seed=seed, show_progress=show_progress)
    result = branching(final)
    result.update(
        mean_hops=float(final["hops"].to(torch.float64).mean()),
        mean_frustrated_hops=float(final["frustrated_hops"].to(torch.float64).mean()),
        max_energy_error_au=float(final["energy_error_au"].abs().max()),
        unfinished=int((final["positions"].abs() <= exit_bohr).sum()),
        settings={"method": "FSSH", "decoherence": decoherence, "system": getattr(system, "name", repr(system)),
                  "k0_au": float(k0_au), "mass_au": float(mass_au), "x0_bohr": packet.x0_bohr,
                  "sigma_bohr": packet.sigma_bohr, "timestep_au": timestep_au, "seed": seed},
        trajectories=final,
    )
    return result


def _plain(value):
    if torch.is_tensor(value):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def write_json(result: dict, path: str | Path) -> None:
    """Write a result dict (tensors as lists) as JSON."""
    Path(path).write_text(json.dumps(_plain(result), indent=1))


def write_csv(result: dict, path: str | Path) -> None:
    """One row per trajectory: final position(s), momentum(s), state, populations, time, hops."""
    final = result.get("trajectories", result)
    x, p = final["positions"], final["momenta"]
    x = x[:, None] if x.ndim == 1 else x
    p = p[:, None] if p.ndim == 1 else p
    populations = final["populations"]
    header = ([f"x{i}_bohr" for i in range(x.shape[1])] + [f"p{i}_au" for i in range(p.shape[1])] + ["state"]
              + [f"population{i}" for i in range(populations.shape[1])] + ["time_au", "hops", "frustrated_hops"])
    with Path(path).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in range(x.shape[0]):
            writer.writerow([*x[row].tolist(), *p[row].tolist(), int(final["state"][row]),
                             *populations[row].tolist(), float(final["time_au"][row]), int(final["hops"][row]),
                             int(final["frustrated_hops"][row])])
