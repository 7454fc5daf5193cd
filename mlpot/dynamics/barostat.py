"""NPT: stochastic cell rescaling (Bernetti & Bussi, J. Chem. Phys. 153, 114107 (2020)) on a thermostat.

The cell follows a first-order stochastic equation. Isotropic, for the volume (Itô):

    dV = −(β_T V/τ_p)(P₀ − P_int) dt + (β_T k_B T/τ_p) dt + √(2 k_B T β_T V/τ_p) dW,

with P_int = 2K/(3V) − tr(σ)/3 the instantaneous pressure (σ the model's stress, ASE sign, virial only), P₀ the
target, τ_p the barostat's relaxation time and β_T a guess of the isothermal compressibility (it sets only how
fast the volume relaxes: the ensemble sampled, p(V) ∝ V^N e^{−βP₀V} × e^{−βU}, does not depend on it). The
β_T k_B T/τ_p drift is what makes the stationary density of V the isobaric one; written for ε = ln V, as it is
integrated here, Itô's rule supplies exactly that drift from the noise, so no separate k_B T/V term appears:

    dε = −(β_T/τ_p)(P₀ − P_int) dt + √(2 k_B T β_T/(V τ_p)) dW,

integrated by Euler–Maruyama, exact in distribution to O(dt/τ_p) (tests/dynamics/test_npt.py: an ideal gas gives
⟨V⟩ = (N + 1)k_B T/P₀; keeping a k_B T/V term in the ε equation would give (N + 2)k_B T/P₀). Positions and cell
are scaled by e^{dε/3}, momenta by e^{−dε/3}. Fully anisotropic: the upper triangle of a strain matrix (rotations
excluded) moves with the pressure tensor P_int,ab = Σ p_a p_b/(mV) − σ_ab, each diagonal element as a third of
the isotropic equation (so the trace reproduces it) and each off-diagonal one with the same mobility and noise;
x ← x μᵀ, cell rows ← rows μᵀ, p ← p μ⁻¹ with μ = exp(dε).

Composition. :func:`cell_rescaling_step` is the Langevin (BAOAB) or Bussi step whose force function first takes
the cell step (:func:`rescale_cell`), right before each force evaluation, using the stress of the previous
evaluation (a lag of one step, an O(dt/τ_p) effect). The stress comes from :class:`CellForces`, which serves any
ASE calculator (``atoms.get_stress``) or mlpot potential (its own stress), with a neighbour list reused while the
atoms' motion and the cell's strain stay inside its skin; :meth:`StochasticCellRescaling.force_provider` hands it
to the engine, which needs no NPT code of its own.

Reported ``conserved``: K + U + P₀V − (thermostat work). The barostat's own work is not tracked, so under NPT
this is a diagnostic, not a conserved quantity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import torch
from ase import units as _ase
from torch import Tensor

from mlpot.dynamics.forces import ASECalculatorForces, ForceProvider, wrap_in_place
from mlpot.dynamics.integrators import Integrator, VerletParams, make_integrator, register_integrator
from mlpot.dynamics.state import MDState, kinetic_energy, per_system
from mlpot.neighbors import neighbor_list
from mlpot.units import KB_EV_PER_K

__all__ = [
    "CellForces",
    "CellRescalingParams",
    "NPTRecorder",
    "StochasticCellRescaling",
    "cell_rescaling_step",
    "rescale_cell",
    "volumes",
]

#: Defaults: barostat relaxation time, fs, and compressibility guess, 1/GPa (about a metal's, 1/(100 GPa)).
DEFAULT_BAROSTAT_TIME_FS = 500.0
DEFAULT_COMPRESSIBILITY_PER_GPA = 0.01


def volumes(cell: Tensor) -> Tensor:
    """|det| of each cell [S, 3, 3] → [S], Å³."""
    return torch.linalg.det(cell).abs()


class StochasticCellRescaling(Integrator):
    """Bernetti–Bussi stochastic cell rescaling on a Langevin or Bussi thermostat.

    Args:
        timestep_fs: time step, fs.
        temperature_K: thermostat and barostat temperature, K.
        friction_per_fs: the thermostat's γ (Langevin) or 1/τ (Bussi), 1/fs.
        pressure_GPa: target pressure P₀, GPa.
        barostat_time_fs: τ_p, fs (default 500).
        compressibility_per_GPa: β_T guess, 1/GPa (default 0.01).
        thermostat: "langevin" or "bussi".
        anisotropic: move the full (upper-triangular) cell instead of its volume only.
    """

    ensemble = "npt"
    stochastic = True

    def __init__(
        self,
        timestep_fs: float,
        temperature_K: float,
        friction_per_fs: float | None = None,
        pressure_GPa: float = 0.0,
        barostat_time_fs: float | None = None,
        compressibility_per_GPa: float | None = None,
        thermostat: str = "langevin",
        anisotropic: bool = False,
    ):
        super().__init__(timestep_fs)
        if temperature_K is None:
            raise ValueError("ensemble 'npt' needs temperature_K (the thermostat's and the barostat's temperature)")
        if thermostat not in ("langevin", "bussi"):
            raise ValueError(f"the NPT thermostat must be 'langevin' or 'bussi', got {thermostat!r}")
        self.thermostat = make_integrator(thermostat, timestep_fs, temperature_K, friction_per_fs)
        self.conserves_momentum = self.thermostat.conserves_momentum
        barostat_time_fs = DEFAULT_BAROSTAT_TIME_FS if barostat_time_fs is None else float(barostat_time_fs)
        compressibility = (
            DEFAULT_COMPRESSIBILITY_PER_GPA if compressibility_per_GPa is None else float(compressibility_per_GPa)
        )
        pressure_GPa = float(pressure_GPa)
        for name, value in (("barostat_time_fs", barostat_time_fs), ("compressibility_per_GPa", compressibility)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be positive and finite, got {value}")
        if not math.isfinite(pressure_GPa):
            raise ValueError(f"pressure_GPa must be finite, got {pressure_GPa}")
        if barostat_time_fs < 2 * self.timestep_fs:
            raise ValueError(f"barostat_time_fs ({barostat_time_fs:g}) must be at least two time steps")
        self.temperature_K = self.thermostat.temperature_K
        self.friction_per_fs = self.thermostat.friction_per_fs
        self.kT = KB_EV_PER_K * self.temperature_K
        self.pressure_GPa = pressure_GPa
        self.pressure = pressure_GPa * _ase.GPa  # eV/Å³
        self.barostat_time_fs = barostat_time_fs
        self.compressibility_per_GPa = compressibility
        self.thermostat_name = thermostat
        self.anisotropic = bool(anisotropic)
        # β_T/τ_p in Å³/(eV · ASE time)
        self._mobility = (compressibility / _ase.GPa) / (barostat_time_fs * _ase.fs)
        self.provider: CellForces | None = None

    def prepare(self, state: MDState, generator: torch.Generator | None = None) -> "CellRescalingParams":
        if not bool(state.pbc.all()):
            raise ValueError("NPT needs systems periodic along all three axes")
        self.params = CellRescalingParams(
            thermostat_step=self.thermostat.step_function,
            thermostat=self.thermostat.prepare(state, generator),
            provider=self.provider,
            dt=self.dt,
            kT=self.kT,
            pressure=self.pressure,
            mobility=self._mobility,
            anisotropic=self.anisotropic,
            generator=generator,
        )
        return self.params

    def force_provider(self, potential, state: MDState, systems, skin: float) -> "CellForces":
        """Forces with the stress, from a neighbour list that follows the cell (kept for the cell steps)."""
        self.provider = CellForces(potential, state, systems, skin=skin)
        return self.provider

    def attach(self, provider: "CellForces") -> None:
        """Use ``provider``'s stress (it must be the force provider of the same simulation)."""
        self.provider = provider
        if self.params is not None:
            self.params = replace(self.params, provider=provider)

    def conserved(self, state: MDState, kinetic: Tensor | None = None) -> Tensor:
        """K + U + P₀V − thermostat work, per system (a diagnostic: the barostat's work is not tracked)."""
        if kinetic is None:
            kinetic = kinetic_energy(state)
        return kinetic + state.energy + self.pressure * volumes(state.cell) - state.thermostat_work

    def config(self) -> dict:
        return {
            "ensemble": "npt",
            "timestep_fs": self.timestep_fs,
            "temperature_K": self.temperature_K,
            "friction_per_fs": self.friction_per_fs,
            "pressure_GPa": self.pressure_GPa,
            "barostat_time_fs": self.barostat_time_fs,
            "compressibility_per_GPa": self.compressibility_per_GPa,
            "thermostat": self.thermostat_name,
            "anisotropic": self.anisotropic,
        }


