"""The heat-capacity workflow: thermostatted MD over temperatures and supercell sizes, then the estimators.

:func:`run_heat_capacity` drives :mod:`mlpot.dynamics` and :mod:`mlpot.analysis.thermo`:

1. for each temperature, one batched MD call advances every supercell size × replica together (Langevin
   BAOAB or Bussi; with an mlpot potential this is one force call per step for all of them);
2. after ``equilibration_steps``, the total energy K + U of each system is sampled every
   ``sample_interval`` steps for ``production_steps`` steps;
3. each series gives a canonical C_V (block-averaged error), replicas are averaged, the model-noise
   correction is applied (committee spread along the same trajectory, or a validation RMSE);
4. per temperature, C_V/N = c_∞ + b/N is fitted over the sizes.

The result, :class:`HeatCapacityStudy`, prints as a table and serialises to JSON; :mod:`mlpot.analysis.plots`
draws it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from ase import units as _ase

from mlpot.analysis.blocking import mean_error
from mlpot.analysis.thermo import (
    FiniteSizeFit,
    HeatCapacityResult,
    NoiseVariance,
    average_replicas,
    fit_finite_size,
    format_value_error,
    heat_capacity_canonical,
    heat_capacity_configurational,
    noise_variance_from_committee,
    noise_variance_from_rmse,
)

__all__ = ["HeatCapacityStudy", "SizeResult", "run_heat_capacity", "supercell"]

_DULONG_PETIT = 3.0
_ESTIMATORS = {
    "total": "canonical: C_V = (Var(E) - noise variance)/(k_B T^2), E = K + U of the cell",
    "configurational": "canonical, configurational: C_V = f/2 k_B + (Var(U) - noise variance)/(k_B T^2)",
}


def supercell(structure, repeat):
    """``structure`` repeated ``repeat`` (an int n for n×n×n, or three ints) times along its cell vectors."""
    atoms = structure.repeat(_repeat_tuple(repeat))
    atoms.set_momenta(np.zeros((len(atoms), 3)))
    return atoms


@dataclass(frozen=True)
class SizeResult:
    """One temperature and supercell size: the replica-averaged heat capacity and what was measured.

    Attributes:
        repeat: supercell repetition of the input structure.
        result: canonical C_V (k_B per cell, raw and noise-corrected; knows n_atoms and mass).
        kinetic_temperature_K, kinetic_temperature_error_K: mean 2⟨K⟩/(n_dof_kinetic k_B) over the run.
        n_dof_kinetic: kinetic degrees of freedom of the thermostat (3N Langevin, 3N − 3 Bussi).
        statistical_inefficiency: mean g of the squared deviations of the primary estimator's series, in samples.
        alternative: the other canonical estimator on the same trajectories (configurational if the primary is
            the total-energy one, and vice versa), for comparison.
    """

    repeat: tuple[int, int, int]
    result: HeatCapacityResult
    alternative: HeatCapacityResult
    kinetic_temperature_K: float
    kinetic_temperature_error_K: float
    n_dof_kinetic: int
    statistical_inefficiency: float

    def as_dict(self) -> dict:
        return {
            "repeat": list(self.repeat),
            "kinetic_temperature_K": {"value": self.kinetic_temperature_K, "error": self.kinetic_temperature_error_K},
            "n_dof_kinetic": self.n_dof_kinetic,
            "statistical_inefficiency_of_squared_deviations": self.statistical_inefficiency,
            **self.result.as_dict(),
            "alternative_estimator": self.alternative.as_dict(),
        }


@dataclass
class HeatCapacityStudy:
    """All results of :func:`run_heat_capacity`.

    Attributes:
        results: {temperature_K: [SizeResult per supercell size]}.
        fits: {temperature_K: FiniteSizeFit} where at least two sizes were run.
        mass_per_atom_amu: mean atomic mass of the structure (for J/(g·K) of c_∞).
        settings: the run's parameters, for the record.
    """

    results: dict[float, list[SizeResult]]
    fits: dict[float, FiniteSizeFit]
    mass_per_atom_amu: float
    settings: dict = field(default_factory=dict)

    def c_infinity_J_per_g_K(self, temperature_K: float) -> tuple[float, float]:
        """c_∞ at ``temperature_K`` in J/(g·K)."""
        fit = self.fits[temperature_K]
        factor = _ase._k / (self.mass_per_atom_amu * _ase._amu * 1e3)
        return fit.value * factor, fit.error * factor

    def as_dict(self) -> dict:
        temperatures = []
        for temperature, sizes in self.results.items():
            entry = {"temperature_K": temperature, "sizes": [s.as_dict() for s in sizes]}
            if temperature in self.fits:
                fit = self.fits[temperature]
                value, error = self.c_infinity_J_per_g_K(temperature)
                entry["finite_size"] = {
                    **fit.as_dict(),
                    "c_inf_J_per_g_K": {"value": value, "error": error},
                    "deviation_from_dulong_petit": {
                        "value": fit.value / _DULONG_PETIT - 1.0,
                        "error": fit.error / _DULONG_PETIT,
                    },
                }
            temperatures.append(entry)
        return {
            "units": {
                "kB_per_cell": "heat capacity of the simulation cell in units of k_B",
                "kB_per_atom": "k_B per atom",
                "J_per_mol_K": "J/(mol·K) per mole of atoms",
                "J_per_g_K": "J/(g·K)",
            },
            "estimator": _ESTIMATORS[self.settings.get("estimator", "total")],
            "settings": self.settings,
            "mass_per_atom_amu": self.mass_per_atom_amu,
            "temperatures": temperatures,
        }

    def table(self) -> str:
        """A plain-text table: every size and the extrapolation, in the three units, raw next to corrected."""
        noisy = any(s.result.noise.value > 0 for sizes in self.results.values() for s in sizes)
        header = f"{'T (K)':>8} {'N':>6} {'dof':>5} {'T_kin (K)':>14} {'C_V (k_B/atom)':>18} {'J/(mol·K)':>16} {'J/(g·K)':>18}"
        if noisy:
            header += f" {'raw (k_B/atom)':>18}"
        lines = [header, "-" * len(header)]
        for temperature, sizes in self.results.items():
            for s in sizes:
                r = s.result
                row = (
                    f"{temperature:8.1f} {r.n_atoms:6d} {s.n_dof_kinetic:5d} "
                    f"{format_value_error(s.kinetic_temperature_K, s.kinetic_temperature_error_K):>14} "
                    f"{str(r.per_atom):>18} {str(r.J_per_mol_K):>16} {str(r.J_per_g_K):>18}"
                )
                if noisy:
                    row += f" {str(r.raw_per_atom):>18}"
                lines.append(row)
            if temperature in self.fits:
                fit = self.fits[temperature]
                value, error = self.c_infinity_J_per_g_K(temperature)
                lines.append(
                    f"{temperature:8.1f} {'∞':>6} {'':>5} {'':>14} {str(fit.c_infinity):>18} "
                    f"{str(fit.J_per_mol_K):>16} {format_value_error(value, error):>18}"
                    f"   (fit C_V/N = c_∞ + b/N, χ²/dof = {fit.chi2:.2f}/{fit.dof})"
                )
        return "\n".join(lines)


class _CommitteeSpreadRecorder(torch.nn.Module):
    """Wraps a committee so that the spread of its last evaluation stays readable by a reporter.

    It follows the potential contract by delegation and adds no force call: the engine's own evaluation
    each step leaves ``last_energy_std`` [n_systems] behind.
    """

    def __init__(self, committee: torch.nn.Module):
        super().__init__()
        self.committee = committee
        self.cutoff = committee.cutoff
        self.last_energy_std: torch.Tensor | None = None

    def forward(self, data, compute_forces: bool = True, compute_stress: bool = False, training: bool = False):
        out = self.committee(data, compute_forces=compute_forces, compute_stress=compute_stress, training=training)
        self.last_energy_std = out["energy_std"].detach()
        return out


class _SpreadReporter:
    """Collects the committee's energy spread [n_systems] at each reported step."""

    def __init__(self, recorder: _CommitteeSpreadRecorder, interval: int):
        self.recorder = recorder
        self.interval = int(interval)
        self.rows: list[np.ndarray] = []
        self.steps: list[int] = []

    def start(self, sim) -> None:
        pass

    def report(self, sim) -> None:
        if self.recorder.last_energy_std is not None:
            self.rows.append(self.recorder.last_energy_std.to("cpu", torch.float64).numpy().copy())
            self.steps.append(sim.state.step)

    def close(self, sim) -> None:
        pass


