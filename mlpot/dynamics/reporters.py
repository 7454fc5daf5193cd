"""Reporters: what the MD loop writes, each at its own fixed interval.

A reporter has an ``interval`` (steps) and three methods called by
:class:`~mlpot.dynamics.engine.Simulation`:

* ``start(sim)`` once before stepping (on a resumed run, ``sim.state.step`` is the checkpoint's
  step, and files are cut back to it so that nothing is written twice);
* ``report(sim)`` after every step that is a multiple of ``interval`` (and at step 0 of a fresh run);
* ``close(sim)`` at the end, also after an error or an interrupt.

Files are flushed after each write, so after a crash they hold every reported step up to the
last good one.

* :class:`ThermoLog` — CSV: step, time_fs, [system,] T_K, E_pot, E_kin, conserved, n_dof.
* :class:`TrajectoryWriter` — extxyz (``.xyz``/``.extxyz``) or ASE ``.traj``; readable by ``ase.io.read``.
* :class:`CheckpointWriter` — atomic checkpoints for bit-for-bit restart (and a final one on close).
* :class:`ThermoRecorder` — the same numbers as ThermoLog, kept in memory as arrays (for analysis).
* :class:`ProgressBar` — progress with steps/s and the temperature (a bar on a terminal, plain lines in a log).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from mlpot.progress import progress

__all__ = ["Reporter", "ThermoLog", "TrajectoryWriter", "CheckpointWriter", "ThermoRecorder", "ProgressBar"]


class Reporter:
    """Base class: no-op ``start``/``close``; subclasses implement ``report``."""

    def __init__(self, interval: int = 1):
        interval = int(interval)
        if interval < 1:
            raise ValueError(f"interval must be a positive number of steps, got {interval}")
        self.interval = interval

    def start(self, sim) -> None:
        pass

    def report(self, sim) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self, sim) -> None:
        pass


def _open_mode(reporter, sim) -> str:
    """"w" for a fresh file, "a" to continue this reporter's own earlier run() calls, "resume" to
    cut a file left by an interrupted run back to the checkpoint's step."""
    if getattr(reporter, "_opened", False):
        return "a"
    reporter._opened = True
    return "resume" if getattr(sim, "resumed_from_step", None) is not None else "w"