@dataclass(frozen=True)
class CellRescalingParams:
    """NPT: the thermostat's step and parameters, the stress source and the barostat's constants.

    Attributes:
        thermostat_step, thermostat: the Langevin or Bussi step function and its parameters.
        provider: the :class:`CellForces` whose last stress [S, 3, 3] (eV/Å³) drives the cell.
        dt: time step, ASE time. kT: eV. pressure: P₀, eV/Å³. mobility: β_T/τ_p, Å³/(eV · ASE time).
        anisotropic: move the upper-triangular cell instead of the volume only.
        generator: the noise source.
    """

    thermostat_step: Callable
    thermostat: VerletParams
    provider: "CellForces | None"
    dt: float
    kT: float
    pressure: float
    mobility: float
    anisotropic: bool
    generator: torch.Generator | None


def cell_rescaling_step(state: MDState, force_fn, params: CellRescalingParams) -> MDState:
    """The thermostat's step, with the cell step taken right before its force evaluation."""

    def rescale_then_forces(s: MDState) -> MDState:
        return force_fn(rescale_cell(s, params))

    return params.thermostat_step(state, rescale_then_forces, params.thermostat)


StochasticCellRescaling.step_function = staticmethod(cell_rescaling_step)


def rescale_cell(state: MDState, params: CellRescalingParams) -> MDState:
    """One cell step of length dt: new positions, cell and momenta of every system (``state`` untouched)."""
    provider = params.provider
    if provider is None or provider.stress is None:
        raise RuntimeError("stochastic cell rescaling needs the stress of a CellForces provider (force_provider)")
    stress = provider.stress.to(state.positions.dtype)  # [S, 3, 3] eV/Å³
    volume = volumes(state.cell)
    dt, kT, mobility = params.dt, params.kT, params.mobility
    n_systems = state.n_systems
    generator = params.generator
    if not params.anisotropic:
        pressure = 2.0 * kinetic_energy(state) / (3.0 * volume) - torch.diagonal(stress, dim1=1, dim2=2).sum(-1) / 3.0
        noise = torch.randn(n_systems, dtype=volume.dtype, device=volume.device, generator=generator)
        d_eps = -mobility * (params.pressure - pressure) * dt + torch.sqrt(2.0 * kT * mobility * dt / volume) * noise
        mu = torch.exp(d_eps / 3.0)[:, None, None] * torch.eye(3, dtype=volume.dtype, device=volume.device)
    else:
        p = state.momenta
        outer = (p[:, :, None] * p[:, None, :]) / state.masses[:, None, None]
        kinetic_tensor = per_system(outer, state.batch, n_systems)
        pressure = kinetic_tensor / volume[:, None, None] - stress
        eye = torch.eye(3, dtype=p.dtype, device=p.device)
        drift = -(mobility / 3.0) * (params.pressure * eye - pressure - (kT / volume)[:, None, None] * eye) * dt
        noise = torch.randn(n_systems, 3, 3, dtype=p.dtype, device=p.device, generator=generator)
        d_eps = torch.triu(drift + torch.sqrt(2.0 * kT * mobility * dt / (3.0 * volume))[:, None, None] * noise)
        mu = torch.linalg.matrix_exp(d_eps)
    mu_t = mu.transpose(1, 2)
    per_atom = mu_t[state.batch]  # [n, 3, 3]
    return state.evolve(
        positions=torch.einsum("ni,nij->nj", state.positions, per_atom),
        cell=torch.bmm(state.cell, mu_t),
        momenta=torch.einsum("ni,nij->nj", state.momenta, torch.linalg.inv(mu)[state.batch]),
    )