def _is_committee(potential) -> bool:
    return isinstance(potential, torch.nn.Module) and hasattr(potential, "members")


def run_heat_capacity(
    structure,
    potential,
    temperatures_K: Sequence[float],
    supercells: Sequence = (2, 3, 4),
    equilibration_steps: int = 2000,
    production_steps: int = 20000,
    timestep_fs: float = 2.0,
    thermostat: str = "langevin",
    friction_per_fs: float | None = 0.05,
    replicas: int = 1,
    sample_interval: int = 1,
    seed: int = 0,
    noise_rmse_eV_per_atom: float | None = None,
    noise_validation_atoms: int | None = None,
    noise_validation_structures: int | None = None,
    committee_noise: bool = True,
    estimator: str = "total",
    progress: bool = True,
) -> HeatCapacityStudy:
    """Canonical heat capacity over temperatures and supercell sizes, with both corrections.

    Args:
        structure: the unit (or conventional) cell, ``ase.Atoms``, periodic, at the volume wanted.
        potential: an mlpot potential (a :class:`mlpot.models.Committee` enables the committee noise
            correction) or any ASE calculator (e.g. ``ase.calculators.emt.EMT()`` as a reference).
        temperatures_K: thermostat temperatures.
        supercells: repeats of ``structure`` (int n → n×n×n, or three ints); ≥ 2 sizes for the extrapolation.
        equilibration_steps, production_steps: MD steps before and during sampling.
        timestep_fs: MD time step.
        thermostat: "langevin" (BAOAB; kinetic dof 3N) or "bussi" (velocity rescaling; 3N − 3).
        friction_per_fs: Langevin γ, or Bussi 1/τ, in 1/fs.
        replicas: independent runs per size and temperature (batched together).
        sample_interval: steps between energy samples.
        seed: seed of the MD random numbers (momenta and noise); each temperature uses seed + index.
        noise_rmse_eV_per_atom: validation RMSE of the per-atom energy, for the noise correction.
        noise_validation_atoms: atoms in the validation structures (default: len(structure)).
        noise_validation_structures: their number (gives the error of σ²).
        committee_noise: with a committee potential, correct by its spread along the trajectory.
        estimator: "total" (Var(E), the definition) or "configurational" (f/2 + Var(U)/(k_B T)², a smaller
            statistical error for a solid); both are computed, this one is used for the table, fit and plot.
        progress: show a progress bar.

    Returns:
        :class:`HeatCapacityStudy`.
    """
    from mlpot.dynamics import ProgressBar, Simulation, ThermoRecorder

    temperatures = [float(t) for t in temperatures_K]
    if not temperatures:
        raise ValueError("give at least one temperature")
    if estimator not in _ESTIMATORS:
        raise ValueError(f"estimator must be one of {sorted(_ESTIMATORS)}, got {estimator!r}")
    if thermostat not in ("langevin", "bussi"):
        raise ValueError(f"thermostat must be 'langevin' or 'bussi', got {thermostat!r}")
    if replicas < 1 or sample_interval < 1 or production_steps < 1 or equilibration_steps < 0:
        raise ValueError("replicas, sample_interval and production_steps must be ≥ 1, equilibration_steps ≥ 0")
    if not all(structure.pbc):
        raise ValueError("the heat-capacity workflow needs a structure periodic along all three axes")
    repeats = [_repeat_tuple(r) for r in supercells]
    systems = [supercell(structure, r) for r in repeats]
    mass_per_atom = float(np.sum(structure.get_masses()) / len(structure))

    use_committee = committee_noise and _is_committee(potential)
    if use_committee and noise_rmse_eV_per_atom is not None:
        raise ValueError("give either a validation RMSE or a committee for the noise correction, not both")
    md_potential = _CommitteeSpreadRecorder(potential) if use_committee else potential

    results: dict[float, list[SizeResult]] = {}
    fits: dict[float, FiniteSizeFit] = {}
    total_steps = equilibration_steps + production_steps
    for t_index, temperature in enumerate(temperatures):
        batch = [atoms.copy() for atoms in systems for _ in range(replicas)]
        recorder = ThermoRecorder(interval=sample_interval)
        reporters = [recorder]
        spread = None
        if use_committee:
            spread = _SpreadReporter(md_potential, sample_interval)
            reporters.append(spread)
        if progress:
            reporters.append(ProgressBar(total_steps, interval=max(1, total_steps // 200), desc=f"{temperature:g} K"))
        sim = Simulation(
            batch,
            md_potential,
            timestep_fs,
            ensemble=thermostat,
            temperature_K=temperature,
            friction_per_fs=friction_per_fs,
            seed=seed + t_index,
            reporters=reporters,
        )
        try:
            sim.run(total_steps)
        finally:
            sim.close()
        arrays = recorder.arrays()
        production = arrays["step"] > equilibration_steps
        potential_energies = arrays["E_pot"][production]
        energies = potential_energies + arrays["E_kin"][production]
        temps = arrays["T_K"][production]
        n_dof = sim.state.n_dof.detach().cpu().numpy()
        if spread is not None:
            spread_steps = np.asarray(spread.steps)
            spread_rows = np.asarray(spread.rows)[spread_steps > equilibration_steps]
            n_members = len(potential.members)
        per_size = []
        for s_index, (repeat, atoms) in enumerate(zip(repeats, systems)):
            columns = range(s_index * replicas, (s_index + 1) * replicas)
            totals, configurationals = [], []
            for column in columns:
                noise = NoiseVariance(0.0)
                if spread is not None:
                    # The committee reports the population spread (1/K); K/(K−1) makes it unbiased.
                    noise = noise_variance_from_committee(
                        energy_std_eV=spread_rows[:, column] * math.sqrt(n_members / (n_members - 1))
                    )
                elif noise_rmse_eV_per_atom is not None:
                    validation_atoms = noise_validation_atoms or len(structure)
                    noise = noise_variance_from_rmse(
                        noise_rmse_eV_per_atom * validation_atoms,
                        n_validation=noise_validation_structures,
                        n_atoms=len(atoms),
                        validation_n_atoms=validation_atoms,
                    )
                system = {"n_atoms": len(atoms), "mass_amu": float(np.sum(atoms.get_masses()))}
                totals.append(heat_capacity_canonical(energies[:, column], temperature, noise, **system))
                configurationals.append(
                    heat_capacity_configurational(
                        potential_energies[:, column], temperature, int(n_dof[column]), noise, **system
                    )
                )
            estimates, others = (totals, configurationals) if estimator == "total" else (configurationals, totals)
            kinetic = [mean_error(temps[:, column], name="kinetic temperature") for column in columns]
            per_size.append(
                SizeResult(
                    repeat=repeat,
                    result=average_replicas(estimates),
                    alternative=average_replicas(others),
                    kinetic_temperature_K=float(np.mean([k.mean for k in kinetic])),
                    kinetic_temperature_error_K=float(np.sqrt(np.sum([k.error**2 for k in kinetic])) / replicas),
                    n_dof_kinetic=int(n_dof[columns[0]]),
                    statistical_inefficiency=float(
                        np.mean([e.statistics.variance_statistical_inefficiency for e in estimates])
                    ),
                )
            )
        results[temperature] = per_size
        if len({s.result.n_atoms for s in per_size}) >= 2:
            fits[temperature] = fit_finite_size([s.result for s in per_size])

    settings = {
        "thermostat": thermostat,
        "friction_per_fs": friction_per_fs,
        "timestep_fs": timestep_fs,
        "equilibration_steps": equilibration_steps,
        "production_steps": production_steps,
        "sample_interval": sample_interval,
        "replicas": replicas,
        "seed": seed,
        "supercells": [list(r) for r in repeats],
        "structure_formula": structure.get_chemical_formula(),
        "structure_n_atoms": len(structure),
        "noise_correction": "committee" if use_committee else ("validation RMSE" if noise_rmse_eV_per_atom else None),
        "noise_rmse_eV_per_atom": noise_rmse_eV_per_atom,
        "potential": type(potential).__name__,
        "estimator": estimator,
        "n_dof_kinetic": "3N (Langevin thermalises the centre of mass)" if thermostat == "langevin" else "3N - 3",
    }
    return HeatCapacityStudy(results=results, fits=fits, mass_per_atom_amu=mass_per_atom, settings=settings)


def _repeat_tuple(repeat) -> tuple[int, int, int]:
    reps = (int(repeat),) * 3 if np.ndim(repeat) == 0 else tuple(int(r) for r in repeat)
    if len(reps) != 3 or min(reps) < 1:
        raise ValueError(f"supercell repeat must be a positive int or three of them, got {repeat!r}")
    return reps