class ThermoLog(Reporter):
    """Thermodynamic log as CSV, one row per system per reported step.

    Columns: ``step, time_fs, [system,] T_K, E_pot, E_kin, conserved, n_dof`` (energies in eV;
    ``system`` only for several systems; ``n_dof`` the degrees of freedom behind ``T_K``).
    """

    def __init__(self, path: str | os.PathLike, interval: int = 10):
        super().__init__(interval)
        self.path = Path(path)
        self._file = None
        self._writer = None

    def _columns(self, sim) -> list[str]:
        system = ["system"] if sim.state.n_systems > 1 else []
        return ["step", "time_fs", *system, "T_K", "E_pot", "E_kin", "conserved", "n_dof"]

    def start(self, sim) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        columns = self._columns(sim)
        mode = _open_mode(self, sim)
        if mode == "a":
            self._file = open(self.path, "a", newline="")
            self._writer = csv.writer(self._file)
        else:
            kept: list[list[str]] = []
            if mode == "resume" and self.path.exists():
                with open(self.path, newline="") as f:
                    rows = list(csv.reader(f))
                if rows and rows[0] == columns:
                    kept = [r for r in rows[1:] if r and int(r[0]) <= sim.state.step]
            self._file = open(self.path, "w", newline="")
            self._writer = csv.writer(self._file)
            self._writer.writerow(columns)
            self._writer.writerows(kept)
        self._file.flush()
        self._n_dof = sim.state.n_dof.detach().cpu().numpy()

    def report(self, sim) -> None:
        obs = sim.observables()
        step, time_fs = sim.state.step, sim.time_fs
        many = sim.state.n_systems > 1
        for k in range(sim.state.n_systems):
            system = [k] if many else []
            self._writer.writerow(
                [step, repr(float(time_fs)), *system]
                + [repr(float(obs[name][k])) for name in ("T_K", "E_pot", "E_kin", "conserved")]
                + [int(self._n_dof[k])]
            )
        self._file.flush()

    def close(self, sim) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class TrajectoryWriter(Reporter):
    """Frames as extxyz (``.xyz``, ``.extxyz``) or ASE ``.traj``, with momenta, energy and forces.

    Several systems go to one file each: ``name.system{k}.ext``. ``atoms.info["md_step"]`` and
    ``["md_time_fs"]`` hold the step and time of every frame.
    """

    def __init__(self, path: str | os.PathLike, interval: int = 100):
        super().__init__(interval)
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in (".xyz", ".extxyz", ".traj"):
            raise ValueError(f"trajectory file must end in .xyz, .extxyz or .traj, got {self.path.name!r}")
        self.format = "traj" if suffix == ".traj" else "extxyz"
        self._handles: list = []

    def paths(self, n_systems: int) -> list[Path]:
        if n_systems == 1:
            return [self.path]
        return [self.path.with_name(f"{self.path.stem}.system{k}{self.path.suffix}") for k in range(n_systems)]

    def start(self, sim) -> None:
        import ase.io
        from ase.io.trajectory import Trajectory

        self._handles = []
        mode = _open_mode(self, sim)
        for path in self.paths(sim.state.n_systems):
            path.parent.mkdir(parents=True, exist_ok=True)
            kept = []
            if mode == "resume" and path.exists() and path.stat().st_size > 0:
                kept = [a for a in ase.io.read(path, ":") if int(a.info.get("md_step", -1)) <= sim.state.step]
            file_mode = "a" if mode == "a" else "w"
            if self.format == "traj":
                handle = Trajectory(str(path), file_mode)
                for atoms in kept:
                    handle.write(atoms)
            else:
                handle = open(path, file_mode)
                for atoms in kept:
                    ase.io.write(handle, atoms, format="extxyz")
                handle.flush()
            self._handles.append(handle)

    def report(self, sim) -> None:
        import ase.io

        for handle, atoms in zip(self._handles, sim.atoms()):
            if self.format == "traj":
                handle.write(atoms)  # ASE's ulm writer completes each frame on disk as it goes
            else:
                ase.io.write(handle, atoms, format="extxyz")
                handle.flush()

    def close(self, sim) -> None:
        for handle in self._handles:
            handle.close()
        self._handles = []


class CheckpointWriter(Reporter):
    """Atomic checkpoints (temporary file, then ``os.replace``) every ``interval`` steps and on close.

    The file is a ``torch.save`` of plain tensors, numbers and strings (state, integrator
    settings, RNG state, neighbour list), loadable with ``torch.load(..., weights_only=True)``.
    Resume with ``Simulation.from_checkpoint(path, atoms, potential, reporters)``.


    Args:
        path: the checkpoint file (replaced at each write).
        interval: steps between checkpoints.
        final: write one more when the run closes in a good state (end of run, Ctrl-C).
        extra: called at each write; its dict of plain tensors, numbers and strings is stored
            under ``"extra"`` (e.g. what in-memory reporters hold, so that a resumed run's
            records are those of an uninterrupted one).
    """

    def __init__(self, path: str | os.PathLike, interval: int = 1000, final: bool = True,
                 extra: Callable[[], dict] | None = None):
        super().__init__(interval)
        self.path = Path(path)
        self.final = final
        self.extra = extra
        self.last_step: int | None = None

    def _write(self, sim) -> None:
        sim.save_checkpoint(self.path, extra=None if self.extra is None else self.extra())
        self.last_step = sim.state.step

    def report(self, sim) -> None:
        if self.last_step != sim.state.step:
            self._write(sim)

    def close(self, sim) -> None:
        if self.final and sim.state_is_good and sim.reports_done and self.last_step != sim.state.step:
            self._write(sim)