#: The integrator options of :class:`StochasticCellRescaling` beyond those every thermostat takes.
NPT_OPTIONS = ("pressure_GPa", "barostat_time_fs", "compressibility_per_GPa", "thermostat", "anisotropic")


class CellForces(ForceProvider):
    """Forces, energy and stress [S, 3, 3] (eV/Å³, ASE sign, virial only) of systems whose cell changes.

    Args:
        potential: an mlpot potential (torch module with ``cutoff``) or an ASE calculator.
        state: the state it serves.
        systems: the ``ase.Atoms`` of the systems (the ASE path copies them and attaches the calculator).
        skin: neighbour-list skin, Å (mlpot potentials): the list is reused while the atoms' motion and the
            cell's strain stay within it.
    """

    def __init__(self, potential, state: MDState, systems, skin: float = 1.0):
        self.stress: Tensor | None = None
        self.skin = float(skin)
        self.reference_positions: Tensor | None = None
        self.reference_cell: Tensor | None = None
        self.n_rebuilds = 0
        self.periodic = True
        self.edge_index: Tensor | None = None
        self.edge_shift: Tensor | None = None
        if isinstance(potential, torch.nn.Module):
            self.potential = potential
            self.ase = None
            self.cutoff = float(potential.cutoff)
        else:
            self.potential = None
            self.ase = ASECalculatorForces(potential, list(systems))

    def checkpoint_written(self) -> None:
        if self.ase is not None:
            self.ase.checkpoint_written()

    def state_dict(self) -> dict:
        out = {} if self.stress is None else {"stress": self.stress.cpu()}
        if self.reference_positions is not None:
            out.update(edge_index=self.edge_index.cpu(), edge_shift=self.edge_shift.cpu(),
                       reference_positions=self.reference_positions.cpu(), reference_cell=self.reference_cell.cpu())
        return out

    def load_state_dict(self, data: dict) -> None:
        self.stress = data.get("stress")
        self.reference_positions = data.get("reference_positions")
        self.reference_cell = data.get("reference_cell")
        self.edge_index, self.edge_shift = data.get("edge_index"), data.get("edge_shift")

    def __call__(self, state: MDState) -> dict[str, Tensor]:
        out = self._ase_call(state) if self.ase is not None else self._torch_call(state)
        self.stress = out["stress"]
        return out

    def _ase_call(self, state: MDState) -> dict[str, Tensor]:
        cells = state.cell.detach().cpu().numpy()
        for k, atoms in enumerate(self.ase.systems):
            atoms.set_cell(cells[k], scale_atoms=False)
        out = self.ase(state)
        stresses = [atoms.get_stress(voigt=False, include_ideal_gas=False) for atoms in self.ase.systems]
        out["stress"] = torch.as_tensor(np.stack(stresses), dtype=state.positions.dtype, device=state.positions.device)
        return out

    def _needs_rebuild(self, state: MDState) -> bool:
        """Whether the list built at the reference cell h₀ may miss a pair now.

        Positions mapped back to the reference cell, x̃ = x h⁻¹ h₀, have moved at most d from the reference; a
        distance r now is at least σ_min(h₀⁻¹h) |r̃|. Every pair within the cutoff is in the list while
        cutoff/σ_min + 2d < cutoff + skin (the cell's strain and the atoms' motion share the skin).
        """
        if self.reference_positions is None:
            return True
        transform = torch.linalg.solve(state.cell, self.reference_cell)  # h⁻¹ h₀ per system
        mapped = torch.einsum("ni,nij->nj", state.positions, transform[state.batch])
        displacement = (mapped - self.reference_positions).norm(dim=1).max()
        smallest = torch.linalg.svdvals(torch.linalg.solve(self.reference_cell, state.cell)).min()
        return bool(self.cutoff / smallest + 2.0 * displacement >= self.cutoff + self.skin)

    def _torch_call(self, state: MDState) -> dict[str, Tensor]:
        if self._needs_rebuild(state):
            # Wrap into the current cell (only here, so the list's shifts stay valid between rebuilds).
            per_atom = state.batch
            inverse = torch.linalg.inv(state.cell)
            wrap_in_place(state.positions, state.cell[per_atom], inverse[per_atom], state.pbc[per_atom])
            batch = None if state.n_systems == 1 else state.batch
            self.edge_index, self.edge_shift = neighbor_list(
                state.positions, self.cutoff + self.skin, cell=state.cell, pbc=state.pbc, batch=batch
            )
            self.reference_positions = state.positions.clone()
            self.reference_cell = state.cell.clone()
            self.n_rebuilds += 1
        counts = torch.bincount(state.batch, minlength=state.n_systems)
        data = {
            "positions": state.positions, "cell": state.cell, "numbers": state.numbers, "batch": state.batch,
            "pbc": state.pbc, "n_atoms": counts, "edge_index": self.edge_index, "edge_shift": self.edge_shift,
        }
        try:
            with torch.enable_grad():
                out = self.potential(data, compute_forces=True, compute_stress=True)
        except NotImplementedError as error:
            raise ValueError(
                f"NPT needs the stress, and {type(self.potential).__name__} does not compute it ({error}); "
                "use a potential that does (every mlpot model does) or an ASE calculator"
            ) from error
        out = {key: value.detach() for key, value in out.items()}
        out["energy"] = out["energy"].reshape(state.n_systems)
        out["stress"] = out["stress"].reshape(state.n_systems, 3, 3)
        return out


