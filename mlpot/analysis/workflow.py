"""The heat-capacity workflow: thermostatted MD over temperatures and supercell sizes, then the estimators.

:func:`run_heat_capacity` drives :mod:`mlpot.dynamics` and :mod:`mlpot.analysis.thermo`:

1. for each temperature, one batched MD call advances every supercell size × replica together (Langevin
   BAOAB or Bussi; with an mlpot potential this is one force call per step for all of them);
2. after ``equilibration_steps``, the total energy K + U of each system is sampled every
   ``sample_interval`` steps for ``production_steps`` steps, and ``reference_frames`` evenly spaced frames
   per system are kept when a reference or a committee is to be reweighted;
3. each series gives the canonical C_V *of the potential that drove the run* (block-averaged error), replicas
   are averaged; nothing is subtracted;
4. with a reference (any ASE calculator, or energies labelled elsewhere) the kept frames give C_V of the
   reference by reweighting (:func:`mlpot.analysis.heat_capacity_reweighted`, with its ESS); with a committee,
   each member's C_V the same way and their spread (:func:`mlpot.analysis.heat_capacity_committee`);
5. per temperature, C_V/N = c_∞ + b/N is fitted over the sizes.

The result, :class:`HeatCapacityStudy`, prints as a table and serialises to JSON; :mod:`mlpot.analysis.plots`
draws it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from ase import units as _ase

from mlpot.analysis.blocking import mean_error
from mlpot.analysis.combine import FiniteSizeFit, average_replicas, fit_finite_size
from mlpot.analysis.frames import FrameRecorder, reweight_frames, write_frames
from mlpot.analysis.noise import noise_variance_from_rmse
from mlpot.analysis.thermo import (
    HeatCapacityResult,
    format_value_error,
    heat_capacity_canonical,
    heat_capacity_configurational,
)
from mlpot.dynamics.health import MIN_DISTANCE_FRACTION
from mlpot.files import atomic_write_text, refuse_to_replace_run
from mlpot.models.serialization import model_fingerprint
from mlpot.training.checkpoints import changed_settings

__all__ = ["HeatCapacityStudy", "SizeResult", "run_heat_capacity", "supercell"]

_DULONG_PETIT = 3.0
_ESTIMATORS = {
    "total": "canonical: C_V = Var(E)/(k_B T^2), E = K + U of the cell",
    "configurational": "canonical, configurational: C_V = f/2 k_B + Var(U)/(k_B T^2)",
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
        result: canonical C_V of the potential that drove the run (k_B per cell; knows n_atoms and mass).
        reweighted: C_V of the reference by reweighting the kept frames (ReweightedHeatCapacity), if asked.
        committee: per-member C_V and spread (CommitteeHeatCapacity) for a committee.
        reweighting_error: why the reweighting was refused (too small an ESS), if it was.
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
    reweighted: object | None = None
    committee: object | None = None
    reweighting_error: str | None = None

    def as_dict(self) -> dict:
        out = {
            "repeat": list(self.repeat),
            "kinetic_temperature_K": {"value": self.kinetic_temperature_K, "error": self.kinetic_temperature_error_K},
            "n_dof_kinetic": self.n_dof_kinetic,
            "statistical_inefficiency_of_squared_deviations": self.statistical_inefficiency,
            **self.result.as_dict(),
            "alternative_estimator": self.alternative.as_dict(),
        }
        if self.reweighted is not None:
            out["reference"] = self.reweighted.as_dict()
        if self.committee is not None:
            out["committee"] = self.committee.as_dict()
        if self.reweighting_error is not None:
            out["reweighting_error"] = self.reweighting_error
        return out


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
        """A plain-text table: every size and the extrapolation in three units; reweighted and committee lines."""
        noisy = any(s.result.noise.value > 0 for sizes in self.results.values() for s in sizes)
        header = (f"{'T (K)':>8} {'N':>6} {'dof':>5} {'T_kin (K)':>14} {'C_V (k_B/atom)':>18} {'J/(mol·K)':>16} "
                  f"{'J/(g·K)':>18}")
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
                n = r.n_atoms
                if s.reweighted is not None:
                    w = s.reweighted
                    lines.append(
                        f"{'':>8} {'':>6} reference by reweighting: "
                        f"{format_value_error(w.value / n, w.error / n)} k_B/atom "
                        f"(ESS {w.effective_sample_size:.0f}/{w.n_frames}; model on the same frames "
                        f"{format_value_error(w.model_value / n, w.model_error / n)}; "
                        f"Var(δ) = {w.error_variance_eV2:.3g} eV², "
                        f"Corr(δ, U) = {w.error_energy_correlation:.2f})"
                    )
                if s.committee is not None:
                    c = s.committee
                    lines.append(
                        f"{'':>8} {'':>6} committee members: {format_value_error(c.value / n, c.error / n)} k_B/atom "
                        f"± {c.model_spread / n:.2g} model spread ({len(c.members)} members, min ESS "
                        f"{c.effective_sample_size:.0f})"
                    )
                if s.reweighting_error is not None:
                    lines.append(f"{'':>8} {'':>6} reweighting refused: {s.reweighting_error}")
            if temperature in self.fits:
                fit = self.fits[temperature]
                value, error = self.c_infinity_J_per_g_K(temperature)
                lines.append(
                    f"{temperature:8.1f} {'∞':>6} {'':>5} {'':>14} {str(fit.c_infinity):>18} "
                    f"{str(fit.J_per_mol_K):>16} {format_value_error(value, error):>18}"
                    f"   (fit C_V/N = c_∞ + b/N, χ²/dof = {fit.chi2:.2f}/{fit.dof})"
                )
        return "\n".join(lines)


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
    reference=None,
    reference_frames: int = 200,
    reference_energies_file=None,
    committee_reweighting: bool = True,
    min_effective_samples: float = 50,
    frames_folder=None,
    noise_rmse_eV_per_atom: float | None = None,
    noise_validation_atoms: int | None = None,
    noise_validation_structures: int | None = None,
    assume_uncorrelated_error: bool = False,
    estimator: str = "total",
    progress: bool = True,
    checkpoint_folder=None,
    checkpoint_every: int = 1000,
    resume: bool = False,
    overwrite: bool = False,
    min_distance_fraction: float | None = MIN_DISTANCE_FRACTION,
) -> HeatCapacityStudy:
    """Canonical heat capacity over temperatures and supercell sizes: the model's, the reference's, the spread.

    Args:
        structure: the unit (or conventional) cell, ``ase.Atoms``, periodic, at the volume wanted.
        potential: an mlpot potential (a :class:`mlpot.models.Committee` gives per-member C_V and their spread)
            or any ASE calculator (e.g. ``ase.calculators.emt.EMT()``).
        temperatures_K: thermostat temperatures.
        supercells: repeats of ``structure`` (int n → n×n×n, or three ints); ≥ 2 sizes for the extrapolation.
        equilibration_steps, production_steps: MD steps before and during sampling.
        timestep_fs: MD time step.
        thermostat: "langevin" (BAOAB; kinetic dof 3N) or "bussi" (velocity rescaling; 3N − 3).
        friction_per_fs: Langevin γ, or Bussi 1/τ, in 1/fs.
        replicas: independent runs per size and temperature (batched together).
        sample_interval: steps between energy samples.
        seed: seed of the MD random numbers (momenta and noise); each temperature uses seed + index.
        reference: an ASE calculator evaluated on the kept frames: C_V of the reference by reweighting.
        reference_frames: frames kept per size (pooled over replicas), evenly spaced over the production run.
        reference_energies_file: an extxyz file of those frames labelled elsewhere (one temperature, one size);
            matched by index and checked by position.
        committee_reweighting: with a committee, reweight the frames to each member.
        min_effective_samples: the reweighting's ESS threshold; below it the reweighted value is refused (the
            reason is recorded in the result) and the model's C_V is still reported.
        frames_folder: write the kept frames there as ``frames_{T}K_{N}atoms.extxyz`` (to label elsewhere and
            read back with ``reference_energies_file``).
        noise_rmse_eV_per_atom, noise_validation_atoms, noise_validation_structures: the white-noise
            approximation (σ² from a validation RMSE), applied only with ``assume_uncorrelated_error=True``.
        assume_uncorrelated_error: accept that approximation.
        estimator: "total" (Var(E), the definition) or "configurational" (f/2 + Var(U)/(k_B T)², a smaller
            statistical error for a solid); both are computed, this one is used for the table, fit and plot.
        progress: show a progress bar.
        checkpoint_folder: write ``heat_capacity_{T}K.pt`` there for each temperature, every
            ``checkpoint_every`` steps and when the run ends or is interrupted (Ctrl-C, SIGTERM:
            :class:`~mlpot.interrupts.RunInterrupted` is raised once it is on disk). Each holds the
            MD state and what the recorders have kept, so that a resumed study gives the numbers of
            an uninterrupted one, bit for bit.
        checkpoint_every: MD steps between checkpoints.
        resume: continue from the checkpoints in ``checkpoint_folder``: a finished temperature's
            MD is not run again, an interrupted one continues from its step. The study (structure,
            potential, temperatures, sizes and MD settings, recorded in ``study.json`` there) must
            be the one that wrote them (ValueError naming each difference).
        overwrite: a fresh run into a ``checkpoint_folder`` that holds an earlier study's
            checkpoints deletes them (after the settings are checked); without it, that is an error.
        min_distance_fraction: the MD engine's close-contact check (:class:`~mlpot.dynamics.Simulation`);
            None turns it off.

    Returns:
        :class:`HeatCapacityStudy`.
    """
    from mlpot.dynamics import CheckpointWriter, ProgressBar, Simulation, ThermoRecorder
    from mlpot.dynamics.checkpoint import read_checkpoint
    from mlpot.interrupts import RunInterrupted

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
    if noise_rmse_eV_per_atom is not None and not assume_uncorrelated_error:
        raise ValueError(
            "a validation RMSE is subtracted only under the white-noise approximation: pass "
            "assume_uncorrelated_error=True (--assume-uncorrelated-error) to use it knowingly, or give a reference "
            "(--reference-calculator) to reweight to"
        )
    if reference is not None and reference_energies_file is not None:
        raise ValueError("give a reference calculator or a file of reference energies, not both")
    if reference_energies_file is not None and (len(temperatures) != 1 or len(supercells) != 1):
        raise ValueError("reference energies from a file need exactly one temperature and one supercell size")
    if resume and checkpoint_folder is None:
        raise ValueError("resume needs the checkpoint_folder of the run to continue")
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be a positive number of MD steps, got {checkpoint_every}")
    repeats = [_repeat_tuple(r) for r in supercells]
    systems = [supercell(structure, r) for r in repeats]
    mass_per_atom = float(np.sum(structure.get_masses()) / len(structure))
    use_committee = committee_reweighting and _is_committee(potential)
    keep_frames = (use_committee or reference is not None or reference_energies_file is not None
                   or frames_folder is not None)
    per_replica = max(1, -(-int(reference_frames) // replicas))
    frame_interval = max(1, production_steps // per_replica)
    if checkpoint_folder is not None:
        # Everything that shapes the records: a resumed study must be the same one.
        study_record = {
            "structure_sha256": _structure_fingerprint(structure), "potential_sha256": model_fingerprint(potential),
            "temperatures_K": temperatures, "supercells": [list(r) for r in repeats], "replicas": replicas,
            "timestep_fs": float(timestep_fs), "thermostat": thermostat, "friction_per_fs": friction_per_fs,
            "seed": seed, "equilibration_steps": equilibration_steps, "production_steps": production_steps,
            "sample_interval": sample_interval, "frame_interval": frame_interval if keep_frames else 0,
        }
        _open_checkpoint_folder(Path(checkpoint_folder), study_record, resume, overwrite)

    results: dict[float, list[SizeResult]] = {}
    fits: dict[float, FiniteSizeFit] = {}
    total_steps = equilibration_steps + production_steps
    for t_index, temperature in enumerate(temperatures):
        batch = [atoms.copy() for atoms in systems for _ in range(replicas)]
        recorder = ThermoRecorder(interval=sample_interval)
        reporters = [recorder]
        frames = FrameRecorder(frame_interval, after_step=equilibration_steps) if keep_frames else None
        if frames is not None:
            reporters.append(frames)
        if progress:
            reporters.append(ProgressBar(total_steps, interval=max(1, total_steps // 200), desc=f"{temperature:g} K"))
        checkpoint = None
        if checkpoint_folder is not None:
            checkpoint = Path(checkpoint_folder) / f"heat_capacity_{temperature:g}K.pt"
            run_record = {**study_record, "temperature_K": temperature}

            def records(run_record=run_record, recorder=recorder, frames=frames):
                return {"settings": run_record, "thermo": recorder.state_dict(),
                        "frames": {} if frames is None else frames.state_dict()}

            # Last: its checkpoint at a step then holds every other reporter's record of that step.
            reporters.append(CheckpointWriter(checkpoint, checkpoint_every, extra=records))
        sim = Simulation(
            batch, potential, timestep_fs, ensemble=thermostat, temperature_K=temperature,
            friction_per_fs=friction_per_fs, seed=seed + t_index, reporters=reporters,
            min_distance_fraction=min_distance_fraction,
        )
        if resume and checkpoint.exists():
            saved = read_checkpoint(checkpoint)
            _refuse_another_study(saved.get("extra", {}).get("settings"), run_record, checkpoint)
            sim.load_checkpoint(saved)  # refuses another potential or other systems
            recorder.load_state_dict(saved["extra"]["thermo"])
            if frames is not None:
                frames.load_state_dict(saved["extra"]["frames"])
        try:
            sim.run(total_steps - sim.state.step, handle_signals=checkpoint is not None)
        finally:
            sim.close()
        if sim.interrupted:  # the final checkpoint is on disk (CheckpointWriter.close)
            raise RunInterrupted(f"heat capacity at {temperature:g} K", sim.interrupt_signal, checkpoint)
        arrays = recorder.arrays()
        production = arrays["step"] > equilibration_steps
        potential_energies = arrays["E_pot"][production]
        energies = potential_energies + arrays["E_kin"][production]
        temps = arrays["T_K"][production]
        n_dof = sim.state.n_dof.detach().cpu().numpy()
        per_size = []
        for s_index, (repeat, atoms) in enumerate(zip(repeats, systems)):
            columns = range(s_index * replicas, (s_index + 1) * replicas)
            totals, configurationals = [], []
            for column in columns:
                noise = None
                if noise_rmse_eV_per_atom is not None:
                    validation_atoms = noise_validation_atoms or len(structure)
                    noise = noise_variance_from_rmse(
                        noise_rmse_eV_per_atom * validation_atoms,
                        n_validation=noise_validation_structures,
                        n_atoms=len(atoms),
                        validation_n_atoms=validation_atoms,
                    )
                system = {
                    "n_atoms": len(atoms), "mass_amu": float(np.sum(atoms.get_masses())),
                    "error_variance_eV2": noise, "assume_uncorrelated_error": assume_uncorrelated_error,
                }
                totals.append(heat_capacity_canonical(energies[:, column], temperature, **system))
                configurationals.append(
                    heat_capacity_configurational(
                        potential_energies[:, column], temperature, int(n_dof[column]), **system
                    )
                )
            estimates, others = (totals, configurationals) if estimator == "total" else (configurationals, totals)
            kinetic = [mean_error(temps[:, column], name="kinetic temperature") for column in columns]
            extra = {}
            if frames_folder is not None:
                pooled = [a for column in columns for a in frames.frames(column)[0]]
                write_frames(Path(frames_folder) / f"frames_{temperature:g}K_{len(atoms)}atoms.extxyz", pooled)
            if frames is not None:
                # Frames a few steps apart are correlated: bootstrap blocks as long as the correlation of the
                # variance estimator measured on the full series (the frames alone are too few to measure it).
                inefficiency = float(np.mean([c.statistics.variance_statistical_inefficiency
                                              for c in configurationals]))
                block_frames = max(1, math.ceil(inefficiency * sample_interval / frame_interval))
                extra = reweight_frames(
                    frames, columns, len(atoms), temperature, potential if use_committee else None, reference,
                    reference_energies_file, min_effective_samples, seed, int(n_dof[columns[0]]), block_frames,
                )
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
                    **extra,
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
        "reference": None if reference is None else type(reference).__name__,
        "reference_frames_per_size": per_replica * replicas if keep_frames else 0,
        "reference_frame_interval_steps": frame_interval if keep_frames else None,
        "committee_reweighting": use_committee,
        "white_noise_approximation": "validation RMSE" if noise_rmse_eV_per_atom else None,
        "noise_rmse_eV_per_atom": noise_rmse_eV_per_atom,
        "potential": type(potential).__name__,
        "estimator": estimator,
        "n_dof_kinetic": "3N (Langevin thermalises the centre of mass)" if thermostat == "langevin" else "3N - 3",
    }
    return HeatCapacityStudy(results=results, fits=fits, mass_per_atom_amu=mass_per_atom, settings=settings)


def _structure_fingerprint(atoms) -> str:
    """SHA-256 of a structure's atomic numbers, positions, cell and periodicity."""
    digest = hashlib.sha256()
    for array in (atoms.numbers, atoms.positions, atoms.cell.array, atoms.pbc):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _refuse_another_study(saved: dict | None, now: dict, path: Path) -> None:
    """Raise ValueError unless the study recorded in ``path`` is ``now``, naming each difference."""
    if saved is None:
        raise ValueError(f"{path} is not a heat-capacity checkpoint (it records no study)")
    changes = changed_settings(saved, now)
    if changes:
        raise ValueError(f"resume: the study differs from the one in {path}: {'; '.join(changes)}; resume "
                         "with the original settings, or start again with overwrite (--overwrite)")


def _open_checkpoint_folder(folder: Path, study_record: dict, resume: bool, overwrite: bool) -> None:
    """Check a resumed study against ``folder/study.json``, or start a fresh one there: refused over
    an earlier study's checkpoints unless ``overwrite``, which deletes them."""
    record = folder / "study.json"
    earlier = sorted(folder.glob("heat_capacity_*K.pt")) + ([record] if record.exists() else [])
    if resume:
        if not record.exists():
            raise FileNotFoundError(f"resume: {folder} holds no heat-capacity study to continue (no study.json)")
        _refuse_another_study(json.loads(record.read_text()), study_record, record)
        return
    refuse_to_replace_run(folder, earlier, resume, overwrite, "the checkpoints of an earlier heat-capacity study")
    for path in earlier:
        path.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(record, json.dumps(study_record, indent=1))


def _repeat_tuple(repeat) -> tuple[int, int, int]:
    reps = (int(repeat),) * 3 if np.ndim(repeat) == 0 else tuple(int(r) for r in repeat)
    if len(reps) != 3 or min(reps) < 1:
        raise ValueError(f"supercell repeat must be a positive int or three of them, got {repeat!r}")
    return reps