class ThermoRecorder(Reporter):
    """Keeps step, time_fs and per-system T_K, E_pot, E_kin, conserved in memory.

    After the run, :meth:`arrays` gives ``step`` [F], ``time_fs`` [F] and [F, n_systems] arrays
    for the rest (F reported frames). With ``positions=True`` it also keeps positions and
    momenta [F, n_atoms, 3] (for tests and small systems).
    """

    def __init__(self, interval: int = 1, positions: bool = False):
        super().__init__(interval)
        self.keep_positions = positions
        self.rows: dict[str, list] = {
            k: [] for k in ("step", "time_fs", "T_K", "E_pot", "E_kin", "conserved", "positions", "momenta")
        }

    def start(self, sim) -> None:
        self.n_dof = sim.state.n_dof.detach().cpu().numpy()

    def clear(self) -> None:
        """Forget everything recorded so far (e.g. after equilibration)."""
        self.rows = {k: [] for k in self.rows}

    def report(self, sim) -> None:
        obs = sim.observables()
        self.rows["step"].append(sim.state.step)
        self.rows["time_fs"].append(sim.time_fs)
        for name in ("T_K", "E_pot", "E_kin", "conserved"):
            self.rows[name].append(obs[name].copy())
        if self.keep_positions:
            self.rows["positions"].append(sim.state.positions.detach().cpu().clone())
            self.rows["momenta"].append(sim.state.momenta.detach().cpu().clone())

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The rows recorded so far as tensors (float64: exact), for a checkpoint (:class:`CheckpointWriter`)."""
        return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in self.arrays().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Continue from :meth:`state_dict`: the rows of the run a checkpoint interrupted."""
        self.clear()
        for name, values in state.items():
            rows = values.numpy()
            self.rows[name] = [torch.from_numpy(r.copy()) for r in rows] if name in ("positions", "momenta") else (
                [r.copy() for r in rows] if rows.ndim > 1 else rows.tolist())

    def arrays(self) -> dict[str, np.ndarray]:
        out = {k: np.asarray(v) for k, v in self.rows.items() if k not in ("positions", "momenta")}
        if self.keep_positions and self.rows["positions"]:
            out["positions"] = np.stack([p.numpy() for p in self.rows["positions"]])
            out["momenta"] = np.stack([p.numpy() for p in self.rows["momenta"]])
        return out


class ProgressBar(Reporter):
    """Progress of a run with the temperature, every ``interval`` steps, through
    :func:`mlpot.progress.progress`: a bar on a terminal, a plain line every 5% in a log.

    Args:
        total_steps: the step the run ends at (a resumed run starts part of the way).
        interval: steps between updates.
        desc: a label printed before the bar or each line.
        stream: where to write (default: standard error).
    """

    def __init__(self, total_steps: int, interval: int = 10, desc: str = "MD", stream=None):
        super().__init__(interval)
        self.total_steps = int(total_steps)
        self.desc = desc
        self.stream = stream
        self.bar = None

    def start(self, sim) -> None:
        self.bar = progress(
            total=self.total_steps, desc=self.desc, unit="step", stream=self.stream, initial=sim.state.step
        )
        self._last = sim.state.step

    def _temperature(self, sim) -> str:
        temperatures = sim.observables()["T_K"]
        return f"{temperatures[0]:.1f}" if temperatures.size == 1 else f"{temperatures.mean():.1f} (mean)"

    def report(self, sim) -> None:
        if self.bar is None:
            return
        step = sim.state.step
        self.bar.update(step - self._last, T_K=self._temperature(sim))
        self._last = step

    def close(self, sim) -> None:
        if self.bar is not None:
            self.bar.update(sim.state.step - self._last)
            self.bar.close()
            self.bar = None