class NPTRecorder:
    """Per-system volume (Å³), enthalpy K + U + P₀V (eV), pressure (GPa), cell at a fixed interval.

    After the run, :meth:`arrays` gives ``step`` [F] and [F, S] arrays ``volume_A3``, ``enthalpy_eV``,
    ``E_pot``, ``E_kin``, ``pressure_GPa`` (instantaneous: kinetic plus virial), and ``cell`` [F, S, 3, 3].
    """

    def __init__(self, interval: int = 1):
        self.interval = int(interval)
        names = ("step", "volume_A3", "enthalpy_eV", "E_pot", "E_kin", "pressure_GPa", "cell")
        self.rows: dict[str, list] = {k: [] for k in names}

    def start(self, sim) -> None:
        pass

    def report(self, sim) -> None:
        state = sim.state
        kinetic = kinetic_energy(state)
        volume = volumes(state.cell)
        target = getattr(sim.integrator, "pressure", 0.0)
        stress = getattr(sim.forces, "stress", None)
        pressure = 2.0 * kinetic / (3.0 * volume)
        if stress is not None:
            pressure = pressure - torch.diagonal(stress, dim1=1, dim2=2).sum(-1) / 3.0
        self.rows["step"].append(state.step)
        for name, value in (
            ("volume_A3", volume), ("enthalpy_eV", kinetic + state.energy + target * volume), ("E_pot", state.energy),
            ("E_kin", kinetic), ("pressure_GPa", pressure / _ase.GPa), ("cell", state.cell),
        ):
            self.rows[name].append(value.detach().to("cpu", torch.float64).numpy().copy())

    def close(self, sim) -> None:
        pass

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in self.rows.items()}


register_integrator("npt", StochasticCellRescaling)
