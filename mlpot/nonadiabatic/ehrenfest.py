"""Ehrenfest (mean-field) dynamics, batched over trajectories.

The nuclei move on the population-weighted mean surface, F = −Re(c† ∇H_d c), while the electronic
amplitudes c, kept in the **diabatic** basis, obey iċ = H_d(x(t)) c. The diabatic basis needs no
derivative couplings and no eigenvector signs: the electronic step is the exact exponential of
the local matrix, exp(−i H_d dt/2), so the norm is kept to round-off. One step is the symmetric
splitting

    p += F dt/2;  c ← e^{−iH_d(x) dt/2} c;  x += p dt/m;  c ← e^{−iH_d(x') dt/2} c;  p += F' dt/2,

which conserves the Ehrenfest energy p²/2m + c†H_d c to O(dt²) with no secular drift.

Branching ratios weight each trajectory by its adiabatic populations |⟨i|c⟩|² at the end,
split by the sign of x_1. Mean-field dynamics cannot branch one trajectory into two packets,
which is why it fails where the outgoing packets on the two surfaces should separate (e.g. the
upper-state reflection of Tully's extended-coupling model). Atomic units (ħ = 1).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from mlpot.nonadiabatic.adiabatic import diabatic_gradient, eigh
from mlpot.nonadiabatic.hopping import branching, default_max_time, initial_conditions, scattering_start
from mlpot.nonadiabatic.systems import DiabaticSystem
from mlpot.progress import progress

__all__ = ["ehrenfest", "run_ehrenfest", "diabatic_propagator"]


def diabatic_propagator(h: torch.Tensor, time: float) -> torch.Tensor:
    """exp(−i H time) of real symmetric ``h`` [m, n, n] → complex [m, n, n], exact."""
    energies, vectors = eigh(h)
    vectors = vectors.to(torch.complex128)
    phases = torch.exp(-1j * energies * time)
    return (vectors * phases.unsqueeze(-2)) @ vectors.transpose(-1, -2)


def run_ehrenfest(
    diabatic_fn: Callable[[torch.Tensor], torch.Tensor],
    positions: torch.Tensor,
    momenta: torch.Tensor,
    mass_au: float,
    gradient_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    initial_state: int = 0,
    timestep_au: float = 1.0,
    max_time_au: float = 1e4,
    exit_bohr: float | None = None,
    show_progress: bool = True,
) -> dict:
    """Ehrenfest trajectories from the adiabatic state ``initial_state``.

    Args, shapes and units as :func:`mlpot.nonadiabatic.hopping.run_surface_hopping`.

    Returns:
        dict of per-trajectory final tensors: ``positions``, ``momenta``, ``populations``
        [n_traj, n] (adiabatic |⟨i|c⟩|²), ``time_au``, ``energy_error_au``.
    """
    x, p, scalar, mass, dt = initial_conditions(positions, momenta, mass_au, timestep_au, max_time_au)

    def evaluate(xs):
        arg = xs[:, 0] if scalar else xs
        if gradient_fn is None:
            return diabatic_gradient(diabatic_fn, arg)
        return diabatic_fn(arg), gradient_fn(arg)

    def force(c, dh):  # −Re(c† ∇H c) per coordinate: [m, dim]
        return -torch.einsum("ma,mabk,mb->mk", c.conj(), dh.to(torch.complex128), c).real

    def energy(c, h, p):
        return torch.einsum("ma,mab,mb->m", c.conj(), h.to(torch.complex128), c).real + (p**2).sum(-1) / (2 * mass)

    h, dh = evaluate(x)
    _, vectors = eigh(h)
    n = h.shape[-1]
    if not 0 <= initial_state < n:
        raise ValueError(f"initial_state must be in [0, {n}); got {initial_state}")
    c = vectors[..., initial_state].to(torch.complex128)  # the adiabatic state, in diabatic components
    n_traj = x.shape[0]
    ids = torch.arange(n_traj)
    energy0 = energy(c, h, p)
    out = {"positions": x.clone(), "momenta": p.clone(), "populations": torch.zeros(n_traj, n, dtype=torch.float64),
           "time_au": torch.zeros(n_traj, dtype=torch.float64),
           "energy_error_au": torch.zeros(n_traj, dtype=torch.float64)}
    n_steps = int(math.ceil(max_time_au / dt))
    f = force(c, dh)
    with progress(total=n_steps, desc="Ehrenfest", unit="step", enabled=show_progress) as bar:
        for step in range(1, n_steps + 1):
            p = p + 0.5 * dt * f
            c = (diabatic_propagator(h, dt / 2) @ c.unsqueeze(-1)).squeeze(-1)
            x = x + dt * p / mass
            h, dh = evaluate(x)
            c = (diabatic_propagator(h, dt / 2) @ c.unsqueeze(-1)).squeeze(-1)
            f = force(c, dh)
            p = p + 0.5 * dt * f
            done = torch.zeros(x.shape[0], dtype=torch.bool)
            if exit_bohr is not None:
                done = (x[:, 0].abs() > exit_bohr) & (x[:, 0] * p[:, 0] > 0)
            if step == n_steps:
                done = torch.ones_like(done)
            if bool(done.any()):
                finished = ids[done]
                _, vectors = eigh(h[done])
                adiabatic_c = (vectors.transpose(-1, -2).to(torch.complex128) @ c[done].unsqueeze(-1)).squeeze(-1)
                out["positions"][finished] = x[done]
                out["momenta"][finished] = p[done]
                out["populations"][finished] = adiabatic_c.abs() ** 2
                out["time_au"][finished] = step * dt
                out["energy_error_au"][finished] = energy(c[done], h[done], p[done]) - energy0[finished]
                keep = ~done
                ids, x, p, c, h, dh, f = ids[keep], x[keep], p[keep], c[keep], h[keep], dh[keep], f[keep]
            bar.update(1, running=int(ids.numel()))
            if ids.numel() == 0:
                break
    if scalar:
        out["positions"], out["momenta"] = out["positions"][:, 0], out["momenta"][:, 0]
    return out


def ehrenfest(
    system: DiabaticSystem,
    k0_au: float,
    mass_au: float = 2000.0,
    n_trajectories: int = 2000,
    seed: int = 0,
    timestep_au: float = 1.0,
    x0_bohr: float | None = None,
    show_progress: bool = True,
) -> dict:
    """Ehrenfest branching ratios for the same scattering set-up as :func:`surface_hopping`.

    Returns:
        dict with ``transmission_lower``, ``transmission_upper``, ``reflection_lower``,
        ``reflection_upper`` (population-weighted fractions summing to 1), ``max_energy_error_au``
        and ``trajectories``.
    """
    packet, x, p = scattering_start(system, k0_au, n_trajectories, seed, x0_bohr)
    exit_bohr = abs(packet.x0_bohr)
    final = run_ehrenfest(system.diabatic, x, p, mass_au, gradient_fn=getattr(system, "diabatic_gradient", None),
                          timestep_au=timestep_au, max_time_au=default_max_time(packet, mass_au, exit_bohr),
                          exit_bohr=exit_bohr, show_progress=show_progress)
    result = branching(final, weights=final["populations"])
    result.pop("standard_error", None)  # population weights are not binomial counts
    result.update(max_energy_error_au=float(final["energy_error_au"].abs().max()),
                  settings={"method": "Ehrenfest", "system": getattr(system, "name", repr(system)),
                            "k0_au": float(k0_au), "mass_au": float(mass_au), "x0_bohr": packet.x0_bohr,
                            "sigma_bohr": packet.sigma_bohr, "timestep_au": timestep_au, "seed": seed},
                  trajectories=final)
    return result
